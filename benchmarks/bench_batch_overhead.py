"""Where a LocalCluster's CPU goes: the cluster processes' own cost and the cases'.

    python benchmarks/bench_batch_overhead.py CASES_DIR [--workers 2] [--limit 60]

Starts a LocalCluster the way ``angio-deploy batch`` does (``batch.engine.local_cluster``;
``--dask-defaults`` keeps Dask's own polling intervals, without ``MONITOR_CONFIG``),
measures the CPU seconds of the worker processes, their nannies and this process (which
runs the scheduler) over 15 idle seconds, then over ``--limit`` cases, beside the CPU the
cases themselves used inside their tasks. What is not the cases' is the engine's
overhead, which a 2-core machine pays out of its cases' throughput.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def _timed_case(job):
    from angio_deploy.batch.worker import run_case

    p0 = time.process_time()
    rec = run_case(job)
    rec["task_cpu_s"] = time.process_time() - p0
    return rec


def _cpu_s(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cases")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--idle-s", type=float, default=15.0)
    ap.add_argument("--dask-defaults", action="store_true", help="Dask's polling intervals")
    args = ap.parse_args()

    from distributed import Client

    from angio_deploy.batch import BatchOptions
    from angio_deploy.batch.engine import (
        LOCAL_CLUSTER_CONFIG,
        WORKER_CPU_CONFIG,
        local_cluster,
        local_threads,
        plan_jobs,
    )

    config = WORKER_CPU_CONFIG if args.dask_defaults else LOCAL_CLUSTER_CONFIG
    options = BatchOptions(intra_op_threads=local_threads(args.workers))
    with (
        tempfile.TemporaryDirectory(prefix="bench_overhead_") as out,
        local_cluster(args.workers, config) as cluster,
        Client(cluster) as client,
    ):
        jobs, _ = plan_jobs(args.cases, out, options, resume=False, limit=args.limit)
        groups = {
            "workers": list(client.run(os.getpid).values()),
            "nannies": list(client.run(os.getpid, nanny=True).values()),
            "scheduler+client": [os.getpid()],
        }

        def snapshot() -> dict[str, float]:
            return {k: _cpu_s(v) for k, v in groups.items()}

        a = snapshot()
        time.sleep(args.idle_s)
        b = snapshot()
        idle = ", ".join(f"{k} {b[k] - a[k]:.2f}" for k in groups)
        print(f"idle {args.idle_s:.0f} s, CPU s: {idle}")
        a, t0 = snapshot(), time.perf_counter()
        records = client.gather([client.submit(_timed_case, j, pure=False) for j in jobs])
        wall = time.perf_counter() - t0
        b = snapshot()
    used = {k: b[k] - a[k] for k in groups}
    task = sum(r["task_cpu_s"] for r in records)
    total = sum(used.values())
    print(f"{len(records)} cases in {wall:.1f} s ({len(records) / wall:.3f} cases/s)")
    print("CPU s: " + ", ".join(f"{k} {v:.2f}" for k, v in used.items()))
    share = 100 * (total - task) / total
    print(f"inside the tasks {task:.2f} CPU s; engine overhead {share:.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
