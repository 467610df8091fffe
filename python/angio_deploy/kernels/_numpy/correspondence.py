"""Centreline correspondence: epipolar dynamic programming, sub-pixel matching, triangulation.

Algorithm (identical in csrc/correspondence.cpp):

1. Fundamental matrix F = [e2]x P2 P1^+ with P1^+ = P1^T (P1 P1^T)^-1, e2 = P2 C1.
2. Cost C[i, j] = mean of the two point-to-epipolar-line distances (pixels) between
   point i of line 1 and point j of line 2.
3. Monotone path from (0, 0) to (M1-1, M2-1) minimising the summed cost (dynamic time
   warping; steps diagonal, up, left; ties prefer diagonal, then up, then left).
4. For every point i of line 1, its partner on line 2 is where its epipolar line
   crosses line 2 near the matched indices (segments j_lo-2 .. j_hi+1), when it crosses
   at an angle whose sine is at least MIN_CROSSING_SINE; otherwise (or when the point is
   the epipole, which has no epipolar line) the mean of the matched points. The first
   and last points are matched to the first and last points (the clinician's start and
   end correspondences).
5. Each pair is triangulated (linear + Gauss-Newton) and the resulting 3D polyline is
   resampled to n_out points evenly spaced in arc length.
"""

from __future__ import annotations

import math

import numpy as np

from .projection import camera_centre
from .triangulation import triangulate

MIN_CROSSING_SINE = 0.2


def fundamental(P1: np.ndarray, P2: np.ndarray) -> np.ndarray:
    """Fundamental matrix mapping view-1 pixels to epipolar lines in view 2 (3, 3)."""
    # G = P1 P1^T (3x3), then P1^+ = P1^T G^-1 (4x3).
    G = np.empty((3, 3))
    for a in range(3):
        for b in range(3):
            s = 0.0
            for k in range(4):
                s = s + P1[a, k] * P1[b, k]
            G[a, b] = s
    from .projection import inverse3

    Gi = inverse3(G)
    Pp = np.empty((4, 3))
    for a in range(4):
        for b in range(3):
            s = 0.0
            for k in range(3):
                s = s + P1[k, a] * Gi[k, b]
            Pp[a, b] = s
    C1 = camera_centre(P1)
    e = [P2[r, 0] * C1[0] + P2[r, 1] * C1[1] + P2[r, 2] * C1[2] + P2[r, 3] for r in range(3)]
    # Q = P2 P1^+ (3x3)
    Q = np.empty((3, 3))
    for a in range(3):
        for b in range(3):
            s = 0.0
            for k in range(4):
                s = s + P2[a, k] * Pp[k, b]
            Q[a, b] = s
    F = np.empty((3, 3))
    for b in range(3):
        F[0, b] = e[1] * Q[2, b] - e[2] * Q[1, b]
        F[1, b] = e[2] * Q[0, b] - e[0] * Q[2, b]
        F[2, b] = e[0] * Q[1, b] - e[1] * Q[0, b]
    return F


def epipolar_cost(F: np.ndarray, line1: np.ndarray, line2: np.ndarray) -> np.ndarray:
    """Symmetric epipolar distance (pixels) between every pair of points (M1, M2)."""
    u1, v1 = line1[:, 0][:, None], line1[:, 1][:, None]
    u2, v2 = line2[:, 0][None, :], line2[:, 1][None, :]
    # Epipolar lines of line-1 points in view 2.
    l0 = F[0, 0] * u1 + F[0, 1] * v1 + F[0, 2]
    l1 = F[1, 0] * u1 + F[1, 1] * v1 + F[1, 2]
    l2 = F[2, 0] * u1 + F[2, 1] * v1 + F[2, 2]
    # Epipolar lines of line-2 points in view 1.
    m0 = F[0, 0] * u2 + F[1, 0] * v2 + F[2, 0]
    m1 = F[0, 1] * u2 + F[1, 1] * v2 + F[2, 1]
    m2 = F[0, 2] * u2 + F[1, 2] * v2 + F[2, 2]
    # A pixel at the epipole has no epipolar line: its costs become inf/NaN, as in C++.
    with np.errstate(divide="ignore", invalid="ignore"):
        d2 = np.abs(l0 * u2 + l1 * v2 + l2) / np.sqrt(l0 * l0 + l1 * l1)
        d1 = np.abs(m0 * u1 + m1 * v1 + m2) / np.sqrt(m0 * m0 + m1 * m1)
    return 0.5 * (d2 + d1)


def monotone_path(C: np.ndarray) -> np.ndarray:
    """Minimum-cost monotone path through cost matrix C (M1, M2) -> index pairs (K, 2)."""
    M1, M2 = C.shape
    c = C.tolist()
    D = [[0.0] * M2 for _ in range(M1)]
    step = [[0] * M2 for _ in range(M1)]  # 0 diagonal, 1 up (i-1), 2 left (j-1)
    D[0][0] = c[0][0]
    for j in range(1, M2):
        D[0][j] = c[0][j] + D[0][j - 1]
        step[0][j] = 2
    for i in range(1, M1):
        D[i][0] = c[i][0] + D[i - 1][0]
        step[i][0] = 1
        prev, cur, ci, si = D[i - 1], D[i], c[i], step[i]
        for j in range(1, M2):
            best = prev[j - 1]
            s = 0
            if prev[j] < best:
                best = prev[j]
                s = 1
            if cur[j - 1] < best:
                best = cur[j - 1]
                s = 2
            cur[j] = ci[j] + best
            si[j] = s
    path = []
    i, j = M1 - 1, M2 - 1
    while True:
        path.append((i, j))
        if i == 0 and j == 0:
            break
        s = step[i][j]
        if s == 0:
            i, j = i - 1, j - 1
        elif s == 1:
            i = i - 1
        else:
            j = j - 1
    path.reverse()
    return np.asarray(path, dtype=np.int64)


def _partner(F, x1, line2, j_lo, j_hi):
    """Sub-pixel partner on line 2 of point x1 of line 1 (see module docstring, step 4)."""
    M2 = line2.shape[0]
    qu = 0.0
    qv = 0.0
    for j in range(j_lo, j_hi + 1):
        qu = qu + line2[j, 0]
        qv = qv + line2[j, 1]
    cnt = float(j_hi - j_lo + 1)
    qu = qu / cnt
    qv = qv / cnt
    u, v = float(x1[0]), float(x1[1])
    l0 = F[0, 0] * u + F[0, 1] * v + F[0, 2]
    l1 = F[1, 0] * u + F[1, 1] * v + F[1, 2]
    l2 = F[2, 0] * u + F[2, 1] * v + F[2, 2]
    ln = math.sqrt(l0 * l0 + l1 * l1)
    best_u, best_v = qu, qv
    best_d = math.inf
    k_lo = max(0, j_lo - 2)
    k_hi = min(M2 - 2, j_hi + 1)
    if not ln > 0.0:
        # A pixel at the epipole has no epipolar line: keep the matched mean.
        k_hi = k_lo - 1
    for k in range(k_lo, k_hi + 1):
        au, av = float(line2[k, 0]), float(line2[k, 1])
        bu, bv = float(line2[k + 1, 0]), float(line2[k + 1, 1])
        sa = (l0 * au + l1 * av + l2) / ln
        sb = (l0 * bu + l1 * bv + l2) / ln
        if sa * sb > 0.0 or sa == sb:
            continue
        su, sv = bu - au, bv - av
        seg = math.sqrt(su * su + sv * sv)
        # |sin| of the crossing angle = |(signed distance change)| / segment length.
        if abs(sa - sb) < MIN_CROSSING_SINE * seg:
            continue
        t = sa / (sa - sb)
        pu = au + t * su
        pv = av + t * sv
        du, dv = pu - qu, pv - qv
        d = du * du + dv * dv
        if d < best_d:
            best_d = d
            best_u, best_v = pu, pv
    return best_u, best_v


def resample_polyline(points: np.ndarray, n_out: int) -> np.ndarray:
    """Resample a polyline (K, D) to n_out points evenly spaced in arc length."""
    K = points.shape[0]
    s = [0.0] * K
    for k in range(1, K):
        d = 0.0
        for c in range(points.shape[1]):
            diff = float(points[k, c] - points[k - 1, c])
            d = d + diff * diff
        s[k] = s[k - 1] + math.sqrt(d)
    total = s[-1]
    out = np.empty((n_out, points.shape[1]))
    m = 0
    for q in range(n_out):
        if q == n_out - 1:
            out[q] = points[K - 1]
            break
        t = total * q / (n_out - 1)
        while m < K - 2 and s[m + 1] <= t:
            m += 1
        seg = s[m + 1] - s[m]
        f = (t - s[m]) / seg if seg > 0.0 else 0.0
        for c in range(points.shape[1]):
            a = float(points[m, c])
            b = float(points[m + 1, c])
            out[q, c] = a + f * (b - a)
    return out


def correspond_centrelines(
    P1: np.ndarray,
    P2: np.ndarray,
    line1: np.ndarray,
    line2: np.ndarray,
    n_out: int,
    iterations: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Match two 2D centrelines (M1, 2), (M2, 2) px -> 3D centreline (n_out, 3) mm.

    Also returns the partner on line 2 of every point of line 1 (M1, 2) px.
    """
    F = fundamental(P1, P2)
    C = epipolar_cost(F, line1, line2)
    path = monotone_path(C)
    M1, M2 = line1.shape[0], line2.shape[0]
    j_lo = [M2] * M1
    j_hi = [-1] * M1
    for i, j in path.tolist():
        j_lo[i] = min(j_lo[i], j)
        j_hi[i] = max(j_hi[i], j)
    partners = np.empty((M1, 2))
    for i in range(M1):
        if i == 0:
            partners[i] = line2[0]
        elif i == M1 - 1:
            partners[i] = line2[M2 - 1]
        else:
            partners[i] = _partner(F, line1[i], line2, j_lo[i], j_hi[i])
    X, _ = triangulate(P1, P2, line1, partners, iterations)
    return resample_polyline(X, n_out), partners
