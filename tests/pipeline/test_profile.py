"""Ring-profile refinement geometry (no torch): features, edges, and the 3-D ring update."""

from __future__ import annotations

import numpy as np
import pytest

from angio_deploy import kernels
from angio_deploy.geometry import ViewGeometry
from angio_deploy.pipeline.profile import (
    CONTEXT,
    N_FEATURES,
    PER_VIEW,
    PROFILE_OFFSETS,
    corrected_rings,
    ring_edges,
    ring_profiles,
)

N_AROUND = 60
H, W = 160, 256


def _crop_projection(primary: float, secondary: float) -> np.ndarray:
    """A view's projection, shifted so that the isocenter lands mid-crop."""
    g = ViewGeometry.from_angles(primary, secondary, 1000.0, 750.0, (0.2, 0.2), 512, 512)
    shift = np.array([[1.0, 0.0, W / 2 - 255.5], [0.0, 1.0, H / 2 - 255.5], [0.0, 0.0, 1.0]])
    return shift @ g.P


def _tube(centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    v, _ = kernels.tube_mesh(centres, radii, n_around=N_AROUND, reference=np.array([0.0, 1.0, 0.0]))
    return v


@pytest.fixture
def scene():
    t = np.linspace(-8.0, 8.0, 100)
    # A gently curved vessel through the isocenter, lying across both views.
    centres = np.stack([t, 0.02 * t**2, 0.3 * t], axis=1)
    radii = 1.2 + 0.2 * np.sin(t / 3.0)
    Ps = [_crop_projection(0.0, 0.0), _crop_projection(60.0, 20.0)]
    planes = [np.zeros((2, H, W), np.float32) for _ in Ps]
    return centres, radii, Ps, planes


def test_features_have_the_documented_layout_and_sample_along_the_normal(scene) -> None:
    centres, radii, Ps, _ = scene
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    # Channel 0 = x, channel 1 = y: bilinear sampling reproduces linear ramps exactly.
    planes = [np.stack([xx, yy]) for _ in Ps]
    rp = ring_profiles(planes, Ps, _tube(centres, radii))
    assert rp.features.shape == (100, N_FEATURES)
    assert rp.features.dtype == np.float32
    K = len(PROFILE_OFFSETS)
    mid = CONTEXT * 2 * PER_VIEW  # the ring's own block (context rings come first)
    for v in range(2):
        f = rp.features[:, mid + v * PER_VIEW : mid + (v + 1) * PER_VIEW]
        r = 0.5 * (rp.hi[v] - rp.lo[v])
        expect = (
            rp.centre_px[v][:, None, :]
            + (PROFILE_OFFSETS[None, :, None] * r[:, None, None]) * rp.normal_px[v][:, None, :]
        )
        inside = np.all((expect > 1) & (expect < np.array([W - 2, H - 2])), axis=(1, 2))
        assert inside.sum() > 50
        np.testing.assert_allclose(f[inside, :K], expect[inside, :, 0], atol=1e-3)
        np.testing.assert_allclose(f[inside, K : 2 * K], expect[inside, :, 1], atol=1e-3)
        np.testing.assert_allclose(f[:, 2 * K], r, rtol=1e-5)
        # The projected centre sits mid-way between the ring's projected edges.
        np.testing.assert_allclose(f[:, 2 * K + 1], 0.0, atol=0.05)
    # Edges: the ring's extent across the vessel is ~ its diameter in pixels.
    assert np.all(rp.hi[0] > 0) and np.all(rp.lo[0] < 0)


def test_zero_corrections_keep_the_rings(scene) -> None:
    centres, radii, Ps, planes = scene
    rp = ring_profiles(planes, Ps, _tube(centres, radii))
    c, r = corrected_rings(rp, np.zeros((100, 4)))
    np.testing.assert_allclose(c, rp.centres, atol=1e-12)
    np.testing.assert_allclose(r, rp.radius_mm, rtol=1e-12)


def test_true_edge_corrections_recover_a_moved_and_resized_vessel(scene) -> None:
    centres, radii, Ps, planes = scene
    rp = ring_profiles(planes, Ps, _tube(centres, radii))
    # Truth: every ring shifted across the vessel by 0.3 mm and 15 % wider.
    normal = np.cross(rp.tangents, np.array([0.0, 0.0, 1.0]))
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    up = np.cross(rp.tangents, normal)
    shift = 0.3 * (0.6 * normal + 0.8 * up)
    true_c, true_r = rp.centres + shift, 1.15 * rp.radius_mm
    truth = _tube(true_c, true_r).reshape(-1, N_AROUND, 3)
    corr = []
    for v in range(2):
        lo, hi = ring_edges(rp.projections[v], truth, rp.centre_px[v], rp.normal_px[v])
        r = 0.5 * (rp.hi[v] - rp.lo[v])
        corr += [(lo - rp.lo[v]) / r, (hi - rp.hi[v]) / r]
    corr = np.stack(corr, axis=1)
    c, rr = corrected_rings(rp, corr, ridge=0.0, smooth_rings=0.0)
    inner = slice(3, -3)  # the ends' tangents come from one-sided differences
    assert np.abs(c - true_c)[inner].max() < 0.02
    assert np.abs(rr - true_r)[inner].max() < 0.02
    # MI's own error was 0.3 mm and 0.18 mm.
    assert np.linalg.norm(rp.centres - true_c, axis=1).min() > 0.29
    # The product's ridge shortens the step (a prior of small shifts), most along the
    # direction the views constrain least, so the direction turns a little;
    # smoothing changes nothing on a uniform correction.
    c, rr = corrected_rings(rp, corr)
    err = np.linalg.norm(c - true_c, axis=1)[inner]
    assert err.max() < 0.15
    step = c - rp.centres
    cos = (step * shift).sum(1) / np.linalg.norm(step, axis=1) / np.linalg.norm(shift, axis=1)
    assert cos[inner].min() > 0.8
    assert np.abs(rr - true_r)[inner].max() < 0.02


def test_large_corrections_are_bounded(scene) -> None:
    centres, radii, Ps, planes = scene
    rp = ring_profiles(planes, Ps, _tube(centres, radii))
    # Both edges of view A far to one side: at most MAX_SHIFT_SHARE of a radius.
    corr = np.zeros((100, 4))
    corr[:, 0] = corr[:, 1] = 50.0
    c, r = corrected_rings(rp, corr)
    assert np.all(np.linalg.norm(c - rp.centres, axis=1) <= 0.75 * rp.radius_mm + 1e-9)
    corr[:] = 0.0
    corr[:, 1] = corr[:, 3] = -10.0  # edges crossing: the radius floor holds
    _, r = corrected_rings(rp, corr)
    assert np.all(r >= 0.1)


def test_bad_inputs_are_rejected(scene) -> None:
    centres, radii, Ps, planes = scene
    v = _tube(centres, radii)
    with pytest.raises(ValueError, match="2 views"):
        ring_profiles(planes[:1], Ps[:1], v)
    with pytest.raises(ValueError, match="crop planes"):
        ring_profiles([np.zeros((3, H, W), np.float32)] * 2, Ps, v)
    rp = ring_profiles(planes, Ps, v)
    with pytest.raises(ValueError, match="edge corrections"):
        corrected_rings(rp, np.zeros((100, 3)))
