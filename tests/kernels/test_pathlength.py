"""tube_path_lengths: the native core against its numpy twin, and against geometry.

Twin tests require float64 agreement to 1e-9 relative (the C++ repeats the twin's
operations; in practice the images are bit-identical). Analytic tests hold on both
backends: chords through straight circular and elliptic cylinders, a cylinder seen along
its axis, the integrated path volume of a curved tube, and supersampling. World frame: LPS
mm with the isocenter at the origin; pixels: u = column, v = row (GEOMETRY.md).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from angio_deploy.geometry import ViewGeometry
from angio_deploy.kernels import Kernels

TWIN = settings(max_examples=40, deadline=None)

SID, SOD = 1000.0, 750.0


# -- helpers ------------------------------------------------------------------------------
def agree(native_out: np.ndarray, numpy_out: np.ndarray) -> None:
    """Same shape and dtype, values equal to 1e-9 relative, no NaN anywhere."""
    assert native_out.shape == numpy_out.shape
    assert native_out.dtype == numpy_out.dtype == np.float64
    assert np.all(np.isfinite(native_out))
    np.testing.assert_allclose(native_out, numpy_out, rtol=1e-9, atol=1e-12)


def make_view(
    primary: float = 0.0, secondary: float = 0.0, size: int = 512, spacing: float = 0.3
) -> ViewGeometry:
    """A square view with SID 1000 mm, SOD 750 mm."""
    return ViewGeometry.from_angles(primary, secondary, SID, SOD, (spacing, spacing), size, size)


def perpendicular(t: np.ndarray, ref=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Unit vectors (N, 3) perpendicular to the tangents t (N, 3), near ``ref``."""
    r = np.asarray(ref, dtype=np.float64)
    p = r - (t @ r)[:, None] * t
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def tangents(c: np.ndarray) -> np.ndarray:
    t = np.gradient(c, axis=0)
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def straight_tube(a, b, length, n, axis=(1.0, 0.0, 0.0), major=(0.0, 0.0, 1.0), centre=0.0):
    """Centres, semi-axes and major directions of a straight tube of n points."""
    e = np.asarray(axis, dtype=np.float64)
    s = np.linspace(-length / 2.0, length / 2.0, n)
    c = np.asarray(centre, dtype=np.float64) + s[:, None] * e
    ax = np.tile([a, b], (n, 1))
    md = np.tile(np.asarray(major, dtype=np.float64), (n, 1))
    return c, ax, md


def rays(v: ViewGeometry, k: Kernels) -> tuple[np.ndarray, np.ndarray]:
    """Source (3,) and unit ray directions (H, W, 3) through every pixel centre."""
    uu, vv = np.meshgrid(np.arange(v.width, dtype=float), np.arange(v.height, dtype=float))
    o, d = k.backproject(v.P, np.stack([uu.ravel(), vv.ravel()], 1))
    return o[0], d.reshape(v.height, v.width, 3)


def pixel_volume_mm3(v: ViewGeometry, k: Kernels, plane_point, plane_normal) -> np.ndarray:
    """Volume (mm^3) per mm of path of each pixel's ray bundle where it crosses a plane.

    A pixel subtends the solid angle ps^2 cos^3(theta) / SID^2; at distance t along the
    ray its bundle has cross-section t^2 times that.
    """
    S, d = rays(v, k)
    n = np.asarray(plane_normal, dtype=np.float64)
    t = ((np.asarray(plane_point) - S) @ n) / (d @ n)
    cos = d @ v.direction
    ps = v.pixel_spacing_mm[0]
    return t * t * ps * ps * cos**3 / (SID * SID)


@st.composite
def tubes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random tube near the isocenter: smooth or kinked, circular or elliptic."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m = draw(st.integers(2, 30))
    wiggle = draw(st.sampled_from([0.05, 0.3, 1.5]))
    step = draw(st.floats(0.3, 6.0))
    d = np.cumsum(rng.normal(0.0, wiggle, (m, 3)), axis=0) + rng.normal(0.0, 1.0, 3)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    c = np.cumsum(step * d, axis=0)
    c -= c.mean(axis=0) + rng.normal(0.0, 5.0, 3)
    a = rng.uniform(0.2, 4.0, m)
    ratio = draw(st.sampled_from([1.0, 0.5, None]))
    b = a * (ratio if ratio is not None else rng.uniform(0.3, 1.5, m))
    md = rng.normal(0.0, 1.0, (m, 3))  # any direction: the kernels project it
    return c, np.stack([a, b], 1), md


# -- twins --------------------------------------------------------------------------------
@TWIN
@given(
    tube=tubes(),
    primary=st.floats(-120.0, 120.0),
    secondary=st.floats(-45.0, 45.0),
    size=st.integers(16, 96),
    s=st.integers(1, 3),
)
def test_path_length_twins_agree(native: Kernels, ref: Kernels, tube, primary, secondary, size, s):
    c, ax, md = tube
    v = ViewGeometry.from_angles(primary, secondary, SID, SOD, (0.6, 0.5), size, size + 7)
    a = native.tube_path_lengths(v.P, c, ax, md, v.width, v.height, supersample=s)
    b = ref.tube_path_lengths(v.P, c, ax, md, v.width, v.height, supersample=s)
    assert a.shape == (v.height, v.width)
    agree(a, b)


def _edge_case(name: str, v: ViewGeometry):
    S = v.source_mm
    d = v.direction
    if name == "partly behind the source":
        # Through the source and on behind it, crossing the beam.
        c = S[None, :] + np.linspace(-30.0, 60.0, 12)[:, None] * d + [[3.0, 0.0, 2.0]]
        return c, np.full((12, 2), 2.0), np.tile([0.0, 0.0, 1.0], (12, 1))
    if name == "wholly behind the source":
        c = S[None, :] - np.linspace(10.0, 50.0, 6)[:, None] * d
        return c, np.full((6, 2), 5.0), np.tile([0.0, 0.0, 1.0], (6, 1))
    if name == "near the source":
        c = S[None, :] + np.linspace(0.5, 3.0, 6)[:, None] * d + [[0.2, 0.0, 0.1]]
        return c, np.full((6, 2), 1.0), np.tile([0.0, 0.0, 1.0], (6, 1))
    if name == "off image":
        return straight_tube(2.0, 2.0, 40.0, 20, centre=(400.0, 0.0, 0.0))
    if name == "tiny radii":
        return straight_tube(1e-4, 5e-5, 40.0, 30, axis=(1.0, 0.0, 0.3))
    if name == "two points":
        return straight_tube(2.0, 1.0, 30.0, 2)
    if name == "two collinear points along the beam":
        return straight_tube(3.0, 3.0, 20.0, 2, axis=d, major=(1.0, 0.0, 0.0))
    if name == "zero-length segments":
        c, ax, md = straight_tube(1.5, 1.0, 30.0, 10, axis=(1.0, 0.2, 0.1))
        c = np.repeat(c, 3, axis=0)  # every centre three times
        c = np.concatenate([c[:1], c[:1], c])
        return c, np.full((c.shape[0], 2), [1.5, 1.0]), np.tile([0.0, 0.0, 1.0], (c.shape[0], 1))
    if name == "all points equal":
        return np.zeros((4, 3)), np.ones((4, 2)), np.tile([0.0, 0.0, 1.0], (4, 1))
    if name == "hairpin":
        c = np.array([[-10.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-10.0, 0.0, 0.0], [-10.0, 0.0, 5.0]])
        return c, np.full((4, 2), 1.0), np.tile([0.0, 1.0, 0.0], (4, 1))
    if name == "near hairpin":
        c = np.array([[-10.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-10.0, 0.0, 1e-4], [-20.0, 0.0, 0.0]])
        return c, np.full((4, 2), 1.0), np.tile([0.0, 1.0, 0.0], (4, 1))
    if name == "major along the axis":
        return straight_tube(2.0, 1.0, 30.0, 8, major=(1.0, 0.0, 0.0))
    if name == "major flips sign":
        c, ax, md = straight_tube(2.0, 1.0, 30.0, 8)
        md[1::2] *= -1.0
        return c, ax, md
    raise AssertionError(name)


EDGE_CASES = [
    "partly behind the source",
    "wholly behind the source",
    "near the source",
    "off image",
    "tiny radii",
    "two points",
    "two collinear points along the beam",
    "zero-length segments",
    "all points equal",
    "hairpin",
    "near hairpin",
    "major along the axis",
    "major flips sign",
]


@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("name", EDGE_CASES)
def test_path_length_edge_cases_agree(native: Kernels, ref: Kernels, name: str, s: int) -> None:
    v = make_view(20.0, 10.0, size=64, spacing=1.2)
    c, ax, md = _edge_case(name, v)
    a = native.tube_path_lengths(v.P, c, ax, md, 64, 64, supersample=s)
    b = ref.tube_path_lengths(v.P, c, ax, md, 64, 64, supersample=s)
    agree(a, b)
    assert np.all(a >= 0.0)
    if name in ("wholly behind the source", "off image", "all points equal"):
        assert not a.any()
    elif name != "tiny radii":  # 0.1 um: most likely no ray meets it
        assert a.any()


def test_full_size_twins_agree_with_threads(native: Kernels, ref: Kernels) -> None:
    """A 512 x 512, supersample 2 call is large enough to be split across threads."""
    v = make_view(30.0, 20.0)
    t = np.linspace(0.0, 1.0, 301)
    c = np.stack([100.0 * t - 50.0, 20.0 * np.sin(3.0 * t), 15.0 * np.cos(4.0 * t)], 1)
    ax = np.stack([np.linspace(2.5, 1.0, 301), np.linspace(2.0, 0.8, 301)], 1)
    md = perpendicular(tangents(c))
    a = native.tube_path_lengths(v.P, c, ax, md, 512, 512, supersample=2)
    b = ref.tube_path_lengths(v.P, c, ax, md, 512, 512, supersample=2)
    agree(a, b)
    assert a.max() > 1.0


# -- geometry -----------------------------------------------------------------------------
@pytest.mark.parametrize(("primary", "secondary"), [(0.0, 0.0), (25.0, -15.0)])
def test_chord_through_a_straight_cylinder(backend: Kernels, primary, secondary) -> None:
    """Every ray through a long cylinder: 2 sqrt(r^2 - dist^2) / sqrt(1 - (d.e)^2)."""
    v = make_view(primary, secondary, size=160, spacing=0.3)
    r = 2.0
    e = np.array([1.0, 0.0, 0.0])
    c, ax, md = straight_tube(r, r, 300.0, 61)  # joints every 5 mm, ends far off-image
    img = backend.tube_path_lengths(v.P, c, ax, md, 160, 160)
    S, d = rays(v, backend)
    n = np.cross(d, e)  # the axis passes through the isocenter
    dist = np.abs(n @ S) / np.linalg.norm(n, axis=-1)
    inside = dist < r * (1.0 - 1e-3)
    expected = 2.0 * np.sqrt(np.maximum(r * r - dist * dist, 0.0)) / np.sqrt(1.0 - (d @ e) ** 2)
    assert inside.sum() > 500
    np.testing.assert_allclose(img[inside], expected[inside], rtol=1e-6)
    assert np.all(img[dist > r * (1.0 + 1e-3)] == 0.0)


def test_cylinder_seen_along_its_axis(backend: Kernels) -> None:
    """Rays that stay inside from cap to cap have chord L / cos(angle to the axis)."""
    v = make_view(0.0, 0.0, size=65, spacing=0.3)  # odd size: a pixel on the central ray
    L, r = 20.0, 3.0
    e = v.direction
    c, ax, md = straight_tube(r, r, L, 5, axis=e, major=(1.0, 0.0, 0.0))
    img = backend.tube_path_lengths(v.P, c, ax, md, 65, 65)
    assert img[32, 32] == pytest.approx(L, rel=1e-12)
    S, d = rays(v, backend)
    # Distance from the axis (through the isocenter along e) where the ray crosses each cap.
    worst = np.zeros(img.shape)
    for z in (-L / 2.0, L / 2.0):
        t = (z - S @ e) / (d @ e)
        p = S + t[..., None] * d
        worst = np.maximum(worst, np.linalg.norm(p - (p @ e)[..., None] * e, axis=-1))
    inside = worst < r * 0.999
    assert inside.sum() > 100
    np.testing.assert_allclose(img[inside], (L / (d @ e))[inside], rtol=1e-9)


def test_elliptic_cylinder_width_and_depth(backend: Kernels) -> None:
    """Major axis across the beam: twice as wide, half as deep as major along the beam.

    An odd image size puts the central row and column on the central ray.
    """
    v = make_view(0.0, 0.0, size=257, spacing=0.3)
    a, b = 3.0, 1.5
    mag = SID / SOD
    across = backend.tube_path_lengths(v.P, *straight_tube(a, b, 40.0, 9), 257, 257)
    along = backend.tube_path_lengths(
        v.P, *straight_tube(a, b, 40.0, 9, major=(0.0, 1.0, 0.0)), 257, 257
    )
    col = 128
    w_across = np.count_nonzero(across[:, col])
    w_along = np.count_nonzero(along[:, col])
    assert w_across == pytest.approx(2.0 * a * mag / 0.3, abs=2.0)
    assert w_along == pytest.approx(2.0 * b * mag / 0.3, abs=2.0)
    assert w_across / w_along == pytest.approx(a / b, rel=0.12)
    # Through the middle the depth is the other semi-axis, twice.
    assert across[:, col].max() == pytest.approx(2.0 * b, rel=2e-3)
    assert along[:, col].max() == pytest.approx(2.0 * a, rel=2e-3)
    # Same cross-section area either way: the column integrals agree.
    assert across[:, col].sum() == pytest.approx(along[:, col].sum(), rel=0.01)


def _arc(n: int, radius: float, angle: float) -> np.ndarray:
    """A circular arc (n, 3) mm in the x-z plane (perpendicular to the AP beam)."""
    th = np.linspace(-angle / 2.0, angle / 2.0, n)
    return np.stack([radius * np.sin(th), np.zeros(n), radius * np.cos(th) - radius * 0.7], 1)


@pytest.mark.parametrize("ellipse", [False, True])
def test_curved_tube_path_volume_is_its_volume(backend: Kernels, ellipse: bool) -> None:
    """Sum of path x pixel footprint = pi a b L: joints neither gap nor double count."""
    v = make_view(0.0, 0.0, size=384, spacing=0.3)
    R, angle, r = 20.0, math.pi, 1.5
    c = _arc(241, R, angle)
    t = tangents(c)
    b = 0.8 * r if ellipse else r
    ax = np.tile([r, b], (c.shape[0], 1))
    md = perpendicular(t, ref=(0.0, 1.0, 0.3))
    img = backend.tube_path_lengths(v.P, c, ax, md, 384, 384)
    vol = (img * pixel_volume_mm3(v, backend, (0.0, 0.0, 0.0), (0.0, 1.0, 0.0))).sum()
    length = np.linalg.norm(np.diff(c, axis=0), axis=1).sum()
    assert vol == pytest.approx(math.pi * r * b * length, rel=0.01)


def test_curved_tube_has_no_seams(backend: Kernels) -> None:
    """Seen face-on, a bent tube's path is smooth along it: no gaps or spikes at joints."""
    v = make_view(0.0, 0.0, size=384, spacing=0.3)
    R, r = 20.0, 1.5
    c = _arc(61, R, math.pi)  # joints every ~1 mm, each turning by 3 degrees
    ax = np.full((61, 2), r)
    md = perpendicular(tangents(c), ref=(0.0, 1.0, 0.0))
    img = backend.tube_path_lengths(v.P, c, ax, md, 384, 384)
    S, d = rays(v, backend)
    # In-plane distance of each ray (where it crosses y = 0) from the arc's circle.
    t = -S[1] / d[..., 1]
    p = S + t[..., None] * d
    centre = np.array([0.0, 0.0, -0.7 * R])
    rho = np.abs(np.hypot(p[..., 0] - centre[0], p[..., 2] - centre[2]) - R)
    ang = np.arctan2(p[..., 0] - centre[0], p[..., 2] - centre[2])
    core = (rho < 0.8 * r) & (np.abs(ang) < math.pi / 2.0 - 0.1)
    expected = 2.0 * np.sqrt(np.maximum(r * r - rho * rho, 0.0)) / np.abs(d[..., 1])
    assert core.sum() > 1000
    # A gap or a doubled wedge at a joint would be off by 10-100 %; the polygon vs circle
    # and the rays' slant through the bend stay within a few percent.
    np.testing.assert_allclose(img[core], expected[core], rtol=0.03)


def test_supersampling_conserves_the_integral_of_a_thin_vessel(backend: Kernels) -> None:
    v = make_view(15.0, 10.0, size=256, spacing=0.3)
    r = 0.12  # about half a pixel wide at the object
    c = _arc(121, 30.0, 2.0)
    ax = np.full((121, 2), r)
    md = perpendicular(tangents(c))
    px_vol = pixel_volume_mm3(v, backend, (0.0, 0.0, 0.0), v.direction)
    length = np.linalg.norm(np.diff(c, axis=0), axis=1).sum()
    expected = math.pi * r * r * length
    images = {
        s: backend.tube_path_lengths(v.P, c, ax, md, 256, 256, supersample=s) for s in (1, 2, 4)
    }
    for s, img in images.items():
        assert (img * px_vol).sum() == pytest.approx(expected, rel=0.03 if s == 1 else 0.01), s
    # Finer sampling spreads the thin vessel over more pixels, at lower peak values.
    assert np.count_nonzero(images[4]) > np.count_nonzero(images[1])
    assert images[4].max() < images[1].max()


def test_major_direction_length_and_sign_do_not_matter(backend: Kernels) -> None:
    v = make_view(10.0, 5.0, size=96, spacing=0.6)
    c = _arc(30, 15.0, 2.0)
    md = perpendicular(tangents(c), ref=(0.3, 1.0, 0.0))
    ax = np.tile([2.0, 0.7], (30, 1))
    base = backend.tube_path_lengths(v.P, c, ax, md, 96, 96)
    scaled = (
        md * np.linspace(0.5, 7.0, 30)[:, None] * np.where(np.arange(30) % 3, 1.0, -1.0)[:, None]
    )
    np.testing.assert_allclose(
        backend.tube_path_lengths(v.P, c, ax, scaled, 96, 96), base, rtol=1e-12, atol=1e-12
    )


# -- validation and threads ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"centres": np.zeros((1, 3))}, "at least 2"),
        ({"centres": np.zeros((4, 2))}, "centres"),
        ({"semi_axes": np.ones((3, 2))}, "semi_axes has 3 rows"),
        ({"semi_axes": np.zeros((4, 2))}, "positive"),
        ({"semi_axes": np.full((4, 2), np.inf)}, "positive"),
        ({"major_dir": np.zeros((4, 3))}, "non-zero"),
        ({"major_dir": np.full((4, 3), np.nan)}, "finite"),
        ({"major_dir": np.ones((5, 3))}, "major_dir has 5 rows"),
        ({"centres": np.full((4, 3), np.nan)}, "finite"),
        ({"P": np.zeros((3, 4))}, "singular"),
        ({"P": np.ones((3, 3))}, "P"),
        ({"width": 0}, "positive"),
        ({"supersample": 0}, "supersample"),
        ({"supersample": 1.5}, "supersample"),
    ],
)
def test_bad_arguments_are_refused(backend: Kernels, change: dict, message: str) -> None:
    c, ax, md = straight_tube(1.0, 1.0, 10.0, 4)
    args = {"P": make_view().P, "centres": c, "semi_axes": ax, "major_dir": md}
    args.update({"width": 32, "height": 32, "supersample": 1})
    args.update(change)
    with pytest.raises(ValueError, match=message):
        backend.tube_path_lengths(**args)


def test_path_length_calls_are_thread_safe(native: Kernels) -> None:
    v = make_view(20.0, 10.0)
    c = _arc(200, 40.0, 2.5)
    md = perpendicular(tangents(c))

    def work(k: int) -> np.ndarray:
        ax = np.full((200, 2), 0.5 + 0.2 * k)
        return native.tube_path_lengths(v.P, c + k, ax, md, 512, 512, supersample=1 + k % 2)

    serial = [work(k) for k in range(6)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(work, range(6)))
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
