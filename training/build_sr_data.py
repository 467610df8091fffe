"""Build the surface-refinement data cache: mesh initialisation once per synthetic case.

    python -m training.build_sr_data --out data_cache/sr \
        --train-seeds 0:2000 --val-seeds 1000000:1000100 [--models-dir DIR] [--workers 2]

writes ``OUT/train`` and ``OUT/val`` (see :mod:`training.surface.data`); re-running
completes an interrupted build. The segmenter is the shipped network (or the one in
``--models-dir``); ``--segmenter oracle`` uses the truth masks (tests, diagnostics).
Seeds must lie in the engine's train / val splits.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from training.build_seg_data import check_split, parse_seeds


def main(argv: Sequence[str] | None = None) -> int:
    from training.surface.data import build_sr_cache

    ap = argparse.ArgumentParser(
        prog="python -m training.build_sr_data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--train-seeds", type=parse_seeds, required=True)
    ap.add_argument("--val-seeds", type=parse_seeds, required=True)
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--segmenter", choices=("network", "oracle"), default="network")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    check_split(args.train_seeds, "train")
    check_split(args.val_seeds, "val")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for split, seeds in (("train", args.train_seeds), ("val", args.val_seeds)):
        index = build_sr_cache(
            args.out / split,
            seeds,
            segmenter=args.segmenter,
            models_dir=args.models_dir,
            workers=args.workers,
        )
        print(
            json.dumps(
                {"split": split, "cases": len(index["keys"]), "failed": len(index["failures"])}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
