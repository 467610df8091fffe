"""Surface metrics on shapes with known answers (issue 4, METRICS.md)."""

from __future__ import annotations

import numpy as np
import pytest

from angio_deploy import kernels
from angio_deploy.metrics import (
    closest_points,
    f_paper,
    f_score,
    paper_normalisation,
    point_mesh_distance,
    sample_surface,
    surface_distances,
    vertex_mae,
)
from angio_deploy.metrics.surface import _closest_on_triangles

LENGTH_MM = 40.0
R_MM = 1.5
GAP_MM = 0.3
# 60-gon faceting: a point on a facet of the inner tube is at most r (1 - cos(pi / 60))
# ~ 0.002 mm closer to the axis than a vertex, and the outer facet likewise, so
# point-to-surface distances between the coaxial 60-gon tubes lie in
# [0.3 cos(pi / 60), 0.3] ~ [0.2996, 0.3] mm; we allow 0.002 mm.
FACET_TOL_MM = 0.002


def straight_tube(radius: float, shift=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """A 100 x 60 open tube along a straight 40 mm axis (world z), shifted by ``shift`` mm."""
    z = np.linspace(0.0, LENGTH_MM, 100)
    centres = np.stack([np.zeros_like(z), np.zeros_like(z), z], axis=1) + np.asarray(shift)
    return kernels.tube_mesh(centres, np.full(100, radius))


def curved_tube() -> tuple[np.ndarray, np.ndarray]:
    s = np.linspace(0.0, 1.0, 100)
    centres = np.stack([30 * s, 8 * np.sin(3 * s), 5 * s**2], axis=1) + np.array([10.0, -20.0, 5.0])
    radii = 1.6 - 0.5 * np.exp(-(((s - 0.4) / 0.08) ** 2))
    return kernels.tube_mesh(centres, radii)


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.fixture(scope="module")
def coaxial():
    inner, outer = straight_tube(R_MM), straight_tube(R_MM + GAP_MM)
    return inner, outer, surface_distances(outer, inner)


def test_sampling_is_deterministic_uniform_and_on_the_surface():
    v, f = straight_tube(R_MM)
    a = sample_surface(v, f)
    assert a.shape == (10_000, 3)
    np.testing.assert_array_equal(a, sample_surface(v, f, seed=0))
    assert not np.array_equal(a, sample_surface(v, f, seed=1))
    # On the surface: radius between the facet midpoint radius and r.
    rho = np.hypot(a[:, 0], a[:, 1])
    assert rho.max() <= R_MM + 1e-12 and rho.min() >= R_MM * np.cos(np.pi / 60) - 1e-12
    # Area-uniform on a cylinder: uniform in z; each 4 mm slab holds ~1000 samples
    # (binomial sd 30; 6 sd allowed).
    counts = np.histogram(a[:, 2], bins=10, range=(0.0, LENGTH_MM))[0]
    assert np.all(np.abs(counts - 1000) < 180)


def test_vertex_mae_of_coaxial_tubes_is_the_gap(coaxial):
    inner, outer, _ = coaxial
    assert vertex_mae(outer[0], inner[0]) == pytest.approx(GAP_MM, abs=1e-12)


def test_vertex_mae_of_translated_copy_is_the_translation():
    v, _ = straight_tube(R_MM)
    d = np.array([0.3, -0.4, 1.2])  # |d| = 1.3 mm
    assert vertex_mae(v + d, v) == pytest.approx(1.3, abs=1e-12)
    assert vertex_mae(v, v) == 0.0


def test_vertex_mae_rejects_other_topologies():
    v, _ = straight_tube(R_MM)
    with pytest.raises(ValueError, match="5940 vertices, the truth 6000"):
        vertex_mae(v[:-60], v)


def test_coaxial_distances_are_the_gap(coaxial):
    _, _, m = coaxial
    for key in ("ASSD", "HD", "HD95"):
        assert GAP_MM - FACET_TOL_MM <= m[key] <= GAP_MM + 1e-9, key
    assert m["F@0.1"] == 0.0
    assert m["F@0.25"] == 0.0
    assert m["F@0.5"] == 100.0


def test_mesh_against_itself_is_zero_and_f_100():
    mesh = curved_tube()
    m = surface_distances(mesh, mesh)
    for key in ("ASSD", "HD", "HD95"):
        assert m[key] < 1e-9, key
    assert m["F@0.1"] == m["F@0.25"] == m["F@0.5"] == 100.0
    assert f_paper(*mesh, *mesh) == 100.0


def test_point_mesh_distance_single_triangle_regions():
    v = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    f = np.array([[0, 1, 2]])
    pts = np.array(
        [
            [1.0, 1.0, 2.0],  # above the interior: 2
            [-3.0, -4.0, 0.0],  # beyond vertex a: 5
            [2.0, -1.0, 0.0],  # beyond edge ab: 1
            [3.0, 3.0, 0.0],  # beyond edge bc: 2 / sqrt(2)
            [7.0, 0.0, 4.0],  # beyond vertex b: 5
        ]
    )
    expected = [2.0, 5.0, 1.0, np.sqrt(2.0), 5.0]
    np.testing.assert_allclose(point_mesh_distance(pts, v, f), expected, atol=1e-12)
    d, q = closest_points(pts, v, f)
    np.testing.assert_allclose(d, expected, atol=1e-12)
    nearest = [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 2.0, 0.0], [4.0, 0, 0]]
    np.testing.assert_allclose(q, nearest, atol=1e-12)


def brute_force_distances(pts: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Distance of each point to its nearest of all triangles (T, 3, 3), no pruning."""
    return np.concatenate(
        [
            np.linalg.norm(
                _closest_on_triangles(q[:, None], tri[:, 0], tri[:, 1], tri[:, 2]) - q[:, None],
                axis=-1,
            ).min(axis=1)
            for q in np.array_split(pts, 30)
        ]
    )


def test_point_mesh_distance_pruning_matches_brute_force():
    v, f = curved_tube()
    rng = np.random.default_rng(3)
    pts = v[rng.integers(0, len(v), 300)] + rng.normal(scale=2.0, size=(300, 3))
    fast = point_mesh_distance(pts, v, f)
    brute = brute_force_distances(pts, v[f])
    np.testing.assert_allclose(fast, brute, atol=1e-12)


def test_f_score_definition():
    d_pred = np.array([0.0, 0.1, 0.3, 0.6])  # precision at 0.25: 2 / 4
    d_true = np.array([0.2, 0.2, 1.0])  # recall at 0.25: 2 / 3
    assert f_score(d_pred, d_true, 0.25) == pytest.approx(100 * 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert f_score(d_pred, d_true, 0.01) == 0.0


def test_paper_normalisation_maps_truth_into_unit_box():
    v, _ = curved_tube()
    A, b, scale = paper_normalisation(v)
    x = scale * (v @ A.T + b)
    assert x.min() == pytest.approx(0.0, abs=1e-12)
    assert (x.max(axis=0) - x.min(axis=0)).max() == pytest.approx(1.0)
    start, end = x[:60].mean(axis=0), x[-60:].mean(axis=0)
    axis = (end - start) / np.linalg.norm(end - start)
    np.testing.assert_allclose(axis, [0.0, 0.0, 1.0], atol=1e-12)


def test_f_paper_is_invariant_to_a_rigid_motion_of_both():
    tv, tf = curved_tube()
    rng = np.random.default_rng(7)
    pv = tv + rng.normal(scale=0.8, size=tv.shape)  # noisy prediction: F well below 100
    before = f_paper(pv, tf, tv, tf)
    assert 20.0 < before < 99.0
    R, t = random_rotation(11), np.array([-40.0, 12.5, 103.0])
    after = f_paper(pv @ R.T + t, tf, tv @ R.T + t, tf)
    assert after == pytest.approx(before, abs=0.02)  # 1 sample of 10,000 may flip at tau


def test_point_mesh_distance_is_exact_with_long_cap_triangles():
    """Flat end caps are fans of long triangles (and a Boolean union leaves slivers): the
    search splits them, and the distances stay exact, also for far points."""
    from angio_deploy.topology import ring_faces

    t = np.linspace(0, 1, 40)
    c = np.stack([10 * t, 3 * np.sin(3 * t), 2 * t], axis=1)
    v, _ = kernels.tube_mesh(c, np.full(len(c), 2.0), n_around=60)
    f = ring_faces(40, 60, caps=True)
    rng = np.random.default_rng(3)
    pts = rng.uniform([-15, -15, -15], [25, 15, 15], (300, 3))
    fast = point_mesh_distance(pts, v, f)
    brute = brute_force_distances(pts, v[f])
    np.testing.assert_allclose(fast, brute, atol=1e-12)
