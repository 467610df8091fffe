"""A segmenter fine-tune sized for a lent GPU, and the way its weights come back.

    # on the GPU machine (tools/device_burst.sh runs this in one device call)
    python -m training.gpu_burst run --real .burst/real_seg --work data_cache/burst \
        --out "$OUT" [--preset gpu] [--budget-min 8.5] [--workers 14]
    # back here: join the parts, check every hash, get a checkpoint folder
    python -m training.gpu_burst unpack FILES_DIR runs/burst/last

Why it exists: a lent H200 gives about ten minutes of compute a session, which is many
hours of this project's 2 CPU cores, and nothing on that machine survives it. ``run`` is
the whole job as one command that fits a budget: it builds the data there (synthetic
generator v1 and v2 cases from engine seeds, real SOI tasks from images 1-30 of the real
set; many CPU workers), fine-tunes from the shipped segmenter on all three together
(``train_segmenter --device auto --time-limit-min``, bfloat16 autocast, validation on the
synthetic val split and on real images 31-40 for the log only), and packs the final
``last`` checkpoint as float16 safetensors cut into parts small enough for the device
tool's file limits (16 MiB a file, 8 files), with ``burst.json`` holding every part's
sha256, the run's config, its validation history and the stage timings. Each stage skips
what a previous call on the same warm machine already finished, and the fine-tune resumes.

``unpack`` rebuilds ``model.safetensors`` (float32) and ``config.json`` here, refusing any
part whose hash differs, so the usual chain follows on this machine: weight-space
averaging with the shipped model, export, both benchmarks, and only when it is better on
both, the width level, the ring-profile stage and the product evaluation
(training/README.md, "A GPU burst").

The checkpoint taken is ``last``, never ``best``: ``best`` is chosen partly on the real
validation images, which must stay unseen by every decision.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("training.gpu_burst")

BURST_FORMAT = "angio-gpu-burst/1"
MANIFEST = "burst.json"
PART_PREFIX = "seg_ft.part"
#: Under the device tool's 16 MiB a file.
PART_BYTES = 15 * 1024 * 1024
#: Seconds kept back from the budget for the last validation, the save and the packing.
RESERVE_S = 45.0


@dataclass(frozen=True)
class Preset:
    """Sizes of one burst. Seeds are ``first:stop`` ranges of the engine's splits."""

    v1_train_seeds: str
    v2_train_seeds: str
    val_seeds: str
    real_tasks: int
    real_repeats: int
    batch_size: int
    lr: float
    gamma: float
    val_limit: int
    save_every: int
    crop: tuple[int, int] | None = None
    any_split: bool = False
    #: A step cap besides the time budget (the smoke test's).
    max_steps: int | None = None
    #: DataLoader processes (None: the data-building workers). On 2 CPU cores a loader
    #: process only competes with the step.
    loader_workers: int | None = None


PRESETS: dict[str, Preset] = {
    # About 2 min of data on 14 workers, the rest of the budget training. lr 1e-4 and
    # the per-epoch decay follow the CPU fine-tune that shipped (docs/RESULTS.md); the
    # real tasks are drawn 32 per image so that many epochs do not replay the same crops.
    "gpu": Preset(
        v1_train_seeds="0:1500",
        v2_train_seeds="0:1500",
        val_seeds="1000000:1000200",
        real_tasks=32,
        real_repeats=1,
        batch_size=32,
        lr=1e-4,
        gamma=0.97,
        val_limit=200,
        save_every=500,
    ),
    # The recipe at a CPU's scale (an hour on 2 cores: ~5 epochs of ~3,300 samples), to
    # measure its direction where no GPU is lent.
    "cpu-hour": Preset(
        v1_train_seeds="0:600",
        v2_train_seeds="0:300",
        val_seeds="1000000:1000200",
        real_tasks=32,
        real_repeats=1,
        batch_size=8,
        lr=1e-4,
        gamma=0.97,
        val_limit=200,
        save_every=200,
        loader_workers=0,
    ),
    # The same code path in seconds on a CPU (tests): a few cases, small crops.
    "smoke": Preset(
        v1_train_seeds="0:2",
        v2_train_seeds="0:2",
        val_seeds="1000000:1000001",
        real_tasks=1,
        real_repeats=1,
        batch_size=2,
        lr=1e-4,
        gamma=0.97,
        val_limit=2,
        save_every=0,
        crop=(128, 64),
        any_split=True,
        max_steps=2,
    ),
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _python(module: str, *args: str) -> None:
    cmd = [sys.executable, "-m", module, *args]
    log.info("running %s", " ".join(cmd))
    subprocess.run(cmd, check=True)


def build_data(work: Path, real: Path, preset: Preset, workers: int) -> dict[str, float]:
    """The three caches under ``work`` (skipped when already built); seconds per cache."""
    times: dict[str, float] = {}
    extra = ["--any-split"] if preset.any_split else []
    jobs = {
        "seg": [
            *("--train-seeds", preset.v1_train_seeds, "--val-seeds", preset.val_seeds),
            *("--generator-version", "1"),
        ],
        # Validation stays generator v1 (the test split's version); v2's own val is a
        # token case the cache format asks for.
        "seg_v2": [
            *("--train-seeds", preset.v2_train_seeds),
            *("--val-seeds", _first_only(preset.val_seeds)),
            *("--generator-version", "2"),
        ],
    }
    for name, args in jobs.items():
        if (work / name / "train").is_dir() and (work / name / "val").is_dir():
            continue
        t0 = time.perf_counter()
        _python(
            "training.build_seg_data",
            *("--out", str(work / name), "--workers", str(workers), "--overwrite"),
            *args,
            *extra,
        )
        times[name] = round(time.perf_counter() - t0, 1)
    if not ((work / "real" / "train").is_dir() and (work / "real" / "val").is_dir()):
        t0 = time.perf_counter()
        _python(
            "training.build_seg_data",
            *("--out", str(work / "real"), "--real", str(real), "--overwrite"),
            *("--real-tasks", str(preset.real_tasks)),
        )
        times["real"] = round(time.perf_counter() - t0, 1)
    return times


def _first_only(seeds: str) -> str:
    first = int(seeds.split(":")[0])
    return f"{first}:{first + 1}"


def train_args(
    work: Path, init_onnx: Path, preset: Preset, workers: int, minutes: float, resume: bool
) -> list[str]:
    """The ``train_segmenter`` command line of the burst's fine-tune."""
    args = [
        *("--data", str(work / "seg"), "--out", str(work / "run")),
        *("--init-onnx", str(init_onnx), "--device", "auto"),
        *("--extra-train", f"{work / 'seg_v2' / 'train'}:1"),
        *("--extra-train", f"{work / 'real' / 'train'}:{preset.real_repeats}"),
        *("--extra-val", str(work / "real" / "val")),
        *("--epochs", "100000", "--time-limit-min", f"{minutes:.3f}"),
        *("--batch-size", str(preset.batch_size), "--lr", str(preset.lr)),
        *("--gamma", str(preset.gamma)),
        *("--workers", str(workers if preset.loader_workers is None else preset.loader_workers)),
        *("--val-limit", str(preset.val_limit), "--save-every", str(preset.save_every)),
        *("--lowres-prob", "0.25", "--invert-prob", "0.05", "--log-every", "50"),
    ]
    if preset.max_steps is not None:
        args += ["--max-steps", str(preset.max_steps)]
    if preset.crop is not None:
        args += ["--crop-width", str(preset.crop[0]), "--crop-height", str(preset.crop[1])]
    if resume:
        args.append("--resume")
    return args


def pack(checkpoint: Path, out: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """``checkpoint``'s model as float16 safetensors parts in ``out`` plus ``burst.json``."""
    import torch
    from safetensors.torch import save

    from training.segmenter.checkpoint import load_tensors, read_json

    tensors = load_tensors(checkpoint / "model.safetensors")
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    blob = save(half, metadata={"format": "pt", "dtype": "float16"})
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(0, len(blob), PART_BYTES):
        chunk = blob[i : i + PART_BYTES]
        name = f"{PART_PREFIX}{len(parts)}"
        (out / name).write_bytes(chunk)
        parts.append({"name": name, "bytes": len(chunk), "sha256": _sha256(chunk)})
    manifest = {
        "format": BURST_FORMAT,
        "model": {"bytes": len(blob), "sha256": _sha256(blob), "dtype": "float16"},
        "parts": parts,
        "config": read_json(checkpoint / "config.json"),
        "torch": torch.__version__,
        **extra,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def unpack(files: Path, dest: Path) -> Path:
    """Rebuild a checkpoint folder (float32 ``model.safetensors``, ``config.json``) from a
    packed burst in ``files``; ValueError naming the part whose size or hash is wrong."""
    from safetensors.torch import load, save_file

    from training.segmenter.checkpoint import sha256_file

    manifest = json.loads((files / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != BURST_FORMAT:
        raise ValueError(f"{files / MANIFEST}: format {manifest.get('format')!r}")
    chunks = []
    for part in manifest["parts"]:
        data = (files / part["name"]).read_bytes()
        if len(data) != part["bytes"] or _sha256(data) != part["sha256"]:
            raise ValueError(f"{files / part['name']}: size or sha256 differs from {MANIFEST}")
        chunks.append(data)
    blob = b"".join(chunks)
    if _sha256(blob) != manifest["model"]["sha256"]:
        raise ValueError(f"{files}: the joined parts do not hash to {MANIFEST}'s model sha256")
    tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in load(blob).items()}
    dest.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dest / "model.safetensors"), metadata={"format": "pt"})
    cfg = dict(manifest["config"])
    cfg["model_sha256"] = sha256_file(dest / "model.safetensors")
    cfg["gpu_burst"] = {
        k: manifest.get(k) for k in ("preset", "device_name", "timings", "torch", "history")
    } | {"packed_sha256": manifest["model"]["sha256"], "dtype_on_the_way": "float16"}
    (dest / "config.json").write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")
    return dest


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def run(
    real: Path,
    work: Path,
    out: Path,
    *,
    preset_name: str = "gpu",
    budget_min: float = 8.5,
    workers: int = 14,
    init_onnx: Path | None = None,
) -> dict[str, Any]:
    """The burst: data, fine-tune until the budget (minutes of this call) is spent, pack."""
    t_start = time.monotonic()
    preset = PRESETS[preset_name]
    if init_onnx is None:
        from angio_deploy.models import PACKAGE_DIR

        init_onnx = PACKAGE_DIR / "segmenter.onnx"
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, Any] = {"data": build_data(work, real, preset, workers)}
    left_s = budget_min * 60.0 - (time.monotonic() - t_start) - RESERVE_S
    if left_s < 30.0:
        raise RuntimeError(f"the data took the budget: {left_s:.0f} s left for training")
    t0 = time.perf_counter()
    resume = (work / "run" / "last").is_dir()
    _python(
        "training.train_segmenter",
        *train_args(work, init_onnx, preset, workers, left_s / 60.0, resume),
    )
    timings["train_s"] = round(time.perf_counter() - t0, 1)
    history = []
    log_path = work / "run" / "train_log.jsonl"
    for line in log_path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("event") in ("val", "start", "resume", "done"):
            history.append(rec)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_log.jsonl").write_bytes(log_path.read_bytes())
    timings["total_s"] = round(time.monotonic() - t_start, 1)
    manifest = pack(
        work / "run" / "last",
        out,
        {
            "preset": {"name": preset_name, **asdict(preset)},
            "device_name": _device_name(),
            "timings": timings,
            "history": history,
        },
    )
    log.info("packed %d parts, %.1f MB", len(manifest["parts"]), manifest["model"]["bytes"] / 1e6)
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.gpu_burst",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="data, fine-tune and pack (on the GPU machine)")
    r.add_argument("--real", type=Path, required=True, help="the real_seg folder")
    r.add_argument("--work", type=Path, required=True, help="caches and the run (scratch)")
    r.add_argument("--out", type=Path, required=True, help="what comes back ($OUT)")
    r.add_argument("--preset", choices=sorted(PRESETS), default="gpu")
    r.add_argument("--budget-min", type=float, default=8.5, help="wall minutes of this call")
    r.add_argument("--workers", type=int, default=14, help="data-building and loader processes")
    r.add_argument("--init-onnx", type=Path, default=None, help="default: the shipped segmenter")
    u = sub.add_parser("unpack", help="join and check the parts (here)")
    u.add_argument("files", type=Path, help="the folder the device tool brought back")
    u.add_argument("dest", type=Path, help="checkpoint folder to write")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.cmd == "unpack":
        print(unpack(args.files, args.dest))
        return 0
    manifest = run(
        args.real,
        args.work,
        args.out,
        preset_name=args.preset,
        budget_min=args.budget_min,
        workers=args.workers,
        init_onnx=args.init_onnx,
    )
    print(json.dumps({k: manifest[k] for k in ("model", "parts", "timings")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
