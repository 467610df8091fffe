"""The shared page pieces: escaping as the standard library does it, number formatting."""

from __future__ import annotations

import html
import math

from hypothesis import given
from hypothesis import strategies as st

from angio_deploy.report_html.page import CSP, esc, fmt, page


@given(st.text())
def test_esc_matches_html_escape(text: str) -> None:
    assert esc(text) == html.escape(text, quote=True)


def test_fmt() -> None:
    assert fmt(1.23456, 2, "mm") == "1.23 mm"
    assert fmt(7) == "7"
    assert fmt(True) == "yes"
    assert fmt(None) == fmt(math.nan) == fmt(math.inf) == "&ndash;"
    assert fmt([0.5, 0.25], 1) == "0.5 / 0.2"
    assert fmt("<b>") == "&lt;b&gt;"


def test_page_carries_the_policy_and_escapes_the_title() -> None:
    doc = page("a < b", "<p>body</p>")
    assert doc.startswith("<!DOCTYPE html>")
    assert f'content="{esc(CSP)}"' in doc
    assert "<title>a &lt; b</title>" in doc and "<p>body</p>" in doc
