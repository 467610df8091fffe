"""Warm per-case latency of the reconstruction API, per stage, and cold `run` wall time.

    python benchmarks/bench_pipeline.py [--count 20] [--first-seed 2000000] [--segmenter network]

Generates ``count`` test-split cases into a temporary folder, loads one
:class:`angio_deploy.api.Reconstructor` (models loaded once), reconstructs one case to warm
up, then times every case: median and p90 per stage (load, crop, segment, centreline_2d,
refine, triangulate, mesh, sr_encoder and sr_gcn when surface refinement runs, quality,
total). Failed cases (vessel not found) are counted and
left out of the timings. Finally times one cold `angio-deploy run` in a fresh process.
Use ANGIO_DEPLOY_MODELS_DIR to point at an exported segmenter that is not shipped yet.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=2_000_000)
    ap.add_argument("--segmenter", choices=("network", "frangi"), default="network")
    ap.add_argument(
        "--no-surface-refinement",
        "--no-refine",  # the old name, as the CLI keeps it for one release
        dest="no_surface_refinement",
        action="store_true",
        help="mesh initialisation only (no surface refinement)",
    )
    args = ap.parse_args()

    from angio_deploy import kernels
    from angio_deploy.api import Reconstructor
    from angio_deploy.errors import AngioDeployError
    from angio_deploy.synth.engine import generate_case, write_case

    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            write_case(generate_case(s), Path(tmp) / f"case_{s}")
            for s in range(args.first_seed, args.first_seed + args.count)
        ]
        rec = Reconstructor(args.segmenter, surface=False if args.no_surface_refinement else None)
        for c in cases:  # warm-up on the first case that reconstructs
            try:
                rec.reconstruct(c)
                break
            except AngioDeployError:
                continue
        stages: dict[str, list[float]] = {}
        failed = 0
        for c in cases:
            try:
                r = rec.reconstruct(c)
            except AngioDeployError:
                failed += 1
                continue
            for k, v in r.report["timings_s"].items():
                stages.setdefault(k, []).append(v)
        backend = r.report["backend"] if stages else {}
        t0 = time.perf_counter()
        cold = subprocess.run(
            [
                sys.executable,
                "-m",
                "angio_deploy",
                "run",
                str(cases[0]),
                "--segmenter",
                args.segmenter,
                *(["--no-surface-refinement"] if args.no_surface_refinement else []),
            ],
            capture_output=True,
            text=True,
        )
        cold_s = time.perf_counter() - t0

    print(
        f"kernels: {kernels.BACKEND}; segmenter: {args.segmenter}; provider: "
        f"{backend.get('provider', '-')}; surface refinement: "
        f"{r.report['surface_refinement'] if stages else '-'}; "
        f"cases: {args.count}, failed: {failed}"
    )
    print("| stage | median ms | p90 ms |\n|---|---:|---:|")
    for k, v in stages.items():
        v = sorted(v)
        p90 = v[min(len(v) - 1, int(0.9 * len(v)))]
        print(f"| {k} | {1e3 * statistics.median(v):.1f} | {1e3 * p90:.1f} |")
    status = "ok" if cold.returncode == 0 else f"exit {cold.returncode}"
    print(f"cold `angio-deploy run` (fresh process, case 0): {cold_s:.2f} s ({status})")


if __name__ == "__main__":
    main()
