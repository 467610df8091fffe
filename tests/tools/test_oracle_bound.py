"""tools/oracle_bound.py: truth-mask reconstruction scored like `angio-deploy evaluate`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "tools" / "oracle_bound.py"


def _tool():
    spec = importlib.util.spec_from_file_location("oracle_bound", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_true_geometry_and_truth_masks_come_close_and_bad_cases_are_rows(tmp_path) -> None:
    from angio_deploy.synth.engine import generate_case, write_case

    cases = tmp_path / "cases"
    write_case(generate_case(2_000_003), cases / "case_a")
    broken = write_case(generate_case(2_000_004), cases / "case_b")
    (broken / "truth" / "mask_b.png").unlink()
    out = tmp_path / "oracle.json"
    assert _tool().main([str(cases), "--json", str(out), "--true-geometry"]) == 0
    doc = json.loads(out.read_text())
    assert doc["n_cases"] == 2 and doc["failed"] == 1
    good, bad = doc["cases"]
    assert "mask_b" in bad["error"]
    # Perfect masks, true geometry: MI lands within a fraction of a millimetre.
    assert good["ASSD"] < 0.5 and good["Dice"] > 0.85
    assert set(doc["summary"]) >= {"HD", "MAE", "Dice"}
