"""2D centreline and lumen width of the segment of interest in one view.

Works on the segmenter's probability map in crop space (see :mod:`.crop`): the path from
the clinician's start to end point that stays inside the segmented vessel and near its
middle is a minimum-cost path (Dijkstra on the 8-connected pixel grid) with a cost that
is low on the vessel's medial axis and high off the vessel. Gaps in the segmentation (a
tight stenosis, an overlap, the catheter tip, a bifurcation the network left open) are
bridged with the image's own evidence: where the crop image is given, a multi-scale
Hessian ridge measure of dark tubes (:func:`vesselness`), scaled by its level on the
segmented vessel, makes a gap that follows a dark ridge cheap to cross, while background
stays expensive. If too much of the path runs where neither the segmentation nor the
image shows a vessel, the view's vessel is reported as not found. Optional guide points
(``via``) are visited in order. Widths are measured along the path's normals at the
``width_level`` probability level with sub-pixel interpolation, and each point is moved
to the middle of its two edges; points in a gap of the segmentation are flagged
(``gap``) and take width and centring from their neighbours outside the gap.

Units: crop pixels unless stated otherwise.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from angio_deploy.curves import arc_lengths
from angio_deploy.errors import InputError

THRESHOLD = 0.5
#: Largest share of the path allowed outside the segmented vessel.
MAX_OFF_VESSEL_SHARE = 0.25
#: Search radius (px) around the clicked end points for the vessel, and the probability
#: accepted there: the segment's mask stops at the end points, so a network's probability
#: fades across them and is often below 0.5 right at the click.
END_SEARCH_RADIUS_PX = 10.0
END_THRESHOLD = 0.25
#: Length (px) over which the path's direction at an end is measured.
END_TANGENT_PX = 5.0
WIDTH_SEARCH_PX = 40.0
WIDTH_STEP_PX = 0.25
SMOOTH_SIGMA_PX = 2.0
#: Scales (crop px) of the ridge measure; crops magnify up to 2x, so 1.5-6 px covers
#: lumens of about 1.5 to 15 image pixels radius.
VESSELNESS_SIGMAS_PX = (1.5, 2.5, 4.0, 6.0)
#: A gap pixel with full image evidence costs as much as a pixel of this probability.
GAP_EVIDENCE_WEIGHT = 0.6
#: Image evidence (vessel level = 1) from which a gap pixel counts as bridged.
BRIDGE_LEVEL = 0.5
#: Image evidence from which a clicked end may snap to a pixel the segmenter missed.
SNAP_EVIDENCE = 0.8

_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class Centreline2D:
    """Centreline points (K, 2) [x, y] from start to end, lumen widths (K,), the share of
    the raw path that ran where neither segmentation nor image showed a vessel, the
    share that crossed gaps of the segmentation on image evidence, and per point whether
    it lies in such a gap (its width then comes from the neighbours)."""

    points: np.ndarray
    widths: np.ndarray
    off_vessel_share: float
    bridged_share: float = 0.0
    gap: np.ndarray | None = None


def vesselness(image: np.ndarray, sigmas=VESSELNESS_SIGMAS_PX) -> np.ndarray:
    """Dark-tube ridge measure (H, W) >= 0 of an image: the largest scale-normalised
    Hessian eigenvalue minus the magnitude of the other (a tube curves across, not along;
    a blob curves both ways), maximised over ``sigmas`` (px)."""
    img = np.asarray(image, dtype=np.float64)
    out = np.zeros_like(img)
    for sg in sigmas:
        hxx = ndimage.gaussian_filter(img, sg, order=(0, 2))
        hyy = ndimage.gaussian_filter(img, sg, order=(2, 0))
        hxy = ndimage.gaussian_filter(img, sg, order=(1, 1))
        tr = 0.5 * (hxx + hyy)
        disc = np.sqrt(0.25 * (hxx - hyy) ** 2 + hxy**2)
        l1, l2 = tr + disc, tr - disc  # l1 >= l2
        out = np.maximum(out, sg * sg * np.maximum(l1 - np.abs(l2), 0.0))
    return out


def image_evidence(image: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Vesselness of the crop scaled so that its median on the segmented vessel's medial
    pixels is 1, clipped to [0, 1]; all zero when nothing is segmented (then the image
    cannot say what a vessel looks like here, and background stays background)."""
    v = vesselness(image)
    seg = prob >= THRESHOLD
    if seg.sum() < 10:
        return np.zeros_like(v)
    dist = ndimage.distance_transform_edt(seg)
    core = dist >= max(1.0, 0.5 * float(dist.max()))
    level = float(np.median(v[core])) if core.any() else float(np.median(v[seg]))
    if not level > 0:
        return np.zeros_like(v)
    return np.clip(v / level, 0.0, 1.0)


def _cost(prob: np.ndarray, dist: np.ndarray) -> np.ndarray:
    # Low on the medial axis (large distance to the edge), high off the vessel.
    return 1.0 / (0.02 + prob) / (1.0 + dist) ** 2


@lru_cache(maxsize=8)
def _grid_topology(H: int, W: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 8-neighbour grid graph of an H x W crop in CSR order, both directions stored:
    (indptr, indices, the source pixel of each entry, its step length px). It depends on
    the shape only, so each crop size is built once (read-only)."""
    idx = np.arange(H * W).reshape(H, W)
    rows, cols, lens = [], [], []
    for dy, dx in _OFFSETS:
        ys = slice(0, H - dy)
        xs = slice(max(0, -dx), W - max(0, dx))
        yd = slice(dy, H)
        xd = slice(max(0, dx), W - max(0, -dx) if dx < 0 else W)
        a = idx[ys, xs].ravel()
        b = idx[yd, xd].ravel()
        step = np.full(len(a), np.hypot(dx, dy))
        rows += [a, b]
        cols += [b, a]
        lens += [step, step]
    r, c, ln = np.concatenate(rows), np.concatenate(cols), np.concatenate(lens)
    order = np.lexsort((c, r))
    r, c, ln = r[order], c[order], ln[order]
    indptr = np.searchsorted(r, np.arange(H * W + 1)).astype(np.int32)
    out = (indptr, c.astype(np.int32), r, ln)
    for arr in out:
        arr.setflags(write=False)
    return out


def _grid_graph(cost: np.ndarray) -> csr_matrix:
    """The crop as an undirected graph (both directions stored): 8-neighbour steps
    weighted by the mean cost of their two pixels times the step length (px)."""
    H, W = cost.shape
    indptr, indices, src, step = _grid_topology(H, W)
    flat = cost.ravel()
    data = 0.5 * (flat[src] + flat[indices]) * step
    return csr_matrix((data, indices, indptr), shape=(H * W, H * W))


def _snap(
    prob: np.ndarray,
    dist: np.ndarray,
    p: np.ndarray,
    view: str,
    which: str,
    *,
    evidence: np.ndarray | None = None,
    fallback: bool = False,
) -> tuple[int, int]:
    """The vessel's medial pixel nearest a clicked point; error when none is vessel.

    ``dist`` is the distance (px) of each pixel to the vessel edge: the score prefers the
    middle of the vessel and penalises moving away from the click.
    """
    H, W = prob.shape
    x, y = p
    r = END_SEARCH_RADIUS_PX
    y0, y1 = max(0, int(np.floor(y - r))), min(H - 1, int(np.ceil(y + r)))
    x0, x1 = max(0, int(np.floor(x - r))), min(W - 1, int(np.ceil(x + r)))
    if y0 > y1 or x0 > x1:
        raise InputError(f"the SOI {which} point lies outside the crop", field=f"view {view}")
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    d2 = (xx - x) ** 2 + (yy - y) ** 2
    ok = prob[y0 : y1 + 1, x0 : x1 + 1] >= END_THRESHOLD
    ev = 0.0
    if evidence is not None:
        # A segmenter trained on masks that stop at the clicks fades there; a ridge as
        # dark as the segmented vessel itself is a vessel too.
        ev = evidence[y0 : y1 + 1, x0 : x1 + 1]
        ok |= ev >= SNAP_EVIDENCE
    ok &= d2 <= r * r
    if not ok.any() and fallback:
        # A guide point is the user's own statement that the vessel passes there.
        return int(np.clip(np.rint(y), 0, H - 1)), int(np.clip(np.rint(x), 0, W - 1))
    if not ok.any():
        raise InputError(
            f"no vessel found within {r:g} px of the SOI {which} point (the point may lie "
            "on background)",
            field=f"view {view}",
        )
    score = np.where(ok, dist[y0 : y1 + 1, x0 : x1 + 1] + ev - 0.5 * np.sqrt(d2), -np.inf)
    k = int(np.argmax(score))
    return int(yy.ravel()[k]), int(xx.ravel()[k])


def _smooth(points: np.ndarray, sigma: float) -> np.ndarray:
    if len(points) < 5:
        return points
    out = ndimage.gaussian_filter1d(points, sigma, axis=0, mode="nearest")
    out[0], out[-1] = points[0], points[-1]
    return out


def _resample(points: np.ndarray, step: float) -> np.ndarray:
    s = arc_lengths(points)
    n = max(2, int(np.ceil(s[-1] / step)) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, points[:, k]) for k in range(2)], axis=1)


def path_normals(points: np.ndarray) -> np.ndarray:
    """Unit normals (K, 2) of a 2D path (K, 2) [x, y], its tangent turned +90 degrees."""
    t = np.gradient(points, axis=0)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return np.column_stack([-t[:, 1], t[:, 0]])


def edge_distances(
    prob: np.ndarray, points: np.ndarray, normals: np.ndarray, level: float = THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (K,) px of the first ``level`` crossing of ``prob`` walking out from each
    point along minus and plus its normal (sub-sample linear interpolation; 0 where the
    point itself is below ``level``). Their sum is the lumen width at ``level``."""
    offs = np.arange(0.0, WIDTH_SEARCH_PX + WIDTH_STEP_PX, WIDTH_STEP_PX)
    out = []
    for sign in (-1.0, 1.0):
        q = points[:, None, :] + sign * offs[None, :, None] * normals[:, None, :]
        vals = ndimage.map_coordinates(prob, [q[..., 1], q[..., 0]], order=1, mode="constant")
        below = vals < level
        # First sample below threshold walking outward (0 if the centre itself is below).
        first = np.where(below.any(axis=1), below.argmax(axis=1), len(offs) - 1)
        k = np.maximum(first, 1)
        v0 = vals[np.arange(len(k)), k - 1]
        v1 = vals[np.arange(len(k)), k]
        frac = np.clip((v0 - level) / np.maximum(v0 - v1, 1e-9), 0.0, 1.0)
        d = (k - 1 + frac) * WIDTH_STEP_PX
        d = np.where(first == 0, 0.0, d)
        out.append(d)
    return out[0], out[1]


def _place_start(xy: np.ndarray, click: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    """Move the path's start along the vessel to the click's axial position.

    The snapped start is a medial pixel, and on a segment whose mask stops at the end
    point the medial pixel nearest the click lies about one radius inside the vessel: a
    systematic shortening at both ends. The clinician's click fixes the axial position;
    the path fixes the lateral one. Returns the new path and how far (px) it was extended
    beyond the segmentation (0 when trimmed).
    """
    s = arc_lengths(xy)
    k = int(np.searchsorted(s, min(END_TANGENT_PX, s[-1])))
    t = xy[min(k, len(xy) - 1)] - xy[0]
    n = np.linalg.norm(t)
    if n == 0.0:
        return xy, 0.0
    t /= n
    a = float(np.clip(np.dot(click - xy[0], t), -END_SEARCH_RADIUS_PX, END_SEARCH_RADIUS_PX))
    if a < 0.0:
        m = int(np.ceil(-a / step))
        ext = xy[0] + np.linspace(a, 0.0, m + 1)[:-1, None] * t
        return np.concatenate([ext, xy]), -a
    # Keep at least half the path: a click can only trim what lies before it.
    a = min(a, 0.5 * s[-1])
    keep = s > a
    first = np.array([np.interp(a, s, xy[:, 0]), np.interp(a, s, xy[:, 1])])
    return np.concatenate([first[None], xy[keep]]), 0.0


def _hold_ends(values: np.ndarray, xy: np.ndarray, zones: tuple[float, float]) -> np.ndarray:
    """Values within ``zones`` (px of arc) of the start and the end take the first value
    measured outside the zone."""
    s = arc_lengths(xy)
    out = values.copy()
    if zones[0] + zones[1] >= s[-1]:
        return out
    i = int(np.searchsorted(s, zones[0]))
    out[:i] = values[i]
    j = int(np.searchsorted(s, s[-1] - zones[1])) - 1
    out[j + 1 :] = values[j]
    return out


def _straighten_ends(xy: np.ndarray, zones: tuple[float, float]) -> np.ndarray:
    """Replace the points within ``zones`` (px of arc) of each end by the straight
    continuation of the path just outside the zone: the snapped end pixels can sit off the
    axis, and nothing inside the zone measures where the axis is."""
    s = arc_lengths(xy)
    if zones[0] + zones[1] + 2.0 * END_TANGENT_PX >= s[-1]:
        return xy
    out = xy.copy()
    i = int(np.searchsorted(s, zones[0]))
    k = int(np.searchsorted(s, s[i] + END_TANGENT_PX))
    t = (xy[k] - xy[i]) / max(s[k] - s[i], 1e-12)
    out[:i] = xy[i] - (s[i] - s[:i])[:, None] * t
    j = int(np.searchsorted(s, s[-1] - zones[1])) - 1
    k = int(np.searchsorted(s, s[j] - END_TANGENT_PX)) - 1
    t = (xy[j] - xy[k]) / max(s[j] - s[k], 1e-12)
    out[j + 1 :] = xy[j] + (s[j + 1 :] - s[j])[:, None] * t
    return out


def _fill_gaps(values: np.ndarray, gap: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Values at gap points replaced by linear interpolation (in arc length) between the
    nearest non-gap points; held constant beyond the first and last."""
    if not gap.any() or gap.all():
        return values
    s = arc_lengths(xy)
    good = ~gap
    out = values.copy()
    out[gap] = np.interp(s[gap], s[good], values[good])
    return out


def extract_centreline(
    prob: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    *,
    view: str = "?",
    step_px: float = 1.0,
    width_level: float = THRESHOLD,
    image: np.ndarray | None = None,
    via: np.ndarray | None = None,
) -> Centreline2D:
    """Centreline and widths of the vessel from ``start`` to ``end`` (crop px) in ``prob``.

    Widths are measured between the ``width_level`` crossings of the probability: 0.5 by
    default; a segmenter whose probabilities are biased wide or narrow at the edge carries
    a level calibrated on the validation split (tools/calibrate_width_level.py).
    ``image``: the crop's image (same shape, any intensity scale, vessels dark), the
    evidence that bridges gaps of the segmentation; None bridges on the probability alone.
    ``via``: guide points (N, 2) crop px that the path visits in order.

    Raises InputError naming the view when the vessel is not found at an end point or the
    segmentation does not connect start and end.
    """
    prob = np.asarray(prob, dtype=np.float64)
    H, W = prob.shape
    if image is not None and np.shape(image) != prob.shape:
        raise ValueError(f"image shape {np.shape(image)} != probability shape {prob.shape}")
    evidence = np.zeros_like(prob) if image is None else image_evidence(image, prob)
    dist = ndimage.distance_transform_edt(prob >= THRESHOLD)
    s = _snap(prob, dist, np.asarray(start, dtype=np.float64), view, "start", evidence=evidence)
    e = _snap(prob, dist, np.asarray(end, dtype=np.float64), view, "end", evidence=evidence)
    guides = np.zeros((0, 2)) if via is None else np.asarray(via, dtype=np.float64).reshape(-1, 2)
    nodes = [s]
    for k, q in enumerate(guides):
        if not (-0.5 <= q[0] <= W - 0.5 and -0.5 <= q[1] <= H - 0.5):
            raise InputError(
                f"guide point {k} lies outside the segment's crop (too far from the line "
                "from start to end)",
                field=f"view {view}",
            )
        nodes.append(_snap(prob, dist, q, view, f"guide {k}", evidence=evidence, fallback=True))
    nodes.append(e)
    effective = np.maximum(prob, GAP_EVIDENCE_WEIGHT * evidence)
    graph = _grid_graph(_cost(effective, dist))
    flat = [y * W + x for y, x in nodes]
    _, pred = dijkstra(graph, directed=True, indices=flat[:-1], return_predecessors=True)
    path: list[int] = []
    for leg, (src, dst) in enumerate(itertools.pairwise(flat)):
        if pred[leg, dst] < 0 and dst != src:
            raise InputError(
                "the segmentation does not connect start and end", field=f"view {view}"
            )
        piece = [dst]
        while piece[-1] != src:
            piece.append(int(pred[leg, piece[-1]]))
        piece.reverse()
        path.extend(piece if not path else piece[1:])
    yx = np.array([(p // W, p % W) for p in path], dtype=np.float64)
    iy, ix = yx[:, 0].astype(int), yx[:, 1].astype(int)
    in_gap = prob[iy, ix] < THRESHOLD
    bridged = in_gap & (evidence[iy, ix] >= BRIDGE_LEVEL)
    off = float(np.mean(in_gap & ~bridged))
    if off > MAX_OFF_VESSEL_SHARE:
        raise InputError(
            f"vessel not found: {off:.0%} of the path from start to end runs outside the "
            "segmented vessel (empty or disconnected segmentation)",
            field=f"view {view}",
        )
    xy = np.column_stack([yx[:, 1], yx[:, 0]])
    xy = _resample(_smooth(_resample(xy, 1.0), SMOOTH_SIGMA_PX), step_px)
    xy, ext_start = _place_start(xy, np.asarray(start, dtype=np.float64), step_px)
    xy, ext_end = _place_start(xy[::-1], np.asarray(end, dtype=np.float64), step_px)
    xy = _resample(xy[::-1].copy(), step_px)
    normals = path_normals(xy)
    left, right = edge_distances(prob, xy, normals, width_level)
    # A point in a gap of the segmentation: the probability there is below the width
    # level (the crossings measure the gap, not the lumen). Extensions beyond the
    # segmentation at the ends are handled by the end zones below, not as gaps.
    at = ndimage.map_coordinates(prob, [xy[:, 1], xy[:, 0]], order=1, mode="constant")
    gap = at < min(width_level, THRESHOLD)
    sarc = arc_lengths(xy)
    gap &= (sarc > ext_start) & (sarc < sarc[-1] - ext_end)
    widths_raw = _fill_gaps(left + right, gap, xy)
    offset_raw = _fill_gaps(0.5 * (right - left), gap, xy)
    # Near the ends (within a half-width, or on an extension beyond the segmentation) the
    # normals run along the mask's end, where the edges are not the lumen's: hold the
    # width and the centring offset measured just outside that zone.
    ok = ~gap
    half = 0.5 * float(np.median(widths_raw[ok] if ok.any() else widths_raw)) + 1.0
    zones = (max(half, ext_start + 1.0), max(half, ext_end + 1.0))
    widths = _hold_ends(widths_raw, xy, zones)
    offset = _hold_ends(offset_raw, xy, zones)
    xy = _straighten_ends(xy + offset[:, None] * normals, zones)
    return Centreline2D(
        points=xy,
        widths=widths,
        off_vessel_share=off,
        bridged_share=float(np.mean(bridged)),
        gap=gap,
    )
