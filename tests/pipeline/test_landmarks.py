"""Vessel junctions around the segment, and their matching across views."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from angio_deploy.geometry import ViewGeometry
from angio_deploy.pipeline.landmarks import (
    JUNCTION_SIGMA_PX,
    detect_junctions,
    epipolar_gate,
    match_junctions,
    search_region,
)


def _tube(img: np.ndarray, p0, p1, radius: float, depth: float = 0.5) -> None:
    """Darken img along the segment p0-p1 [u, v] px: a Gaussian lumen profile."""
    rows, cols = np.mgrid[: img.shape[0], : img.shape[1]]
    p = np.stack([cols, rows], axis=-1).astype(float)
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0.0, 1.0)
    dist = np.linalg.norm(p - (a + t[..., None] * (b - a)), axis=-1)
    img *= 1.0 - depth * np.exp(-0.5 * (dist / radius) ** 2)


def _image(with_branch: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    img = np.ones((320, 320))
    _tube(img, (40, 160), (280, 160), 4.0)  # the segment, left to right
    if with_branch:
        _tube(img, (160, 160), (230, 60), 3.0)  # a side branch leaving at (160, 160)
    img += np.random.default_rng(seed).normal(0.0, 0.01, img.shape)
    centreline = np.stack([np.linspace(60, 260, 50), np.full(50, 160.0)], axis=1)
    return img, centreline


def test_search_region_grows_the_box_and_stays_in_the_image() -> None:
    r0, r1, c0, c1 = search_region(np.array([[100.0, 100.0], [200.0, 150.0]]), (512, 512))
    assert (c0, c1) == (60, 241) and (r0, r1) == (77, 174)  # 48 px half-height minimum
    r0, r1, c0, c1 = search_region(np.array([[5.0, 5.0], [300.0, 10.0]]), (256, 256))
    assert r0 == 0 and c0 == 0 and c1 == 256


def test_detects_the_branch_junction() -> None:
    """One branch leaving the segment: one junction, at the branch point. The skeleton's
    fork sits off the geometric branch point by about a lumen radius (toward the acute
    angle), which is what JUNCTION_SIGMA_PX allows for."""
    img, cl = _image(with_branch=True)
    found = detect_junctions(img, cl)
    assert len(found) == 1
    assert np.linalg.norm(found[0] - [160.0, 160.0]) < 2.0 * 4.0


def test_a_plain_vessel_in_noise_has_no_junction() -> None:
    img, cl = _image(with_branch=False, seed=1)
    assert len(detect_junctions(img, cl)) == 0


def test_detection_works_on_a_reduced_large_region() -> None:
    """A region larger than MAX_SIDE_PX is reduced; the junction comes back in image px."""
    img, cl = _image(with_branch=True)
    big = np.kron(img, np.ones((3, 3)))  # the same scene at 3x: 960 px
    found = detect_junctions(big, 3.0 * cl + 1.0)
    assert len(found) == 1
    assert np.linalg.norm(found[0] - [481.0, 481.0]) < 2.0 * 12.0


def _pair() -> tuple[ViewGeometry, ViewGeometry, ViewGeometry, np.ndarray]:
    """View A, view B's truth, B's header (0.8 deg and 2 mm off) and 3D junctions (mm)."""
    a = ViewGeometry.from_angles(35, 25, 1000, 750, (0.3, 0.3), 512, 512)
    b_true = ViewGeometry.from_angles(-30, 30, 1000, 750, (0.3, 0.3), 512, 512)
    rot = Rotation.from_rotvec(np.radians([0.8, -0.5, 0.3])).as_matrix()
    b_header = b_true.moved(rot, np.array([2.0, -1.0, 1.5]))
    # 30 mm apart along z: their epipolar bands in B are ~115 px (7 sigma) apart.
    X = np.array([[0.0, 0.0, -30.0], [0.0, 0.0, 0.0], [0.0, 0.0, 30.0]])
    return a, b_true, b_header, X


def test_gate_is_the_prior_spread_plus_localisation_noise() -> None:
    """With no geometry uncertainty the band is the two views' junction noise alone; with
    the prior it is tens of px (an angle error of 1.5 degrees moves points ~20 mm)."""
    a, b_true, _, X = _pair()
    pa, pb = a.project(X), b_true.project(X)
    d, sd = epipolar_gate(a, b_true, pa, pb, np.zeros((6, 6)))
    np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-6)
    np.testing.assert_allclose(sd, np.sqrt(2.0) * JUNCTION_SIGMA_PX)
    _, sd_prior = epipolar_gate(a, b_true, pa, pb)
    assert np.all(sd_prior > 10.0) and np.all(sd_prior < 100.0)


def test_matching_under_header_error_keeps_the_true_pairs_and_drops_an_outlier() -> None:
    """Junctions seen in the true view B are matched through B's (wrong) header; a junction
    of B that has no partner in A (a crossing, a false detection) outside every epipolar
    band is matched to nothing, and the A junction whose partner B missed stays unmatched."""
    a, b_true, b_header, X = _pair()
    pa, pb = a.project(X), b_true.project(X)
    # B misses the second junction and sees a spurious one instead, between the bands of
    # junctions 0 and 1 (about 4 sigma from each).
    spurious = pb[1] + np.array([0.0, 55.0])
    pb_seen = np.stack([pb[0], spurious, pb[2]])
    got = {(m.index_a, m.index_b) for m in match_junctions(a, b_header, pa, pb_seen)}
    assert got == {(0, 0), (2, 2)}


def test_ambiguous_candidates_are_not_matched() -> None:
    """Two B junctions on the same epipolar band of one A junction: neither is taken."""
    a, b_true, b_header, X = _pair()
    pa, pb = a.project(X), b_true.project(X)
    # Another point on A's ray through junction 0: it projects onto the same epipolar line.
    _, ray = a.backproject(pa[:1])
    twin = b_true.project(X[:1] + 15.0 * ray)
    got = match_junctions(a, b_header, pa, np.vstack([pb, twin]))
    assert {(m.index_a, m.index_b) for m in got} == {(1, 1), (2, 2)}
    assert all(abs(m.distance_px) < 3.0 * m.sigma_px for m in got)
