"""Train the SOI segmenter (EfficientNet-B3 U-Net) on a data cache.

    python -m training.train_segmenter --data data_cache/seg --out runs/seg --epochs 100
    python -m training.train_segmenter --data data_cache/seg --out runs/seg --epochs 100 --resume

``--data`` holds ``train/`` and ``val/`` caches (python -m training.build_seg_data).
Writes ``OUT/last`` (resumable), ``OUT/best`` (best validation Dice) and JSON-lines logs to
``OUT/train_log.jsonl`` and stdout. ``--resume`` continues from ``OUT/last`` exactly where
it stopped (a kill at any moment is safe); without it an existing run is not touched.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

#: OpenMP threads that sleep instead of spinning at barriers: on a 2-core machine shared
#: with any other job (a data build, an evaluation) spinning threads slowed a step from
#: ~2.5 s to 5-25 s; set OMP_WAIT_POLICY yourself to override.
_OMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_config(argv)
    from training.segmenter.trainer import train

    train(cfg)
    return 0


def parse_config(argv: Sequence[str] | None = None):
    """The command line as a :class:`~training.segmenter.trainer.TrainConfig` (argparse
    errors exit 2), without training."""
    for key, value in _OMP_DEFAULTS.items():  # before torch loads its OpenMP runtime
        os.environ.setdefault(key, value)
    from training.segmenter.augment import AugmentParams, CropParams
    from training.segmenter.trainer import TrainConfig

    ap = argparse.ArgumentParser(
        prog="python -m training.train_segmenter",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this global step")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--gamma", type=float, default=0.96, help="per-epoch learning-rate decay")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="DataLoader worker processes (0: in the main process, fastest on 2 cores)",
    )
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--save-every", type=int, default=200, help="steps between last/ saves")
    ap.add_argument(
        "--segments",
        choices=("all", "main"),
        default="all",
        help="train on side-branch samples too (all) or main SOIs only",
    )
    ap.add_argument("--val-limit", type=int, default=None, help="validate on the first N only")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument(
        "--encoder-weights",
        type=Path,
        default=None,
        help="local safetensors file of pretrained encoder weights",
    )
    ap.add_argument(
        "--extra-train",
        action="append",
        default=[],
        metavar="DIR[:REPEATS]",
        help="another training cache mixed in (repeated REPEATS times an epoch, default 1)",
    )
    ap.add_argument(
        "--extra-val",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="another validation cache; the best checkpoint is chosen on the mean Dice",
    )
    ap.add_argument(
        "--init-onnx",
        type=Path,
        default=None,
        help="fine-tune from an exported segmenter .onnx (BatchNorm folded and frozen)",
    )
    ap.add_argument(
        "--device", default="cpu", help="cpu, cuda[:N] or auto (CUDA when torch sees a GPU)"
    )
    ap.add_argument(
        "--no-amp", action="store_true", help="no bfloat16 autocast on CUDA (float32 throughout)"
    )
    ap.add_argument(
        "--time-limit-min",
        type=float,
        default=None,
        help="validate, save and stop after this many wall minutes (a lent GPU's lease)",
    )
    ap.add_argument("--lowres-prob", type=float, default=AugmentParams.lowres_prob)
    ap.add_argument("--invert-prob", type=float, default=AugmentParams.invert_prob)
    ap.add_argument("--crop-width", type=int, default=CropParams.width)
    ap.add_argument("--crop-height", type=int, default=CropParams.height)
    ap.add_argument("--crop-margin", type=int, default=CropParams.margin_px)
    ap.add_argument("--crop-max-scale", type=float, default=CropParams.max_scale)
    args = ap.parse_args(argv)
    for name in ("crop_width", "crop_height"):
        if getattr(args, name) % 32:
            ap.error(f"--{name.replace('_', '-')} must be a multiple of 32 (U-Net depth 5)")
    extra_train = []
    for spec in args.extra_train:
        path, _, reps = spec.partition(":")
        if reps and not reps.isdigit():
            ap.error(f"--extra-train {spec!r}: REPEATS must be a positive integer")
        extra_train.append((Path(path), int(reps or 1)))
    cfg = TrainConfig(
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        max_steps=args.max_steps,
        resume=args.resume,
        batch_size=args.batch_size,
        lr=args.lr,
        gamma=args.gamma,
        seed=args.seed,
        threads=args.threads,
        workers=args.workers,
        log_every=args.log_every,
        save_every=args.save_every,
        channels_last=not args.no_channels_last,
        segments=args.segments,
        val_limit=args.val_limit,
        encoder_weights=args.encoder_weights,
        crop=CropParams(args.crop_width, args.crop_height, args.crop_margin, args.crop_max_scale),
        augment=AugmentParams(lowres_prob=args.lowres_prob, invert_prob=args.invert_prob),
        extra_train=extra_train,
        extra_val=list(args.extra_val),
        init_onnx=args.init_onnx,
        device=args.device,
        amp=not args.no_amp,
        time_limit_s=None if args.time_limit_min is None else 60.0 * args.time_limit_min,
    )
    return cfg


if __name__ == "__main__":
    raise SystemExit(main())
