"""evaluate_case on a synthetic case folder with the truth copied as the prediction."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from angio_deploy.io.mesh_io import read_ply, write_ply
from angio_deploy.metrics import evaluate_case, load_truth_views, silhouette_overlap, summarise
from angio_deploy.synth.engine import generate_case, write_case

SEED = 3  # has a stenosis (74 % nominal) and a side branch


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = write_case(generate_case(SEED), tmp_path_factory.mktemp("eval") / "case")
    out = case / "out"
    out.mkdir()
    for name in ("mesh.ply", "centreline.csv", "mesh_joined.ply"):
        if (case / "truth" / name).exists():
            shutil.copy(case / "truth" / name, out / name)
    return case


def test_truth_as_prediction_scores_perfectly(case_dir: Path):
    row = evaluate_case(case_dir / "out", case_dir / "truth")
    assert row["MAE"] == 0.0
    for key in ("ASSD", "HD", "HD95"):
        assert row[key] < 1e-9, key
    for key in ("F@0.1", "F@0.25", "F@0.5", "F_paper"):
        assert row[key] == 100.0, key
    assert row["radius_mae"] == 0.0 and row["radius_bias"] == 0.0
    assert row["DS_error"] == 0.0 and row["DS_true"] > 50.0


def test_dice_is_the_truth_meshs_own_dice_against_the_masks(case_dir: Path):
    truth = case_dir / "truth"
    row = evaluate_case(case_dir / "out", truth)
    v, f, _ = read_ply(truth / "mesh_joined.ply")
    views = load_truth_views(truth)
    assert [x.name for x in views] == ["a", "b"]
    expected = [silhouette_overlap(v, f, x.P, x.mask) for x in views]
    assert row["Dice_a"] == expected[0][0] and row["Jaccard_b"] == expected[1][1]
    assert row["Dice"] == pytest.approx(np.mean([d for d, _ in expected]))
    assert row["Dice"] >= 0.98


def test_a_shifted_prediction_is_measured(case_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(case_dir / "out", out)
    v, f, _ = read_ply(out / "mesh.ply")
    write_ply(out / "mesh.ply", v + np.array([0.0, 0.0, 0.4]), f)
    (out / "mesh_joined.ply").unlink()
    row = evaluate_case(out, case_dir / "truth")
    base = evaluate_case(case_dir / "out", case_dir / "truth")
    assert row["MAE"] == pytest.approx(0.4, abs=1e-12)
    assert 0.0 < row["ASSD"] <= row["HD95"] <= row["HD"] <= 0.4 + 1e-9
    assert row["F@0.1"] < 100.0
    assert row["Dice"] < base["Dice"]  # shifted, and the side branch is missing
    s = summarise([row, base, {"case": "none", "MAE": float("nan")}])
    assert s["MAE"]["n"] == 2 and s["MAE"]["mean"] == pytest.approx(0.2)
    assert not math.isnan(s["DS_error"]["mean"])


def test_qca_errors_of_the_truth_measured_as_the_product_would(case_dir: Path, tmp_path: Path):
    """The truth's own rings through the product's QCA: the MLD is exact, the estimated
    reference close to the generator's, %DS and lesion length follow."""
    from angio_deploy.io.centreline_csv import read_centreline_csv
    from angio_deploy.metrics.radius import ring_radii
    from angio_deploy.pipeline.qca import branch_qca, qca_csv

    out = Path(shutil.copytree(case_dir / "out", tmp_path / "out"))
    assert math.isnan(evaluate_case(out, case_dir / "truth")["MLD_error"])  # no qca.csv
    cl = read_centreline_csv(case_dir / "truth" / "centreline.csv")
    v, _, _ = read_ply(case_dir / "truth" / "mesh.ply")
    (out / "qca.csv").write_text(qca_csv([branch_qca(cl.points, ring_radii(v))]))
    row = evaluate_case(out, case_dir / "truth")
    assert abs(row["MLD_error"]) < 1e-4  # qca.csv keeps 4 decimals
    assert abs(row["ref_diameter_error"]) < 0.25
    assert abs(row["QCA_DS_error"]) < 8.0
    assert abs(row["lesion_length_error"]) < 3.0
    assert summarise([row])["MLD_error"]["n"] == 1
