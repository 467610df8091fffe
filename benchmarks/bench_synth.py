"""Synthetic engine throughput: cases per second on one core at 512 x 512.

    python benchmarks/bench_synth.py [--count 20] [--first-seed 0]

Pins the process to one CPU core (Linux) and limits BLAS/OpenMP threads, then times
generate_case (anatomy, views, rendering of both views, truth) and write_case (DICOM
encoding, truth files) separately for each case. Prints per-stage medians and the overall
rate.
"""

from __future__ import annotations

import argparse
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    import numpy as np

    from angio_deploy import kernels
    from angio_deploy.synth.anatomy import generate_anatomy
    from angio_deploy.synth.engine import generate_case, write_case

    generate_case(args.first_seed + 10_000, size=512)  # warm-up: imports, caches
    gen, wr = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.count):
            seed = args.first_seed + i
            t0 = time.perf_counter()
            case = generate_case(seed, size=512)
            t1 = time.perf_counter()
            write_case(case, Path(tmp) / case.case_id)
            t2 = time.perf_counter()
            gen.append(t1 - t0)
            wr.append(t2 - t1)
    anat = []
    for i in range(args.count):
        t0 = time.perf_counter()
        generate_anatomy(np.random.default_rng(args.first_seed + i))
        anat.append(time.perf_counter() - t0)
    total = sum(gen) + sum(wr)
    print(f"kernels backend: {kernels.BACKEND}; cores used: 1; cases: {args.count} at 512 x 512")
    print("| stage | median ms | mean ms |")
    print("|---|---:|---:|")
    a_med, a_mean = 1e3 * statistics.median(anat), 1e3 * statistics.mean(anat)
    print(f"| generate_case: anatomy only | {a_med:.0f} | {a_mean:.0f} |")
    print(
        f"| generate_case | {1e3 * statistics.median(gen):.0f} | {1e3 * statistics.mean(gen):.0f} |"
    )
    print(f"| write_case | {1e3 * statistics.median(wr):.0f} | {1e3 * statistics.mean(wr):.0f} |")
    print(f"| total | {1e3 * total / args.count:.0f} (mean) | |")
    print(f"rate: {args.count / total:.2f} cases/s on one core")


if __name__ == "__main__":
    main()
