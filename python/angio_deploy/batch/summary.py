"""A cohort's summary in OUT_ROOT: summary.json, summary.csv (one row per case),
index.html (linking each case's report.html) and the exit-code rule of
``angio-deploy batch``. Every file is written atomically.

Exit code of a batch (docs/DESIGN.md, "Cohorts on Dask"): 0 when every case is ok or
skipped; 70 when any case hit an internal error (a bug); otherwise, when cases failed on
their input, the exit code they share (65 bad data, 66 not found, 69 backend unavailable,
73 output folder refused), or 65 when they differ.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from angio_deploy.errors import EX_DATAERR, EX_OK, EX_SOFTWARE
from angio_deploy.io.atomic import atomic_write_text
from angio_deploy.io.jsonio import dumps

#: The ``format`` of summary.json.
SUMMARY_FORMAT = "angio-batch/1"
SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"

#: summary.csv's columns, in order (every record has them; missing values are empty).
CSV_COLUMNS = (
    "case",
    "status",
    "seconds",
    "exit_code",
    "error_type",
    "error",
    "dice_a",
    "dice_b",
    "length_mm",
    "mld_mm",
    "percent_ds",
    "surface_refined",
    "n_warnings",
    "reconstruct_s",
    "out_dir",
)

STATUSES = ("ok", "failed", "skipped")


def counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """Cases per status."""
    return {s: sum(r.get("status") == s for r in records) for s in STATUSES}


def batch_exit_code(records: list[dict[str, Any]]) -> int:
    """The batch's exit code from its case records (module docstring)."""
    failed = [r for r in records if r.get("status") == "failed"]
    if not failed:
        return EX_OK
    codes = {int(r.get("exit_code") or EX_SOFTWARE) for r in failed}
    if EX_SOFTWARE in codes:
        return EX_SOFTWARE
    return codes.pop() if len(codes) == 1 else EX_DATAERR


def summary_csv(records: list[dict[str, Any]]) -> str:
    """summary.csv's text: :data:`CSV_COLUMNS`, one row per case (no tracebacks)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
    w.writeheader()
    for r in records:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in CSV_COLUMNS})
    return buf.getvalue()


def summary_doc(
    records: list[dict[str, Any]], *, meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """summary.json's document: format, counts, exit code, ``meta`` and every record."""
    return {
        "format": SUMMARY_FORMAT,
        **(meta or {}),
        "counts": counts(records),
        "exit_code": batch_exit_code(records),
        "cases": records,
    }


def write_summary(
    out_root: str | Path,
    records: list[dict[str, Any]],
    *,
    meta: dict[str, Any] | None = None,
) -> list[Path]:
    """Write summary.json, summary.csv and index.html (a page linking every case's
    report.html, :mod:`angio_deploy.report_html`) into ``out_root``; returns the paths."""
    from angio_deploy.report_html import write_batch_index

    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    return [
        atomic_write_text(root / SUMMARY_JSON, dumps(summary_doc(records, meta=meta))),
        atomic_write_text(root / SUMMARY_CSV, summary_csv(records)),
        write_batch_index(root, records),
    ]
