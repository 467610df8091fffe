"""Average the weights of several segmenter checkpoints, and compare them on validation.

    python -m training.average_checkpoints --data data_cache/seg --out runs/seg/avg \
        runs/seg/epoch_6 runs/seg/epoch_7 runs/seg/epoch_8 [--compare runs/seg/best]

Weight averaging of the last epochs (as in stochastic weight averaging, without changing
the optimiser or the schedule) smooths the epoch-to-epoch noise of a run that is still
far from converged. Every floating-point tensor is averaged, batch-norm running means and
variances included (the usual approximation; the validation Dice below says whether it
holds); integer tensors (``num_batches_tracked``) come from the last checkpoint. The
average and every ``--compare`` checkpoint are scored with the trainer's validation (main
SOIs of ``DATA/val``, no augmentation); choosing between them on validation never looks
at the test split. OUT gets ``model.safetensors`` and the last checkpoint's
``config.json`` (with ``averaged_from``), the two files ``export.onnx_export`` reads.

``--init-onnx MODEL.onnx`` adds the model a fine-tune started from (``train_segmenter
--init-onnx``: BatchNorms folded into identities, so its tensors line up with the
fine-tuned ones) as the first member, and ``--weights`` gives each member's weight:

    python -m training.average_checkpoints --data data_cache/seg --out runs/ft/wise \
        --init-onnx python/angio_deploy/models/segmenter.onnx runs/ft/last --weights 0.5 0.5

is weight-space ensembling of the starting and the fine-tuned model (Wortsman et al.,
"Robust fine-tuning of zero-shot models", 2022): it keeps most of what the fine-tune
gained on the new domain while losing less on the old one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    from safetensors.torch import save_file

    from training.segmenter.cache import SegCache
    from training.segmenter.checkpoint import load_checkpoint, load_tensors, read_json, sha256_file
    from training.segmenter.dataset import SegDataset
    from training.segmenter.trainer import Validator

    ap = argparse.ArgumentParser(prog="python -m training.average_checkpoints", description=__doc__)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--compare", nargs="*", type=Path, default=[])
    ap.add_argument("--init-onnx", type=Path, default=None, help="the fine-tune's start model")
    ap.add_argument(
        "--weights", nargs="*", type=float, default=None, help="one per member (default: equal)"
    )
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    states = [load_tensors(c / "model.safetensors") for c in args.checkpoints]
    members: list[dict] = [
        {"path": str(c), "sha256": sha256_file(c / "model.safetensors")} for c in args.checkpoints
    ]
    if args.init_onnx is not None:
        from training.segmenter.checkpoint import model_from_config
        from training.segmenter.warm_start import load_from_onnx

        start = model_from_config(read_json(args.checkpoints[-1] / "config.json"))
        loaded = set(load_from_onnx(start, args.init_onnx)["modules"])
        # Tensors the ONNX graph does not hold (modules the forward never runs) are
        # taken from the fine-tune, not averaged with a fresh random init.
        states.insert(
            0,
            {
                k: (v if k.rpartition(".")[0] in loaded else states[-1][k]).detach().clone()
                for k, v in start.state_dict().items()
            },
        )
        members.insert(0, {"path": str(args.init_onnx), "sha256": sha256_file(args.init_onnx)})
    weights = args.weights or [1.0] * len(states)
    if len(weights) != len(states) or min(weights) < 0 or sum(weights) <= 0:
        ap.error(f"--weights: {len(states)} non-negative weights needed, got {weights}")
    w = torch.tensor(weights, dtype=torch.float32) / float(sum(weights))
    avg = {}
    for k, v in states[-1].items():
        if v.is_floating_point():
            stacked = torch.stack([s[k].float() for s in states])
            avg[k] = (stacked * w.view(-1, *([1] * v.dim()))).sum(0)
        else:
            avg[k] = v.clone()
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(avg, str(args.out / "model.safetensors"), metadata={"format": "pt"})
    cfg = read_json(args.checkpoints[-1] / "config.json")
    cfg["averaged_from"] = [
        {**m, "weight": float(wi)} for m, wi in zip(members, w.tolist(), strict=True)
    ]
    cfg["model_sha256"] = sha256_file(args.out / "model.safetensors")
    (args.out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")

    from training.segmenter.augment import CropParams

    crop = CropParams(**{k: cfg["crop"][k] for k in ("width", "height", "margin_px", "max_scale")})
    val = SegDataset(SegCache(args.data / "val"), crop=crop, augment=None, segments="main")
    validator = Validator(val, None, 16)
    results = {}
    for c in [*args.compare, args.out]:
        model, _, sha = load_checkpoint(c)
        model = model.to(memory_format=torch.channels_last)
        results[str(c)] = {"sha256": sha[:12], **validator(model, True)}
        print(json.dumps({str(c): results[str(c)]}), flush=True)
    (args.out / "validation.json").write_text(json.dumps(results, indent=1) + "\n")
    # The averaged model's own validation replaces the last checkpoint's metrics.
    cfg["metrics"] = {k: v for k, v in results[str(args.out)].items() if k != "sha256"}
    (args.out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
