"""angio_deploy.curves: the one arc length and the one rotation-minimising frame transport."""

from __future__ import annotations

import numpy as np
import pytest

from angio_deploy import kernels
from angio_deploy.curves import arc_lengths, rotation_minimising_normals


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _central_tangents(p: np.ndarray) -> np.ndarray:
    t = np.empty_like(p)
    t[1:-1] = p[2:] - p[:-2]
    t[0], t[-1] = p[1] - p[0], p[-1] - p[-2]
    return _unit(t)


def _helix(n: int = 400, turns: float = 2.0, radius: float = 5.0, pitch: float = 8.0):
    a = np.linspace(0.0, 2.0 * np.pi * turns, n)
    p = np.stack([radius * np.cos(a), radius * np.sin(a), pitch * a / (2.0 * np.pi)], axis=1)
    return p


def test_arc_lengths_of_known_polylines() -> None:
    square = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 10.0], [3.0, 10.0]])
    np.testing.assert_array_equal(arc_lengths(square), [0.0, 5.0, 11.0, 11.0])
    p = _helix(4001)
    turn_length = np.hypot(2.0 * np.pi * 5.0, 8.0)
    assert arc_lengths(p)[-1] == pytest.approx(2.0 * turn_length, rel=1e-6)


@pytest.mark.parametrize("renormalise", [True, False])
def test_a_plane_curves_normal_out_of_the_plane_stays_put(renormalise: bool) -> None:
    a = np.linspace(0.0, 1.5 * np.pi, 200)
    p = np.stack([10.0 * np.cos(a), 10.0 * np.sin(a), np.zeros_like(a)], axis=1)
    r = np.asarray(
        rotation_minimising_normals(
            p.tolist(), _central_tangents(p).tolist(), [0.0, 0.0, 1.0], renormalise=renormalise
        )
    )
    np.testing.assert_allclose(r, np.tile([0.0, 0.0, 1.0], (len(p), 1)), atol=1e-12)


def test_the_frame_turns_against_the_torsion_along_a_helix() -> None:
    # Rotation-minimising: the normal never turns about the tangent, so seen from the
    # Frenet frame (n, b), which turns at the torsion tau, its angle falls as -tau * s.
    radius, pitch, n = 5.0, 8.0, 2000
    c = pitch / (2.0 * np.pi)
    a = np.linspace(0.0, 4.0 * np.pi, n)
    p = np.stack([radius * np.cos(a), radius * np.sin(a), c * a], axis=1)
    t = _unit(np.stack([-radius * np.sin(a), radius * np.cos(a), np.full(n, c)], axis=1))
    normal = -np.stack([np.cos(a), np.sin(a), np.zeros(n)], axis=1)
    binormal = np.cross(t, normal)
    r = np.asarray(rotation_minimising_normals(p.tolist(), t.tolist(), normal[0].tolist()))
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.einsum("ij,ij->i", r, t), 0.0, atol=1e-12)
    angle = np.unwrap(
        np.arctan2(np.einsum("ij,ij->i", r, binormal), np.einsum("ij,ij->i", r, normal))
    )
    tau = c / (radius**2 + c**2)
    s = np.hypot(radius, c) * a
    np.testing.assert_allclose(angle, -tau * s, atol=1e-4)
    assert abs(angle[-1]) > 1.0  # the check has something to see


def test_repeated_points_and_matching_tangents_skip_their_reflection() -> None:
    p = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    t = [[1.0, 0.0, 0.0]] * 3
    r = rotation_minimising_normals(p, t, [0.0, 1.0, 0.0], renormalise=False)
    assert r == [(0.0, 1.0, 0.0)] * 3


@pytest.mark.parametrize("backend", kernels.available_backends())
def test_the_tube_meshers_rings_are_oriented_by_this_transport(backend: str) -> None:
    # Vertex j = 0 of a circular ring of radius 1 lies at centre + frame normal.
    p = _helix(120)
    ref = np.array([0.0, 1.0, 0.0])
    t = _central_tangents(p)
    r0 = _unit(ref - (ref @ t[0]) * t[0])
    r = np.asarray(rotation_minimising_normals(p.tolist(), t.tolist(), r0.tolist()))
    v, _ = kernels.get_backend(backend).tube_mesh(p, np.ones(len(p)), n_around=60, reference=ref)
    np.testing.assert_allclose(v[::60] - p, r, atol=1e-12)
