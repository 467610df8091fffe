"""2D centreline and lumen width of the segment of interest in one view.

Works on the segmenter's probability map in crop space (see :mod:`.crop`): the path from
the clinician's start to end point that stays inside the segmented vessel and near its
middle is a minimum-cost path (Dijkstra on the 8-connected pixel grid) with a cost that
is low on the vessel's medial axis and high off the vessel. Gaps in the segmentation (a
tight stenosis, an overlap) are crossed at a price; if too much of the path runs outside
the vessel, the view's vessel is reported as not found. Widths are measured along the
path's normals at the 0.5 probability level with sub-pixel interpolation, and each point
is moved to the middle of its two edges.

Units: crop pixels unless stated otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

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

_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class Centreline2D:
    """Centreline points (K, 2) [x, y] from start to end, lumen widths (K,), and the share
    of the raw path that ran outside the segmented vessel."""

    points: np.ndarray
    widths: np.ndarray
    off_vessel_share: float


def _cost(prob: np.ndarray, dist: np.ndarray) -> np.ndarray:
    # Low on the medial axis (large distance to the edge), high off the vessel.
    return 1.0 / (0.02 + prob) / (1.0 + dist) ** 2


def _grid_graph(cost: np.ndarray):
    H, W = cost.shape
    idx = np.arange(H * W).reshape(H, W)
    rows, cols, vals = [], [], []
    for dy, dx in _OFFSETS:
        ys = slice(0, H - dy)
        xs = slice(max(0, -dx), W - max(0, dx))
        yd = slice(dy, H)
        xd = slice(max(0, dx), W - max(0, -dx) if dx < 0 else W)
        a = idx[ys, xs]
        b = idx[yd, xd]
        w = 0.5 * (cost[ys, xs] + cost[yd, xd]) * np.hypot(dx, dy)
        rows.append(a.ravel())
        cols.append(b.ravel())
        vals.append(w.ravel())
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    return coo_matrix((v, (r, c)), shape=(H * W, H * W)).tocsr()


def _snap(
    prob: np.ndarray, dist: np.ndarray, p: np.ndarray, view: str, which: str
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
    ok = (d2 <= r * r) & (prob[y0 : y1 + 1, x0 : x1 + 1] >= END_THRESHOLD)
    if not ok.any():
        raise InputError(
            f"no vessel found within {r:g} px of the SOI {which} point (the point may lie "
            "on background)",
            field=f"view {view}",
        )
    score = np.where(ok, dist[y0 : y1 + 1, x0 : x1 + 1] - 0.5 * np.sqrt(d2), -np.inf)
    k = int(np.argmax(score))
    return int(yy.ravel()[k]), int(xx.ravel()[k])


def _smooth(points: np.ndarray, sigma: float) -> np.ndarray:
    if len(points) < 5:
        return points
    out = ndimage.gaussian_filter1d(points, sigma, axis=0, mode="nearest")
    out[0], out[-1] = points[0], points[-1]
    return out


def _resample(points: np.ndarray, step: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(np.ceil(s[-1] / step)) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, points[:, k]) for k in range(2)], axis=1)


def _edges(
    prob: np.ndarray, points: np.ndarray, normals: np.ndarray, level: float = THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (K,) of the left and right ``level`` crossings along each normal."""
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


def arc_lengths(points: np.ndarray) -> np.ndarray:
    """Cumulative arc length (K,) along a polyline (K, D), starting at 0 (its units)."""
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


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


def extract_centreline(
    prob: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    *,
    view: str = "?",
    step_px: float = 1.0,
    width_level: float = THRESHOLD,
) -> Centreline2D:
    """Centreline and widths of the vessel from ``start`` to ``end`` (crop px) in ``prob``.

    Widths are measured between the ``width_level`` crossings of the probability: 0.5 by
    default; a segmenter whose probabilities are biased wide or narrow at the edge carries
    a level calibrated on the validation split (tools/calibrate_width_level.py).

    Raises InputError naming the view when the vessel is not found at an end point or the
    segmentation does not connect start and end.
    """
    prob = np.asarray(prob, dtype=np.float64)
    W = prob.shape[1]
    dist = ndimage.distance_transform_edt(prob >= THRESHOLD)
    s = _snap(prob, dist, np.asarray(start, dtype=np.float64), view, "start")
    e = _snap(prob, dist, np.asarray(end, dtype=np.float64), view, "end")
    graph = _grid_graph(_cost(prob, dist))
    src, dst = s[0] * W + s[1], e[0] * W + e[1]
    _, pred = dijkstra(graph, directed=False, indices=src, return_predecessors=True)
    if pred[dst] < 0 and dst != src:
        raise InputError("the segmentation does not connect start and end", field=f"view {view}")
    path = [dst]
    while path[-1] != src:
        path.append(int(pred[path[-1]]))
    path.reverse()
    yx = np.array([(p // W, p % W) for p in path], dtype=np.float64)
    off = float(np.mean(prob[yx[:, 0].astype(int), yx[:, 1].astype(int)] < THRESHOLD))
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
    t = np.gradient(xy, axis=0)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    normals = np.column_stack([-t[:, 1], t[:, 0]])
    left, right = _edges(prob, xy, normals, width_level)
    # Near the ends (within a half-width, or on an extension beyond the segmentation) the
    # normals run along the mask's end, where the edges are not the lumen's: hold the
    # width and the centring offset measured just outside that zone.
    half = 0.5 * float(np.median(left + right)) + 1.0
    zones = (max(half, ext_start + 1.0), max(half, ext_end + 1.0))
    widths = _hold_ends(left + right, xy, zones)
    offset = _hold_ends(0.5 * (right - left), xy, zones)
    xy = _straighten_ends(xy + offset[:, None] * normals, zones)
    return Centreline2D(points=xy, widths=widths, off_vessel_share=off)
