"""Lesion profiles, geometry and measured percent diameter stenosis (synth/lesions.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from angio_deploy.synth.anatomy_curves import tangents
from angio_deploy.synth.lesions import (
    LesionParams,
    apply_lesions,
    draw_lesions,
    finalise_lesions,
    measured_percent_ds,
    profile,
)
from angio_deploy.synth.model import Lesion, Vessel


def _tube(length_mm: float = 80.0, r0: float = 1.8, decay: float = 0.0, ratio: float = 1.0):
    """Gently curved test vessel (world mm) with exponential taper and elliptic lumen."""
    s = np.arange(0.0, length_mm + 1e-9, 0.45)
    pts = np.stack([s, 5.0 * np.sin(s / 30.0), np.zeros_like(s)], axis=1)
    tan = tangents(pts)
    major = np.cross(tan, [0.0, 0.0, 1.0])
    major /= np.linalg.norm(major, axis=1, keepdims=True)
    ref = r0 * np.exp(-decay * s)
    semi = np.stack([ref * np.sqrt(ratio), ref / np.sqrt(ratio)], axis=1)
    v = Vessel("T", "artery", pts, semi.copy(), major, ref)
    return v, semi


@pytest.mark.parametrize("shape", ["cosine", "gaussian"])
def test_profile_peaks_at_centre_and_vanishes_at_ends(shape: str) -> None:
    les = Lesion(center_s_mm=40.0, length_mm=12.0, percent_ds=60.0, profile=shape)
    s = np.linspace(30.0, 50.0, 2001)
    f = profile(s, les)
    assert f.max() == pytest.approx(0.6, abs=1e-12)
    assert s[np.argmax(f)] == pytest.approx(40.0, abs=0.01)
    assert np.all(f >= 0.0)
    assert np.all(f[np.abs(s - 40.0) >= 6.0] == 0.0)
    ends = profile(np.array([34.0 + 1e-3, 46.0 - 1e-3]), les)
    assert np.all(ends < 1e-3)  # continuous at the ends
    np.testing.assert_allclose(f, f[::-1], atol=1e-12)  # symmetric
    assert np.max(np.abs(np.diff(f))) < 0.01  # smooth: no jumps on a 0.01 mm grid


def test_unknown_profile_rejected() -> None:
    with pytest.raises(ValueError, match="profile"):
        profile(np.zeros(3), Lesion(1.0, 5.0, 50.0, profile="box"))


def test_concentric_lesion_measured_equals_design_exactly() -> None:
    v, semi = _tube(ratio=1.2)
    s = v.arc_lengths
    v.lesions = [Lesion(float(s[80]), 10.0, 55.0)]
    apply_lesions(v, semi)
    assert measured_percent_ds(v, v.lesions[0]) == pytest.approx(55.0, abs=1e-9)
    assert v.offset is None
    # The ellipse keeps its axis ratio; only its size changes.
    np.testing.assert_allclose(v.semi_axes[:, 0] / v.semi_axes[:, 1], 1.2, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    ds=st.floats(30.0, 90.0),
    length=st.floats(5.0, 25.0),
    decay=st.floats(0.0, 0.01),
    ecc=st.floats(0.0, 1.0),
    angle=st.floats(0.0, 6.28),
    shape=st.sampled_from(["cosine", "gaussian"]),
    centre_index=st.integers(40, 130),
)
def test_measured_equals_design_with_taper(
    ds: float, length: float, decay: float, ecc: float, angle: float, shape: str, centre_index: int
) -> None:
    v, semi = _tube(decay=decay)
    les = Lesion(float(v.arc_lengths[centre_index]), length, ds, ecc, angle, shape)
    v.lesions = [les]
    apply_lesions(v, semi)
    assert measured_percent_ds(v, les) == pytest.approx(ds, abs=0.5)
    # Outside the lesion the lumen is the reference lumen.
    outside = np.abs(v.arc_lengths - les.center_s_mm) > 0.5 * length
    np.testing.assert_allclose(v.radius[outside], v.reference_radius[outside], rtol=1e-12)


def test_eccentric_offset_is_perpendicular_and_keeps_far_wall() -> None:
    v, semi = _tube()
    s = v.arc_lengths
    i = 90
    les = Lesion(float(s[i]), 14.0, 70.0, eccentricity=1.0, angle_rad=0.7)
    v.lesions = [les]
    apply_lesions(v, semi)
    assert v.offset is not None
    tan = tangents(v.points)
    assert np.max(np.abs(np.sum(v.offset * tan, axis=1))) < 1e-12
    shift = np.linalg.norm(v.offset, axis=1)
    # Fully eccentric: the lumen touches the healthy wall on the far side.
    np.testing.assert_allclose(shift + v.radius, v.reference_radius, atol=1e-12)
    assert shift[i] == pytest.approx(0.7 * v.reference_radius[i], rel=1e-9)
    # The lumen moves away from the plaque side (angle in the (major, t x major) frame).
    side = np.cos(0.7) * v.major_dir[i] + np.sin(0.7) * np.cross(tan[i], v.major_dir[i])
    assert v.offset[i] @ side < 0.0


def test_draw_lesions_fit_inside_range_without_overlap() -> None:
    v, _ = _tube(length_mm=120.0)
    p = LesionParams()
    for seed in range(200):
        rng = np.random.default_rng(seed)
        lo, hi = 10.0, 10.0 + rng.uniform(20.0, 80.0)
        count = int(rng.integers(1, 3))
        lesions = draw_lesions(rng, v, (lo, hi), count, p)
        assert len(lesions) == count
        ext = sorted(
            (le.center_s_mm - le.length_mm / 2, le.center_s_mm + le.length_mm / 2) for le in lesions
        )
        for le in lesions:
            assert 5.0 - 1e-9 <= le.length_mm <= 25.0 + 1e-9
            assert 30.0 <= le.percent_ds <= 90.0
            assert le.profile in ("cosine", "gaussian")
            assert 0.0 <= le.eccentricity <= 1.0
            # Centres sit on samples, so the narrowest sample is the designed one.
            assert np.min(np.abs(v.arc_lengths - le.center_s_mm)) < 1e-9
        # Strictly inside, not touching the ends (2 mm gap minus the < 0.25 mm snap).
        assert ext[0][0] >= lo + 1.7
        assert ext[-1][1] <= hi - 1.7
        if count == 2:
            assert ext[1][0] - ext[0][1] >= 1.5


def test_draw_lesions_gives_none_when_no_room() -> None:
    v, _ = _tube()
    assert draw_lesions(np.random.default_rng(0), v, (10.0, 18.0), 1) == []
    assert draw_lesions(np.random.default_rng(0), v, (10.0, 60.0), 0) == []


def test_finalise_declares_what_geometry_shows() -> None:
    v, semi = _tube(decay=0.008)
    rng = np.random.default_rng(5)
    v.lesions = draw_lesions(rng, v, (5.0, 75.0), 2)
    apply_lesions(v, semi)
    finalise_lesions(v)
    for les in v.lesions:
        assert les.percent_ds == measured_percent_ds(v, les)
        assert 30.0 <= les.percent_ds <= 90.0
