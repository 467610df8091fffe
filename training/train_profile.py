"""Train the ring-profile network (the surface-refinement stage that ships) on an SR cache.

    python -m training.train_profile --data data_cache/sr --out runs/profile [--epochs 8]
        [--lr 1e-3 --gamma 0.8 --batch 256 --threads 2] [--max-mi-mae 2]

``--data`` holds ``train/`` and ``val/`` (python -m training.build_sr_data). Writes
``OUT/best`` (best validation mean distance to the truth surface), ``OUT/last``
(resumable: the same command with ``--resume``) and ``OUT/train_log.jsonl``. On 2 CPU
cores: ~7 s to build the ring arrays, ~45 s an epoch with its validation.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from training.surface.profile import ProfileTrainConfig, train_profile

    d = ProfileTrainConfig(data="", out="")
    ap = argparse.ArgumentParser(
        prog="python -m training.train_profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    for name in ("epochs", "lr", "gamma", "batch", "weight_decay", "seed", "threads"):
        ap.add_argument(
            f"--{name.replace('_', '-')}", type=type(getattr(d, name)), default=getattr(d, name)
        )
    ap.add_argument("--resume", action="store_true", help="continue OUT/last")
    ap.add_argument("--augment", action="store_true", help="symmetry augmentation (off: worse)")
    ap.add_argument(
        "--max-mi-mae",
        type=float,
        default=2.0,
        help="leave out cases whose MI is further than this from the truth (mean "
        "vertex distance, mm; <= 0 keeps all)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = ProfileTrainConfig(
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        lr=args.lr,
        gamma=args.gamma,
        batch=args.batch,
        weight_decay=args.weight_decay,
        seed=args.seed,
        threads=args.threads,
        max_mi_mae_mm=args.max_mi_mae if args.max_mi_mae > 0 else None,
        resume=args.resume,
        augment=args.augment,
    )
    try:
        st = train_profile(cfg)
    except FileExistsError as exc:
        ap.error(f"{exc} (--resume)")
    print(
        json.dumps({k: st.get(k) for k in ("epoch", "best_epoch", "best_val_mean", "val_mi_mean")})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
