"""Run a cohort: every case folder under CASES_DIR through Dask distributed.

    result = run_batch("cases/", "results/", BatchOptions(), workers=2)
    result.exit_code, result.counts      # per-case records in result.records

By default a LocalCluster of ``workers`` processes, one task thread each (one case is one
process's work; the cores are divided among them for ONNX Runtime's intra-op threads);
``scheduler`` sends the same tasks to an existing Dask scheduler instead (the workers
need angio-deploy installed and the cases and out root on a shared file system).
``workers=0`` runs the cases one after another in this process, through the same per-case
code. Cases whose output folder already holds a complete result (report.json, written
last and atomically) are skipped unless ``resume`` is false, so a killed batch is resumed
by running it again. A worker that dies loses nothing: the scheduler runs its case again
on another worker (up to Dask's ``distributed.scheduler.allowed-failures`` times; after
that the case is recorded as an internal error).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from angio_deploy._version import __version__
from angio_deploy.errors import BackendUnavailableError
from angio_deploy.io.output_dir import REPORT_NAME, check_output_dir, is_result_dir

from .cases import BatchOptions, CaseJob, case_name, case_out_dir, find_case_dirs
from .summary import batch_exit_code, counts, write_summary
from .worker import failure, report_numbers, run_case

log = logging.getLogger(__name__)

#: progress(done, total, record) after each case (skipped ones first).
BatchProgress = Callable[[int, int, dict[str, Any]], None]


@dataclass
class BatchResult:
    """A finished cohort: one record per case (sorted by case), wall time, where it ran."""

    records: list[dict[str, Any]]
    wall_s: float
    engine: str
    summary_paths: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0, 65-ish or 70: :func:`~angio_deploy.batch.summary.batch_exit_code`."""
        return batch_exit_code(self.records)

    @property
    def counts(self) -> dict[str, int]:
        return counts(self.records)


# Two of Dask's worker defaults cost a CPU-bound, allocation-heavy case ~20 % more CPU
# than the same case in this process (1 worker, 3 cases x 2: 2.25 vs 1.56 CPU s a
# case; 1.79 without them): MALLOC_TRIM_THRESHOLD_=65536 turns off glibc's adaptive
# mmap threshold, so every large numpy buffer is a fresh mmap (10x the page faults),
# and the statistical profiler samples the task thread every 10 ms. A case's memory is
# bounded and freed when it ends, so neither is needed here (WORKER_CPU_CONFIG). Dask's
# monitors (system every 0.5 s, memory every 0.1 s, event-loop tick every 20 ms, work
# stealing) cost 7 % of the CPU of a 2-worker cluster on 2 cores (nannies 2.3 + scheduler
# 1.2 of 48.7 CPU s over 60 cases; 0.9 + 0.4 with MONITOR_CONFIG,
# benchmarks/bench_batch_overhead.py); one-case-per-task cohorts need none of that rate.
WORKER_CPU_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}
MONITOR_CONFIG: dict[str, Any] = {
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.tick.interval": "200ms",
    "distributed.scheduler.work-stealing": False,
}
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {**WORKER_CPU_CONFIG, **MONITOR_CONFIG}


def default_workers() -> int:
    """Worker processes of a LocalCluster when none are asked for: one per usable core."""
    from angio_deploy.backends import available_cpu_count

    return available_cpu_count()


def local_threads(n_workers: int) -> int:
    """ONNX Runtime intra-op threads per worker of an ``n_workers`` LocalCluster."""
    from angio_deploy.backends import available_cpu_count

    return max(1, available_cpu_count() // max(1, n_workers))


def _skipped(name: str, out_dir: Path) -> dict[str, Any]:
    rec: dict[str, Any] = {"case": name, "status": "skipped", "seconds": 0.0}
    # is_result_dir read it a moment ago: a failure here is a race at worst.
    with contextlib.suppress(OSError, ValueError):
        rec.update(report_numbers(json.loads((out_dir / REPORT_NAME).read_text("utf-8"))))
    return rec


def plan_jobs(
    cases_dir: str | Path,
    out_root: str | Path | None,
    options: BatchOptions,
    *,
    resume: bool = True,
    limit: int | None = None,
    require_truth: bool = False,
    prepare: Callable[[Any], Any] | None = None,
    score: Callable[[Path, Path], dict[str, Any]] | None = None,
) -> tuple[list[CaseJob], list[dict[str, Any]]]:
    """(jobs to run, records of the cases skipped as already done).

    Every case's output folder is checked before any work (an out root that is the cases
    folder would put results over case folders): OutputError, exit 73."""
    root = Path(cases_dir)
    jobs: list[CaseJob] = []
    skipped: list[dict[str, Any]] = []
    for case_dir in find_case_dirs(root, require_truth=require_truth)[:limit]:
        out = case_out_dir(root, case_dir, out_root)
        check_output_dir(out, case_dir=case_dir)
        name = case_name(root, case_dir)
        if resume and is_result_dir(out):
            skipped.append({**_skipped(name, out), "out_dir": str(out)})
            continue
        jobs.append(
            CaseJob(
                name=name,
                case_dir=str(case_dir.absolute()),
                out_dir=str(out.absolute()),
                options=options,
                prepare=prepare,
                score=score,
            )
        )
    return jobs, skipped


def _run_sequential(jobs: list[CaseJob], on_record: Callable[[dict[str, Any]], None]) -> str:
    for job in jobs:
        on_record({**run_case(job), "out_dir": job.out_dir})
    return "sequential (this process)"


def _run_dask(
    jobs: list[CaseJob],
    on_record: Callable[[dict[str, Any]], None],
    *,
    workers: int | None,
    scheduler: str | None,
) -> str:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise BackendUnavailableError(
            f"Dask distributed is not installed ({exc}); pip install 'angio-deploy[batch]'"
        ) from exc

    def drain(client) -> None:
        # The workers' log records go to this process's loggers, whose handlers (the
        # CLI's, a host application's) decide what is shown; the workers log at the
        # level this process would.
        level = logging.getLogger("angio_deploy").getEffectiveLevel()
        client.forward_logging("angio_deploy", level=level)
        token = uuid.uuid4().hex[:8]
        futures = {}
        for job in jobs:
            job = dataclasses.replace(job, log_level=level)
            key = f"angio-case-{job.name}-{token}"
            futures[client.submit(run_case, job, key=key, pure=False)] = job
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                rec = fut.result()
            except (Exception, CancelledError) as exc:
                # The case killed its worker every time it ran (KilledWorker), or the
                # scheduler went away: an internal error, recorded like any other.
                log.error("%s: %s: %s", job.name, type(exc).__name__, exc)
                rec = {"case": job.name, **failure(exc), "seconds": None}
            on_record({**rec, "out_dir": job.out_dir})
            fut.release()

    if scheduler is not None:
        try:
            client = Client(scheduler)
        except (OSError, ValueError) as exc:  # unreachable, or not an address at all
            raise BackendUnavailableError(
                f"cannot reach the Dask scheduler {scheduler!r}: {exc}"
            ) from exc
        with client:
            drain(client)
        return f"dask scheduler {scheduler}"
    n = workers if workers is not None else default_workers()
    with local_cluster(n) as cluster, Client(cluster) as client:
        drain(client)
    return f"dask LocalCluster, {n} worker processes x 1 thread"


@contextlib.contextmanager
def local_cluster(n_workers: int, config: dict[str, Any] | None = None) -> Iterator[Any]:
    """The LocalCluster a batch runs on: ``n_workers`` processes of one task thread each,
    started under ``config`` (default :data:`LOCAL_CLUSTER_CONFIG`), closed on exit."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set(LOCAL_CLUSTER_CONFIG if config is None else config),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            # No dashboard, and the scheduler's HTTP endpoints on a free local port: a
            # second batch on this machine must not collide with the first (8787).
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        ) as cluster,
    ):
        yield cluster


def run_batch(
    cases_dir: str | Path,
    out_root: str | Path | None,
    options: BatchOptions | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = True,
    limit: int | None = None,
    require_truth: bool = False,
    prepare: Callable[[Any], Any] | None = None,
    score: Callable[[Path, Path], dict[str, Any]] | None = None,
    summary: bool = True,
    progress: BatchProgress | None = None,
) -> BatchResult:
    """Reconstruct every case under ``cases_dir`` into ``out_root`` (module docstring).

    ``workers``: LocalCluster processes (None: one per usable core; 0: no Dask, this
    process). ``scheduler``: address of an existing Dask scheduler (then ``workers`` must
    be None). ``summary``: write summary.json/.csv into ``out_root``. Errors of the whole
    cohort (cases folder missing: 66, an output folder refused: 73) raise before any case
    runs; errors of one case are recorded and the rest go on.
    """
    if scheduler is not None and workers is not None:
        raise ValueError("give workers or scheduler, not both")
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    options = options or BatchOptions()
    n_local = None
    if scheduler is None and workers != 0:
        n_local = workers if workers is not None else default_workers()
        if options.intra_op_threads is None:
            options = dataclasses.replace(options, intra_op_threads=local_threads(n_local))
    t0 = time.perf_counter()
    jobs, records = plan_jobs(
        cases_dir,
        out_root,
        options,
        resume=resume,
        limit=limit,
        require_truth=require_truth,
        prepare=prepare,
        score=score,
    )
    total = len(jobs) + len(records)
    log.info("%d cases: %d to run, %d already done", total, len(jobs), len(records))
    done = 0
    for rec in records:
        done += 1
        if progress is not None:
            progress(done, total, rec)

    def on_record(rec: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        records.append(rec)
        if rec["status"] == "ok":
            log.info("%s: ok in %.2f s", rec["case"], rec.get("seconds") or 0.0)
        if progress is not None:
            progress(done, total, rec)

    if not jobs:
        engine = "nothing to run"
    elif scheduler is None and workers == 0:
        engine = _run_sequential(jobs, on_record)
    else:
        engine = _run_dask(jobs, on_record, workers=n_local, scheduler=scheduler)
    records.sort(key=lambda r: r["case"])
    result = BatchResult(records=records, wall_s=time.perf_counter() - t0, engine=engine)
    if summary and out_root is not None:
        meta = {
            "angio_deploy": __version__,
            "cases_dir": str(Path(cases_dir).absolute()),
            "out_root": str(Path(out_root).absolute()),
            "engine": engine,
            "options": options.to_dict(),
            "wall_s": result.wall_s,
        }
        result.summary_paths = write_summary(out_root, records, meta=meta)
    return result
