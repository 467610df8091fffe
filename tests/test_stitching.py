"""Stitching: closed tubes and their Boolean union (manifold3d)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from angio_deploy import kernels
from angio_deploy.stitching import (
    bend,
    closed_tube,
    mesh_volume,
    near_ranges,
    solid_rings,
    union_tubes,
)
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


def _closed_oriented(faces: np.ndarray) -> bool:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, counts = np.unique(np.sort(e, 1), axis=0, return_counts=True)
    return bool(np.all(counts == 2) and len(np.unique(e, axis=0)) == len(e))


def test_near_ranges_cut_out_the_junction_only() -> None:
    main = tube(line([0, 0, 0], [0, 0, 40]), 2.0)
    side = tube(line([0, 0, 20], [15, 0, 32]), 1.0)
    rings = [v.reshape(-1, N_AROUND, 3) for v in (main, side)]
    (m_lo, m_hi), (s_lo, s_hi) = near_ranges(rings)
    # The main's stretch brackets the junction at z = 20 mm; the branch's starts with it.
    z = rings[0].mean(axis=1)[:, 2]
    assert 0 < m_lo < m_hi < N_RINGS - 1 and z[m_lo] < 20 < z[m_hi]
    assert z[m_hi] - z[m_lo] < 20
    assert s_lo == 0 and s_hi < N_RINGS - 1
    far = tube(line([30, 0, 0], [30, 0, 10]), 1.0)
    assert near_ranges([rings[0], far.reshape(-1, N_AROUND, 3)]) is None


@pytest.mark.parametrize("seed", range(8))
def test_local_union_is_the_whole_union(seed: int, caplog) -> None:
    # Branches of random angle, radius, start and curvature off a curved main tube.
    rng = np.random.default_rng(seed)
    s = np.linspace(0.0, 1.0, N_RINGS)
    main_c = np.stack([8 * np.sin(2 * s), 3 * s**2, 50 * s], axis=1)
    main = tube(main_c, rng.uniform(1.5, 2.5))
    k = int(rng.integers(25, 75))
    d = rng.normal(size=3)
    d -= d.dot(main_c[k + 1] - main_c[k]) * (main_c[k + 1] - main_c[k]) / 0.25
    d /= np.linalg.norm(d)
    length = rng.uniform(8, 30)
    bend_dir = rng.normal(size=3) * 0.2
    side_c = main_c[k] + np.outer(s, d * length) + np.outer(s**2, bend_dir * length)
    side = tube(side_c, rng.uniform(0.6, 1.4))
    ranges = near_ranges([main.reshape(-1, N_AROUND, 3), side.reshape(-1, N_AROUND, 3)])
    assert ranges[0][1] - ranges[0][0] < N_RINGS // 2  # the union's input is local
    with caplog.at_level(logging.DEBUG, logger="angio_deploy.stitching"):
        local = union_tubes([main, side])
    assert "did not join" not in caplog.text  # and it joined on without falling back
    whole = union_tubes([main, side], local=False)
    assert local.status == "NoError" and local.genus == whole.genus == 0
    assert _closed_oriented(local.faces)
    assert local.volume_mm3 == pytest.approx(whole.volume_mm3, rel=1e-6)
    assert abs(len(local.faces) - len(whole.faces)) <= 0.01 * len(whole.faces)
    # manifold3d takes the joined-on result as a valid solid of the same volume.
    import manifold3d as m3

    m = m3.Manifold(
        m3.Mesh(
            vert_properties=local.vertices.astype(np.float32),
            tri_verts=local.faces.astype(np.uint32),
        )
    )
    assert m.status() == m3.Error.NoError and m.genus() == 0
    assert m.volume() == pytest.approx(whole.volume_mm3, rel=1e-5)


def test_mesh_volume_of_a_closed_tube() -> None:
    v = tube(line([0, 0, 0], [0, 0, 40]), 2.0)
    cv, cf = closed_tube(v)
    area = 0.5 * N_AROUND * 2.0**2 * np.sin(2 * np.pi / N_AROUND)
    assert mesh_volume(cv, cf) == pytest.approx(area * 40.0, rel=1e-9)
