"""The JSON Schema of report.json (angio-report/1), shipped in the package.

``report.schema.json`` (JSON Schema draft 2020-12) sits next to this module in the
installed package; :func:`report_schema` reads it, :func:`validate_report` checks a report
against it (needs the optional ``jsonschema`` package, in the ``dev`` extra). The schema
lists the keys every report has and their types; a report may carry further keys within
angio-report/1 (information is added, never renamed or removed).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "report.schema.json"


@cache
def _schema_text() -> str:
    return resources.files("angio_deploy").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def report_schema() -> dict[str, Any]:
    """The schema as a fresh dict."""
    return json.loads(_schema_text())


def validate_report(report: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``report`` follows angio-report/1."""
    import jsonschema

    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(report)
