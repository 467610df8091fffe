"""Side branches: attaching to the main segment, the bifurcation angle and references."""

from __future__ import annotations

import numpy as np
import pytest

from angio_deploy import kernels
from angio_deploy.pipeline.branches import (
    ATTACH_BLEND_MM,
    attach,
    bifurcation_angle_deg,
    bifurcation_report,
    nearest_on_polyline,
)
from angio_deploy.pipeline.qca import branch_qca
from angio_deploy.pipeline.result import MIResult
from angio_deploy.topology import N_AROUND, N_RINGS


def line(p0, p1, n: int = N_RINGS) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return np.asarray(p0, float) + t * (np.asarray(p1, float) - np.asarray(p0, float))


def segment(centres: np.ndarray, radius, name: str = "main") -> MIResult:
    r = np.broadcast_to(np.asarray(radius, dtype=float), (len(centres),)).copy()
    v, f = kernels.tube_mesh(centres, r, n_around=N_AROUND)
    return MIResult(
        centres, r, v, f, views=(None, None), geometries=(), geometry_refinement=None, branch=name
    )  # type: ignore[arg-type]


def test_nearest_on_polyline() -> None:
    foot, arc, d = nearest_on_polyline(line([0, 0, 0], [0, 0, 10], 11), np.array([3.0, 0, 4.5]))
    assert np.allclose(foot, [0, 0, 4.5]) and arc == pytest.approx(4.5) and d == pytest.approx(3)


@pytest.mark.parametrize("angle", [30.0, 60.0, 90.0, 135.0])
def test_bifurcation_angle_of_straight_vessels(angle: float) -> None:
    main = line([0, 0, 0], [0, 0, 40])
    a = np.radians(angle)
    side = line([0, 0, 20], [20 * np.sin(a), 0, 20 + 20 * np.cos(a)])
    assert bifurcation_angle_deg(main, side) == pytest.approx(angle, abs=1e-6)


def test_bifurcation_at_the_main_end_uses_the_proximal_direction() -> None:
    main = line([0, 0, 0], [0, 0, 20])
    side = line([0, 0, 20], [10, 0, 30])
    assert bifurcation_angle_deg(main, side) == pytest.approx(45.0, abs=1e-6)


def test_attach_translates_the_start_onto_the_main_centreline_and_caps_inner_rings() -> None:
    main = segment(line([0, 0, 0], [0, 0, 40]), 2.0)
    # The branch starts 1 mm off the main centreline (inside the lumen), and its first
    # rings measure the junction (3 mm radius), not the branch (1 mm).
    c = line([1.0, 0, 20], [21.0, 0, 30])
    r = np.where(np.arange(N_RINGS) < 10, 3.0, 1.0)
    br = segment(c, r, "branch_1")
    moved, att = attach(main, br)
    assert np.allclose(moved.centreline_mm[0], [0, 0, 20 + 0.0], atol=0.05)
    assert np.linalg.norm(att.translation_mm) == pytest.approx(
        np.linalg.norm(c[0] - moved.centreline_mm[0])
    )
    assert att.junction_arc_mm == pytest.approx(20.0, abs=0.05)
    assert att.inner_rings > 0
    assert np.all(moved.radius_mm[: att.inner_rings] == moved.radius_mm[att.inner_rings])
    rings = moved.vertices.reshape(-1, N_AROUND, 3)
    rr = np.linalg.norm(rings - rings.mean(axis=1, keepdims=True), axis=2).mean(axis=1)
    assert np.allclose(rr[: att.inner_rings], rr[att.inner_rings], rtol=1e-6)
    # The shift fades out along the branch: past ATTACH_BLEND_MM the triangulated branch
    # stays where it was; before, each ring moves by a share of the shift.
    arc = np.linalg.norm(np.diff(c, axis=0), axis=1).cumsum()
    far = int(np.searchsorted(arc, ATTACH_BLEND_MM)) + 2
    assert np.allclose(moved.vertices[far * N_AROUND :], br.vertices[far * N_AROUND :])
    k = att.inner_rings + 5
    step = moved.vertices[k * N_AROUND] - br.vertices[k * N_AROUND]
    share = float(step @ att.translation_mm) / float(att.translation_mm @ att.translation_mm)
    assert 0.0 < share < 1.0
    assert np.allclose(step, share * att.translation_mm)
    assert not any("translated" in w for w in moved.warnings)  # 1 mm: no warning


def test_attach_warns_when_the_start_is_far_from_the_main_segment() -> None:
    main = segment(line([0, 0, 0], [0, 0, 40]), 2.0)
    br = segment(line([8.0, 0, 20], [28.0, 0, 30]), 1.0, "branch_1")
    moved, att = attach(main, br)
    assert np.linalg.norm(att.translation_mm) == pytest.approx(8.0, abs=0.01)
    assert any("branch_1" in w and "8.0 mm" in w for w in moved.warnings)


def test_bifurcation_report_reference_diameters() -> None:
    main = segment(line([0, 0, 0], [0, 0, 40]), np.linspace(2.0, 1.5, N_RINGS))
    br = segment(line([0, 0, 20], [20, 0, 30]), 0.8, "branch_1")
    moved, att = attach(main, br)
    qm = branch_qca(main.centreline_mm, main.radius_mm)
    qb = branch_qca(moved.centreline_mm, moved.radius_mm, branch="branch_1")
    rep = bifurcation_report(main, moved, qm, qb, att)
    ref = rep["reference_diameter_mm"]
    assert ref["proximal_main"] > ref["distal_main"] > ref["side"]
    assert ref["side"] == pytest.approx(1.6, abs=1e-6)
    assert rep["angle_deg"] == pytest.approx(np.degrees(np.arctan2(20, 10)), abs=0.01)
    assert rep["attachment"]["rings_inside_main"] == att.inner_rings
