"""Geometry refinement recovers a perturbed view B from centrelines and end points."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from angio_deploy import kernels
from angio_deploy.geometry import ViewGeometry
from angio_deploy.pipeline.geometry_refinement import refine_view_b


def _curve(n: int = 300) -> np.ndarray:
    t = np.linspace(0, 1, n)
    return np.stack([-25 + 50 * t, 12 * np.sin(2.5 * t), 8 * np.cos(3 * t) - 4 + 10 * t**2], 1)


def test_refinement_reduces_residual_and_3d_error() -> None:
    """Typical header errors (angles ~0.8 deg, isocenter ~2 mm): the epipolar residual
    vanishes and the 3D error drops, though not to zero: a shift of view B along its
    epipolar lines is invisible to any epipolar constraint (docs/DATASET.md)."""
    a = ViewGeometry.from_angles(35, 25, 1000, 750, (0.3, 0.3), 512, 512)
    b_true = ViewGeometry.from_angles(-30, 30, 1000, 750, (0.3, 0.3), 512, 512)
    X = _curve()
    line_a, line_b = a.project(X), b_true.project(X)
    ref, _ = kernels.correspond_centrelines(a.P, b_true.P, line_a, line_b)

    def error(bg: ViewGeometry) -> float:
        Y, _ = kernels.correspond_centrelines(a.P, bg.P, line_a, line_b)
        return float(np.linalg.norm(Y - ref, axis=1).mean())

    before, after = [], []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        rot = Rotation.from_rotvec(np.radians(rng.normal(0, 0.8, 3))).as_matrix()
        shift = rng.normal(0, 2.0, 3)
        b_header = b_true.moved(rot.T, -rot.T @ shift)  # the header is wrong by the inverse
        res = refine_view_b(
            a, b_header, line_a[[0, -1]], line_b[[0, -1]], [(line_a, line_b)], mm_per_px=0.22
        )
        if res.residual_px_before < 0.1:
            # The header error lies in directions these correspondences cannot see: the
            # header is kept, and it says why.
            assert not res.applied and "not significant" in res.reason
        else:
            assert res.applied and res.test["significant"]
            assert res.residual_px_after < 0.3 * res.residual_px_before
            assert res.residual_px_after < 0.5
            assert "refined" in res.geometry_b.provenance["correction"]
            assert 1 <= res.observable_directions <= 6
        before.append(error(b_header))
        after.append(error(res.geometry_b))
    assert np.mean(after) < 0.6 * np.mean(before)


def test_exact_geometry_stays_put() -> None:
    a = ViewGeometry.from_angles(35, 25, 1000, 750, (0.3, 0.3), 512, 512)
    b = ViewGeometry.from_angles(-30, 30, 1000, 750, (0.3, 0.3), 512, 512)
    X = _curve()
    la, lb = a.project(X), b.project(X)
    res = refine_view_b(a, b, la[[0, -1]], lb[[0, -1]], [(la, lb)])
    assert res.residual_px_after <= res.residual_px_before + 1e-9
    assert max(abs(v) for v in res.translation_mm) < 0.5


def test_right_header_with_noisy_clicks_and_curves_is_kept() -> None:
    """Do no harm: with exact geometry, click noise (1 px) and a wobbling segmentation
    (0.5 px) are no reason to move view B."""
    a = ViewGeometry.from_angles(35, 25, 1000, 750, (0.3, 0.3), 512, 512)
    b = ViewGeometry.from_angles(-30, 30, 1000, 750, (0.3, 0.3), 512, 512)
    X = _curve()
    kept = 0
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        la = a.project(X) + rng.normal(0, 0.5, (len(X), 2))
        lb = b.project(X) + rng.normal(0, 0.5, (len(X), 2))
        ea = la[[0, -1]] + rng.normal(0, 1.0, (2, 2))
        eb = lb[[0, -1]] + rng.normal(0, 1.0, (2, 2))
        res = refine_view_b(a, b, ea, eb, [(la, lb)])
        kept += not res.applied
        rot_sd, shift_sd = res.sigma()
        assert all(v > 0 for v in rot_sd + shift_sd)  # a posterior, never zero
        assert res.to_dict()["significance_test"]["dof"] >= 0
    assert kept >= 9  # the 1 % test level, with margin


def test_posterior_is_tighter_than_the_prior_in_observable_directions() -> None:
    from angio_deploy.pipeline.geometry_refinement import PRIOR_ANGLE_DEG, PRIOR_SHIFT_MM

    a = ViewGeometry.from_angles(35, 25, 1000, 750, (0.3, 0.3), 512, 512)
    b = ViewGeometry.from_angles(-30, 30, 1000, 750, (0.3, 0.3), 512, 512)
    X = _curve()
    la, lb = a.project(X), b.project(X)
    res = refine_view_b(a, b, la[[0, -1]], lb[[0, -1]], [(la, lb)])
    prior = np.radians(PRIOR_ANGLE_DEG) ** 2 * 3 + PRIOR_SHIFT_MM**2 * 3
    assert res.covariance.shape == (6, 6)
    assert np.trace(res.covariance) < prior


def _two_segments(a: ViewGeometry, b: ViewGeometry, shift_b2_px: np.ndarray):
    """Two segments seen exactly, except that the second one's 2D centreline and end
    points in view B lie ``shift_b2_px`` off (traced on a neighbouring vessel)."""
    X = _curve()
    Y = np.stack([X[:, 1] * 0.8 + 5, -X[:, 0] * 0.6, X[:, 2] * 0.5 + 10], 1)
    la1, lb1 = a.project(X), b.project(X)
    la2, lb2 = a.project(Y), b.project(Y) + shift_b2_px
    ends_a = np.concatenate([la1[[0, -1]], la2[[0, -1]]])
    ends_b = np.concatenate([lb1[[0, -1]], lb2[[0, -1]]])
    return ends_a, ends_b, [(la1, lb1), (la2, lb2)]


def test_a_correction_one_wrong_segment_wants_is_rejected() -> None:
    """Exact geometry, one segment traced 12 px off in view B: moving B explains that
    segment significantly better but makes the right one fit worse, so the header is
    kept by the consistency test (the likelihood-ratio test alone would apply it)."""
    a = ViewGeometry.from_angles(35, 25, 1000, 750, (0.3, 0.3), 512, 512)
    b = ViewGeometry.from_angles(-30, 30, 1000, 750, (0.3, 0.3), 512, 512)
    ends_a, ends_b, curves = _two_segments(a, b, np.array([0.0, 12.0]))
    res = refine_view_b(a, b, ends_a, ends_b, curves)
    assert res.test["significant"] and not res.test["consistent"]
    assert res.test["worst_group_rise"] > res.test["rise_threshold"]
    assert not res.applied and "inconsistent" in res.reason
    assert res.geometry_b is b


def test_gross_outliers_weigh_logarithmically() -> None:
    """The tests' misfit is Gaussian for residuals within the noise and grows only
    logarithmically beyond: one segment 20 px off is no significant evidence."""
    from angio_deploy.pipeline.geometry_refinement import ROBUST_SCALE, _cauchy

    z = np.array([0.1, 0.5, 10.0, 100.0])
    m = _cauchy(z)
    assert np.allclose(m[:2], z[:2] ** 2, rtol=0.05)
    assert m[2] < 0.2 * z[2] ** 2 and m[3] < 3.0 * m[2]  # 10x the residual, < 3x the misfit
    assert ROBUST_SCALE > 1.0
    a = ViewGeometry.from_angles(35, 25, 1000, 750, (0.3, 0.3), 512, 512)
    b = ViewGeometry.from_angles(-30, 30, 1000, 750, (0.3, 0.3), 512, 512)
    ends_a, ends_b, curves = _two_segments(a, b, np.array([0.0, 20.0]))
    res = refine_view_b(a, b, ends_a, ends_b, curves)
    assert not res.applied


def test_header_error_seen_by_every_segment_is_still_corrected() -> None:
    """The consistency test does not block a real header error, which every segment's
    correspondences see alike."""
    a = ViewGeometry.from_angles(35, 25, 1000, 750, (0.3, 0.3), 512, 512)
    b_true = ViewGeometry.from_angles(-30, 30, 1000, 750, (0.3, 0.3), 512, 512)
    ends_a, ends_b, curves = _two_segments(a, b_true, np.zeros(2))
    seen = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        rot = Rotation.from_rotvec(np.radians(rng.normal(0, 0.8, 3))).as_matrix()
        shift = rng.normal(0, 2.0, 3)
        b_header = b_true.moved(rot.T, -rot.T @ shift)
        res = refine_view_b(a, b_header, ends_a, ends_b, curves)
        if res.residual_px_before < 0.3:
            continue  # an error in directions these correspondences cannot see
        seen += 1
        assert res.applied and res.test["consistent"]
        assert res.residual_px_after < 0.1 * res.residual_px_before
    assert seen >= 4
