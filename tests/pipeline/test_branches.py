"""Side branches: attaching to the main segment, the bifurcation angle and references."""

from __future__ import annotations

import numpy as np
import pytest

from angio_deploy import kernels
from angio_deploy.pipeline.branches import (
    ATTACH_BLEND_MM,
    BifurcationDirections,
    angle_confidence,
    attach,
    bifurcation_angle_deg,
    bifurcation_directions,
    bifurcation_report,
    bifurcation_warnings,
    direction_conditioning,
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


# -- how well the views determine the angle -------------------------------------------


def two_views():
    """Two views 90 degrees apart (LAO 45 / RAO 45), both aimed at the isocenter."""
    from angio_deploy.geometry import ViewGeometry

    a = ViewGeometry.from_angles(45, 0, 1000, 750, (0.3, 0.3), 512, 512)
    b = ViewGeometry.from_angles(-45, 0, 1000, 750, (0.3, 0.3), 512, 512)
    return a, b


def test_direction_side_on_in_both_views_is_well_conditioned() -> None:
    a, b = two_views()
    # The patient's head-foot axis is perpendicular to both rays (no cranial angulation).
    axial = np.array([0.0, 0.0, 1.0])
    c = direction_conditioning(np.zeros(3), axial, 10.0, (a.P, b.P))
    assert c.foreshortening == pytest.approx((1.0, 1.0), abs=1e-6)
    assert c.epipolar_angle_deg == pytest.approx(90.0, abs=0.1)
    # 1 px at each end of a ~44 px chord, in two perpendicular planes: ~1.8 degrees each.
    assert 0.5 < c.sigma_deg < 5.0


def test_direction_along_a_ray_is_foreshortened_and_in_the_epipolar_plane() -> None:
    a, b = two_views()
    along_b = b.direction
    c = direction_conditioning(np.zeros(3), along_b, 10.0, (a.P, b.P))
    assert c.foreshortening[1] == pytest.approx(0.0, abs=1e-6)
    assert c.foreshortening[0] == pytest.approx(1.0, abs=1e-6)
    # Every ray of view b lies in the epipolar plane of the point: the two back-projected
    # planes coincide.
    assert c.epipolar_angle_deg < 1.0


def test_direction_in_the_epipolar_plane_is_ill_conditioned() -> None:
    a, b = two_views()
    # Both sources and the isocenter lie in the axial plane: a direction in it, seen side on
    # by both views, still lies in the epipolar plane, where its 2D directions do not fix it.
    in_plane = (a.direction + b.direction) / np.linalg.norm(a.direction + b.direction)
    c = direction_conditioning(np.zeros(3), in_plane, 10.0, (a.P, b.P))
    assert min(c.foreshortening) > 0.6
    assert c.epipolar_angle_deg < 1.0
    assert c.sigma_deg > 30.0
    tilted = in_plane + np.array([0.0, 0.0, 1.0])
    c2 = direction_conditioning(np.zeros(3), tilted / np.linalg.norm(tilted), 10.0, (a.P, b.P))
    assert c2.epipolar_angle_deg > 30.0 and c2.sigma_deg < c.sigma_deg / 5


def test_sigma_falls_with_the_chord_length() -> None:
    a, b = two_views()
    d = np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0])
    s5 = direction_conditioning(np.zeros(3), d, 5.0, (a.P, b.P)).sigma_deg
    s10 = direction_conditioning(np.zeros(3), d, 10.0, (a.P, b.P)).sigma_deg
    assert s10 == pytest.approx(s5 / 2, rel=0.02)


def test_angle_confidence_flags_an_end_on_view_and_a_distant_branch_start() -> None:
    a, b = two_views()
    axial = np.array([0.0, 0.0, 1.0])
    # The side branch leaves at 45 degrees, out of the axial (epipolar) plane.
    side = np.array([1.0, 0.0, 1.0]) / np.sqrt(2.0)
    side_on = BifurcationDirections(np.zeros(3), axial, side, 10.0, 10.0)
    ok = angle_confidence(
        side_on, (a.P, b.P), main_radius_mm=1.5, side_radius_mm=0.8, attach_distance_mm=0.5
    )
    assert not ok["low_confidence"] and ok["reasons"] == []
    assert ok["angle_sigma_deg"] < 10.0
    assert ok["angle_sigma_deg"] == pytest.approx(
        np.hypot(ok["main"]["sigma_deg"], ok["side"]["sigma_deg"])
    )
    end_on = BifurcationDirections(np.zeros(3), b.direction, axial, 10.0, 10.0)
    bad = angle_confidence(
        end_on, (a.P, b.P), main_radius_mm=1.5, side_radius_mm=0.8, attach_distance_mm=0.5
    )
    assert bad["low_confidence"]
    assert len(bad["reasons"]) == 1 and "view b sees the main end-on" in bad["reasons"][0]
    far = angle_confidence(
        side_on, (a.P, b.P), main_radius_mm=1.5, side_radius_mm=0.8, attach_distance_mm=4.0
    )
    assert far["low_confidence"] and "outside its 1.5 mm radius" in far["reasons"][0]


def test_bifurcation_directions_chords_and_their_lengths() -> None:
    main = line([0, 0, 0], [0, 0, 40])
    side = line([0, 0, 20], [30, 0, 20])
    d = bifurcation_directions(main, side, distance_mm=10.0)
    np.testing.assert_allclose(d.junction_mm, [0, 0, 20], atol=1e-9)
    np.testing.assert_allclose(d.main, [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(d.side, [1, 0, 0], atol=1e-9)
    assert (d.main_chord_mm, d.side_chord_mm) == pytest.approx((10.0, 10.0))
    assert d.angle_deg == pytest.approx(90.0)
    # 4 mm of main left distal of the junction: the chord stops at the main's end.
    short = bifurcation_directions(main, line([0, 0, 36], [30, 0, 36]), distance_mm=10.0)
    assert short.main_chord_mm == pytest.approx(4.0)


def test_bifurcation_report_carries_the_angle_confidence() -> None:
    a, b = two_views()
    centres = line([0, 0, -20], [0, 0, 20])
    main = segment(centres, 1.5)
    main.geometries = (a, b)
    # The side branch leaves along view b's ray: view b sees it end-on.
    br = segment(line([0, 0, 0], 25 * b.direction), 0.8, "branch_1")
    moved, att = attach(main, br)
    qm = branch_qca(main.centreline_mm, main.radius_mm)
    qb = branch_qca(moved.centreline_mm, moved.radius_mm, branch="branch_1")
    rep = bifurcation_report(main, moved, qm, qb, att)
    assert rep["angle_deg"] == pytest.approx(90.0, abs=0.5)
    assert rep["angle_low_confidence"] is True
    assert "side branch end-on" in rep["angle_low_confidence_reasons"][0]
    assert set(rep["angle_conditioning"]) == {"main", "side"}
    assert rep["angle_conditioning"]["side"]["foreshortening"][1] < 0.05
    # The report's warning names the branch, the angle and why (once: not also logged).
    (warning,) = bifurcation_warnings([rep, {**rep, "angle_low_confidence": False}])
    assert warning.startswith("branch_1: the bifurcation angle (90 deg) is low confidence: ")
    assert "side branch end-on" in warning
