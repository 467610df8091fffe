"""Train the surface-refinement network (VGG-style encoder + 8-layer GCN) on an SR cache.

    python -m training.train_surface --data data_cache/sr --out runs/sr --epochs 100 [--resume]
        [--no-silhouette] [--w-mse 1 --w-normal 0.01 --w-edge 2.5 --w-laplacian 100
         --w-silhouette 0.0002] [--laplacian-reference truth|input]

``--data`` holds ``train/`` and ``val/`` (python -m training.build_sr_data). Writes
``OUT/last`` (resumable), ``OUT/best`` (best validation vertex MAE) and
``OUT/train_log.jsonl``. ``--no-silhouette`` is the ablation without the silhouette loss.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training.train_segmenter
    from training.surface.losses import LossWeights
    from training.surface.trainer import SRTrainConfig, train_sr

    d = LossWeights()
    ap = argparse.ArgumentParser(
        prog="python -m training.train_surface",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--gamma", type=float, default=0.99)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--val-limit", type=int, default=None)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--no-silhouette", action="store_true")
    ap.add_argument(
        "--silhouette-faces",
        choices=("one_side", "all"),
        default="one_side",
        help="render one side of the closed mesh (half the cost) or every face",
    )
    ap.add_argument("--keep-epochs", action="store_true", help="also keep OUT/epoch_N")
    ap.add_argument(
        "--target",
        choices=("surface", "vertex"),
        default="surface",
        help="vertex terms against the truth surface's nearest points (default) or the "
        "truth vertices of the same index (the paper)",
    )
    ap.add_argument(
        "--max-mi-mae",
        type=float,
        default=2.0,
        help="leave out cases whose MI mesh is further than this from the truth (mean "
        "vertex distance, mm; <= 0 keeps all)",
    )
    for name in ("mse", "normal", "edge", "laplacian", "silhouette"):
        ap.add_argument(f"--w-{name}", type=float, default=getattr(d, name))
    ap.add_argument(
        "--laplacian-reference", choices=("truth", "input"), default=d.laplacian_reference
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    weights = LossWeights(
        mse=args.w_mse,
        normal=args.w_normal,
        edge=args.w_edge,
        laplacian=args.w_laplacian,
        silhouette=0.0 if args.no_silhouette else args.w_silhouette,
        laplacian_reference=args.laplacian_reference,
    )
    cfg = SRTrainConfig(
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        lr=args.lr,
        gamma=args.gamma,
        threads=args.threads,
        weights=weights,
        val_limit=args.val_limit,
        max_steps=args.max_steps,
        resume=args.resume,
        silhouette_faces=args.silhouette_faces,
        keep_epochs=args.keep_epochs,
        target=args.target,
        max_mi_mae_mm=args.max_mi_mae if args.max_mi_mae > 0 else None,
    )
    st = train_sr(cfg)
    print(json.dumps({k: st[k] for k in ("epoch", "step", "best_val_mae")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
