"""HTML pages of a result: report.html per case (case_page) and a batch's index.html
(batch_index), self-contained and viewable offline."""

from .batch_index import INDEX_HTML, render_batch_index, write_batch_index
from .case_page import REPORT_HTML, render_report_html, write_report_html
from .mesh_layer import MeshLayer

__all__ = [
    "INDEX_HTML",
    "REPORT_HTML",
    "MeshLayer",
    "render_batch_index",
    "render_report_html",
    "write_batch_index",
    "write_report_html",
]
