"""Evaluate the pipeline on case folders with truth (METRICS.md): `angio-deploy evaluate`.

Every case folder under CASES_DIR that has ``truth/`` is reconstructed, its outputs are
written to ``CASE/out`` (or under ``out_root``), and METRICS.md is computed per case. A
case that fails (vessel not found, ...) gets a row with its error and no metrics; the
summary counts it. ``true_geometry`` reconstructs with the true view geometry from
truth/meta.json instead of the DICOM headers: a diagnostic that separates calibration
error (unobservable in part, docs/DATASET.md) from reconstruction error.

Both ways of running it share the batch engine's per-case code (:mod:`angio_deploy.batch`):
:func:`evaluate_cases` one case after another in this process with a given Reconstructor,
:func:`evaluate_cohort` on Dask (``evaluate --workers N`` / ``--scheduler``), each case
reconstructed and scored on a worker. The rows are the same either way.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .api import Reconstructor
from .batch.cases import BatchOptions, find_case_dirs
from .batch.engine import plan_jobs, run_batch
from .batch.worker import process_case
from .errors import OutputError
from .geometry import ViewGeometry
from .io.case import Case
from .metrics import evaluate_case, summarise

log = logging.getLogger(__name__)


def find_cases(cases_dir: str | Path) -> list[Path]:
    """Case folders (holding case.json and truth/) under ``cases_dir``, sorted."""
    return find_case_dirs(cases_dir, require_truth=True)


def with_true_geometry(case: Case) -> Case:
    """The case with each view's geometry replaced by the true one from truth/meta.json."""
    meta = json.loads((case.path / "truth" / "meta.json").read_text(encoding="utf-8"))
    views = []
    for v, vm in zip(case.views, meta["views"], strict=True):
        P = np.array(vm["true"]["projection_matrix"], dtype=np.float64)
        g = ViewGeometry.from_matrix(P, v.geometry.width, v.geometry.height)
        views.append(dataclasses.replace(v, geometry=g))
    return dataclasses.replace(case, views=tuple(views))


def score_against_truth(case_dir: Path, out_dir: Path) -> dict[str, Any]:
    """METRICS.md scores of the result in ``out_dir`` against ``case_dir/truth`` (the
    per-case step of evaluate, run on the worker that reconstructed the case)."""
    return evaluate_case(out_dir, Path(case_dir) / "truth")


def _row(record: dict[str, Any], case_dir_name: str) -> dict[str, Any]:
    """evaluate's row of a case from its batch record: the scores and time, or the error."""
    row: dict[str, Any] = {"case": case_dir_name}
    if record["status"] == "ok":
        row.update(record.get("scores") or {})
        row["case"] = case_dir_name
        row["time_s"] = record["reconstruct_s"]
    else:
        row["error"] = record["error"]
        row["error_type"] = record["error_type"]
        row["exit_code"] = record["exit_code"]
    return row


def _result(rows: list[dict[str, Any]]) -> dict[str, Any]:
    failed = sum("error" in r for r in rows)
    # A failed row's exit code is a label, not a metric to average.
    metrics = [{k: v for k, v in r.items() if k != "exit_code"} for r in rows]
    return {"cases": rows, "summary": summarise(metrics), "n_cases": len(rows), "failed": failed}


def evaluate_cases(
    cases_dir: str | Path,
    reconstructor: Reconstructor,
    *,
    refine_geometry: bool = True,
    refine_surface: bool = True,
    true_geometry: bool = False,
    out_root: str | Path | None = None,
    limit: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Reconstruct and score every case in this process with ``reconstructor``, one after
    another -> {"cases": [rows], "summary": {...}, "n_cases": n, "failed": n}.

    The per-case code is the batch engine's (:func:`~angio_deploy.batch.worker.process_case`):
    a case that fails, on its input or on a bug, becomes a row with its error and the rest
    go on; an output folder that cannot be written stops the cohort (OutputError)."""
    options = BatchOptions(refine_geometry=refine_geometry, refine_surface=refine_surface)
    jobs, _ = plan_jobs(
        cases_dir,
        out_root,
        options,
        resume=False,
        limit=limit,
        require_truth=True,
        prepare=with_true_geometry if true_geometry else None,
        score=score_against_truth,
    )
    rows: list[dict[str, Any]] = []
    for k, job in enumerate(jobs):
        record = process_case(reconstructor, job, stop_on=(OutputError,))
        rows.append(_row(record, Path(job.case_dir).name))
        if progress is not None:
            progress(k + 1, len(jobs), Path(job.case_dir).name)
    return _result(rows)


def evaluate_cohort(
    cases_dir: str | Path,
    options: BatchOptions,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    true_geometry: bool = False,
    out_root: str | Path | None = None,
    limit: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_cases` on the batch engine (Dask: ``workers`` local processes or
    an existing ``scheduler``): each case is reconstructed and scored on a worker with
    that worker's models. The same rows as the sequential loop; every case is redone."""

    def on_case(done: int, total: int, record: dict[str, Any]) -> None:
        if progress is not None:
            progress(done, total, Path(record["case"]).name)

    res = run_batch(
        cases_dir,
        out_root,
        options,
        workers=workers,
        scheduler=scheduler,
        resume=False,
        limit=limit,
        require_truth=True,
        prepare=with_true_geometry if true_geometry else None,
        score=score_against_truth,
        summary=False,
        progress=on_case,
    )
    return _result([_row(r, Path(r["case"]).name) for r in res.records])
