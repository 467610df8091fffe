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

The ray of a (sub-)pixel (u, v) is the ``backproject`` one: X(tau) = C + tau D from the
source C with D = M^-1 (u, v, 1) (M = P[:, :3]), kept unnormalised so that tau is the
projective depth (positive in front of the source). Only tau >= 0 counts (the part behind
the source is not on the X-ray path); the path is not cut at the detector. In segment k's
frame, centred on its midpoint, D and the ray point o at the midpoint's depth tau_ref are
affine in u along a row, so each ray costs a few multiply-adds: the elliptic-cylinder
quadratic in sigma = tau - tau_ref (solved near the segment, which keeps its terms
small), intersected with the two end half-spaces (linear in sigma) and with
sigma >= -tau_ref, gives an interval whose length times |D| is the chord in mm (a ray
lying exactly in a joint plane counts for the segment before the joint only). The pixel
value is the sum of the chords over segments, k ascending; with supersample s, the s x s
sub-rays at u + (i + 0.5) / s - 0.5, v + (j + 0.5) / s - 0.5 (j outer, i inner) are added
per segment and the image is divided by s * s at the end.

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

from angio_deploy.curves import initial_normal

from .projection import inverse3, matvec3, project_one

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
    Minv = inverse3(P[:, :3]).tolist()
    col0 = (Minv[0][0], Minv[1][0], Minv[2][0])
    col1 = (Minv[0][1], Minv[1][1], Minv[2][1])
    col2 = (Minv[0][2], Minv[1][2], Minv[2][2])

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
        m = (px / pn, py / pn, pz / pn) if pn > MAJOR_MIN_NORM else initial_normal(w)
        n = (
            w[1] * m[2] - w[2] * m[1],
            w[2] * m[0] - w[0] * m[2],
            w[0] * m[1] - w[1] * m[0],
        )
        c0, c1 = c[k], c[k + 1]
        cm = ((c0[0] + c1[0]) * 0.5, (c0[1] + c1[1]) * 0.5, (c0[2] + c1[2]) * 0.5)
        e = (C[0] - cm[0], C[1] - cm[1], C[2] - cm[2])
        K1 = (_dot(col0, m), _dot(col0, n), _dot(col0, w))
        n0 = (_dot(N0, m), _dot(N0, n), _dot(N0, w))
        n1 = (_dot(N1, m), _dot(N1, n), _dot(N1, w))
        tref = float(P[2, 0] * cm[0] + P[2, 1] * cm[1] + P[2, 2] * cm[2] + P[2, 3])
        ia, ib = 1.0 / a, 1.0 / b
        O1 = (tref * K1[0], tref * K1[1], tref * K1[2])
        seg = {
            "K1": K1,
            "K2": (_dot(col1, m), _dot(col1, n), _dot(col1, w)),
            "K3": (_dot(col2, m), _dot(col2, n), _dot(col2, w)),
            "e": (_dot(e, m), _dot(e, n), _dot(e, w)),
            "tref": tref,
            "ia": ia,
            "ib": ib,
            "n0": n0,
            "n1": n1,
            "h": 0.5 * L,
            "Px1": O1[0] * ia,
            "Py1": O1[1] * ib,
            "Qx1": K1[0] * ia,
            "Qy1": K1[1] * ib,
            "F01": _dot(O1, n0),
            "G01": _dot(K1, n0),
            "F11": _dot(O1, n1),
            "G11": _dot(K1, n1),
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
                pu, pv, pw = project_one(
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


def _chords(seg: dict, v, u):
    """Length (mm) inside one segment of the sub-rays through (u, v) (broadcast arrays).

    The ray is X(tau) = C + tau D, D = M^-1 (u, v, 1) unnormalised (tau is the projective
    depth). In the segment frame, D = K1 u + (K2 v + K3) and the ray point at the
    midpoint's depth tau_ref, o = (C - c_mid) + tau_ref D, are affine in u; the interval
    is found in sigma = tau - tau_ref and the chord is (sigma_hi - sigma_lo) |D|.
    """
    K1, K2, K3, e, tref = seg["K1"], seg["K2"], seg["K3"], seg["e"], seg["tref"]
    ia, ib, h, n0, n1 = seg["ia"], seg["ib"], seg["h"], seg["n0"], seg["n1"]
    # Row constants (u = 0).
    E0x = K2[0] * v + K3[0]
    E0y = K2[1] * v + K3[1]
    E0z = K2[2] * v + K3[2]
    O0x = e[0] + tref * E0x
    O0y = e[1] + tref * E0y
    O0z = e[2] + tref * E0z
    Px0 = O0x * ia
    Py0 = O0y * ib
    Qx0 = E0x * ia
    Qy0 = E0y * ib
    F00 = O0x * n0[0] + O0y * n0[1] + (O0z + h) * n0[2]
    G00 = E0x * n0[0] + E0y * n0[1] + E0z * n0[2]
    F10 = O0x * n1[0] + O0y * n1[1] + (O0z - h) * n1[2]
    G10 = E0x * n1[0] + E0y * n1[1] + E0z * n1[2]
    # Per ray.
    dx = K1[0] * u + E0x
    dy = K1[1] * u + E0y
    dz = K1[2] * u + E0z
    px = seg["Px1"] * u + Px0
    py = seg["Py1"] * u + Py0
    qx = seg["Qx1"] * u + Qx0
    qy = seg["Qy1"] * u + Qy0
    f0 = seg["F01"] * u + F00
    g0 = seg["G01"] * u + G00
    f1 = seg["F11"] * u + F10
    g1 = seg["G11"] * u + G10
    A = qx * qx + qy * qy
    B = px * qx + py * qy
    Cc = px * px + py * py - 1.0
    lo_src = -tref
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        disc = B * B - A * Cc
        pos = A > 0.0
        ok = (pos & (disc > 0.0)) | (~pos & (Cc < 0.0))
        sq = np.sqrt(np.where(pos & ok, disc, 0.0))
        iA = 1.0 / np.where(pos, A, 1.0)
        lo = np.where(pos, _max(lo_src, (-B - sq) * iA), lo_src)
        hi = np.where(pos, (-B + sq) * iA, math.inf)
        q0 = -f0 / np.where(g0 == 0.0, 1.0, g0)
        lo = np.where(g0 > 0.0, _max(lo, q0), lo)
        hi = np.where(g0 < 0.0, _min(hi, q0), hi)
        ok &= ~((g0 == 0.0) & (f0 <= 0.0))  # a ray in a joint plane: the previous segment's
        q1 = -f1 / np.where(g1 == 0.0, 1.0, g1)
        hi = np.where(g1 > 0.0, _min(hi, q1), hi)
        lo = np.where(g1 < 0.0, _max(lo, q1), lo)
        ok &= ~((g1 == 0.0) & (f1 > 0.0))
        nD = np.sqrt(dx * dx + dy * dy + dz * dz)
        return np.where(ok & (hi > lo), (hi - lo) * nD, 0.0)


def tube_path_lengths(
    P: np.ndarray,
    centres: np.ndarray,
    semi_axes: np.ndarray,
    major_dir: np.ndarray,
    width: int,
    height: int,
    supersample: int,
    threads: int = 0,
) -> np.ndarray:
    """Path length (mm) of each pixel's ray inside the tube -> (height, width) float64.

    centres (M, 3) mm, semi_axes (M, 2) mm, unit major_dir (M, 3); see the module text.
    ``threads`` (the native core's worker limit) is accepted and ignored: this twin runs
    in the calling thread.
    """
    img = np.zeros((height, width), dtype=np.float64)
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
                view += np.where(inside, _chords(seg, v, pu + offs[i]), 0.0)
    if s > 1:
        img /= float(s * s)
    return img
