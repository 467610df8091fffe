"""tools/fuzz_inputs.py: mutated DICOM files and case.json documents through the case
loader end only in success or the documented InputError family (issue 11)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[2] / "tools" / "fuzz_inputs.py"


def _tool():
    spec = importlib.util.spec_from_file_location("fuzz_inputs", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_few_hundred_mutations_reach_no_bug() -> None:
    res = _tool().fuzz(300, seed=11)
    assert res["count"] == 300
    assert res["bugs"] == [], res["bugs"][:3]
    # The mutations are not all harmless: most inputs must be refused.
    assert res["counts"]["input_error"] > 150 and res["counts"].get("ok", 0) > 0


def test_mutations_are_deterministic_and_varied() -> None:
    tool = _tool()
    text = json.dumps({"format": "angio-case/1", "views": [{"image": "a.png"}]})
    a = [tool.mutate_json(text, np.random.default_rng(s))[1] for s in range(30)]
    b = [tool.mutate_json(text, np.random.default_rng(s))[1] for s in range(30)]
    assert a == b and len(set(a)) > 10


def test_cli_reports_counts_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "fuzz.json"
    assert _tool().main(["--count", "20", "--seed", "3", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["count"] == 20 and sum(doc["counts"].values()) == 20
    assert "20 mutations" in capsys.readouterr().out
