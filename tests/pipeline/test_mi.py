"""Mesh initialisation end to end on a synthetic case, with the truth mask as segmenter."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from angio_deploy.errors import InputError
from angio_deploy.evaluate import with_true_geometry
from angio_deploy.geometry import ViewGeometry
from angio_deploy.io.case import load_case
from angio_deploy.io.mesh_io import read_ply
from angio_deploy.pipeline.mi import mesh_initialisation, summary
from angio_deploy.pipeline.quality import reprojection_dice
from angio_deploy.pipeline.segmenters import OracleSegmenter
from angio_deploy.synth.engine import generate_case, write_case


@pytest.fixture(scope="module")
def synth_case(tmp_path_factory):
    d = write_case(generate_case(2_000_003), tmp_path_factory.mktemp("mi") / "case")
    masks = {k: np.asarray(Image.open(d / "truth" / f"mask_{k}.png")) > 0 for k in "ab"}
    return d, masks


def test_oracle_segmentation_with_true_geometry_recovers_the_truth(synth_case) -> None:
    d, masks = synth_case
    case = with_true_geometry(load_case(d))
    res = mesh_initialisation(case, OracleSegmenter(masks), geometry_refinement=False)
    truth, _, _ = read_ply(d / "truth" / "mesh.ply")
    assert res.vertices.shape == (6000, 3) and res.faces.shape == (11880, 3)
    mae = float(np.linalg.norm(res.vertices - truth, axis=1).mean())
    assert mae < 0.5, mae
    true_r = np.linalg.norm(
        truth.reshape(100, 60, 3) - truth.reshape(100, 60, 3).mean(axis=1, keepdims=True), axis=2
    ).mean(axis=1)
    assert float(np.abs(res.radius_mm - true_r).mean()) < 0.15
    assert min(reprojection_dice(res)) > 0.9
    assert set(res.timings_s) >= {"crop", "segment", "centreline_2d", "triangulate", "mesh"}


def test_header_geometry_with_refinement_runs_and_reports(synth_case) -> None:
    d, masks = synth_case
    res = mesh_initialisation(load_case(d), OracleSegmenter(masks), geometry_refinement=True)
    s = summary(res)
    json.dumps(s)
    assert s["refinement"]["residual_px"]["after"] <= s["refinement"]["residual_px"]["before"]


def test_empty_segmentation_names_the_view(synth_case) -> None:
    d, masks = synth_case
    empty = {"a": masks["a"], "b": np.zeros_like(masks["b"])}
    with pytest.raises(InputError, match=r"view b \(view_b\.dcm\).*no vessel found"):
        mesh_initialisation(load_case(d), OracleSegmenter(empty), geometry_refinement=False)


def test_smoothing_keeps_a_straight_centreline_and_shortens_a_zigzag() -> None:
    from angio_deploy.pipeline.mi import smooth_centreline

    s = np.linspace(0.0, 40.0, 161)
    line = np.stack([s, 0.5 * s, np.zeros_like(s)], axis=1)
    out = smooth_centreline(line, 2.0)
    np.testing.assert_allclose(out[[0, -1]], line[[0, -1]], atol=1e-9)
    np.testing.assert_allclose(out[:, 1], 0.5 * out[:, 0], atol=1e-9)
    # Depth zigzag of +-0.3 mm every 0.25 mm (ill-conditioned triangulation) inflates the
    # length by ~70 %; smoothed, the length is back within 1 %.
    zig = line.copy()
    zig[:, 2] = 0.3 * (-1.0) ** np.arange(len(s))
    true_len = float(np.linalg.norm(line[-1] - line[0]))
    smooth_len = float(np.linalg.norm(np.diff(smooth_centreline(zig, 2.0), axis=0), axis=1).sum())
    assert abs(smooth_len / true_len - 1.0) < 0.01


def test_end_fit_finds_the_clicked_positions_along_the_curve() -> None:
    from angio_deploy.pipeline.mi import fit_ends

    ga = ViewGeometry.from_angles(
        30.0, 0.0, sid_mm=1000.0, sod_mm=750.0, pixel_spacing_mm=(0.3, 0.3), width=512, height=512
    )
    gb = ViewGeometry.from_angles(
        -40.0, 20.0, sid_mm=1000.0, sod_mm=750.0, pixel_spacing_mm=(0.3, 0.3), width=512, height=512
    )
    t = np.linspace(0.0, 1.0, 401)
    curve = np.stack([40.0 * t - 20.0, 10.0 * np.sin(3.0 * t), 8.0 * t**2], axis=1)
    # The truth runs from t = 0.05 to t = 0.9: the dense curve overshoots the start and
    # stops short of the end, as a path from snapped pixels can.
    true_start = curve[20]
    true_end = np.array([40.0 * 0.96 - 20.0, 10.0 * np.sin(2.88), 8.0 * 0.96**2])
    dense = curve[: int(0.9 * 400) + 1]
    out = fit_ends(
        dense,
        (ga, gb),
        (ga.project(true_start[None])[0], gb.project(true_start[None])[0]),
        (ga.project(true_end[None])[0], gb.project(true_end[None])[0]),
        n_out=50,
    )
    assert out.shape == (50, 3)
    assert np.linalg.norm(out[0] - true_start) < 0.05
    # The end lies beyond the dense curve: reached by linear extension (curvature error).
    assert np.linalg.norm(out[-1] - true_end) < 0.3
    steps = np.linalg.norm(np.diff(out, axis=0), axis=1)
    assert steps.std() / steps.mean() < 0.05
