"""index.html of a batch: one row per case with its status, linking each case's report.html.

:func:`render_batch_index` is pure: rows in, a self-contained page out (no scripts, no
network; page.py). ``angio-deploy batch`` writes it into ``--out-root`` with
:func:`write_batch_index`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from angio_deploy.io.atomic import atomic_write_text

from .case_page import REPORT_HTML
from .page import esc, fmt, page

#: The file name in the batch's output root.
INDEX_HTML = "index.html"
#: The numbers shown by default, as (row key, column heading, digits): those of
#: ``angio-deploy batch``'s case records (batch/worker.py, report_numbers) that a reader
#: scans a cohort by.
DEFAULT_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("dice_a", "Dice a", 3),
    ("dice_b", "Dice b", 3),
    ("length_mm", "length (mm)", 1),
    ("mld_mm", "MLD (mm)", 2),
    ("percent_ds", "%DS", 1),
    ("n_warnings", "warnings", 0),
    ("seconds", "time (s)", 1),
)


def _href(path: str) -> str:
    """A link to a file below the index: relative, '/'-separated, percent-encoded.

    Quoting every ':' and '?' means no row can become a link with a scheme (javascript:,
    https:) or leave the batch folder's own tree.
    """
    p = PurePosixPath(str(path).replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise ValueError(f"report link must be relative and inside the batch folder: {path!r}")
    return quote(p.as_posix(), safe="/")


def render_batch_index(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "angio-deploy batch",
    columns: Sequence[tuple[str, str, int]] = DEFAULT_COLUMNS,
) -> str:
    """The batch index page as an HTML string.

    Each row (a case record): ``case`` (the case's name or relative path), ``status``
    ("ok", "failed", "skipped" or any other word), optionally ``report`` (the case's
    report.html relative to the index, e.g. "case_007/out/report.html"; the case name
    links to it), ``error`` and ``error_type`` (a failed case's message), and the keys of
    ``columns`` -- (key, heading, digits) -- shown as numbers (empty where missing). Other
    keys (a traceback, the worker) are not shown. Rows keep their order. Raises ValueError
    for a row without case or status, or a report link that is absolute or leaves the
    folder.
    """
    for k, row in enumerate(rows):
        for key in ("case", "status"):
            if key not in row:
                raise ValueError(f"batch index row {k}: no {key!r}")
    shown = [c for c in columns if any(r.get(c[0]) is not None for r in rows)]
    counts = Counter(str(r["status"]) for r in rows)
    summary = ", ".join(f"{n} {esc(s)}" for s, n in sorted(counts.items())) or "no cases"
    head = (
        "<tr><th>#</th><th>case</th><th>status</th>"
        + "".join(f"<th>{esc(c[1])}</th>" for c in shown)
        + "<th>error</th></tr>"
    )
    body = []
    for k, r in enumerate(rows):
        status = str(r["status"])
        name = esc(r["case"])
        if r.get("report"):
            name = f'<a href="{esc(_href(r["report"]))}">{name}</a>'
        cls = f"status-{status}" if status.isalnum() else ""
        cells = "".join(
            f'<td class="num">{fmt(r.get(key), digits)}</td>' for key, _, digits in shown
        )
        error = str(r.get("error") or "")
        if error and r.get("error_type"):
            error = f"{r['error_type']}: {error}"
        body.append(
            f'<tr><td class="num">{k + 1}</td><td>{name}</td>'
            f'<td class="{esc(cls)}">{esc(status)}</td>{cells}<td>{esc(error)}</td></tr>'
        )
    html = (
        f'<h1>{esc(title)}</h1><p class="sub">{len(rows)} case(s): {summary}.</p>'
        f"<table>{head}{''.join(body)}</table>"
    )
    return page(title, html)


def with_report_links(out_root: str | Path, rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """``rows`` with ``report`` filled in where it is missing: the row's ``out_dir`` /
    report.html relative to ``out_root``, when that file exists below ``out_root``."""
    root = Path(out_root).resolve()
    out = []
    for r in rows:
        r = dict(r)
        if not r.get("report") and r.get("out_dir"):
            html = (root / str(r["out_dir"]) / REPORT_HTML).resolve()
            if html.is_file() and html.is_relative_to(root):
                r["report"] = html.relative_to(root).as_posix()
        out.append(r)
    return out


def write_batch_index(
    out_root: str | Path,
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "angio-deploy batch",
    columns: Sequence[tuple[str, str, int]] = DEFAULT_COLUMNS,
) -> Path:
    """Write ``out_root/index.html`` atomically (:func:`render_batch_index`, links from
    :func:`with_report_links`); returns its path."""
    html = render_batch_index(with_report_links(out_root, rows), title=title, columns=columns)
    return atomic_write_text(Path(out_root) / INDEX_HTML, html)
