"""X-ray path lengths through a tube of elliptic cylinder segments, per image pixel.

The tube through centres c_0 .. c_{M-1} (mm) is the union of the segments between
consecutive centres; zero-length segments are dropped first. Segment k (of the remaining
ones) is an elliptic cylinder around its axis, in the local frame (m, n, w):

- w = (c_{k+1} - c_k) / L, L = |c_{k+1} - c_k|, the axis;
- m, the major direction: the two end major_dir vectors (the second flipped when they
  point apart, an ellipse axis has no sign) summed, made perpendicular to w, normalised;
  when that vanishes, the world axis least aligned with w made perpendicular to it (the
  tube mesh's initial-normal rule); n = w x m;
- semi-axes a = (a_k + a_{k+1}) * 0.5 along m, b = (b_k + b_{k+1}) * 0.5 along n;
- clipped by the planes through c_k and c_{k+1} whose normals are the normalised sum of
  the unit directions of the two segments meeting there (the end segments' outer planes,
  and joints turning by more than ~179.9 degrees, |w_a + w_b| <= 1e-3, use the segment's
  own w), so consecutive segments share their joint plane and tile a tube whose curvature
  radius exceeds its radius.

A ray X(t) = C + t d from the source C (|d| = 1, t in mm, only t >= 0: the part behind
the source is not on the X-ray path; the path is not cut at the detector) meets segment k
in an interval of t: the elliptic-cylinder quadratic, solved around the ray point nearest
the segment midpoint (t0 = (c_mid - C) . d, s = t - t0, which keeps the squared terms
small), intersected with the two end half-spaces and with s >= -t0. The pixel value is the
sum of the interval lengths over segments, k ascending; with supersample s, the s x s
sub-rays at u + (i + 0.5) / s - 0.5, v + (j + 0.5) / s - 0.5 (j outer, i inner) are added
per segment and the image is divided by s * s at the end. Ray directions are the
``backproject`` ones: M^-1 (u, v, 1) normalised (positive depth).

Only the rays that can meet a segment are evaluated. The clipped segment is the convex
hull of its two end caps (the plane sections of the cylinder); each cap lies in the
parallelogram c +- U +- V of its conjugate semi-axes U = a (m - (N.m / N.w) w),
V = b (n - (N.n / N.w) w), so the 2D convex hull of those 8 corners, projected, bounds
the segment's footprint. For every pixel row whose sub-ray band v in [py + o_0,
py + o_{s-1}] meets it, the hull's u-extent over the band gives the pixels evaluated. A
segment whose 8 corners all have depth <= 0 is skipped; one with some corners at or
behind the source plane (or not finite when projected) evaluates the whole image. The
bound only saves work: rays outside it have zero chord.

Same arithmetic, operation for operation, as csrc/pathlength.cpp; ``_max``/``_min``
reproduce std::max/std::min exactly (NaN included).
"""

from __future__ import annotations

import math

import numpy as np

from .projection import _project_one, inverse3, matvec3
from .tube import _initial_normal

# Joint normals |w_a + w_b| below this (turns beyond ~179.9 degrees) are not used.
JOINT_MIN_NORM = 1e-3
# A summed major direction shorter than this after removing its axis component is
# replaced by the initial-normal rule.
MAJOR_MIN_NORM = 1e-9


def _max(a, b):
    """std::max(a, b): (a < b) ? b : a."""
    return np.where(a < b, b, a)


def _min(a, b):
    """std::min(a, b): (b < a) ? b : a."""
    return np.where(b < a, b, a)


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _segments(
    P, centres, semi_axes, major_dir, width: int, height: int, off_first: float, off_last: float
) -> list[dict]:
    """Per-segment constants (local frame, source offset, end planes, pixel bound)."""
    c = centres.tolist()
    ax = semi_axes.tolist()
    md = major_dir.tolist()
    C = camera_centre_of(P)

    # The segments that have a direction.
    valid = []
    for k in range(len(c) - 1):
        ex = c[k + 1][0] - c[k][0]
        ey = c[k + 1][1] - c[k][1]
        ez = c[k + 1][2] - c[k][2]
        L = math.sqrt(ex * ex + ey * ey + ez * ez)
        if L > 0.0:
            valid.append((k, L, (ex / L, ey / L, ez / L)))

    # Joint plane normals between consecutive valid segments (None: use own direction).
    joints: list[tuple[float, float, float] | None] = [None]
    for j in range(1, len(valid)):
        wa, wb = valid[j - 1][2], valid[j][2]
        sx, sy, sz = wa[0] + wb[0], wa[1] + wb[1], wa[2] + wb[2]
        sn = math.sqrt(sx * sx + sy * sy + sz * sz)
        joints.append((sx / sn, sy / sn, sz / sn) if sn > JOINT_MIN_NORM else None)
    joints.append(None)

    wmax, hmax = float(width - 1), float(height - 1)
    out = []
    for j, (k, L, w) in enumerate(valid):
        N0 = joints[j] if joints[j] is not None else w
        N1 = joints[j + 1] if joints[j + 1] is not None else w
        a = (ax[k][0] + ax[k + 1][0]) * 0.5
        b = (ax[k][1] + ax[k + 1][1]) * 0.5
        m0, m1 = md[k], md[k + 1]
        sg = -1.0 if _dot(m0, m1) < 0.0 else 1.0
        sx, sy, sz = m0[0] + sg * m1[0], m0[1] + sg * m1[1], m0[2] + sg * m1[2]
        dp = sx * w[0] + sy * w[1] + sz * w[2]
        px, py, pz = sx - dp * w[0], sy - dp * w[1], sz - dp * w[2]
        pn = math.sqrt(px * px + py * py + pz * pz)
        m = (px / pn, py / pn, pz / pn) if pn > MAJOR_MIN_NORM else _initial_normal(w)
        n = (
            w[1] * m[2] - w[2] * m[1],
            w[2] * m[0] - w[0] * m[2],
            w[0] * m[1] - w[1] * m[0],
        )
        c0, c1 = c[k], c[k + 1]
        cm = ((c0[0] + c1[0]) * 0.5, (c0[1] + c1[1]) * 0.5, (c0[2] + c1[2]) * 0.5)
        g = (cm[0] - C[0], cm[1] - C[1], cm[2] - C[2])
        seg = {
            "m": m,
            "n": n,
            "w": w,
            "g": (_dot(g, m), _dot(g, n), _dot(g, w)),
            "ia": 1.0 / a,
            "ib": 1.0 / b,
            "n0": (_dot(N0, m), _dot(N0, n), _dot(N0, w)),
            "n1": (_dot(N1, m), _dot(N1, n), _dot(N1, w)),
            "h": 0.5 * L,
        }

        pts = []
        n_front = 0
        finite = True
        for ce, ne in ((c0, seg["n0"]), (c1, seg["n1"])):
            ku = ne[0] / ne[2]
            kv = ne[1] / ne[2]
            U = [a * (m[i] - ku * w[i]) for i in range(3)]
            V = [b * (n[i] - kv * w[i]) for i in range(3)]
            for su, sv in ((-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)):
                pu, pv, pw = _project_one(
                    P,
                    ce[0] + su * U[0] + sv * V[0],
                    ce[1] + su * U[1] + sv * V[1],
                    ce[2] + su * U[2] + sv * V[2],
                )
                n_front += bool(pw > 0.0)
                finite = finite and math.isfinite(pu) and math.isfinite(pv)
                pts.append((float(pu), float(pv)))
        if n_front == 0:
            continue
        seg["whole"] = not (n_front == 8 and finite)
        y0, y1 = 0.0, hmax
        if not seg["whole"]:
            hull = _hull(pts)
            seg["hull"] = hull
            us = [p[0] for p in hull]
            vs = [p[1] for p in hull]
            if math.ceil(min(us) - off_last) > wmax or math.floor(max(us) - off_first) < 0.0:
                continue
            y0 = max(0.0, math.ceil(min(vs) - off_last))
            y1 = min(hmax, math.floor(max(vs) - off_first))
            if y0 > y1:
                continue
        seg["rows"] = (int(y0), int(y1))
        out.append(seg)
    return out


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _hull(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Convex hull by Andrew's monotone chain, collinear points dropped (counter-clockwise)."""
    pts = sorted(pts)
    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], p) <= 0.0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], p) <= 0.0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _band_extent(hull, va: float, vb: float) -> tuple[float, float] | None:
    """u-extent of the hull within va <= v <= vb: vertices inside, edges' band crossings."""
    found: list[float] = []
    nh = len(hull)
    for k in range(nh):
        pu, pv = hull[k]
        qu, qv = hull[k + 1 if k + 1 < nh else 0]
        if va <= pv <= vb:
            found.append(pu)
        if pv == qv:
            continue
        for c in (va,) if va == vb else (va, vb):
            if (pv <= c <= qv) or (qv <= c <= pv):
                found.append(pu + (c - pv) * (qu - pu) / (qv - pv))
    if not found:
        return None
    lo = hi = found[0]
    for x in found[1:]:
        lo = x if x < lo else lo
        hi = x if hi < x else hi
    return lo, hi


def camera_centre_of(P: np.ndarray) -> tuple[float, float, float]:
    """Source position C = -M^-1 p4 as Python floats (twin: linalg.hpp camera_centre)."""
    Minv = inverse3(P[:, :3])
    cx, cy, cz = matvec3(Minv, P[0, 3], P[1, 3], P[2, 3])
    return (-float(cx), -float(cy), -float(cz))


def _chords(seg: dict, ex, ey, ez):
    """Length (mm) of each ray (unit world directions ex, ey, ez) inside one segment."""
    m, n, w = seg["m"], seg["n"], seg["w"]
    gx, gy, gz = seg["g"]
    ia, ib, h = seg["ia"], seg["ib"], seg["h"]
    n0, n1 = seg["n0"], seg["n1"]
    dx = ex * m[0] + ey * m[1] + ez * m[2]
    dy = ex * n[0] + ey * n[1] + ez * n[2]
    dz = ex * w[0] + ey * w[1] + ez * w[2]
    t0 = gx * dx + gy * dy + gz * dz
    ox = t0 * dx - gx
    oy = t0 * dy - gy
    oz = t0 * dz - gz
    px = ox * ia
    qx = dx * ia
    py = oy * ib
    qy = dy * ib
    A = qx * qx + qy * qy
    B = px * qx + py * qy
    Cc = px * px + py * py - 1.0
    lo = -t0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        disc = B * B - A * Cc
        pos = A > 0.0
        ok = np.where(pos, disc > 0.0, Cc < 0.0)
        sq = np.sqrt(np.where(pos & ok, disc, 0.0))
        Ad = np.where(pos, A, 1.0)
        lo = np.where(pos, _max(lo, (-B - sq) / Ad), lo)
        hi = np.where(pos, (-B + sq) / Ad, math.inf)

        f0 = ox * n0[0] + oy * n0[1] + (oz + h) * n0[2]
        g0 = dx * n0[0] + dy * n0[1] + dz * n0[2]
        q0 = -f0 / np.where(g0 == 0.0, 1.0, g0)
        lo = np.where(g0 > 0.0, _max(lo, q0), lo)
        hi = np.where(g0 < 0.0, _min(hi, q0), hi)
        ok &= ~((g0 == 0.0) & (f0 < 0.0))

        f1 = ox * n1[0] + oy * n1[1] + (oz - h) * n1[2]
        g1 = dx * n1[0] + dy * n1[1] + dz * n1[2]
        q1 = -f1 / np.where(g1 == 0.0, 1.0, g1)
        hi = np.where(g1 > 0.0, _min(hi, q1), hi)
        lo = np.where(g1 < 0.0, _max(lo, q1), lo)
        ok &= ~((g1 == 0.0) & (f1 > 0.0))

        return np.where(ok & (hi > lo), hi - lo, 0.0)


def tube_path_lengths(
    P: np.ndarray,
    centres: np.ndarray,
    semi_axes: np.ndarray,
    major_dir: np.ndarray,
    width: int,
    height: int,
    supersample: int,
) -> np.ndarray:
    """Path length (mm) of each pixel's ray inside the tube -> (height, width) float64.

    centres (M, 3) mm, semi_axes (M, 2) mm, unit major_dir (M, 3); see the module text.
    """
    img = np.zeros((height, width), dtype=np.float64)
    Minv = inverse3(P[:, :3])
    s = supersample
    offs = [(i + 0.5) / s - 0.5 for i in range(s)]
    off_first, off_last = offs[0], offs[-1]
    wmax = float(width - 1)
    segs = _segments(P, centres, semi_axes, major_dir, width, height, off_first, off_last)
    for seg in segs:
        y0, y1 = seg["rows"]
        # Pixel columns [x0, x1] per row (x0 > x1: none), then one masked box.
        xs = []
        for py in range(y0, y1 + 1):
            if seg["whole"]:
                xs.append((0.0, wmax))
                continue
            ext = _band_extent(seg["hull"], py + off_first, py + off_last)
            if ext is None:
                xs.append((1.0, 0.0))
                continue
            xs.append(
                (max(0.0, math.ceil(ext[0] - off_last)), min(wmax, math.floor(ext[1] - off_first)))
            )
        lo = np.array([x[0] for x in xs])[:, None]
        hi = np.array([x[1] for x in xs])[:, None]
        if not np.any(lo <= hi):
            continue
        x0 = int(np.min(lo[lo <= hi]))
        x1 = int(np.max(hi[lo <= hi]))
        pu = np.arange(x0, x1 + 1, dtype=np.float64)[None, :]
        pv = np.arange(y0, y1 + 1, dtype=np.float64)[:, None]
        inside = (pu >= lo) & (pu <= hi)
        view = img[y0 : y1 + 1, x0 : x1 + 1]
        for j in range(s):
            v = pv + offs[j]
            for i in range(s):
                u = pu + offs[i]
                dx, dy, dz = matvec3(Minv, u, v, 1.0)
                nrm = np.sqrt(dx * dx + dy * dy + dz * dz)
                view += np.where(inside, _chords(seg, dx / nrm, dy / nrm, dz / nrm), 0.0)
    if s > 1:
        img /= float(s * s)
    return img
