"""The rule for a run's output folder (CASE_FORMAT.md, "Output"): it is angio-deploy's.

A run replaces an earlier result in ``--out`` and nothing else. :func:`check_output_dir`
refuses, before any work is done and again just before the swap,

* a folder that holds anything but an earlier result (an earlier result is a folder whose
  ``report.json`` has format ``angio-report/1``; an empty folder is fine too),
* the case folder itself, or any folder that contains it (``--out CASE``, ``--out ..``),
* a path that is a file, lies under a file or cannot be created,

with :class:`~angio_deploy.errors.OutputError` (exit 73) naming the folder. Writing then
goes through :func:`~angio_deploy.io.atomic.atomic_output_dir`, which swaps the new
result in under a lock and recovers what a killed run left behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from angio_deploy.errors import OutputError

#: The ``format`` of report.json (CASE_FORMAT.md); a folder holding one is a result.
REPORT_FORMAT = "angio-report/1"
REPORT_NAME = "report.json"

# A result's report is a few kB; a larger "report.json" is not ours and is not parsed.
_MAX_REPORT_BYTES = 16 * 1024 * 1024


def is_result_dir(path: str | Path) -> bool:
    """True if ``path`` is a folder holding an earlier angio-deploy result."""
    report = Path(path) / REPORT_NAME
    try:
        if not report.is_file() or report.is_symlink():
            return False
        if report.stat().st_size > _MAX_REPORT_BYTES:
            return False
        doc = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.get("format") == REPORT_FORMAT


def _contains(outer: Path, inner: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_output_dir(out_dir: str | Path, *, case_dir: str | Path | None = None) -> Path:
    """Check that a run may write ``out_dir``; returns it resolved (absolute, no links).

    ``case_dir``: the case folder being reconstructed, which ``out_dir`` may not be or
    contain. Raises :class:`~angio_deploy.errors.OutputError` (exit 73) otherwise.
    """
    raw = Path(out_dir)
    try:
        out = raw.expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise OutputError(f"cannot resolve the output folder: {exc}", source=raw) from None
    if case_dir is not None:
        case = Path(case_dir).expanduser().resolve()
        if _contains(out, case):
            what = "is the case folder" if out == case else "contains the case folder"
            raise OutputError(f"the output folder {what} {case}; choose another --out", source=raw)
    if os.path.lexists(out):
        if not out.is_dir():
            raise OutputError("the output path exists and is not a folder", source=raw)
        try:
            entries = [e.name for e in os.scandir(out)]
        except OSError as exc:
            raise OutputError(
                f"cannot read the output folder: {exc.strerror}", source=raw
            ) from None
        if entries and not is_result_dir(out):
            shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
            raise OutputError(
                f"the output folder holds files that are not an earlier result ({shown}); "
                "angio-deploy replaces only its own results: choose an empty or new folder",
                source=raw,
            )
        return out
    # It does not exist: its nearest existing ancestor must be a folder we can write in.
    parent = out.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot create the output folder: {parent} is not a folder", source=raw)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create the output folder: {parent} is not writable", source=raw)
    return out
