"""Checkpoints as safetensors + JSON, never pickles; written atomically.

A checkpoint folder (``runs/seg/last``, ``runs/seg/best``)::

    model.safetensors   the model's state_dict (float32, buffers included)
    config.json         architecture, crop, normalisation, data provenance, metrics,
                        sha256 of model.safetensors (what export/ and the runtime need)
    optim.safetensors   optimizer state tensors (Adam moments, steps) and the torch RNG
                        state as a uint8 tensor (resumable checkpoints only)
    state.json          counters (epoch, batch in epoch, global step), scheduler state,
                        optimizer hyper-parameters, best metric so far, sha256 of every file

The folder is written into a hidden temporary sibling and swapped into place
(:func:`angio_deploy.io.atomic.atomic_output_dir`), so a kill at any moment leaves either
the previous or the new checkpoint. Between the swap's two renames the folder is briefly
absent and the old one sits in ``.<name>.old-<hex>``: :func:`find_checkpoint` falls back
to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from angio_deploy.hashing import sha256_file

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OPTIM_FILE = "optim.safetensors"
STATE_FILE = "state.json"
RNG_KEY = "rng.torch"
_OPT_PREFIX = "optim.state."
#: config.json keys a checkpoint needs to rebuild its model.
REQUIRED_KEYS = ("arch", "encoder", "in_channels", "classes", "crop")


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(clean, str(path), metadata=metadata)
    _fsync(path)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _fsync(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``opt.state_dict()`` into tensors (safetensors) and JSON-ready data."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{_OPT_PREFIX}{pid}.{k}"] = v
            else:
                other.setdefault(str(pid), {})[k] = v
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
        for g in sd["param_groups"]
    ]
    return tensors, {"param_groups": groups, "state_other": other}


def optimizer_state_dict(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, Any]:
    """Inverse of :func:`optimizer_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if not key.startswith(_OPT_PREFIX):
            continue
        pid, name = key[len(_OPT_PREFIX) :].split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    for pid, d in meta.get("state_other", {}).items():
        state.setdefault(int(pid), {}).update(d)
    groups = [
        {k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    ckpt_dir: str | Path,
    *,
    model: torch.nn.Module,
    config: dict[str, Any],
    state: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    rng_state: torch.Tensor | None = None,
) -> Path:
    """Write a checkpoint folder atomically (see module docstring); returns its path."""
    from angio_deploy.io.atomic import atomic_output_dir

    ckpt_dir = Path(ckpt_dir)
    with atomic_output_dir(ckpt_dir) as tmp:
        model_state = {
            k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()
        }
        _save_tensors(tmp / MODEL_FILE, model_state, {"format": "pt"})
        cfg = dict(config)
        cfg["model_sha256"] = sha256_file(tmp / MODEL_FILE)
        _write_json(tmp / CONFIG_FILE, cfg)
        st = dict(state)
        if optimizer is not None:
            tensors, meta = optimizer_tensors(optimizer)
            if rng_state is not None:
                tensors[RNG_KEY] = rng_state
            _save_tensors(tmp / OPTIM_FILE, tensors, {"format": "pt"})
            st["optimizer"] = meta
        files = [MODEL_FILE, CONFIG_FILE] + ([OPTIM_FILE] if optimizer is not None else [])
        st["sha256"] = {f: sha256_file(tmp / f) for f in files}
        _write_json(tmp / STATE_FILE, st)
    return ckpt_dir


def read_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file (safe_open: no code can run)."""
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), framework="pt", device="cpu") as f:
        for k in f.keys():  # noqa: SIM118 - safe_open has no __iter__
            out[k] = f.get_tensor(k)
    return out


def verify_checkpoint(ckpt_dir: str | Path) -> dict[str, Any]:
    """state.json of a complete checkpoint whose files match their recorded hashes;
    ValueError otherwise."""
    ckpt_dir = Path(ckpt_dir)
    state_path = ckpt_dir / STATE_FILE
    if not state_path.is_file():
        raise ValueError(f"{ckpt_dir}: incomplete checkpoint (no {STATE_FILE})")
    state = read_json(state_path)
    for name, digest in state.get("sha256", {}).items():
        p = ckpt_dir / name
        if not p.is_file() or sha256_file(p) != digest:
            raise ValueError(f"{p}: missing or does not match the hash in {STATE_FILE}")
    return state


def find_checkpoint(run_dir: str | Path, name: str = "last") -> Path | None:
    """``run_dir/name`` if complete, else a complete left-over ``.name.old-*`` (a kill in
    the middle of a swap), else None."""
    run_dir = Path(run_dir)
    candidates = [run_dir / name, *sorted(run_dir.glob(f".{name}.old-*"))]
    for c in candidates:
        if c.is_dir():
            try:
                verify_checkpoint(c)
            except ValueError:
                continue
            return c
    return None


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded or exported; the message names the file and key."""


def read_config(checkpoint_dir: str | Path) -> dict[str, Any]:
    """The checkpoint's config.json, validated (missing keys name the key)."""
    path = Path(checkpoint_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not found (a checkpoint folder needs {CONFIG_FILE})")
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in REQUIRED_KEYS:
        if key not in config:
            raise CheckpointError(f"{path}: missing key {key!r}")
    if config["arch"] != "unet":
        raise CheckpointError(f"{path}: arch {config['arch']!r} is not supported (only 'unet')")
    crop = config["crop"]
    for key in ("width", "height"):
        if not isinstance(crop.get(key), int) or crop[key] <= 0:
            raise CheckpointError(f"{path}: crop.{key} must be a positive integer")
    return config


def model_from_config(config: dict[str, Any]):
    """The torch module the config describes (random init; no weights are downloaded)."""
    import segmentation_models_pytorch as smp

    return smp.Unet(
        encoder_name=config["encoder"],
        encoder_weights=None,
        in_channels=int(config["in_channels"]),
        classes=int(config["classes"]),
    )


def load_checkpoint(checkpoint_dir: str | Path):
    """(model in eval mode, config, sha256 of the weights file) of a checkpoint folder."""
    from safetensors.torch import load_file

    checkpoint_dir = Path(checkpoint_dir)
    config = read_config(checkpoint_dir)
    weights = checkpoint_dir / MODEL_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights}: not found")
    state = load_file(str(weights))
    model = model_from_config(config)
    expected = set(model.state_dict())
    if not expected <= set(state):  # tolerate a wrapper prefix ("model.", "module.")
        for prefix in ("model.", "module."):
            stripped = {k.removeprefix(prefix): v for k, v in state.items()}
            if expected <= set(stripped):
                state = stripped
                break
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        msg = f"{weights}: does not match config {config['encoder']}: {exc}"
        raise CheckpointError(msg) from exc
    model.eval()
    return model, config, sha256_file(weights)
