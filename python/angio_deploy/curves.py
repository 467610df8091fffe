"""Polyline geometry that every layer needs: arc length and rotation-minimising frames.

One home for each (issue 15): the 2D centreline stage, QCA, the synthetic anatomy and its
truth measure arc length with :func:`arc_lengths`; the tube mesher's numpy twin
(:mod:`angio_deploy.kernels._numpy.tube`, whose C++ counterpart is csrc/tube.cpp) and the
synthetic cross-sections transport normals with :func:`rotation_minimising_normals`; the
twin and the synthetic truth's rings take a tube's frames from :func:`tube_frames`, and the
twin's path lengths its fallback normal from :func:`initial_normal`.

It imports nothing from the package, so it sits below ``kernels`` and ``geometry`` and
any module may use it without an import cycle. The frame transport works on plain Python
floats, operation for operation as the C++ does it, because the twin must match the
native core bit for bit and the synthetic data must stay bit-identical per seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Vec3 = tuple[float, float, float]


def arc_lengths(points: np.ndarray) -> np.ndarray:
    """Cumulative arc length (K,) along a polyline (K, D), 0 at the first point.

    In the points' units (px for image polylines, mm for world ones).
    """
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


def _normalise(x: float, y: float, z: float) -> Vec3:
    n = math.sqrt(x * x + y * y + z * z)
    return x / n, y / n, z / n


def rotation_minimising_normals(
    points: Sequence[Sequence[float]],
    tangents: Sequence[Sequence[float]],
    first_normal: Sequence[float],
    *,
    renormalise: bool = True,
) -> list[Vec3]:
    """Normals transported along a polyline without twist (double reflection, Wang et al.
    2008): one unit normal per point, the first ``first_normal``.

    ``points`` (M x 3, any length unit) and unit ``tangents`` (M x 3) are sequences of
    Python floats (``ndarray.tolist()``); ``first_normal`` must be a unit vector
    perpendicular to the first tangent. Each step reflects the previous normal and tangent
    in the plane bisecting the chord, then in the plane that takes the reflected tangent
    onto the next one; a zero chord or an already matching tangent skips its reflection.
    ``renormalise``: project each new normal off its tangent and normalise it, so rounding
    cannot drift (the tube mesher); without it the raw double-reflection result, for a
    caller that interpolates and normalises afterwards (the synthetic cross-sections).
    """
    R: list[Vec3] = [(float(first_normal[0]), float(first_normal[1]), float(first_normal[2]))]
    for i in range(len(points) - 1):
        r = R[i]
        t = tangents[i]
        p, q = points[i], points[i + 1]
        v1 = (q[0] - p[0], q[1] - p[1], q[2] - p[2])
        c1 = v1[0] * v1[0] + v1[1] * v1[1] + v1[2] * v1[2]
        if c1 > 0.0:
            k = 2.0 / c1 * (v1[0] * r[0] + v1[1] * r[1] + v1[2] * r[2])
            rL = (r[0] - k * v1[0], r[1] - k * v1[1], r[2] - k * v1[2])
            k = 2.0 / c1 * (v1[0] * t[0] + v1[1] * t[1] + v1[2] * t[2])
            tL = (t[0] - k * v1[0], t[1] - k * v1[1], t[2] - k * v1[2])
        else:
            rL, tL = r, (t[0], t[1], t[2])
        tn = tangents[i + 1]
        v2 = (tn[0] - tL[0], tn[1] - tL[1], tn[2] - tL[2])
        c2 = v2[0] * v2[0] + v2[1] * v2[1] + v2[2] * v2[2]
        if c2 > 0.0:
            k = 2.0 / c2 * (v2[0] * rL[0] + v2[1] * rL[1] + v2[2] * rL[2])
            rn = (rL[0] - k * v2[0], rL[1] - k * v2[1], rL[2] - k * v2[2])
        else:
            rn = rL
        if renormalise:
            d = rn[0] * tn[0] + rn[1] * tn[1] + rn[2] * tn[2]
            rn = _normalise(rn[0] - d * tn[0], rn[1] - d * tn[1], rn[2] - d * tn[2])
        R.append(rn)
    return R


def _tangents(c: list[list[float]]) -> list[Vec3]:
    """Central-difference unit tangents, one-sided at the ends.

    Repeated centre points give no direction: such a tangent takes the previous one (the
    first valid one at the start; +z when the whole centreline is a single point).
    """
    N = len(c)
    raw: list[Vec3 | None] = []
    for i in range(N):
        a = c[i - 1] if i > 0 else c[i]
        b = c[i + 1] if i < N - 1 else c[i]
        x, y, z = b[0] - a[0], b[1] - a[1], b[2] - a[2]
        n = math.sqrt(x * x + y * y + z * z)
        raw.append((x / n, y / n, z / n) if n > 0.0 else None)
    prev = next((t for t in raw if t is not None), (0.0, 0.0, 1.0))
    out = []
    for t in raw:
        prev = prev if t is None else t
        out.append(prev)
    return out


def initial_normal(t: Sequence[float]) -> Vec3:
    """A unit normal to the unit tangent ``t``: the world axis least aligned with it (the
    first one on ties), made orthogonal. The C++ core's rule (csrc/linalg.hpp)."""
    ax = [abs(t[0]), abs(t[1]), abs(t[2])]
    k = 0
    if ax[1] < ax[k]:
        k = 1
    if ax[2] < ax[k]:
        k = 2
    e = [0.0, 0.0, 0.0]
    e[k] = 1.0
    d = e[0] * t[0] + e[1] * t[1] + e[2] * t[2]
    return _normalise(e[0] - d * t[0], e[1] - d * t[1], e[2] - d * t[2])


#: A reference direction shorter than this once made orthogonal to the first tangent is
#: degenerate (nearly along the vessel): the frame starts from :func:`initial_normal`.
MIN_REFERENCE_NORM = 1e-3


def _start_normal(t: Vec3, ref: Sequence[float]) -> Vec3:
    # The reference made orthogonal to the tangent; the axis rule when that degenerates.
    rx, ry, rz = float(ref[0]), float(ref[1]), float(ref[2])
    d = rx * t[0] + ry * t[1] + rz * t[2]
    x, y, z = rx - d * t[0], ry - d * t[1], rz - d * t[2]
    n = math.sqrt(x * x + y * y + z * z)
    if n > MIN_REFERENCE_NORM:
        return x / n, y / n, z / n
    return initial_normal(t)


def tube_frames(
    centres: np.ndarray, reference: Sequence[float] = (0.0, 0.0, 0.0)
) -> tuple[list[Vec3], list[Vec3], list[Vec3]]:
    """Tangents, normals r and binormals s = t x r along a centreline (N, 3), as lists.

    The first normal is ``reference`` (any length unit, e.g. view A's viewing direction)
    made orthogonal to the first tangent (when that is not degenerate), else
    :func:`initial_normal`; then rotation-minimising (:func:`rotation_minimising_normals`,
    renormalised each step). The tube mesher's frames, operation for operation."""
    c = centres.tolist()
    T = _tangents(c)
    R = rotation_minimising_normals(c, T, _start_normal(T[0], reference))
    S = []
    for t, r in zip(T, R, strict=True):
        S.append((t[1] * r[2] - t[2] * r[1], t[2] * r[0] - t[0] * r[2], t[0] * r[1] - t[1] * r[0]))
    return T, R, S
