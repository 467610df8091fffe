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

from .page import esc, fmt, page

#: The file name in the batch's output root.
INDEX_HTML = "index.html"
#: Keys of a row with a meaning of their own; every other key is a column of its own.
ROW_KEYS = ("case", "status", "report", "error")


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
    rows: Sequence[Mapping[str, Any]], *, title: str = "angio-deploy batch"
) -> str:
    """The batch index page as an HTML string.

    Each row: ``case`` (the case's name or relative path), ``status`` ("ok", "failed",
    "skipped" or any other word), optionally ``report`` (the case's report.html relative
    to the index, e.g. "case_007/out/report.html"; the case name links to it), ``error``
    (the one-line message of a failed case); every other key (e.g. "mld_mm", "percent_ds",
    "seconds") becomes a column, in the order keys first appear. Rows keep their order.
    Raises ValueError for a row without case or status, or a report link that is absolute
    or leaves the folder.
    """
    extra: list[str] = []
    for k, row in enumerate(rows):
        for key in ("case", "status"):
            if key not in row:
                raise ValueError(f"batch index row {k}: no {key!r}")
        extra += [c for c in row if c not in ROW_KEYS and c not in extra]
    counts = Counter(str(r["status"]) for r in rows)
    summary = ", ".join(f"{n} {esc(s)}" for s, n in sorted(counts.items())) or "no cases"
    head = (
        "<tr><th>#</th><th>case</th><th>status</th>"
        + "".join(f"<th>{esc(c.replace('_', ' '))}</th>" for c in extra)
        + "<th>error</th></tr>"
    )
    body = []
    for k, r in enumerate(rows):
        status = str(r["status"])
        name = esc(r["case"])
        if r.get("report"):
            name = f'<a href="{esc(_href(r["report"]))}">{name}</a>'
        cls = f"status-{status}" if status.isalnum() else ""
        cells = "".join(f'<td class="num">{fmt(r.get(c), 2)}</td>' for c in extra)
        body.append(
            f'<tr><td class="num">{k + 1}</td><td>{name}</td>'
            f'<td class="{esc(cls)}">{esc(status)}</td>{cells}'
            f"<td>{esc(r.get('error') or '')}</td></tr>"
        )
    html = (
        f'<h1>{esc(title)}</h1><p class="sub">{len(rows)} case(s): {summary}.</p>'
        f"<table>{head}{''.join(body)}</table>"
    )
    return page(title, html)


def write_batch_index(
    out_root: str | Path, rows: Sequence[Mapping[str, Any]], *, title: str = "angio-deploy batch"
) -> Path:
    """Write ``out_root/index.html`` atomically (:func:`render_batch_index`); its path."""
    return atomic_write_text(Path(out_root) / INDEX_HTML, render_batch_index(rows, title=title))
