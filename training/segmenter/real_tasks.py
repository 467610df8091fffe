"""Segment-of-interest tasks from real full-tree vessel masks (numpy/scipy/scikit-image).

A real angiogram with a hand-traced mask of the whole coronary tree (e.g.
``../shared/data/real_seg``) becomes many SOI tasks, clicked the way a clinician clicks:

1. The mask's centreline is its skeleton (scikit-image ``skeletonize``), with spurs shorter
   than :data:`SPUR_PX` pruned (tracing noise, not vessels).
2. A start pixel is drawn on the skeleton where the vessel is at least
   :data:`MIN_END_RADIUS_PX` in radius; the end is drawn among the skeleton pixels whose
   distance *along the skeleton* (8-connected geodesic, px) from the start lies in
   ``[min_len_px, max_len_px]`` (40-200 px by default) and that are as wide. The path is
   the shortest skeleton path between them, so it passes bifurcations and crossings as the
   tree does.
3. The truth is the vessel pixels along that path: every mask pixel belongs to its nearest
   skeleton pixel (Euclidean; ties broken by scipy's distance transform), and a pixel is in
   the task's truth when that skeleton pixel is on the path.

Tasks are deterministic per (image id, seed). Units: image pixels, (u, v) = (column, row).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Spurs (skeleton branches ending in a free end) shorter than this are pruned (px).
SPUR_PX = 8
#: A click is only placed where the vessel's radius (distance to the mask edge) is at
#: least this (px): a clinician does not pick a 1-pixel twig as a segment of interest.
MIN_END_RADIUS_PX = 1.5
#: Clicks are kept this far from the image border (px).
BORDER_PX = 6

#: The fixed split of ../shared/data/real_seg by image id: 1-30 may be trained on, 31-40
#: are validation and are never trained on.
TRAIN_IDS = tuple(range(1, 31))
VAL_IDS = tuple(range(31, 41))
#: Tasks per image of the benchmark (the first N of any longer draw with the same seed).
BENCH_TASKS_PER_IMAGE = 8

_NB8 = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


@dataclass(frozen=True)
class RealTask:
    """One SOI task on a real image: clicks (u, v) px, the skeleton path (K, 2) [u, v]
    from start to end, its length along the skeleton (px), and the truth mask (H, W)."""

    image_id: str
    index: int
    start: np.ndarray
    end: np.ndarray
    path: np.ndarray
    length_px: float
    truth: np.ndarray


def _neighbours(skel: np.ndarray) -> np.ndarray:
    k = np.ones((3, 3), dtype=np.int32)
    k[1, 1] = 0
    return ndimage.convolve(skel.astype(np.int32), k, mode="constant") * skel


def _removable(skel: np.ndarray, q: tuple[int, int], branch: list) -> bool:
    """Whether pixel ``q``'s skeleton neighbours outside ``branch`` stay one 8-connected
    group within its 3x3 window once ``q`` (and the branch) are gone."""
    y, x = q
    win = np.zeros((3, 3), dtype=bool)
    for dy, dx in _NB8:
        p = (y + dy, x + dx)
        if 0 <= p[0] < skel.shape[0] and 0 <= p[1] < skel.shape[1]:
            win[dy + 1, dx + 1] = skel[p] and p not in branch
    _, n = ndimage.label(win, structure=np.ones((3, 3)))
    return n <= 1


def prune_spurs(skel: np.ndarray, spur_px: int = SPUR_PX) -> np.ndarray:
    """Remove skeleton branches that end freely and are shorter than ``spur_px``; a branch
    is walked from its end pixel until a junction (3+ neighbours)."""
    skel = skel.copy().astype(bool)
    H, W = skel.shape
    for _ in range(3):
        nb = _neighbours(skel)
        ends = np.argwhere(skel & (nb == 1))
        removed = False
        for y, x in ends:
            branch = [(y, x)]
            prev = None
            cur = (y, x)
            reached_junction = False
            while len(branch) <= spur_px:
                nxt = []
                for dy, dx in _NB8:
                    q = (cur[0] + dy, cur[1] + dx)
                    inside = 0 <= q[0] < H and 0 <= q[1] < W
                    if inside and skel[q] and q not in (prev, cur) and q not in branch:
                        nxt.append(q)
                if len(nxt) != 1:
                    reached_junction = len(nxt) > 1
                    break
                if nb[nxt[0]] >= 3:
                    reached_junction = True
                    # The spur's last pixel may touch the vessel diagonally and itself
                    # count 3 neighbours: it goes too when the vessel stays connected.
                    if _removable(skel, nxt[0], branch):
                        branch.append(nxt[0])
                    break
                prev, cur = cur, nxt[0]
                branch.append(cur)
            if reached_junction and len(branch) < spur_px:
                for q in branch:
                    skel[q] = False
                removed = True
        if not removed:
            break
    return skel


def skeleton_of(mask: np.ndarray) -> np.ndarray:
    """Pruned skeleton (H, W) bool of a binary vessel mask."""
    from skimage.morphology import skeletonize

    return prune_spurs(skeletonize(np.asarray(mask, dtype=bool)))


def _geodesic(skel: np.ndarray, src: tuple[int, int]) -> tuple[dict, dict]:
    """Dijkstra along 8-connected skeleton pixels from ``src``: distances and parents."""
    H, W = skel.shape
    dist = {src: 0.0}
    parent: dict = {src: None}
    heap = [(0.0, src)]
    while heap:
        d, p = heapq.heappop(heap)
        if d > dist[p]:
            continue
        for dy, dx in _NB8:
            q = (p[0] + dy, p[1] + dx)
            if not (0 <= q[0] < H and 0 <= q[1] < W) or not skel[q]:
                continue
            nd = d + (1.4142135623730951 if dy and dx else 1.0)
            if nd < dist.get(q, np.inf):
                dist[q] = nd
                parent[q] = p
                heapq.heappush(heap, (nd, q))
    return dist, parent


def make_tasks(
    mask: np.ndarray,
    image_id: str,
    *,
    n_tasks: int = 8,
    seed: int = 0,
    min_len_px: float = 40.0,
    max_len_px: float = 200.0,
    max_tries: int = 200,
) -> list[RealTask]:
    """Up to ``n_tasks`` SOI tasks on one full-tree mask (H, W), deterministic per
    (``image_id``, ``seed``). Fewer come back when the tree has too few long vessels."""
    m = np.asarray(mask) > 0
    H, W = m.shape
    skel = skeleton_of(m)
    radius = ndimage.distance_transform_edt(m)
    # Each vessel pixel's nearest skeleton pixel.
    _, (iy, ix) = ndimage.distance_transform_edt(~skel, return_indices=True)
    owner = iy * W + ix
    yy, xx = np.nonzero(skel)
    inside = (yy >= BORDER_PX) & (yy < H - BORDER_PX) & (xx >= BORDER_PX) & (xx < W - BORDER_PX)
    wide = radius[yy, xx] >= MIN_END_RADIUS_PX
    cand = np.flatnonzero(inside & wide)
    rng = np.random.default_rng([int.from_bytes(image_id.encode()[:8], "little"), seed])
    tasks: list[RealTask] = []
    used_starts: list[np.ndarray] = []
    for _ in range(max_tries):
        if len(tasks) >= n_tasks or len(cand) == 0:
            break
        k = int(rng.choice(cand))
        src = (int(yy[k]), int(xx[k]))
        # Spread tasks over the tree: no two starts within 15 px.
        if any(np.hypot(*(np.array(src) - s)) < 15 for s in used_starts):
            continue
        dist, parent = _geodesic(skel, src)
        ends = [
            q
            for q, d in dist.items()
            if min_len_px <= d <= max_len_px
            and radius[q] >= MIN_END_RADIUS_PX
            and BORDER_PX <= q[0] < H - BORDER_PX
            and BORDER_PX <= q[1] < W - BORDER_PX
        ]
        if not ends:
            continue
        dst = ends[int(rng.integers(len(ends)))]
        path = [dst]
        while parent[path[-1]] is not None:
            path.append(parent[path[-1]])
        path.reverse()
        pyx = np.array(path)
        on_path = np.zeros(H * W, dtype=bool)
        on_path[pyx[:, 0] * W + pyx[:, 1]] = True
        truth = m & on_path[owner]
        uv = pyx[:, ::-1].astype(np.float64)
        tasks.append(
            RealTask(
                image_id=image_id,
                index=len(tasks),
                start=uv[0].copy(),
                end=uv[-1].copy(),
                path=uv,
                length_px=float(dist[dst]),
                truth=truth,
            )
        )
        used_starts.append(np.array(src))
    return tasks
