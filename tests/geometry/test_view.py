"""GEOMETRY.md: every sanity check listed there, both geometry forms, and the round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from angio_deploy import kernels
from angio_deploy.errors import InputError
from angio_deploy.geometry import (
    MIN_SEPARATION_DEG,
    ViewGeometry,
    carm_rotation,
    check_view_pair,
    separation_angle_deg,
)


def view(a: float, b: float, sid: float = 1000.0, sod: float = 750.0, size: int = 512):
    return ViewGeometry.from_angles(a, b, sid, sod, (0.3, 0.3), size, size)


def test_rotation_axes_match_the_contract() -> None:
    a, b = math.radians(35.0), math.radians(-20.0)
    M = carm_rotation(35.0, -20.0)
    d = M @ np.array([0.0, -1.0, 0.0])
    expected = [math.sin(a) * math.cos(b), -math.cos(a) * math.cos(b), math.sin(b)]
    np.testing.assert_allclose(d, expected, atol=1e-15)
    assert np.linalg.det(np.stack([M @ [1, 0, 0], M @ [0, 0, -1], d])) == pytest.approx(-1.0)


def test_ap_view_left_projects_right_and_head_projects_up() -> None:
    g = view(0.0, 0.0)
    uv = g.project(np.array([[20.0, 0.0, 0.0], [0.0, 0.0, 20.0]]))
    assert uv[0, 0] > (g.width - 1) / 2
    assert uv[1, 1] < (g.height - 1) / 2


@pytest.mark.parametrize(("alpha", "right_half"), [(45.0, True), (-45.0, False)])
def test_posterior_point_side_in_lao_and_rao(alpha: float, right_half: bool) -> None:
    g = view(alpha, 0.0)
    u = g.project(np.array([[0.0, 30.0, 0.0]]))[0, 0]
    assert bool(u > (g.width - 1) / 2) is right_half


def test_cranial_moves_detector_toward_head() -> None:
    g = view(0.0, 30.0)
    assert g.direction[2] > 0
    # The detector sits on the +d side of the isocenter, toward the head.
    assert (g.source_mm + g.sid_mm * g.direction)[2] > 0


@given(
    a=st.floats(-120, 120),
    b=st.floats(-45, 45),
    sid=st.floats(850, 1250),
    sod=st.floats(600, 840),
)
@settings(max_examples=50, deadline=None)
def test_isocenter_projects_to_centre_with_magnification_sid_over_sod(a, b, sid, sod) -> None:
    g = ViewGeometry.from_angles(a, b, sid, sod, (0.2, 0.25), 640, 480)
    uv = g.project(np.zeros((1, 3)))[0]
    np.testing.assert_allclose(uv, [319.5, 239.5], atol=1e-9)
    assert g.magnification_at(np.zeros((1, 3)))[0] == pytest.approx(sid / sod, rel=1e-12)
    np.testing.assert_allclose(g.source_mm, -sod * g.direction, atol=1e-9)
    fu, fv = g.focal_px
    assert fu == pytest.approx(sid / 0.25, rel=1e-12)
    assert fv == pytest.approx(sid / 0.2, rel=1e-12)


def test_pixel_size_at_isocenter_is_spacing_over_magnification() -> None:
    g = view(30.0, 10.0)
    assert g.pixel_size_at_mm(np.zeros((1, 3)))[0] == pytest.approx(0.3 * 750 / 1000, rel=1e-12)


@given(
    a=st.floats(-120, 120),
    b=st.floats(-45, 45),
    scale=st.floats(1e-3, 1e3) | st.floats(-1e3, -1e-3),
)
@settings(max_examples=40, deadline=None)
def test_matrix_form_gives_identical_projections(a, b, scale) -> None:
    g = view(a, b)
    m = ViewGeometry.from_matrix(g.P * scale, g.width, g.height)
    rng = np.random.default_rng(0)
    X = rng.uniform(-60, 60, size=(50, 3))
    np.testing.assert_allclose(m.project(X), g.project(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(m.source_mm, g.source_mm, atol=1e-8)
    np.testing.assert_allclose(m.direction, g.direction, atol=1e-12)
    assert separation_angle_deg(m, g) == pytest.approx(0.0, abs=1e-5)


@given(
    a1=st.floats(-60, 60),
    b1=st.floats(-40, 40),
    da=st.floats(30, 90),
    b2=st.floats(-40, 40),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_round_trip_project_then_triangulate_recovers_points(a1, b1, da, b2, seed) -> None:
    g1, g2 = view(a1, b1), view(a1 + da, b2)
    X = np.random.default_rng(seed).uniform(-50, 50, size=(64, 3))
    for name in kernels.available_backends():
        k = kernels.get_backend(name)
        Xr, err = k.triangulate(g1.P, g2.P, g1.project(X), g2.project(X))
        np.testing.assert_allclose(Xr, X, rtol=0, atol=1e-6)
        assert np.all(err < 1e-6)


def test_backprojected_ray_passes_through_the_point() -> None:
    g = view(-30.0, 25.0)
    X = np.array([[5.0, -12.0, 33.0], [-40.0, 10.0, 0.0]])
    origins, dirs = g.backproject(g.project(X))
    np.testing.assert_allclose(origins[0], g.source_mm, atol=1e-9)
    t = np.einsum("ij,ij->i", X - origins, dirs)
    np.testing.assert_allclose(origins + t[:, None] * dirs, X, atol=1e-8)
    assert np.all(t > 0)


def test_separation_angle_and_pair_checks() -> None:
    assert separation_angle_deg(view(0, 0), view(90, 0)) == pytest.approx(90.0)
    assert separation_angle_deg(view(30, 0), view(30, 40)) == pytest.approx(40.0)
    angle, warnings = check_view_pair(view(0, 0), view(50, 0))
    assert angle == pytest.approx(50.0) and warnings == []
    angle, warnings = check_view_pair(view(0, 0), view(20, 0))
    assert angle == pytest.approx(20.0) and "20.0 degrees" in warnings[0]
    with pytest.raises(InputError, match=r"views.*10\.0 degrees apart"):
        check_view_pair(view(0, 0), view(MIN_SEPARATION_DEG - 5, 0))


@pytest.mark.parametrize(("primary", "refused"), [(180, True), (170, True), (160, False)])
def test_near_opposite_views_are_near_identical_views(primary, refused) -> None:
    # GEOMETRY.md: the separation is min(theta, 180 - theta).
    a, b = view(0, 0), view(primary, 0)
    assert separation_angle_deg(a, b) == pytest.approx(180 - primary, abs=1e-6)
    if refused:
        with pytest.raises(InputError, match=r"nearly opposite: a separation of 1?0\.0 degrees"):
            check_view_pair(a, b)
    else:
        angle, warnings = check_view_pair(a, b)
        assert angle == pytest.approx(20.0) and "nearly opposite" in warnings[0]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sid_mm": -5.0}, "sid_mm"),
        ({"sod_mm": 0.0}, "sod_mm"),
        ({"sod_mm": 1200.0}, "sod_mm"),
        ({"pixel_spacing_mm": (0.0, 0.3)}, "pixel_spacing_mm"),
    ],
)
def test_bad_distances_name_the_field(kwargs, field) -> None:
    args = {"sid_mm": 1000.0, "sod_mm": 750.0, "pixel_spacing_mm": (0.3, 0.3)}
    args.update(kwargs)
    with pytest.raises(InputError, match=field):
        ViewGeometry.from_angles(0, 0, width=512, height=512, **args)


def test_singular_matrix_is_refused() -> None:
    with pytest.raises(InputError, match="projection_matrix"):
        ViewGeometry.from_matrix(np.zeros((3, 4)), 512, 512)
    with pytest.raises(InputError, match="projection_matrix"):
        ViewGeometry.from_matrix(np.ones((2, 4)), 512, 512)


def test_moved_applies_a_rigid_correction_and_keeps_the_header() -> None:
    from scipy.spatial.transform import Rotation

    g = view(30.0, 10.0)
    R = Rotation.from_rotvec([0.01, -0.02, 0.015]).as_matrix()
    t = np.array([1.0, -2.0, 0.5])
    m = g.moved(R, t)
    X = np.random.default_rng(1).uniform(-30, 30, (10, 3))
    np.testing.assert_allclose(m.project(X), g.project(X @ R.T + t), atol=1e-9)
    assert m.primary_angle_deg == g.primary_angle_deg
    assert m.provenance["correction"] == "refined"


def test_fundamental_matrix_and_epipolar_distances() -> None:
    from angio_deploy.geometry import epipolar_distances, fundamental_matrix

    a, b = view(30, 20), view(-30, 25)
    X = np.random.default_rng(2).uniform(-40, 40, (20, 3))
    F = fundamental_matrix(a.P, b.P)
    assert epipolar_distances(F, a.project(X), b.project(X)).max() < 1e-8
    shifted = b.project(X) + np.array([0.0, 3.0])
    assert epipolar_distances(F, a.project(X), shifted).min() > 0.1
