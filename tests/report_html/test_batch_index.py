"""The batch index page: a row per case, links to each report.html, statuses counted,
strings escaped, links confined to the batch folder."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from angio_deploy.report_html import render_batch_index, write_batch_index
from angio_deploy.report_html.batch_index import with_report_links


class Table(HTMLParser):
    """Rows of the page's table as cell texts, and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a":
            self.links.append(dict(attrs)["href"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table(html: str) -> Table:
    t = Table()
    t.feed(html)
    return t


ROWS = [
    {"case": "case_001", "status": "ok", "report": "case_001/out/report.html", "mld_mm": 1.234},
    {
        "case": "case 002",
        "status": "failed",
        "error": "view_b.dcm: no pixel data",
        "error_type": "InputError",
        "traceback": "Traceback (most recent call last): ...",
        "worker": "host:123",
    },
    {"case": "case_003", "status": "skipped", "report": "case_003/out/report.html", "seconds": 2.5},
]


def test_rows_links_and_summary() -> None:
    html = render_batch_index(ROWS, title="Cohort A")
    t = table(html)
    # Only the default columns some row has; no traceback, no worker.
    assert t.rows[0] == ["#", "case", "status", "MLD (mm)", "time (s)", "error"]
    assert t.rows[1] == ["1", "case_001", "ok", "1.23", "–", ""]
    assert t.rows[2] == [
        "2",
        "case 002",
        "failed",
        "–",
        "–",
        "InputError: view_b.dcm: no pixel data",
    ]
    assert "Traceback" not in html and "host:123" not in html
    assert t.rows[3][:3] == ["3", "case_003", "skipped"] and t.rows[3][4] == "2.5"
    assert t.links == ["case_001/out/report.html", "case_003/out/report.html"]
    text = re.sub(r"<[^>]+>", " ", html)
    assert "3 case(s): 1 failed, 1 ok, 1 skipped." in text
    assert "<title>Cohort A</title>" in html
    assert "<script" not in html and not re.search(r"(src|href)=\"https?:", html)


def test_links_are_percent_encoded_and_stay_in_the_folder() -> None:
    rows = [
        {"case": "a", "status": "ok", "report": "my case #1/out/report.html"},
        {"case": "b", "status": "ok", "report": "javascript:alert(1)"},
        {"case": "c", "status": "ok", "report": 'x"><script>/report.html'},
    ]
    links = table(render_batch_index(rows)).links
    assert links == [
        "my%20case%20%231/out/report.html",
        "javascript%3Aalert%281%29",  # a relative file name, not a script URL
        "x%22%3E%3Cscript%3E/report.html",
    ]
    for bad in ("/abs/report.html", "../elsewhere/report.html", "a/../../report.html"):
        with pytest.raises(ValueError, match="relative"):
            render_batch_index([{"case": "x", "status": "ok", "report": bad}])


def test_strings_are_escaped() -> None:
    evil = "<script>alert(1)</script>"
    html = render_batch_index(
        [{"case": evil, "status": evil, "error": evil, "note": evil}],
        title=evil,
        columns=[("note", evil, 0)],
    )
    assert evil not in html and "<script" not in html
    t = table(html)
    assert t.rows[0][3] == evil
    assert t.rows[1][1:] == [evil, evil, evil, evil]


def test_rows_need_case_and_status() -> None:
    with pytest.raises(ValueError, match="row 1: no 'status'"):
        render_batch_index([{"case": "a", "status": "ok"}, {"case": "b"}])
    assert "no cases" in render_batch_index([])


def test_write_batch_index(tmp_path: Path) -> None:
    path = write_batch_index(tmp_path, ROWS)
    assert path == tmp_path / "index.html"
    assert path.read_text(encoding="utf-8") == render_batch_index(ROWS)


def test_links_from_the_records_out_dir(tmp_path: Path) -> None:
    (tmp_path / "a" / "out").mkdir(parents=True)
    (tmp_path / "a" / "out" / "report.html").write_text("x")
    (tmp_path / "b" / "out").mkdir(parents=True)  # failed: no report.html
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    outside.mkdir()
    (outside / "report.html").write_text("x")
    rows = [
        {"case": "a", "status": "ok", "out_dir": str(tmp_path / "a" / "out")},  # absolute
        {"case": "b", "status": "failed", "out_dir": "b/out"},
        {"case": "c", "status": "ok", "out_dir": str(outside)},  # not below the index
        {"case": "d", "status": "ok", "report": "given/report.html", "out_dir": "a/out"},
    ]
    got = with_report_links(tmp_path, rows)
    assert [r.get("report") for r in got] == ["a/out/report.html", None, None, "given/report.html"]
    assert "report" not in rows[0]  # the caller's rows are left alone
    links = table(write_batch_index(tmp_path, rows).read_text(encoding="utf-8")).links
    assert links == ["a/out/report.html", "given/report.html"]
