"""Cohort throughput: cases per second of the sequential loop, 1 and 2 Dask workers.

    python benchmarks/bench_batch.py [--count 12] [--first-seed 2000000] [--size 512]

Generates ``count`` test-split cases into a temporary folder (``--cases DIR`` runs an
existing cohort instead), then runs the same cohort three times through
:func:`angio_deploy.batch.run_batch`, each into a fresh out root (no case skipped):
``workers=0`` (the sequential loop in this process, one Reconstructor with ONNX Runtime
on every core, as ``evaluate`` runs), a LocalCluster of 1 worker process and one of 2
(one task thread each, the cores divided among them for ONNX Runtime).

Wall time is end to end, as a user sees it: cluster start and model loading included.
"Steady" is between the first and the last case finishing (what a long cohort
approaches). CPU s/case counts this process and its worker processes. Prints cases per
second and the ratios to the sequential loop, in one run; ``--json`` writes them too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the LocalCluster's worker
    processes are children, counted once the cluster has closed)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _one_run(cases: Path, out_root: Path, options, workers: int, label: str) -> dict:
    from angio_deploy.batch import run_batch
    from angio_deploy.batch.worker import clear_reconstructor_cache

    # Every run loads its models, as a fresh cohort would: the sequential loop's
    # Reconstructor from an earlier round would otherwise be reused in this process.
    clear_reconstructor_cache()
    load0 = os.getloadavg()[0]
    cpu0 = _cpu_s()
    done_at: list[float] = []
    t0 = time.perf_counter()
    res = run_batch(
        cases,
        out_root,
        options,
        workers=workers,
        progress=lambda *_: done_at.append(time.perf_counter()),
    )
    wall = time.perf_counter() - t0
    n = len(res.records)
    print(f"{label}: {n} cases ({res.counts['ok']} ok) in {wall:.1f} s", file=sys.stderr)
    return {
        "run": label,
        "workers": workers,
        "cases": n,
        "ok": res.counts["ok"],
        "failed_cases": sorted(r["case"] for r in res.records if r.get("status") == "failed"),
        "wall_s": wall,
        "cases_per_s": n / wall,
        "steady_cases_per_s": (n - 1) / (done_at[-1] - done_at[0]),
        "cpu_s_per_case": (_cpu_s() - cpu0) / n,
        "load_avg_before": load0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--first-seed", type=int, default=2_000_000)
    ap.add_argument("--size", type=int, choices=(512, 1024), help="force the image size")
    ap.add_argument("--segmenter", choices=("network", "frangi"), default="network")
    ap.add_argument("--cases", metavar="DIR", help="an existing cohort (not synthesised)")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument(
        "--workers",
        type=lambda t: [int(x) for x in t.split(",")],
        default=[0, 1, 2],
        help="worker counts run in each round, 0 = the sequential loop (default 0,1,2)",
    )
    ap.add_argument("--rounds", type=int, default=1, help="repeat the runs, alternating")
    args = ap.parse_args()
    if 0 not in args.workers or any(w < 0 for w in args.workers) or args.rounds < 1:
        ap.error(
            "--workers needs 0 (the sequential loop, the ratios' base), none negative; "
            "--rounds at least 1"
        )

    from angio_deploy.backends import available_cpu_count
    from angio_deploy.batch import BatchOptions
    from angio_deploy.synth.engine import synthesise

    options = BatchOptions(segmenter=args.segmenter)
    with tempfile.TemporaryDirectory() as tmp:
        if args.cases:
            cases = Path(args.cases)
        else:
            cases = Path(tmp) / "cases"
            synthesise(cases, args.count, args.first_seed, size=args.size)
        rows = []
        for k in range(args.rounds):
            for w in args.workers:
                label = "sequential" if w == 0 else f"{w} worker" + ("s" if w > 1 else "")
                row = _one_run(cases, Path(tmp) / f"out_{k}_{w}", options, w, label)
                rows.append({**row, "round": k})
    # A case that fails the same way in every run is the same work in each (it still
    # loads, segments and traces); different failures would not compare like with like.
    if any(r["failed_cases"] != rows[0]["failed_cases"] for r in rows):
        print("the runs failed different cases: the rates would not compare", file=sys.stderr)
        return 1
    # Each run against the sequential run of its own round: the machine drifts between
    # rounds, and the sequential loop (the segmenter on every core at once) is the run
    # that drifts most.
    for r in rows:
        seq = next(q for q in rows if q["round"] == r["round"] and q["workers"] == 0)
        r["ratio"] = r["cases_per_s"] / seq["cases_per_s"]
        r["steady_ratio"] = r["steady_cases_per_s"] / seq["steady_cases_per_s"]
    print(
        f"{rows[0]['cases']} cases, {args.segmenter} segmenter, {available_cpu_count()} usable "
        f"cores, load average now {os.getloadavg()[0]:.2f}"
    )
    print(
        "| run | wall s | cases/s | vs sequential | steady cases/s | vs sequential "
        "| CPU s/case | load avg before |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        run = f"{r['run']} ({r['round'] + 1})" if args.rounds > 1 else r["run"]
        print(
            f"| {run} | {r['wall_s']:.1f} | {r['cases_per_s']:.3f} | {r['ratio']:.2f}x "
            f"| {r['steady_cases_per_s']:.3f} | {r['steady_ratio']:.2f}x "
            f"| {r['cpu_s_per_case']:.2f} | {r['load_avg_before']:.2f} |"
        )
    medians = {
        str(w): statistics.median(r["ratio"] for r in rows if r["workers"] == w)
        for w in args.workers
    }
    if args.rounds > 1:
        print(
            "median end-to-end ratio per worker count: "
            + ", ".join(f"{w}: {m:.2f}x" for w, m in medians.items())
        )
    if args.json:
        doc = {"runs": rows, "median_ratio": medians}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
