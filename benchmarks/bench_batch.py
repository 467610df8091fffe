"""Cohort throughput: cases per second of the sequential loop, 1 and 2 Dask workers.

    python benchmarks/bench_batch.py [--count 12] [--first-seed 2000000] [--size 512]

Generates ``count`` test-split cases into a temporary folder, then runs the same cohort
three times through :func:`angio_deploy.batch.run_batch`, each into a fresh out root (no
case skipped): ``workers=0`` (the sequential loop in this process, one Reconstructor with
ONNX Runtime on every core, as ``evaluate`` runs), a LocalCluster of 1 worker process and
one of 2 (one task thread each, the cores divided among them for ONNX Runtime). Wall time
is end to end, as a user sees it: cluster start and model loading included. Prints cases
per second and the ratio to the sequential loop, in one run; ``--json`` writes them too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--first-seed", type=int, default=2_000_000)
    ap.add_argument("--size", type=int, choices=(512, 1024), help="force the image size")
    ap.add_argument("--segmenter", choices=("network", "frangi"), default="network")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    from angio_deploy.backends import available_cpu_count
    from angio_deploy.batch import BatchOptions, run_batch
    from angio_deploy.synth.engine import synthesize

    options = BatchOptions(segmenter=args.segmenter)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = Path(tmp) / "cases"
        synthesize(cases, args.count, args.first_seed, size=args.size)
        for label, workers in (("sequential", 0), ("1 worker", 1), ("2 workers", 2)):
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            res = run_batch(cases, Path(tmp) / f"out_{workers}", options, workers=workers)
            wall = time.perf_counter() - t0
            ok = res.counts["ok"]
            rows.append(
                {
                    "run": label,
                    "workers": workers,
                    "cases": len(res.records),
                    "ok": ok,
                    "wall_s": wall,
                    "cases_per_s": len(res.records) / wall,
                    "load_avg_before": load0,
                }
            )
            print(f"{label}: {len(res.records)} cases ({ok} ok) in {wall:.1f} s", file=sys.stderr)
    base = rows[0]["cases_per_s"]
    for r in rows:
        r["ratio"] = r["cases_per_s"] / base
    print(
        f"{args.count} cases, {args.segmenter} segmenter, {available_cpu_count()} usable cores, "
        f"load average now {os.getloadavg()[0]:.2f}"
    )
    print("| run | wall s | cases/s | vs sequential | load avg before |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['run']} | {r['wall_s']:.1f} | {r['cases_per_s']:.3f} | {r['ratio']:.2f}x "
            f"| {r['load_avg_before']:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
