"""Evaluate the pipeline on case folders with truth (METRICS.md): `angio-deploy evaluate`.

Every case folder under CASES_DIR that has ``truth/`` is reconstructed, its outputs are
written to ``CASE/out`` (or under ``out_root``), and METRICS.md is computed per case. A
case that fails (vessel not found, ...) gets a row with its error and no metrics; the
summary counts it. ``true_geometry`` reconstructs with the true view geometry from
truth/meta.json instead of the DICOM headers: a diagnostic that separates calibration
error (unobservable in part, docs/DATASET.md) from reconstruction error.
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
from .errors import AngioDeployError, InputNotFoundError, OutputError
from .geometry import ViewGeometry
from .io.case import Case, load_case
from .io.output_dir import check_output_dir
from .metrics import evaluate_case, summarize

log = logging.getLogger(__name__)


def find_cases(cases_dir: str | Path) -> list[Path]:
    """Case folders (holding case.json and truth/) under ``cases_dir``, sorted."""
    root = Path(cases_dir)
    if not root.is_dir():
        raise InputNotFoundError("cases folder does not exist", source=str(root))
    found = sorted(p.parent for p in root.rglob("case.json") if (p.parent / "truth").is_dir())
    return found


def with_true_geometry(case: Case) -> Case:
    """The case with each view's geometry replaced by the true one from truth/meta.json."""
    meta = json.loads((case.path / "truth" / "meta.json").read_text(encoding="utf-8"))
    views = []
    for v, vm in zip(case.views, meta["views"], strict=True):
        P = np.array(vm["true"]["projection_matrix"], dtype=np.float64)
        g = ViewGeometry.from_matrix(P, v.geometry.width, v.geometry.height)
        views.append(dataclasses.replace(v, geometry=g))
    return dataclasses.replace(case, views=tuple(views))


def _out_dir(root: Path, case_dir: Path, out_root: str | Path | None) -> Path:
    """CASE/out, or the case's path relative to the cases folder under ``out_root`` (so
    two cases of one name in different subfolders do not share a result folder)."""
    if out_root is None:
        return case_dir / "out"
    return Path(out_root) / case_dir.relative_to(root)


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
    """Reconstruct and score every case -> {"cases": [rows], "summary": {...}, "failed": n}."""
    cases = find_cases(cases_dir)[:limit]
    root = Path(cases_dir)
    if out_root is not None:
        # Refuse the whole cohort up front: an out_root that is the cases folder would
        # put results over case folders (CASE_FORMAT.md, "Output").
        for case_dir in cases:
            check_output_dir(_out_dir(root, case_dir, out_root), case_dir=case_dir)
    rows: list[dict[str, Any]] = []
    for k, case_dir in enumerate(cases):
        row: dict[str, Any] = {"case": case_dir.name}
        try:
            case = load_case(case_dir)
            if true_geometry:
                case = with_true_geometry(case)
            result = reconstructor.reconstruct(
                case, refine_geometry=refine_geometry, refine_surface=refine_surface
            )
            out = _out_dir(root, case_dir, out_root)
            result.write(out)
            row.update(evaluate_case(out, case_dir / "truth"))
            row["case"] = case_dir.name
            row["time_s"] = result.report["timings_s"]["total"]
        except OutputError:
            raise  # the output location, not the case: stop rather than fail every case
        except AngioDeployError as exc:
            row["error"] = str(exc)
            log.warning("%s: %s", case_dir.name, exc)
        rows.append(row)
        if progress is not None:
            progress(k + 1, len(cases), case_dir.name)
    summary = summarize(rows)
    failed = sum("error" in r for r in rows)
    return {"cases": rows, "summary": summary, "n_cases": len(rows), "failed": failed}
