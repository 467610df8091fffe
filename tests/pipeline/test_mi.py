"""Mesh initialisation end to end on a synthetic case, with the truth mask as segmenter."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from angio_deploy.errors import InputError
from angio_deploy.geometry import ViewGeometry
from angio_deploy.io.case import load_case
from angio_deploy.io.mesh_io import read_ply
from angio_deploy.pipeline.mi import mesh_initialisation, reprojection_dice, summary
from angio_deploy.pipeline.segmenters import OracleSegmenter
from angio_deploy.synth.engine import generate_case, write_case


@pytest.fixture(scope="module")
def synth_case(tmp_path_factory):
    d = write_case(generate_case(2_000_003), tmp_path_factory.mktemp("mi") / "case")
    masks = {k: np.asarray(Image.open(d / "truth" / f"mask_{k}.png")) > 0 for k in "ab"}
    return d, masks


def _with_true_geometry(case, meta):
    views = []
    for v, vm in zip(case.views, meta["views"], strict=True):
        P = np.array(vm["true"]["projection_matrix"])
        g = ViewGeometry.from_matrix(P, v.geometry.width, v.geometry.height)
        views.append(dataclasses.replace(v, geometry=g))
    return dataclasses.replace(case, views=tuple(views))


def test_oracle_segmentation_with_true_geometry_recovers_the_truth(synth_case) -> None:
    d, masks = synth_case
    meta = json.loads((d / "truth" / "meta.json").read_text())
    case = _with_true_geometry(load_case(d), meta)
    res = mesh_initialisation(case, OracleSegmenter(masks), refine=False)
    truth, _, _ = read_ply(d / "truth" / "mesh.ply")
    assert res.vertices.shape == (6000, 3) and res.faces.shape == (11880, 3)
    mae = float(np.linalg.norm(res.vertices - truth, axis=1).mean())
    assert mae < 1.0, mae
    true_r = np.linalg.norm(
        truth.reshape(100, 60, 3) - truth.reshape(100, 60, 3).mean(axis=1, keepdims=True), axis=2
    ).mean(axis=1)
    assert float(np.abs(res.radius_mm - true_r).mean()) < 0.15
    assert min(reprojection_dice(res)) > 0.9
    assert set(res.timings_s) >= {"crop", "segment", "centreline_2d", "triangulate", "mesh"}


def test_header_geometry_with_refinement_runs_and_reports(synth_case) -> None:
    d, masks = synth_case
    res = mesh_initialisation(load_case(d), OracleSegmenter(masks), refine=True)
    s = summary(res)
    json.dumps(s)
    assert s["refinement"]["residual_px"]["after"] <= s["refinement"]["residual_px"]["before"]


def test_empty_segmentation_names_the_view(synth_case) -> None:
    d, masks = synth_case
    empty = {"a": masks["a"], "b": np.zeros_like(masks["b"])}
    with pytest.raises(InputError, match=r"view b \(view_b\.dcm\).*no vessel found"):
        mesh_initialisation(load_case(d), OracleSegmenter(empty), refine=False)
