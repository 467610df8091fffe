"""tools/results_report.py: the paired comparison on hand-made evaluation documents."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "tools" / "results_report.py"


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("results_report", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _doc(rows):
    return {"cases": rows, "summary": {}}


def test_paired_uses_cases_both_evaluated_and_counts_improvements(report) -> None:
    base = _doc(
        [
            {"case": "a", "HD": 2.0, "Dice": 0.7},
            {"case": "b", "HD": 4.0, "Dice": 0.5},
            {"case": "c", "HD": 9.0, "Dice": 0.1},
            {"case": "d", "error": "vessel not found"},
        ]
    )
    sr = _doc(
        [
            {"case": "a", "HD": 1.0, "Dice": 0.8},
            {"case": "b", "HD": 5.0, "Dice": 0.6},
            {"case": "c", "error": "vessel not found"},
            {"case": "d", "HD": 0.1, "Dice": 1.0},
        ]
    )
    text = report.paired({"mi": base, "sr": sr}, "mi")
    row = next(line for line in text.splitlines() if line.startswith("| sr |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "2"  # only a and b: c failed in sr, d failed in the base
    by_metric = dict(zip([m for m, _ in report.PAIRED], cells[2:], strict=True))
    # HD: mean 3.0 -> 3.0 (+0 %), one case of two better; Dice: 0.6 -> 0.7, both better.
    assert by_metric["HD"] == "3.000 -> 3.000 (+0 %; 50 %)"
    assert by_metric["Dice"] == "0.600 -> 0.700 (+17 %; 100 %)"
    assert by_metric["MAE"] == "-"
