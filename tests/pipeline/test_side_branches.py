"""Side branches end to end (issue 13): one route for every segment, geometry refinement
once from all of them, stitching into a watertight joined mesh, QCA per branch, a branch
that cannot be reconstructed named in the error or, when asked, left out and reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from angio_deploy.api import Reconstructor
from angio_deploy.cli import main
from angio_deploy.curves import arc_lengths
from angio_deploy.errors import InputError
from angio_deploy.io.mesh_io import read_ply
from angio_deploy.metrics.case import evaluate_case, load_truth_views, ring_centres
from angio_deploy.pipeline.segmenters import OracleSegmenter
from angio_deploy.synth.engine import generate_case, write_case

pytest.importorskip("manifold3d")
#: A synthetic test-split case with one side branch (truth/side_0.ply).
SEED = 2_000_010


@pytest.fixture(scope="module")
def branch_case(tmp_path_factory) -> Path:
    d = write_case(generate_case(SEED), tmp_path_factory.mktemp("sb") / "case")
    assert json.loads((d / "case.json").read_text())["side_branches"]
    return d


def oracle(case: Path) -> OracleSegmenter:
    masks = {k: np.asarray(Image.open(case / "truth" / f"mask_{k}.png")) > 0 for k in "ab"}
    return OracleSegmenter(masks)


@pytest.fixture(scope="module")
def reconstruction(branch_case):
    return Reconstructor(oracle(branch_case), surface=False).reconstruct(branch_case)


def test_every_segment_goes_the_same_route(reconstruction) -> None:
    r = reconstruction
    assert [b.branch for b in r.branches] == ["branch_1"]
    b = r.branches[0]
    assert b.vertices.shape == (6000, 3) and b.faces.shape == r.faces.shape
    # One geometry for the case: the branch is triangulated with the main segment's view B.
    assert b.geometries[1] is r.result.geometries[1]
    names = [c["name"] for c in r.report["quality"]["refinement"]["correspondences"]]
    assert "branch_1 start" in names and "branch_1 centreline" in names
    assert "main end" in names


def test_joined_mesh_is_watertight_and_attached(reconstruction) -> None:
    r = reconstruction
    j = r.joined
    assert j is not None and j.status == "NoError" and j.genus == 0
    e = np.sort(np.concatenate([j.faces[:, [0, 1]], j.faces[:, [1, 2]], j.faces[:, [2, 0]]]), 1)
    assert np.all(np.unique(e, axis=0, return_counts=True)[1] == 2)
    bif = r.report["qca"]["bifurcations"][0]
    att = bif["attachment"]
    assert att["distance_mm"] < 3.0  # the oracle's branch starts on the main vessel
    # The branch now starts on the main centreline.
    from angio_deploy.pipeline.branches import nearest_on_polyline

    _, _, d = nearest_on_polyline(r.result.centreline_mm, r.branches[0].centreline_mm[0])
    assert d < 1e-6
    assert 0 < bif["angle_deg"] < 180


@pytest.mark.xfail(
    strict=True,
    reason="known defect (issue 13): in view a this branch overlaps other lumen in "
    "projection (its 2D width 3.5-6.4 mm against view b's 1.6 mm), and a ring's diameter is "
    "the mean of the two views': 2.5 mm, the side reference 3.6 mm against the true 1.6 mm. "
    "Taking the narrower view where one exceeds the other 1.5-fold fixes this case (1.61 mm) "
    "but made the 60 test cases worse with the network segmenter (MAE 0.474 -> 0.498 mm)",
)
def test_side_reference_diameter_of_a_short_branch(reconstruction, branch_case) -> None:
    meta = json.loads((branch_case / "truth" / "meta.json").read_text())
    true_side = 2.0 * float(np.median(meta["side_branches"][0]["reference_radius_mm"]))
    ref = reconstruction.report["qca"]["bifurcations"][0]["reference_diameter_mm"]
    assert abs(ref["side"] - true_side) < 0.25 * true_side


def test_outputs_and_their_scores(reconstruction, branch_case, tmp_path) -> None:
    out = reconstruction.write(tmp_path / "out")
    names = {p.name for p in out.iterdir()}
    assert {"mesh_joined.ply", "mesh_joined.stl", "branch_1.ply", "diameter_branch_1.png"} <= names
    v, _, data = read_ply(out / "branch_1.ply")
    assert v.shape == (6000, 3)
    np.testing.assert_array_equal(data["ring"], np.repeat(np.arange(100), 60))
    rows = (out / "qca.csv").read_text().splitlines()[1:]
    assert {r.split(",")[0] for r in rows} == {"main", "branch_1"} and len(rows) == 200
    rep = json.loads((out / "report.json").read_text())
    assert [b["branch"] for b in rep["qca"]["branches"]] == ["main", "branch_1"]
    assert rep["joined"]["genus"] == 0 and "mesh_joined.ply" in rep["outputs"]
    row = evaluate_case(out, branch_case / "truth")
    # Oracle masks and header geometry: the joined mesh covers the truth about as well as
    # the main segment alone covers its own part (issue 13's target, on one case).
    assert row["Dice_joined"] >= row["Dice_main"] - 0.02
    assert row["ASSD_joined"] < 2.5
    assert abs(row["bifurcation_angle_error"]) < 15.0
    assert row["MAE_shape"] <= row["MAE"]
    # The angle's confidence is reported, and evaluation reads the flag from the report.
    bif = rep["qca"]["bifurcations"][0]
    assert bif["angle_distance_mm"] == 10.0 and 0.0 <= bif["angle_sigma_deg"] <= 90.0
    assert bif["angle_low_confidence"] == bool(bif["angle_low_confidence_reasons"])
    assert row["bifurcation_angle_low_confidence"] == float(bif["angle_low_confidence"])
    if not bif["angle_low_confidence"]:
        assert row["bifurcation_angle_error_confident"] == row["bifurcation_angle_error"]


def test_a_low_confidence_angle_is_a_report_warning(branch_case, reconstruction, tmp_path) -> None:
    # The branch's start clicked 5 mm into the branch (the true side-branch centreline
    # projected with the true matrices): its triangulated start lies outside the main
    # lumen, one of the two failures that flag the angle.
    case = Path(
        shutil.copytree(branch_case, tmp_path / "case", ignore=shutil.ignore_patterns("out"))
    )
    side = ring_centres(read_ply(case / "truth" / "side_0.ply")[0])
    s = arc_lengths(side)
    x = np.append([np.interp(5.0, s, side[:, k]) for k in range(3)], 1.0)
    doc = json.loads((case / "case.json").read_text())
    for k, view in enumerate(load_truth_views(case / "truth")):
        u = view.P @ x
        doc["side_branches"][0]["views"][k]["start"] = [float(c) for c in u[:2] / u[2]]
    (case / "case.json").write_text(json.dumps(doc))
    r = Reconstructor(oracle(branch_case), surface=False).reconstruct(case)
    bif = r.report["qca"]["bifurcations"][0]
    reasons = bif["angle_low_confidence_reasons"]
    assert bif["angle_low_confidence"] and any("outside its" in x for x in reasons)
    flagged = [w for w in r.report["warnings"] if "bifurcation angle" in w]
    assert len(flagged) == 1 and flagged[0].startswith("branch_1: ")
    assert f"({bif['angle_deg']:.0f} deg)" in flagged[0]
    assert all(x in flagged[0] for x in reasons)
    # The unmodified case's angle is not flagged, and its report warns of nothing about it.
    base = reconstruction.report
    assert not base["qca"]["bifurcations"][0]["angle_low_confidence"]
    assert not any("bifurcation angle" in w for w in base["warnings"])


def broken_branch(src: Path, dst: Path) -> Path:
    """A copy of the case whose branch ends, in view b, far out in the background."""
    case = Path(shutil.copytree(src, dst, ignore=shutil.ignore_patterns("truth", "out")))
    doc = json.loads((case / "case.json").read_text())
    doc["side_branches"][0]["views"][1]["end"] = [3.0, 3.0]
    (case / "case.json").write_text(json.dumps(doc))
    return case


def test_a_branch_that_fails_is_named(branch_case, tmp_path) -> None:
    case = broken_branch(branch_case, tmp_path / "case")
    rec = Reconstructor(oracle(branch_case), surface=False)
    with pytest.raises(InputError) as err:
        rec.reconstruct(case)
    assert err.value.field == "side_branches[0]"
    assert "branch_1" in str(err.value) and "--skip-failed-branches" in str(err.value)
    r = rec.reconstruct(case, skip_failed_branches=True)
    assert r.branches == () and r.joined is None
    assert r.report["branches"] == [
        {"branch": "branch_1", "skipped": True, "reason": r.skipped[0].reason}
    ]
    assert any("branch_1 left out" in w for w in r.report["warnings"])


def test_cli_skip_failed_branches(branch_case, tmp_path, capsys) -> None:
    case = broken_branch(branch_case, tmp_path / "case")
    out = tmp_path / "out"
    assert main(["run", str(case), "--out", str(out)]) == 65
    err = capsys.readouterr().err
    assert "side_branches[0]" in err and not out.exists()
    rc = main(["run", str(case), "--out", str(out), "--skip-failed-branches"])
    assert rc == 0
    assert "branch_1 left out" in capsys.readouterr().err
    assert not (out / "mesh_joined.ply").exists() and (out / "mesh.ply").exists()
