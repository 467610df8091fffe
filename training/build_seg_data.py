"""Build the segmenter's data cache from engine seeds (or case folders).

    python -m training.build_seg_data --out data_cache/seg \
        --train-seeds 0:2000 --val-seeds 1000000:1000200 [--workers 2] [--size 512] \
        [--generator-version 2]

writes ``OUT/train`` and ``OUT/val`` (see :mod:`training.segmenter.cache`). Seeds are
``first:stop`` ranges (comma-separated ranges allowed); they must lie in the engine's
train / val splits (:mod:`angio_deploy.synth.splits`) so no test seed is ever trained on.
``--train-cases DIR`` / ``--val-cases DIR`` read case folders (each sub-folder with a
``case.json`` and ``truth/``) instead. ``--generator-version`` picks the engine version the
seeds are generated with (default 1, the version of the test split and every published
number); it is recorded in each cache's meta.json.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from angio_deploy.synth.versions import GENERATOR_VERSION, GENERATOR_VERSIONS
from training.segmenter.cache import build_cache

log = logging.getLogger("training.build_seg_data")


def parse_seeds(text: str) -> list[int]:
    """'0:2000' or '5' or '0:10,20:30' -> seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if ":" in part:
            a, b = part.split(":", 1)
            lo, hi = int(a), int(b)
            if hi <= lo:
                raise argparse.ArgumentTypeError(f"empty seed range {part!r}")
            seeds.extend(range(lo, hi))
        elif part:
            seeds.append(int(part))
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"bad seeds {text!r}")
    return seeds


def check_split(seeds: Sequence[int], split: str) -> None:
    from angio_deploy.synth.splits import split_of

    bad = [s for s in seeds if split_of(s) != split]
    if bad:
        raise SystemExit(
            f"error: {len(bad)} {split} seed(s) outside the engine's {split} split "
            f"(first: {bad[0]}, in split {split_of(bad[0])!r})"
        )


def case_folders(root: str | Path) -> list[Path]:
    root = Path(root)
    found = sorted(p.parent for p in root.glob("*/case.json") if (p.parent / "truth").is_dir())
    if not found:
        raise SystemExit(f"error: {root}: no case folders with truth/")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.build_seg_data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--train-seeds", type=parse_seeds)
    ap.add_argument("--val-seeds", type=parse_seeds)
    ap.add_argument("--train-cases", type=Path)
    ap.add_argument("--val-cases", type=Path)
    ap.add_argument(
        "--size",
        type=int,
        choices=(512, 1024),
        default=None,
        help="force the image size (default: the engine's mix)",
    )
    ap.add_argument(
        "--no-side-branches",
        action="store_true",
        help="main-SOI samples only (default: side branches are samples too)",
    )
    ap.add_argument(
        "--real",
        type=Path,
        default=None,
        help="instead: a real-image folder with full-tree masks (../shared/data/real_seg); "
        "OUT/train gets SOI tasks of images 1-30, OUT/val the benchmark tasks of 31-40",
    )
    ap.add_argument("--real-tasks", type=int, default=40, help="tasks per training image")
    ap.add_argument(
        "--generator-version",
        choices=GENERATOR_VERSIONS,
        default=GENERATOR_VERSION,
        help=f"engine version for seed caches (default {GENERATOR_VERSION})",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--any-split", action="store_true", help="skip the seed split check (tests)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    provenance = {"command": " ".join(sys.argv)} if argv is None else None
    if args.real is not None:
        if args.generator_version != GENERATOR_VERSION:
            ap.error("--generator-version applies to seeds, not to --real")
        from training.segmenter.real_tasks import BENCH_TASKS_PER_IMAGE, TRAIN_IDS, VAL_IDS

        for name, ids, n in (
            ("train", TRAIN_IDS, args.real_tasks),
            ("val", VAL_IDS, BENCH_TASKS_PER_IMAGE),
        ):
            build_cache(
                args.out / name,
                real=(args.real, ids, n),
                overwrite=args.overwrite,
                provenance=provenance,
            )
        return 0
    if args.generator_version != GENERATOR_VERSION and (
        args.train_cases is not None or args.val_cases is not None
    ):
        ap.error("--generator-version applies to seeds, not to --train-cases/--val-cases")
    jobs = []
    for name in ("train", "val"):
        seeds, cases = getattr(args, f"{name}_seeds"), getattr(args, f"{name}_cases")
        if (seeds is None) == (cases is None):
            ap.error(f"give one of --{name}-seeds and --{name}-cases")
        if seeds is not None and not args.any_split:
            check_split(seeds, name)
        jobs.append((name, seeds, None if cases is None else case_folders(cases)))
    for name, seeds, dirs in jobs:
        build_cache(
            args.out / name,
            seeds=seeds,
            case_dirs=dirs,
            size=args.size,
            include_side=not args.no_side_branches,
            workers=args.workers,
            overwrite=args.overwrite,
            provenance=provenance,
            generator_version=args.generator_version if seeds is not None else None,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
