"""Stitching: closed tubes and their Boolean union (manifold3d)."""

from __future__ import annotations

import numpy as np
import pytest

from angio_deploy import kernels
from angio_deploy.stitching import bend, closed_tube, solid_rings, union_tubes
from angio_deploy.topology import N_AROUND, N_RINGS

pytest.importorskip("manifold3d")


def tube(centres: np.ndarray, radius: float) -> np.ndarray:
    v, _ = kernels.tube_mesh(centres, np.full(len(centres), radius), n_around=N_AROUND)
    return v


def line(p0, p1, n: int = N_RINGS) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return np.asarray(p0, float) + t * (np.asarray(p1, float) - np.asarray(p0, float))


def test_single_straight_tube_is_a_closed_cylinder() -> None:
    v = tube(line([0, 0, 0], [0, 0, 40]), 2.0)
    j = union_tubes([v])
    assert j.status == "NoError" and j.genus == 0
    # A 60-gon prism: area of the polygon times the length.
    area = 0.5 * N_AROUND * 2.0**2 * np.sin(2 * np.pi / N_AROUND)
    assert j.volume_mm3 == pytest.approx(area * 40.0, rel=1e-3)


def test_branch_union_is_one_watertight_genus_0_solid() -> None:
    main = tube(line([0, 0, 0], [0, 0, 40]), 2.0)
    side = tube(line([0, 0, 20], [15, 0, 32]), 1.0)
    j = union_tubes([main, side])
    assert j.status == "NoError" and j.genus == 0
    alone = union_tubes([main]).volume_mm3 + union_tubes([side]).volume_mm3
    # The overlap inside the main tube counts once.
    assert union_tubes([main]).volume_mm3 < j.volume_mm3 < alone
    # Watertight: every edge is shared by exactly two triangles, consistently oriented.
    e = np.sort(np.concatenate([j.faces[:, [0, 1]], j.faces[:, [1, 2]], j.faces[:, [2, 0]]]), 1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    assert np.all(counts == 2)
    directed = np.concatenate([j.faces[:, [0, 1]], j.faces[:, [1, 2]], j.faces[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)


def test_disjoint_tubes_are_reported_by_genus() -> None:
    a = tube(line([0, 0, 0], [0, 0, 10]), 1.0)
    b = tube(line([10, 0, 0], [10, 0, 10]), 1.0)
    # Two separate spheres' worth of surface: Euler characteristic 4, "genus" -1.
    assert union_tubes([a, b]).genus == -1


def test_a_kinked_tube_skips_the_rings_that_cross() -> None:
    # A right-angle kink in a thick tube: consecutive rings there cross.
    c = np.concatenate([line([0, 0, 0], [0, 0, 10], 50), line([0, 0, 10.2], [10, 0, 10.2], 50)])
    v = tube(c, 2.0)
    assert bend(v).max() > 1.0
    idx = solid_rings(v)
    assert idx[0] == 0 and idx[-1] == len(c) - 1 and len(idx) < len(c)
    cv, cf = closed_tube(v)
    assert len(cv) == len(idx) * N_AROUND and cf.max() < len(cv)
    j = union_tubes([v])
    assert j.status == "NoError" and j.genus == 0


def test_a_smooth_tube_keeps_every_ring() -> None:
    s = np.linspace(0, np.pi, N_RINGS)
    c = np.stack([30 * np.cos(s), 30 * np.sin(s), 5 * s], 1)
    v = tube(c, 1.5)
    assert len(solid_rings(v)) == N_RINGS
