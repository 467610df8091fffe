"""Vessel-tree landmarks around the segment: junctions in each view, matched across views.

Issue 12 asks for further point correspondences for geometry refinement besides the SOI's
clicks and curves: bifurcations of the vessel tree near the segment, found on both views.

*Detection* (:func:`detect_junctions`, image px): in a region around the segment (the
bounding box of its 2D centreline grown by :data:`REGION_GROW` on each side), reduced to
at most :data:`MAX_SIDE_PX` pixels a side, the dark-tube ridge measure of
:func:`~angio_deploy.pipeline.centreline2d.vesselness` is thresholded at
:data:`VESSEL_LEVEL` of its median on the segment's own centreline (the image says what a
vessel looks like there), skeletonised, pruned of spurs shorter than :data:`SPUR_PX`
(noise and the corners of wide lumens make short spurs, each with a false junction), and
skeleton pixels with three or more skeleton neighbours are clustered into junctions.

*Matching* (:func:`match_junctions`): a pair (junction in A, junction in B) is a
candidate when B's point lies within the epipolar band the geometry's own uncertainty
allows: the epipolar distance at the given geometry over its standard deviation, the
covariance of view B's correction (the refinement's prior, 1.5 degrees and 3 mm per axis,
unless a posterior is given) propagated through the distance's gradient, plus
:data:`JUNCTION_SIGMA_PX` of localisation noise in each view, must lie within the
:data:`GATE_LEVEL` quantile of chi-square with one degree of freedom. Only mutual unique
candidates are kept (the one candidate of each other); everything ambiguous is dropped,
since a wrong match pulls the geometry along exactly the directions the data know least.

What it can and cannot do: point correspondences, however many, fix only the five
directions of view B's correction that the epipolar geometry sees. A uniform scaling of
the scene about view A's source (view B moved along the baseline) leaves every epipolar
line in place; on the synthetic test split that scaling is what remains after
refinement (docs/RESULTS.md, issue 12), so landmarks there cannot lower the header MAE.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation
from scipy.stats import chi2
from skimage.measure import block_reduce
from skimage.morphology import skeletonize

from angio_deploy.geometry import ViewGeometry, fundamental_matrix

from .centreline2d import vesselness
from .geometry_refinement import PRIOR_ANGLE_DEG, PRIOR_SHIFT_MM

log = logging.getLogger(__name__)

#: The search region is the centreline's bounding box grown by this share of its size
#: on each side.
REGION_GROW = 0.4
#: Smallest side (image px) of the search region, so short segments keep some context.
MIN_REGION_PX = 96
#: The region is reduced (integer block means) to at most this many pixels a side, to
#: keep detection within a few ms per view.
MAX_SIDE_PX = 200
#: Ridge-measure scales (px of the reduced region): lumens of about 1-5 reduced px radius.
SIGMAS_PX = (1.5, 3.0)
#: A pixel is vessel where the ridge measure reaches this share of its median on the
#: segment's centreline.
VESSEL_LEVEL = 0.35
#: ... and at least this many times the ridge measure's median over the region.
BACKGROUND_FACTOR = 4.0
#: Skeleton branches shorter than this (reduced px) are pruned before junctions are read.
SPUR_PX = 6
#: Junctions closer than this (reduced px) to the region's border are dropped (the
#: skeleton frays where the region cuts a vessel).
BORDER_PX = 4
#: Localisation noise (image px, 1 sigma) of a junction, per view: the junction of two
#: lumens is a blob about a vessel width across.
JUNCTION_SIGMA_PX = 3.0
#: Epipolar gate: chi-square quantile (1 degree of freedom) of a candidate pair.
GATE_LEVEL = 0.99


@dataclass(frozen=True)
class LandmarkMatch:
    """A junction seen in both views: its index and point (image px) in view A and view B,
    its epipolar distance (px, B's point to the line of A's) at the geometry it was
    matched with, and that distance's standard deviation (px) under the geometry's
    uncertainty."""

    index_a: int
    index_b: int
    point_a: np.ndarray
    point_b: np.ndarray
    distance_px: float
    sigma_px: float


def search_region(
    points_px: np.ndarray, shape: tuple[int, int], grow: float = REGION_GROW
) -> tuple[int, int, int, int]:
    """Region (row0, row1, col0, col1), image px, half-open, around a 2D polyline (K, 2)
    [u, v]: its bounding box grown by ``grow`` of its size on each side, at least
    :data:`MIN_REGION_PX` a side, clipped to the image of ``shape`` (rows, cols)."""
    p = np.asarray(points_px, dtype=np.float64)
    lo, hi = p.min(axis=0), p.max(axis=0)
    half = np.maximum(0.5 * (hi - lo) * (1.0 + 2.0 * grow), 0.5 * MIN_REGION_PX)
    mid = 0.5 * (lo + hi)
    c0, r0 = np.floor(mid - half).astype(int)
    c1, r1 = np.ceil(mid + half).astype(int) + 1
    rows, cols = shape
    return max(r0, 0), min(r1, rows), max(c0, 0), min(c1, cols)


def _reduce(img: np.ndarray, f: int) -> np.ndarray:
    """Block means of f x f pixels (the trailing partial blocks dropped)."""
    if f == 1:
        return img
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    return block_reduce(img[:h, :w], (f, f), np.mean)


def _neighbours(skel: np.ndarray) -> np.ndarray:
    """Number of 8-connected skeleton neighbours of each pixel."""
    k = np.ones((3, 3))
    k[1, 1] = 0.0
    return ndimage.convolve(skel.astype(np.float64), k, mode="constant").round().astype(int)


def _prune(skel: np.ndarray, length: int) -> np.ndarray:
    """Skeleton without spurs up to ``length`` px: end pixels are peeled ``length`` times,
    then the surviving branches grow back along the peeled pixels (so real branches keep
    their junctions and lengths, short spurs vanish)."""
    s = skel.copy()
    peeled = []
    for _ in range(length):
        ends = s & (_neighbours(s) <= 1)
        if not ends.any():
            break
        peeled.append(ends)
        s &= ~ends
    # Grow back: a peeled pixel returns when it touches the kept skeleton, in reverse order.
    for ends in reversed(peeled):
        near = ndimage.binary_dilation(s, structure=np.ones((3, 3), dtype=bool))
        s |= ends & near
    return s


def detect_junctions(
    image: np.ndarray,
    centreline_px: np.ndarray,
    *,
    grow: float = REGION_GROW,
) -> np.ndarray:
    """Vessel junctions (N, 2) [u, v] image px around a segment whose 2D centreline
    (K, 2) image px is given (module docstring); empty (0, 2) when none is found.

    ``image``: the view (H, W), any intensity scale, vessels dark."""
    img = np.asarray(image, dtype=np.float64)
    r0, r1, c0, c1 = search_region(centreline_px, img.shape[:2], grow)
    if r1 - r0 < 16 or c1 - c0 < 16:
        return np.zeros((0, 2))
    f = max(1, math.ceil(max(r1 - r0, c1 - c0) / MAX_SIDE_PX))
    region = _reduce(img[r0:r1, c0:c1], f)
    v = vesselness(region, SIGMAS_PX)
    # The vessel's own level: the ridge measure on the segment's centreline.
    cl = (np.asarray(centreline_px, dtype=np.float64) - [c0, r0]) / f
    cols = np.clip(np.round(cl[:, 0]).astype(int), 0, region.shape[1] - 1)
    rows = np.clip(np.round(cl[:, 1]).astype(int), 0, region.shape[0] - 1)
    level = float(np.median(v[rows, cols]))
    if not level > 0:
        return np.zeros((0, 2))
    # Background texture has a ridge measure too: a vessel must also stand well above
    # the region's typical level (most of a region is background).
    mask = v >= max(VESSEL_LEVEL * level, BACKGROUND_FACTOR * float(np.median(v)))
    # Drop specks: components smaller than a short piece of thin vessel.
    lab, n = ndimage.label(mask)
    if n == 0:
        return np.zeros((0, 2))
    sizes = ndimage.sum_labels(mask, lab, index=np.arange(1, n + 1))
    mask = np.isin(lab, 1 + np.flatnonzero(sizes >= 4 * SPUR_PX))
    skel = _prune(skeletonize(mask), SPUR_PX)
    junction = skel & (_neighbours(skel) >= 3)
    # Adjacent junction pixels (and the two close forks of one wide junction) are one.
    grown = ndimage.binary_dilation(junction, structure=np.ones((3, 3), dtype=bool), iterations=2)
    lab, n = ndimage.label(grown)
    if n == 0:
        return np.zeros((0, 2))
    centres = np.array(ndimage.center_of_mass(junction, lab, np.arange(1, n + 1)))
    h, w = region.shape
    inside = (
        (centres[:, 0] >= BORDER_PX)
        & (centres[:, 0] < h - BORDER_PX)
        & (centres[:, 1] >= BORDER_PX)
        & (centres[:, 1] < w - BORDER_PX)
    )
    centres = centres[inside]
    # Reduced (row, col) -> image (u, v): block centres sit at f * i + (f - 1) / 2.
    return np.column_stack(
        [c0 + f * centres[:, 1] + 0.5 * (f - 1), r0 + f * centres[:, 0] + 0.5 * (f - 1)]
    )


def prior_covariance() -> np.ndarray:
    """(6, 6) covariance of view B's correction [rotation vector (rad), translation (mm)]
    before any data: the refinement's prior."""
    sd = np.array([math.radians(PRIOR_ANGLE_DEG)] * 3 + [PRIOR_SHIFT_MM] * 3)
    return np.diag(sd**2)


def _signed_distances(F: np.ndarray, pts_a: np.ndarray, pts_b: np.ndarray) -> np.ndarray:
    """(NA, NB) signed distance (px) of each B point to the epipolar line of each A point."""
    lines = np.column_stack([pts_a, np.ones(len(pts_a))]) @ F.T  # (NA, 3) lines in B
    lines /= np.hypot(lines[:, 0], lines[:, 1])[:, None]
    return lines[:, :2] @ pts_b.T + lines[:, 2:]


def epipolar_gate(
    ga: ViewGeometry,
    gb: ViewGeometry,
    pts_a: np.ndarray,
    pts_b: np.ndarray,
    covariance: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Epipolar distance (NA, NB) px of every pair at the given geometry and its standard
    deviation (NA, NB) px: view B's correction with ``covariance`` (6, 6; default
    :func:`prior_covariance`) through the distance's gradient (central differences along
    the covariance's principal axes), plus :data:`JUNCTION_SIGMA_PX` in each view."""
    cov = prior_covariance() if covariance is None else np.asarray(covariance)
    pts_a = np.asarray(pts_a, dtype=np.float64).reshape(-1, 2)
    pts_b = np.asarray(pts_b, dtype=np.float64).reshape(-1, 2)
    d0 = _signed_distances(fundamental_matrix(ga.P, gb.P), pts_a, pts_b)
    var = np.full(d0.shape, 2.0 * JUNCTION_SIGMA_PX**2)
    evals, evecs = np.linalg.eigh(cov)
    for lam, axis in zip(evals, evecs.T, strict=True):
        if lam <= 0:
            continue
        # The distance is close to linear over one sigma; a hundredth keeps it exact.
        step = 0.01 * math.sqrt(lam) * axis
        diff = []
        for sign in (1.0, -1.0):
            R = Rotation.from_rotvec(sign * step[:3]).as_matrix()
            F = fundamental_matrix(ga.P, gb.moved(R, sign * step[3:]).P)
            diff.append(_signed_distances(F, pts_a, pts_b))
        var += ((diff[0] - diff[1]) / 0.02) ** 2
    return d0, np.sqrt(var)


def match_junctions(
    ga: ViewGeometry,
    gb: ViewGeometry,
    pts_a: np.ndarray,
    pts_b: np.ndarray,
    covariance: np.ndarray | None = None,
) -> list[LandmarkMatch]:
    """Junctions of view A matched to view B's (module docstring): within the epipolar gate
    of the geometry's uncertainty (``covariance`` of view B's correction, default the
    prior), and the only candidate of each other."""
    pts_a = np.asarray(pts_a, dtype=np.float64).reshape(-1, 2)
    pts_b = np.asarray(pts_b, dtype=np.float64).reshape(-1, 2)
    if len(pts_a) == 0 or len(pts_b) == 0:
        return []
    d, sd = epipolar_gate(ga, gb, pts_a, pts_b, covariance)
    ok = (d / sd) ** 2 <= chi2.ppf(GATE_LEVEL, 1)
    out = []
    for i, j in zip(*np.nonzero(ok), strict=True):
        if ok[i].sum() == 1 and ok[:, j].sum() == 1:
            out.append(
                LandmarkMatch(int(i), int(j), pts_a[i], pts_b[j], float(d[i, j]), float(sd[i, j]))
            )
    log.debug(
        "landmarks: %d junctions in A, %d in B, %d candidate pairs, %d unique matches",
        len(pts_a),
        len(pts_b),
        int(ok.sum()),
        len(out),
    )
    return out
