"""The normalised frame (paper pre-processing) of ring meshes."""

from __future__ import annotations

import numpy as np
import pytest

from angio_deploy import kernels
from angio_deploy.geometry import NormalisedFrame


def _tube(seed: int = 0) -> np.ndarray:
    t = np.linspace(0.0, 1.0, 100)
    c = np.stack([30.0 * t, 6.0 * np.sin(2.0 * t), 4.0 * t**2], axis=1) + np.array(
        [5.0, -20.0, 40.0]
    )
    v, _ = kernels.tube_mesh(c, np.full(100, 1.5), n_around=60)
    return v


def _rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


@pytest.mark.parametrize("roll", [None, np.array([0.0, 0.0, 1.0])])
def test_frame_fits_unit_box_and_round_trips(roll) -> None:
    v = _tube()
    f = NormalisedFrame.from_ring_mesh(v, roll_reference=roll)
    n = f.to_frame(v)
    assert n.min() > -1e-12 and n.max() < 1 + 1e-12
    np.testing.assert_allclose((n.max(axis=0) - n.min(axis=0)).max(), 1.0)
    np.testing.assert_allclose(f.to_world(n), v, atol=1e-9)
    np.testing.assert_allclose(f.R @ f.R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(f.R) == pytest.approx(1.0)
    # The start-to-end axis is z.
    rings = n.reshape(100, 60, 3).mean(axis=1)
    np.testing.assert_allclose(rings[-1, :2], rings[0, :2], atol=1e-9)
    d = np.array([[0.01, -0.02, 0.03]])
    np.testing.assert_allclose(f.vectors_to_world(d), f.to_world(n[:1] + d) - v[:1], atol=1e-9)


def test_frame_moves_with_the_mesh_and_roll_follows_the_reference() -> None:
    v = _tube()
    R, t = _rotation(3), np.array([10.0, -5.0, 2.0])
    moved = v @ R.T + t
    ref = np.array([0.3, -0.8, 0.5])
    f0 = NormalisedFrame.from_ring_mesh(v, roll_reference=ref)
    f1 = NormalisedFrame.from_ring_mesh(moved, roll_reference=R @ ref)
    np.testing.assert_allclose(f1.to_frame(moved), f0.to_frame(v), atol=1e-9)
    # From the shape alone the roll is fixed up to the sign of x' (which changes no extent).
    g0 = NormalisedFrame.from_ring_mesh(v)
    g1 = NormalisedFrame.from_ring_mesh(moved)
    assert g1.scale == pytest.approx(g0.scale, rel=1e-12)
    np.testing.assert_allclose(g1.to_frame(moved)[:, 2], g0.to_frame(v)[:, 2], atol=1e-9)
    f = NormalisedFrame.from_ring_mesh(v, roll_reference=ref)
    # x' lies in the plane of z' and the reference.
    assert abs(np.linalg.det(np.stack([f.R[0], f.R[2], ref]))) < 1e-12
