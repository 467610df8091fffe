"""The native core against its numpy twins, and properties both backends must hold.

Twin tests draw inputs with hypothesis and require the two backends to agree in
float64 to 1e-9 relative (in practice they agree bit for bit: the C++ repeats the twins'
operation order). Property tests check each backend against geometry: round trips,
exact triangulation, watertight tubes, known areas and volumes. World frame: LPS mm with
the isocenter at the origin; pixels: u = column, v = row (GEOMETRY.md).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import manifold3d
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from angio_deploy.geometry import ViewGeometry, separation_angle_deg
from angio_deploy.kernels import Kernels

TWIN = settings(max_examples=50, deadline=None)
PROPERTY = settings(max_examples=25, deadline=None)


# -- helpers ------------------------------------------------------------------------------
def agree(native_out: np.ndarray, numpy_out: np.ndarray, scale: float = 1.0) -> None:
    """Same shape and dtype, values equal to 1e-9 relative (NaN where the twin has NaN)."""
    assert native_out.shape == numpy_out.shape
    assert native_out.dtype == numpy_out.dtype
    np.testing.assert_allclose(native_out, numpy_out, rtol=1e-9, atol=1e-12 * scale, equal_nan=True)


def make_view(
    primary: float, secondary: float, size: int = 512, spacing: float = 0.3
) -> ViewGeometry:
    """A view with typical cath-lab distances: SID 1000 mm, SOD 750 mm."""
    return ViewGeometry.from_angles(
        primary, secondary, 1000.0, 750.0, (spacing, spacing), size, size
    )


@st.composite
def views(draw: st.DrawFn) -> ViewGeometry:
    """Any plausible C-arm view: angles (deg), SID/SOD (mm), spacing (mm/px), size (px)."""
    sid = draw(st.floats(900.0, 1300.0))
    return ViewGeometry.from_angles(
        draw(st.floats(-120.0, 120.0)),
        draw(st.floats(-45.0, 45.0)),
        sid,
        draw(st.floats(0.55, 0.85)) * sid,
        (draw(st.floats(0.1, 0.5)), draw(st.floats(0.1, 0.5))),
        draw(st.integers(32, 1024)),
        draw(st.integers(32, 1024)),
    )


@st.composite
def view_pairs(draw: st.DrawFn, min_deg: float = 30.0) -> tuple[ViewGeometry, ViewGeometry]:
    """Two views at least ``min_deg`` degrees apart (sharing SID/SOD like one C-arm)."""
    a = draw(st.floats(-60.0, 60.0))
    b = draw(st.floats(-30.0, 30.0))
    sep = draw(st.floats(min_deg, 110.0))
    sign = draw(st.sampled_from([-1.0, 1.0]))
    v1 = make_view(a, b)
    v2 = make_view(a + sign * sep, draw(st.floats(-30.0, 30.0)))
    return v1, v2


def points(n_min: int, n_max: int, scale: float = 80.0) -> st.SearchStrategy[np.ndarray]:
    """World points (N, 3) mm within +-scale of the isocenter."""
    return hnp.arrays(
        np.float64,
        st.tuples(st.integers(n_min, n_max), st.just(3)),
        elements=st.floats(-scale, scale, allow_nan=False, allow_infinity=False),
    )


def smooth_curve(t: np.ndarray, coeffs: np.ndarray | None = None) -> np.ndarray:
    """A smooth coronary-like 3D curve (N, 3) mm for parameters t in [0, 1], ~40 mm long."""
    c = np.zeros((3, 3)) if coeffs is None else coeffs
    x = 36.0 * t - 18.0 + c[0, 0] * t * t
    y = 8.0 * np.sin(2.5 * t + c[0, 1]) - 4.0 + c[1, 0] * t * t
    z = 6.0 * np.cos(3.0 * t + c[1, 1]) + 5.0 * t * t + c[2, 0] * t
    return np.stack([x, y, z], axis=1)


def arc_length_resample(curve: np.ndarray, n: int) -> np.ndarray:
    """n points evenly spaced in arc length along a dense polyline (mm)."""
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    q = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(q, s, curve[:, k]) for k in range(3)], axis=1)


def random_walk(rng: np.random.Generator, n: int, step: float = 1.0) -> np.ndarray:
    """A smooth-ish random centreline (n, 3) mm."""
    d = np.cumsum(rng.normal(0.0, 0.3, (n, 3)), axis=0) + np.array([1.0, 0.0, 0.0])
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.cumsum(step * d, axis=0) - 20.0


def manifold_of(V: np.ndarray, F: np.ndarray) -> manifold3d.Manifold:
    mesh = manifold3d.Mesh(vert_properties=V.astype(np.float32), tri_verts=F.astype(np.uint32))
    return manifold3d.Manifold(mesh)


# -- projection -------------------------------------------------------------------------
@TWIN
@given(vs=st.lists(views(), min_size=1, max_size=3), X=points(0, 200, scale=300.0))
def test_project_twins_agree(native: Kernels, ref: Kernels, vs, X) -> None:
    Ps = np.stack([v.P for v in vs])
    agree(native.project(Ps, X), ref.project(Ps, X), scale=1e4)
    agree(native.project(vs[0].P, X), ref.project(vs[0].P, X), scale=1e4)


def test_points_behind_the_source_are_nan(native: Kernels, ref: Kernels) -> None:
    v = make_view(30.0, 20.0)
    S = v.source_mm
    X = np.array([S * 1.5, S * 3.0, S + 1e-3 * v.direction, [0.0, 0.0, 0.0], S - v.direction])
    out = native.project(v.P, X)
    agree(out, ref.project(v.P, X), scale=1e4)
    assert np.isnan(out[[0, 1, 4]]).all()
    assert np.isfinite(out[[2, 3]]).all()
    np.testing.assert_allclose(out[3], [255.5, 255.5], atol=1e-9)


@TWIN
@given(v=views(), seed=st.integers(0, 2**32 - 1), n=st.integers(0, 100))
def test_backproject_twins_agree(native: Kernels, ref: Kernels, v, seed, n) -> None:
    uv = np.random.default_rng(seed).uniform(-200.0, 1200.0, (n, 2))
    for a, b in zip(native.backproject(v.P, uv), ref.backproject(v.P, uv), strict=True):
        agree(a, b, scale=1e3)


@PROPERTY
@given(v=views(), seed=st.integers(0, 2**32 - 1))
def test_backprojected_rays_project_back_to_their_pixels(backend: Kernels, v, seed) -> None:
    rng = np.random.default_rng(seed)
    uv = rng.uniform(0.0, [v.width - 1, v.height - 1], (50, 2))
    origins, dirs = backend.backproject(v.P, uv)
    np.testing.assert_allclose(origins, np.broadcast_to(v.source_mm, origins.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0, rtol=1e-12)
    # Every point of the ray in front of the source lands on the same pixel.
    t = rng.uniform(50.0, 2000.0, (50, 1))
    np.testing.assert_allclose(backend.project(v.P, origins + t * dirs), uv, atol=1e-6)


# -- triangulation ----------------------------------------------------------------------
@TWIN
@given(
    pair=view_pairs(min_deg=10.0),
    X=points(0, 100),
    seed=st.integers(0, 2**32 - 1),
    iterations=st.integers(0, 5),
)
def test_triangulate_twins_agree(native: Kernels, ref: Kernels, pair, X, seed, iterations) -> None:
    v1, v2 = pair
    rng = np.random.default_rng(seed)
    uv1 = v1.project(X) + rng.normal(0.0, 2.0, (X.shape[0], 2))
    uv2 = v2.project(X) + rng.normal(0.0, 2.0, (X.shape[0], 2))
    a = native.triangulate(v1.P, v2.P, uv1, uv2, iterations)
    b = ref.triangulate(v1.P, v2.P, uv1, uv2, iterations)
    agree(a[0], b[0], scale=100.0)
    agree(a[1], b[1], scale=1.0)


@PROPERTY
@given(pair=view_pairs(), X=points(1, 100, scale=50.0))
def test_triangulating_exact_projections_recovers_the_points(backend: Kernels, pair, X) -> None:
    v1, v2 = pair
    Y, err = backend.triangulate(v1.P, v2.P, backend.project(v1.P, X), backend.project(v2.P, X))
    np.testing.assert_allclose(Y, X, atol=1e-6)
    assert np.all(err < 1e-6)


# -- correspondence ---------------------------------------------------------------------
@TWIN
@given(
    pair=view_pairs(min_deg=20.0),
    m1=st.integers(2, 60),
    m2=st.integers(2, 60),
    n_out=st.integers(2, 120),
    iterations=st.integers(0, 4),
    noise=st.floats(0.0, 1.5),
    seed=st.integers(0, 2**32 - 1),
)
def test_correspondence_twins_agree(
    native: Kernels, ref: Kernels, pair, m1, m2, n_out, iterations, noise, seed
) -> None:
    v1, v2 = pair
    rng = np.random.default_rng(seed)
    coeffs = rng.normal(0.0, 5.0, (3, 3))
    line1 = v1.project(smooth_curve(np.linspace(0.0, 1.0, m1), coeffs))
    line2 = v2.project(smooth_curve(np.linspace(0.0, 1.0, m2), coeffs))
    line1 = line1 + rng.normal(0.0, noise, line1.shape)
    line2 = line2 + rng.normal(0.0, noise, line2.shape)
    a = native.correspond_centrelines(v1.P, v2.P, line1, line2, n_out, iterations)
    b = ref.correspond_centrelines(v1.P, v2.P, line1, line2, n_out, iterations)
    assert a[0].shape == (n_out, 3)
    assert a[1].shape == (m1, 2)
    agree(a[0], b[0], scale=100.0)
    agree(a[1], b[1], scale=1e3)


def test_correspondence_full_size_twins_agree(native: Kernels, ref: Kernels) -> None:
    """300 x 300 points with pixel noise: every DP tie and partner choice must match."""
    v1, v2 = make_view(30.0, 20.0), make_view(-40.0, 25.0)
    rng = np.random.default_rng(7)
    t = np.linspace(0.0, 1.0, 300)
    line1 = v1.project(smooth_curve(t)) + rng.normal(0.0, 0.7, (300, 2))
    line2 = v2.project(smooth_curve(t**1.2)) + rng.normal(0.0, 0.7, (300, 2))
    a = native.correspond_centrelines(v1.P, v2.P, line1, line2)
    b = ref.correspond_centrelines(v1.P, v2.P, line1, line2)
    np.testing.assert_array_equal(a[1], b[1])
    agree(a[0], b[0], scale=100.0)


@pytest.mark.parametrize("repeat", [2, 3])
def test_correspondence_ties_break_alike(native: Kernels, ref: Kernels, repeat: int) -> None:
    """Repeated points make exactly equal DP costs: the tie order must match the twin."""
    v1, v2 = make_view(30.0, 20.0), make_view(-40.0, 25.0)
    line1 = np.repeat(np.round(v1.project(smooth_curve(np.linspace(0.0, 1.0, 40)))), repeat, 0)
    line2 = np.repeat(np.round(v2.project(smooth_curve(np.linspace(0.0, 1.0, 50)))), repeat, 0)
    a = native.correspond_centrelines(v1.P, v2.P, line1, line2)
    b = ref.correspond_centrelines(v1.P, v2.P, line1, line2)
    np.testing.assert_array_equal(a[1], b[1])
    agree(a[0], b[0], scale=100.0)


def test_correspondence_of_two_point_lines(native: Kernels, ref: Kernels) -> None:
    v1, v2 = make_view(30.0, 20.0), make_view(-40.0, 25.0)
    ends = np.array([[-10.0, 2.0, 3.0], [12.0, -4.0, 5.0]])
    line1, line2 = v1.project(ends), v2.project(ends)
    a = native.correspond_centrelines(v1.P, v2.P, line1, line2, n_out=5)
    b = ref.correspond_centrelines(v1.P, v2.P, line1, line2, n_out=5)
    agree(a[0], b[0], scale=100.0)
    agree(a[1], b[1], scale=1e3)
    np.testing.assert_allclose(a[0], np.linspace(ends[0], ends[1], 5), atol=1e-6)


@pytest.mark.parametrize(
    ("first", "second"),
    [((30.0, 20.0), (-40.0, 25.0)), ((0.0, 30.0), (70.0, 0.0)), ((45.0, 0.0), (-45.0, 0.0))],
)
def test_correspondence_recovers_a_known_curve(backend: Kernels, first, second) -> None:
    v1, v2 = make_view(*first), make_view(*second)
    assert 60.0 <= separation_angle_deg(v1, v2) <= 90.0
    dense = smooth_curve(np.linspace(0.0, 1.0, 200_001))
    truth = arc_length_resample(dense, 100)
    length = float(np.sum(np.linalg.norm(np.diff(dense, axis=0), axis=1)))
    assert 35.0 < length < 45.0
    t = np.linspace(0.0, 1.0, 300)
    line1, line2 = backend.project(v1.P, smooth_curve(t)), backend.project(v2.P, smooth_curve(t))
    X, partners = backend.correspond_centrelines(v1.P, v2.P, line1, line2, n_out=100)
    assert X.shape == (100, 3)
    assert np.linalg.norm(X - truth, axis=1).max() < 0.05
    # Partners of exact projections lie on the view-2 curve (same parameter, sub-pixel).
    np.testing.assert_allclose(partners, line2, atol=0.01)


# -- tube meshing -----------------------------------------------------------------------
@st.composite
def centrelines(draw: st.DrawFn) -> np.ndarray:
    """Random-walk centrelines, some with repeated (zero-length) segments."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = random_walk(rng, draw(st.integers(2, 60)), step=draw(st.floats(0.05, 3.0)))
    for _ in range(draw(st.integers(0, 3))):
        k = draw(st.integers(0, c.shape[0] - 1))
        c = np.insert(c, k, c[k], axis=0)
    return c


@TWIN
@given(
    c=centrelines(),
    ellipse=st.booleans(),
    n_around=st.integers(3, 64),
    caps=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_tube_mesh_twins_agree(native: Kernels, ref: Kernels, c, ellipse, n_around, caps, seed):
    rng = np.random.default_rng(seed)
    n = c.shape[0]
    if ellipse:
        axes = np.stack(
            [rng.uniform(0.5, 3.0, n), rng.uniform(0.5, 3.0, n), rng.uniform(-4.0, 4.0, n)], 1
        )
        kw = {"ellipses": axes}
    else:
        kw = {"radii": rng.uniform(0.5, 3.0, n)}
    if rng.random() < 0.5:
        kw["reference"] = rng.normal(size=3)
    Va, Fa = native.tube_mesh(c, n_around=n_around, caps=caps, **kw)
    Vb, Fb = ref.tube_mesh(c, n_around=n_around, caps=caps, **kw)
    agree(Va, Vb, scale=100.0)
    np.testing.assert_array_equal(Fa, Fb)
    assert Fa.dtype == np.int64
    assert np.isfinite(Va).all()


TUBE_EDGE_CASES = {
    "straight": np.stack([np.linspace(-20.0, 20.0, 50), np.zeros(50), np.zeros(50)], 1),
    "two points": np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 12.0]]),
    "along z": np.array([[0.0, 0.0, -5.0], [0.0, 0.0, 0.0], [0.0, 0.0, 5.0]]),
    "repeat at start": np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2, 1, 0]]),
    "repeat in middle": np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1, 0, 0], [2.0, 1.0, 0.0]]),
    "repeat at end": np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 1.0, 0.0], [2, 1, 0]]),
    "two equal points": np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]),
    "there and back": np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
}


@pytest.mark.parametrize("name", list(TUBE_EDGE_CASES))
def test_tube_mesh_edge_cases_agree(native: Kernels, ref: Kernels, name: str) -> None:
    c = np.asarray(TUBE_EDGE_CASES[name], dtype=np.float64)
    r = np.linspace(1.0, 2.0, c.shape[0])
    Va, Fa = native.tube_mesh(c, r, n_around=16, caps=True)
    Vb, Fb = ref.tube_mesh(c, r, n_around=16, caps=True)
    agree(Va, Vb, scale=100.0)
    np.testing.assert_array_equal(Fa, Fb)
    assert np.isfinite(Va).all()
    # Every ring keeps its radius even where the centreline gives no direction.
    rings = Va.reshape(c.shape[0], 16, 3) - c[:, None, :]
    np.testing.assert_allclose(np.linalg.norm(rings, axis=2), r[:, None] * np.ones(16))


def test_tube_triangle_counts(backend: Kernels) -> None:
    c = np.stack([np.linspace(0.0, 40.0, 100), np.zeros(100), np.zeros(100)], 1)
    V, F = backend.tube_mesh(c, np.full(100, 1.5), n_around=60)
    assert V.shape == (6000, 3)
    assert F.shape == (11_880, 3)
    assert F.dtype == np.int64
    _, Fc = backend.tube_mesh(c, np.full(100, 1.5), n_around=60, caps=True)
    assert Fc.shape == (11_880 + 2 * 58, 3)
    np.testing.assert_array_equal(Fc[:11_880], F)


@pytest.mark.parametrize("ellipse", [False, True])
def test_capped_tube_is_a_watertight_manifold(backend: Kernels, ellipse: bool) -> None:
    t = np.linspace(0.0, 1.0, 100)
    c = smooth_curve(t)
    if ellipse:
        axes = np.stack([np.full(100, 2.0), np.full(100, 1.2), np.linspace(0.0, 1.0, 100)], 1)
        V, F = backend.tube_mesh(c, ellipses=axes, caps=True)
    else:
        V, F = backend.tube_mesh(c, np.linspace(2.0, 1.2, 100), caps=True)
    m = manifold_of(V, F)
    assert m.status() == manifold3d.Error.NoError
    assert m.genus() == 0
    assert m.num_tri() == F.shape[0]
    assert m.volume() > 0.0


def test_straight_capped_tube_volume(backend: Kernels) -> None:
    r, length = 1.7, 30.0
    c = np.stack([np.zeros(40), np.linspace(-15.0, 15.0, 40), np.zeros(40)], 1)
    V, F = backend.tube_mesh(c, np.full(40, r), n_around=60, caps=True)
    m = manifold_of(V, F)
    assert m.status() == manifold3d.Error.NoError
    assert m.volume() == pytest.approx(math.pi * r * r * length, rel=5e-3)


def test_elliptical_rings_have_their_semi_axes(backend: Kernels) -> None:
    # Along +z the first frame normal is +x and the binormal t x r is +y.
    n = 5
    c = np.stack([np.zeros(n), np.zeros(n), np.linspace(0.0, 8.0, n)], 1)
    a = np.array([2.0, 3.0, 2.5, 1.0, 4.0])
    b = np.array([1.0, 1.5, 2.5, 0.5, 1.0])
    theta = np.array([0.0, 0.4, 1.0, -0.7, math.pi / 2])
    V, _ = backend.tube_mesh(c, ellipses=np.stack([a, b, theta], 1), n_around=64)
    rings = V.reshape(n, 64, 3) - c[:, None, :]
    np.testing.assert_allclose(rings[:, :, 2], 0.0, atol=1e-12)
    radius = np.linalg.norm(rings, axis=2)
    assert np.all(radius.max(axis=1) <= a * (1 + 1e-12))
    assert np.all(radius.min(axis=1) >= b * (1 - 1e-12))
    # Where a vertex ray meets an axis (theta = 0, pi/2 with 64 vertices) the radius is exact.
    for i in (0, 2, 4):
        np.testing.assert_allclose([radius[i].max(), radius[i].min()], [a[i], b[i]], rtol=1e-12)
    # Vertex j lies on the ray at angle 2 pi j / 64 from the frame normal (+x), whatever
    # the ellipse's orientation: vertex-wise comparison measures radial differences.
    phi = 2 * np.pi * np.arange(64) / 64
    np.testing.assert_allclose(
        rings[:, :, :2] / radius[:, :, None],
        np.broadcast_to(np.stack([np.cos(phi), np.sin(phi)], 1), (n, 64, 2)),
        atol=1e-12,
    )
    # Points satisfy the ellipse equation in the rotated frame.
    ct, st_ = np.cos(theta)[:, None], np.sin(theta)[:, None]
    p = rings[:, :, 0] * ct + rings[:, :, 1] * st_
    q = -rings[:, :, 0] * st_ + rings[:, :, 1] * ct
    np.testing.assert_allclose((p / a[:, None]) ** 2 + (q / b[:, None]) ** 2, 1.0, rtol=1e-12)


def test_reference_fixes_the_first_frame_normal(backend: Kernels) -> None:
    c = np.stack([np.zeros(10), np.linspace(0.0, 9.0, 10), np.zeros(10)], 1)  # along +y
    V, _ = backend.tube_mesh(c, np.full(10, 2.0), n_around=8, reference=[0.3, 0.5, -1.0])
    r0 = (V[0] - c[0]) / 2.0
    expected = np.array([0.3, 0.0, -1.0]) / np.hypot(0.3, 1.0)
    np.testing.assert_allclose(r0, expected, atol=1e-12)
    # A reference along the tangent is unusable: the world-axis rule applies.
    V2, _ = backend.tube_mesh(c, np.full(10, 2.0), n_around=8, reference=[0.0, 1.0, 0.0])
    V3, _ = backend.tube_mesh(c, np.full(10, 2.0), n_around=8)
    np.testing.assert_array_equal(V2, V3)


def _frames_from_mesh(c: np.ndarray, V: np.ndarray, radius: float, n_around: int):
    """Frame normal r_i (vertex 0) and binormal s_i (vertex n/4) recovered from rings."""
    rings = V.reshape(c.shape[0], n_around, 3) - c[:, None, :]
    return rings[:, 0] / radius, rings[:, n_around // 4] / radius


def test_rotation_minimising_frames_stay_orthonormal(backend: Kernels) -> None:
    t = np.linspace(0.0, 4.0 * math.pi, 400)
    c = np.stack([10.0 * np.cos(t), 10.0 * np.sin(t), 3.0 * t], 1)
    V, _ = backend.tube_mesh(c, np.ones(400), n_around=8)
    r, s = _frames_from_mesh(c, V, 1.0, 8)
    tan = np.gradient(c, axis=0)
    tan /= np.linalg.norm(tan, axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.sum(r * s, axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sum(r * tan, axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sum(s * tan, axis=1), 0.0, atol=1e-12)
    # Rotation-minimising: consecutive normals turn only as much as the tangent does.
    turn_r = np.arccos(np.clip(np.sum(r[1:] * r[:-1], axis=1), -1.0, 1.0))
    turn_t = np.arccos(np.clip(np.sum(tan[1:] * tan[:-1], axis=1), -1.0, 1.0))
    assert np.all(turn_r <= turn_t + 1e-9)


def test_frames_on_a_planar_curve_do_not_twist(backend: Kernels) -> None:
    t = np.linspace(0.0, 3.0, 120)
    c = np.stack([20.0 * t, 6.0 * np.sin(2.0 * t), np.zeros_like(t)], 1)
    V, _ = backend.tube_mesh(c, np.full(120, 2.0), n_around=12)
    r, _ = _frames_from_mesh(c, V, 2.0, 12)
    np.testing.assert_allclose(r, np.broadcast_to([0.0, 0.0, 1.0], r.shape), atol=1e-12)


# -- sampling ---------------------------------------------------------------------------
@st.composite
def feature_maps(draw: st.DrawFn) -> list[np.ndarray]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shapes = draw(
        st.lists(
            st.tuples(st.integers(1, 24), st.integers(1, 24), st.integers(1, 9)),
            min_size=1,
            max_size=4,
        )
    )
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@TWIN
@given(
    maps=feature_maps(),
    width=st.integers(1, 600),
    height=st.integers(1, 600),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
)
def test_sample_bilinear_twins_agree(native: Kernels, ref: Kernels, maps, width, height, seed, n):
    rng = np.random.default_rng(seed)
    uv = rng.uniform(-50.0, [width + 50.0, height + 50.0], (n, 2))
    if n:
        specials = [np.nan, np.inf, -np.inf, -1e300, 1e300, -0.5, width - 0.5]
        idx = rng.integers(0, n, 2 * len(specials))
        uv[idx[: len(specials)], 0] = specials
        uv[idx[len(specials) :], 1] = specials
    a = native.sample_bilinear(maps, uv, width, height)
    b = ref.sample_bilinear(maps, uv, width, height)
    assert a.shape == (n, sum(m.shape[2] for m in maps))
    assert a.dtype == maps[0].dtype
    assert a.flags.c_contiguous
    if a.dtype == np.float32:
        # Weights are cast to float32 before the blend in both: identical roundings.
        np.testing.assert_array_equal(a, b)
    else:
        agree(a, b, scale=10.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sampling_clamps_to_the_border_and_zeros_nan(backend: Kernels, dtype) -> None:
    rng = np.random.default_rng(3)
    fmap = rng.standard_normal((8, 10, 4)).astype(dtype)
    uv = np.array(
        [[-100.0, -100.0], [1e6, 1e6], [-100.0, 1e6], [1e6, 35.0], [np.nan, 5.0], [5.0, np.inf]]
    )
    out = backend.sample_bilinear([fmap], uv, 100, 80)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out[0], fmap[0, 0])
    np.testing.assert_array_equal(out[1], fmap[7, 9])
    np.testing.assert_array_equal(out[2], fmap[7, 0])
    # v = 35 in an 80-row image maps to row (35.5 * 8 / 80 - 0.5) = 3.05 of the map.
    expected = 0.95 * fmap[3, 9].astype(np.float64) + 0.05 * fmap[4, 9]
    np.testing.assert_allclose(out[3], expected, rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(out[4:], 0.0)


def test_sampling_reproduces_a_linear_ramp_in_the_interior(backend: Kernels) -> None:
    width, height = 512, 384
    maps = []
    for hk, wk in ((96, 128), (48, 64), (24, 32)):
        y, x = np.mgrid[0:hk, 0:wk].astype(np.float64)
        maps.append(np.stack([1.5 + 0.25 * x - 0.5 * y, -2.0 * x + 3.0 * y], axis=2))
    rng = np.random.default_rng(11)
    # Interior: every map position strictly inside [0, Wk - 1] x [0, Hk - 1].
    uv = rng.uniform([16.0, 16.0], [width - 17.0, height - 17.0], (500, 2))
    out = backend.sample_bilinear(maps, uv, width, height)
    for k, fmap in enumerate(maps):
        hk, wk = fmap.shape[:2]
        x = (uv[:, 0] + 0.5) * wk / width - 0.5
        y = (uv[:, 1] + 0.5) * hk / height - 0.5
        expected = np.stack([1.5 + 0.25 * x - 0.5 * y, -2.0 * x + 3.0 * y], axis=1)
        np.testing.assert_allclose(out[:, 2 * k : 2 * k + 2], expected, rtol=1e-12, atol=1e-12)


# -- rasterisation ----------------------------------------------------------------------
@TWIN
@given(
    v=views(),
    seed=st.integers(0, 2**32 - 1),
    n_around=st.integers(3, 24),
    radius=st.floats(0.2, 20.0),
)
def test_rasterise_tube_twins_agree(native: Kernels, ref: Kernels, v, seed, n_around, radius):
    rng = np.random.default_rng(seed)
    c = random_walk(rng, int(rng.integers(2, 40)), step=float(rng.uniform(0.5, 5.0)))
    V, F = ref.tube_mesh(c, np.full(c.shape[0], radius), n_around=n_around, caps=True)
    a = native.rasterise_silhouette(v.P, V, F, v.width, v.height)
    b = ref.rasterise_silhouette(v.P, V, F, v.width, v.height)
    assert a.dtype == np.uint8
    assert a.shape == (v.height, v.width)
    np.testing.assert_array_equal(a, b)


@TWIN
@given(v=views(), seed=st.integers(0, 2**32 - 1), nf=st.integers(0, 60))
def test_rasterise_triangle_soup_twins_agree(native: Kernels, ref: Kernels, v, seed, nf):
    """Random triangles: off-image, huge, degenerate, through and behind the source."""
    rng = np.random.default_rng(seed)
    V = rng.normal(0.0, 60.0, (3 * nf + 6, 3))
    S = v.source_mm
    V[-6:] = [S * 1.2, S * 0.99, S, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]
    F = rng.integers(0, V.shape[0], (nf, 3))
    if nf >= 4:
        F[0] = [0, 0, 1]  # repeated vertex: zero area
        F[1] = [V.shape[0] - 3, V.shape[0] - 2, V.shape[0] - 1]  # collinear: zero area
        F[2] = [V.shape[0] - 6, V.shape[0] - 3, 1]  # one vertex behind the source
        F[3] = [V.shape[0] - 5, V.shape[0] - 3, 2]  # one vertex just in front of it
    a = native.rasterise_silhouette(v.P, V, F, v.width, v.height)
    b = ref.rasterise_silhouette(v.P, V, F, v.width, v.height)
    np.testing.assert_array_equal(a, b)


@TWIN
@given(
    corners=hnp.arrays(np.float64, (30, 3), elements=st.integers(-4, 44).map(float)),
    flip=st.booleans(),
)
def test_rasterise_edges_through_pixel_centres_agree(native: Kernels, ref: Kernels, corners, flip):
    """Integer vertices with an identity-like P put pixel centres exactly on edges."""
    P = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    V = corners.copy()
    V[:, 2] = 0.0
    F = np.arange(30).reshape(10, 3)
    if flip:
        F = F[:, ::-1].copy()
    a = native.rasterise_silhouette(P, V, F, 40, 36)
    b = ref.rasterise_silhouette(P, V, F, 40, 36)
    np.testing.assert_array_equal(a, b)


def test_silhouette_of_a_tube_across_the_beam(backend: Kernels) -> None:
    """A straight tube perpendicular to the AP ray: area = (2 r M / ps) (L M / ps) pixels."""
    v = make_view(0.0, 0.0, size=512, spacing=0.3)
    r, length = 2.0, 40.0
    c = np.stack([np.linspace(-20.0, 20.0, 100), np.zeros(100), np.zeros(100)], 1)
    V, F = backend.tube_mesh(c, np.full(100, r), caps=True)
    mask = backend.rasterise_silhouette(v.P, V, F, 512, 512)
    mag = 1000.0 / 750.0
    expected = (2.0 * r * mag / 0.3) * (length * mag / 0.3)
    assert mask.sum() == pytest.approx(expected, rel=0.03)
    rows, cols = np.nonzero(mask)
    assert rows.mean() == pytest.approx(255.5, abs=0.5)
    assert cols.mean() == pytest.approx(255.5, abs=0.5)
    assert set(np.unique(mask)) == {0, 1}


# -- empty inputs and threads -----------------------------------------------------------
def test_empty_inputs_agree(native: Kernels, ref: Kernels) -> None:
    v1, v2 = make_view(30.0, 20.0), make_view(-40.0, 25.0)
    none2 = np.zeros((0, 2))
    for k in (native, ref):
        assert k.project(v1.P, np.zeros((0, 3))).shape == (0, 2)
        assert k.backproject(v1.P, none2)[1].shape == (0, 3)
        assert k.triangulate(v1.P, v2.P, none2, none2)[0].shape == (0, 3)
        assert k.sample_bilinear([np.ones((4, 4, 3), np.float32)], none2, 8, 8).shape == (0, 3)
        empty = k.rasterise_silhouette(v1.P, np.zeros((0, 3)), np.zeros((0, 3), np.int64), 7, 5)
        np.testing.assert_array_equal(empty, np.zeros((5, 7), np.uint8))


def test_native_calls_are_thread_safe(native: Kernels) -> None:
    """The GIL is released in the kernels: concurrent calls give the serial answers."""
    v = make_view(20.0, 10.0)
    rng = np.random.default_rng(5)
    c = random_walk(rng, 100)
    maps = [rng.standard_normal((64, 64, 32)).astype(np.float32) for _ in range(2)]

    def work(k: int) -> tuple[np.ndarray, np.ndarray]:
        V, F = native.tube_mesh(c + k, np.full(100, 1.5))
        uv = native.project(v.P, V)
        return native.sample_bilinear(maps, uv, 512, 512), native.rasterise_silhouette(
            v.P, V, F, 512, 512
        )

    serial = [work(k) for k in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(work, range(8)))
    for (sa, ma), (sb, mb) in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(sa, sb)
        np.testing.assert_array_equal(ma, mb)
