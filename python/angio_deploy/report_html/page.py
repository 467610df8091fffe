"""What every HTML page of angio-deploy shares: the skeleton, the style, escaping.

Pages are self-contained: styles, scripts and images are inline, and a Content Security
Policy forbids every network request (``default-src 'none'``), so a page opened from a
USB stick, an e-mail attachment or an air-gapped workstation shows the same thing, and a
string from a case folder (an id, a warning) can never load anything.
"""

from __future__ import annotations

import math
from typing import Any

#: Inline styles and scripts only; images only as data: URIs; nothing over the network.
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

STYLE = """
:root { --fg: #1d2430; --muted: #5b6472; --line: #d9dde3; --warn: #8a4b00;
        --warnbg: #fff4e0; --bad: #a11d1d; --badbg: #fde8e8; --ok: #1d6b2f; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); margin: 0 auto; padding: 16px 24px 48px; max-width: 1200px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.sub { color: var(--muted); margin: 0 0 12px; }
table { border-collapse: collapse; margin: 4px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left;
         vertical-align: top; }
th { background: #f3f5f8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.warnings { background: var(--warnbg); color: var(--warn); border: 1px solid #f0c78a;
            border-radius: 4px; padding: 8px 12px 8px 28px; margin: 8px 0; }
.warnings li { margin: 2px 0; white-space: pre-wrap; }
.none { color: var(--muted); }
figure { margin: 0 16px 16px 0; display: inline-block; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid var(--line); display: block; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr));
         gap: 12px; }
.grid2 figure { margin: 0; }
pre { background: #f6f7f9; border: 1px solid var(--line); padding: 8px; overflow: auto;
      max-height: 480px; font-size: 12px; }
code { font-size: 12px; }
.status-ok { color: var(--ok); font-weight: 600; }
.status-failed { color: var(--bad); font-weight: 600; background: var(--badbg); }
.status-skipped { color: var(--muted); }
@media print { .noprint { display: none !important; } body { max-width: none; } }
"""


def esc(value: Any) -> str:
    """HTML text (and attribute value) for any value: ``&<>"'`` escaped (as html.escape
    with quote=True, without importing the html package's entity tables)."""
    return (
        str(value)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    """A number for a table (fixed ``digits``), anything else as text, escaped; "--" for
    None and non-finite numbers."""
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return "&ndash;"
        text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
        return esc(text + (f" {unit}" if unit else ""))
    if isinstance(value, list | tuple) and all(isinstance(x, int | float) for x in value):
        return " / ".join(fmt(x, digits, unit) for x in value) or "&ndash;"
    return esc(value)


def kv_table(rows: list[tuple[str, str]]) -> str:
    """A two-column table of (label, already-escaped HTML) rows."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def page(title: str, body: str, *, head: str = "") -> str:
    """A complete HTML5 document around ``body`` (trusted HTML); ``title`` is escaped."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="angio-deploy"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style>{head}</head>\n<body>\n{body}\n</body></html>\n"
    )
