"""One case on a worker: reconstruct, write atomically, score, and always return a record.

The models are loaded once per worker process: :func:`cached_reconstructor` keeps one
:class:`~angio_deploy.api.Reconstructor` per set of options in a module-level cache (a
Dask worker process, or the client process on the sequential path, imports this module
once). A Reconstructor is thread-safe, so a worker with several threads shares it.

A case that fails never raises out of :func:`run_case`: the record says ``failed`` with
the error's type, message and exit-code class -- an
:class:`~angio_deploy.errors.AngioDeployError` keeps its own (65 bad data, 66 not found,
69 backend unavailable, 73 output refused), anything else is an internal error (70) and
carries its traceback. Only a dying worker loses the case, and Dask then runs it again
elsewhere; outputs go through the atomic writer, so a killed write leaves no partial
result (the next write of that folder removes the killed one's temporary sibling).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from angio_deploy.errors import EX_SOFTWARE, AngioDeployError

from .cases import BatchOptions, CaseJob

log = logging.getLogger(__name__)

_CACHE: dict[tuple, Any] = {}
_CACHE_LOCK = threading.Lock()


def _reconstructor_key(options: BatchOptions, threads: int) -> tuple:
    return (
        options.segmenter,
        options.provider,
        options.refine_surface,
        options.models_dir,
        threads,
    )


def worker_threads(options: BatchOptions) -> int:
    """Threads for one case (ONNX Runtime intra-op and the native core's limit): the
    option, else the cores this process may use divided by the Dask worker's task threads
    (one case per thread)."""
    if options.intra_op_threads:
        return max(1, int(options.intra_op_threads))
    from angio_deploy.backends import available_cpu_count

    slots = 1
    try:
        from distributed import get_worker

        slots = max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError):  # not on a Dask worker: the sequential path
        pass
    return max(1, available_cpu_count() // slots)


def build_reconstructor(options: BatchOptions, threads: int):
    """A Reconstructor for ``options`` whose ONNX Runtime sessions use ``threads`` intra-op
    threads and whose native-core kernels use at most ``threads`` threads."""
    from angio_deploy.api import Reconstructor

    return Reconstructor(
        options.segmenter,
        provider=options.provider,
        surface=False if not options.refine_surface else None,
        models_dir=options.models_dir,
        intra_op_threads=threads,
        threads=threads,
    )


def cached_reconstructor(options: BatchOptions) -> tuple[Any, bool]:
    """(this process's Reconstructor for ``options``, whether this call loaded it)."""
    threads = worker_threads(options)
    key = _reconstructor_key(options, threads)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit, False
        # Loading under the lock: a second thread of this worker waits for the same
        # models instead of loading them twice.
        t0 = time.perf_counter()
        rec = build_reconstructor(options, threads)
        _CACHE[key] = rec
    log.info(
        "worker %d: models loaded in %.2f s (%d intra-op threads)",
        os.getpid(),
        time.perf_counter() - t0,
        threads,
    )
    return rec, True


def clear_reconstructor_cache() -> None:
    """Forget this process's cached Reconstructors (tests, or to reload models)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def report_numbers(report: dict[str, Any]) -> dict[str, Any]:
    """The summary's key numbers from a report.json document (missing ones are None)."""
    quality = report.get("quality") or {}
    dice = quality.get("reprojection_dice") or [None, None]
    branches = (report.get("qca") or {}).get("branches") or [{}]
    main = branches[0] if branches else {}
    return {
        "dice_a": dice[0] if len(dice) > 0 else None,
        "dice_b": dice[1] if len(dice) > 1 else None,
        "length_mm": main.get("length_mm"),
        "mld_mm": main.get("mld_mm"),
        "percent_ds": main.get("percent_ds"),
        "surface_refined": (report.get("stages") or {}).get("surface_refinement"),
        "n_warnings": len(report.get("warnings") or []),
        "reconstruct_s": (report.get("timings_s") or {}).get("total"),
    }


def failure(exc: BaseException) -> dict[str, Any]:
    """The record fields of a failed case: error type, message, exit-code class, and the
    traceback of an internal error (exit 70)."""
    internal = not isinstance(exc, AngioDeployError)
    fields: dict[str, Any] = {
        "status": "failed",
        "error_type": type(exc).__name__,
        "error": str(exc) or type(exc).__name__,
        "exit_code": EX_SOFTWARE if internal else int(exc.exit_code),
    }
    if internal:
        fields["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return fields


def _where() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_case(
    reconstructor: Any,
    job: CaseJob,
    *,
    stop_on: tuple[type[BaseException], ...] = (),
) -> dict[str, Any]:
    """Load, reconstruct and write ``job``'s case (then score it) -> its record.

    Exceptions become a ``failed`` record (:func:`failure`), except ``stop_on`` types,
    which propagate (the sequential ``evaluate`` stops on an unwritable output folder).
    """
    from angio_deploy.io.case import load_case

    t0 = time.perf_counter()
    record: dict[str, Any] = {"case": job.name, "status": "ok", "worker": _where()}
    try:
        case = load_case(job.case_dir)
        if job.prepare is not None:
            case = job.prepare(case)
        o = job.options
        result = reconstructor.reconstruct(
            case,
            refine_geometry=o.refine_geometry,
            refine_surface=o.refine_surface,
            force=o.force,
            skip_failed_branches=o.skip_failed_branches,
        )
        result.write(job.out_dir)
        record.update(report_numbers(result.report))
        if job.score is not None:
            record["scores"] = job.score(Path(job.case_dir), Path(job.out_dir))
    except stop_on:
        raise
    except Exception as exc:
        record.update(failure(exc))
        log.warning("%s: %s: %s", job.name, type(exc).__name__, exc)
        if "traceback" in record:
            log.debug("%s", record["traceback"])
    record["seconds"] = time.perf_counter() - t0
    return record


def run_case(job: CaseJob) -> dict[str, Any]:
    """The task each worker runs: :func:`process_case` with this process's cached
    Reconstructor. Never raises; ``models_loaded`` says whether this case loaded them."""
    t0 = time.perf_counter()
    if job.log_level is not None:
        logging.getLogger("angio_deploy").setLevel(job.log_level)
    try:
        rec, loaded = cached_reconstructor(job.options)
    except Exception as exc:  # models or backend unusable: every case says why
        return {
            "case": job.name,
            "worker": _where(),
            "models_loaded": False,
            **failure(exc),
            "seconds": time.perf_counter() - t0,
        }
    record = process_case(rec, job)
    record["models_loaded"] = loaded
    record["seconds"] = time.perf_counter() - t0
    return record
