"""`angio-deploy evaluate` on synthetic cases: the JSON/CSV contract and failure rows."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from angio_deploy.cli import main
from angio_deploy.metrics.case import summarise
from angio_deploy.synth.engine import generate_case, write_case

pytest.importorskip("skimage")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example_case"


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval") / "cases"
    shutil.copytree(EXAMPLE, root / "example")
    write_case(generate_case(2_000_021), root / "case_2000021")
    return root


def test_evaluate_writes_json_and_csv(cases, tmp_path, capsys) -> None:
    js, cs = tmp_path / "r.json", tmp_path / "r.csv"
    argv = ["evaluate", str(cases), "--segmenter", "frangi", "--json", str(js), "--csv", str(cs)]
    rc = main([*argv, "--out-root", str(tmp_path / "outs"), "-q"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "2 cases" in out and "MAE" in out
    doc = json.loads(js.read_text())
    assert len(doc["cases"]) == 2
    ok = [r for r in doc["cases"] if "error" not in r]
    assert ok, doc["cases"]
    for key in ("MAE", "ASSD", "HD", "HD95", "F@0.1", "F@0.25", "F@0.5", "F_paper", "Dice"):
        assert set(doc["summary"][key]) >= {"mean", "median", "p95"}
        assert all(key in r for r in ok)
    for r in doc["cases"]:
        if "error" in r:
            assert "view" in r["error"]
    with cs.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["case"] for r in rows] == [r["case"] for r in doc["cases"]]
    assert (tmp_path / "outs" / ok[0]["case"] / "mesh.ply").is_file()


def test_summary_table_lists_the_confident_angle_error(monkeypatch, tmp_path, capsys) -> None:
    # The table's rows come from the summary evaluate computed; two branch cases, one of
    # whose angles was flagged, so the confident error is over one case only.
    import angio_deploy.evaluate as evaluate

    rows = [
        {"case": "a", "MAE": 0.3, "bifurcation_angle_error": 24.0},
        {
            "case": "b",
            "MAE": 0.5,
            "bifurcation_angle_error": -2.0,
            "bifurcation_angle_error_confident": -2.0,
        },
    ]
    summ = summarise(rows)

    def fake(*args, **kwargs):
        return {"cases": rows, "summary": summ, "n_cases": 2, "failed": 0}

    monkeypatch.setattr(evaluate, "evaluate_cases", fake)
    assert main(["evaluate", str(tmp_path), "--segmenter", "frangi", "-q"]) == 0
    table = {ln.split()[0]: ln.split()[1:] for ln in capsys.readouterr().out.splitlines()[2:]}
    assert set(table) == {"MAE", "bifurcation_angle_error", "bifurcation_angle_error_confident"}
    s = summ["bifurcation_angle_error_confident"]
    # One case: its SD is undefined (NaN), printed as such.
    assert table["bifurcation_angle_error_confident"] == [
        f"{s['mean']:.4f}",
        "nan",
        f"{s['median']:.4f}",
        f"{s['p95']:.4f}",
        "1",
    ]
    assert table["bifurcation_angle_error"][-1] == "2"
    assert table["bifurcation_angle_error"][1] == f"{np.std([24.0, -2.0], ddof=1):.4f}"


def test_evaluate_missing_folder(capsys, tmp_path) -> None:
    rc = main(["evaluate", str(tmp_path / "nope"), "--segmenter", "frangi"])
    assert rc == 66 and "does not exist" in capsys.readouterr().err


def test_true_geometry_diagnostic_replaces_the_headers(cases) -> None:
    import json as _json

    import numpy as np

    from angio_deploy.evaluate import with_true_geometry
    from angio_deploy.io.case import load_case

    case = load_case(cases / "case_2000021")
    meta = _json.loads((cases / "case_2000021" / "truth" / "meta.json").read_text())
    true = with_true_geometry(case)
    P = np.array(meta["views"][1]["true"]["projection_matrix"])
    np.testing.assert_allclose(
        true.views[1].geometry.P * P[2, 3], P * true.views[1].geometry.P[2, 3]
    )
    assert not np.allclose(case.views[1].geometry.P, true.views[1].geometry.P)
