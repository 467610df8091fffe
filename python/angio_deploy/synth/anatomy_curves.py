"""Curve tools for the synthetic coronary tree (world frame: DICOM LPS, mm).

Vessel courses are built coarsely (a steered walk over the epicardium, ~1.5 mm steps),
interpolated by a cubic spline and resampled uniformly in arc length, so every centreline
is C2 between its samples and has no kinks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from angio_deploy.curves import arc_lengths, rotation_minimising_normals

from .anatomy_heart import Heart, unit


def smooth_noise(
    rng: np.random.Generator,
    s: np.ndarray,
    amplitude: float,
    wavelengths_mm: tuple[float, float],
    n_terms: int = 3,
) -> np.ndarray:
    """Smooth zero-mean random function of arc length ``s`` (mm): a sum of ``n_terms``
    sinusoids with wavelengths drawn in ``wavelengths_mm`` and random phases, scaled so its
    peak magnitude is at most ``amplitude``."""
    lam = rng.uniform(*wavelengths_mm, size=n_terms)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n_terms)
    w = rng.uniform(0.5, 1.0, size=n_terms)
    out = np.sin(2.0 * np.pi * np.asarray(s)[..., None] / lam + phase) @ w
    return amplitude * out / w.sum()


def resample_polyline(points: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Resample a dense polyline uniformly in arc length, spacing <= ``spacing_mm``.

    The first and last points are kept exactly.
    """
    s = arc_lengths(points)
    n = max(2, math.ceil(s[-1] / spacing_mm) + 1)
    si = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(si, s, points[:, k]) for k in range(3)], axis=1)


def spline_resample(coarse: np.ndarray, spacing_mm: float, dense_mm: float = 0.1) -> np.ndarray:
    """Cubic-spline through coarse points (chord-length parameter), resampled uniformly.

    The curve passes exactly through every coarse point, in particular the first (a branch
    origin on its parent) and the last (a catheter tip at an ostium).
    """
    u = arc_lengths(coarse)
    keep = np.concatenate([[True], np.diff(u) > 1e-9])
    coarse, u = coarse[keep], u[keep]
    if len(coarse) < 3:
        return resample_polyline(coarse, spacing_mm)
    spline = CubicSpline(u, coarse, axis=0, bc_type="natural")
    n = max(math.ceil(u[-1] / dense_mm) + 1, 8 * len(coarse))
    dense = spline(np.linspace(0.0, u[-1], n))
    return resample_polyline(dense, spacing_mm)


def tangents(points: np.ndarray) -> np.ndarray:
    """Unit tangents (M, 3) by central differences (one-sided at the ends)."""
    return unit(np.gradient(points, axis=0))


def point_at(points: np.ndarray, s_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Point ON the polyline at arc length ``s_mm`` and the unit direction of that segment."""
    s = arc_lengths(points)
    i = int(np.clip(np.searchsorted(s, s_mm, side="right") - 1, 0, len(points) - 2))
    f = (s_mm - s[i]) / (s[i + 1] - s[i])
    seg = points[i + 1] - points[i]
    return points[i] + f * seg, seg / np.linalg.norm(seg)


def strided_rotation_minimising_normals(
    points: np.ndarray, start_normal: np.ndarray, stride: int = 4
) -> np.ndarray:
    """Unit normals (M, 3) perpendicular to the tangent, transported without twist.

    Double-reflection method (Wang et al. 2008,
    :func:`angio_deploy.curves.rotation_minimising_normals`) on every ``stride``-th sample,
    linearly interpolated and re-orthogonalised in between (the frame varies slowly, so
    this is accurate to well below a degree at 0.5 mm spacing).
    """
    tan = tangents(points)
    idx = np.unique(np.concatenate([np.arange(0, len(points), stride), [len(points) - 1]]))
    r0 = start_normal - (start_normal @ tan[0]) * tan[0]
    r = rotation_minimising_normals(
        points[idx].tolist(),
        tan[idx].tolist(),
        (r0 / np.linalg.norm(r0)).tolist(),
        renormalise=False,
    )
    r_arr = np.asarray(r)
    full = np.stack([np.interp(np.arange(len(points)), idx, r_arr[:, k]) for k in range(3)], 1)
    full -= np.sum(full * tan, axis=1, keepdims=True) * tan
    return unit(full)


def hermite(p0: np.ndarray, d0: np.ndarray, p1: np.ndarray, d1: np.ndarray, n: int) -> np.ndarray:
    """Cubic Hermite curve (n, 3) from p0 to p1 with unit end directions d0, d1 (tangent
    magnitudes = chord length, which keeps the curve free of loops)."""
    u = np.linspace(0.0, 1.0, n)[:, None]
    chord = float(np.linalg.norm(p1 - p0))
    h00 = 2 * u**3 - 3 * u**2 + 1
    h10 = u**3 - 2 * u**2 + u
    h01 = -2 * u**3 + 3 * u**2
    h11 = u**3 - u**2
    return h00 * p0 + h10 * chord * d0 + h01 * p1 + h11 * chord * d1


class Pursuit:
    """Steering toward a target path (pure pursuit with a look-ahead, in mm): used to make
    a vessel follow a groove of the heart while its own course stays smooth. ``path`` is
    in heart-local coordinates (mm), like the walker's points."""

    def __init__(self, path: np.ndarray, lookahead_mm: float = 8.0) -> None:
        self.path = path
        spacing = float(np.mean(np.linalg.norm(np.diff(path, axis=0), axis=1)))
        self.ahead = max(1, round(lookahead_mm / spacing))
        self.k = 0

    def __call__(self, p: tuple[float, float, float], s: float) -> tuple[float, float, float]:
        window = self.path[self.k : self.k + 4 * self.ahead]
        self.k += int(np.argmin(np.sum((window - np.asarray(p)) ** 2, axis=1)))
        x, y, z = self.path[min(self.k + self.ahead, len(self.path) - 1)].tolist()
        return (x - p[0], y - p[1], z - p[2])

    @property
    def finished(self) -> bool:
        return self.k >= len(self.path) - 2


Vec = tuple[float, float, float]


@dataclass
class WalkSpec:
    """How a vessel walks over the heart (all vectors in heart-local coordinates, mm):
    ``length_mm`` to walk at most, ``step_mm``, ``offset`` (mm above the epicardium as a
    function of walked length), ``steer`` (desired direction at a point, or None),
    ``relax_mm`` (distance over which the heading relaxes toward the desired one),
    ``kappa_max`` (largest turning rate, rad/mm), ``straight_mm`` (no steering over the
    first mm, so the take-off angle is kept), ``wiggle`` (turning-rate noise, rad/mm, one
    value per step), ``stop`` (ends the walk early when true)."""

    length_mm: float
    offset: Callable[[float], float]
    steer: Callable[[Vec, float], Vec | None]
    wiggle: np.ndarray
    step_mm: float = 1.5
    relax_mm: float = 7.0
    kappa_max: float = 0.11
    straight_mm: float = 3.0
    stop: Callable[[Vec, float], bool] | None = None


class _Ellipsoid:
    """Scalar (pure-Python float) geometry of an axis-aligned ellipsoid; the walker's
    inner loop runs thousands of 3-vector steps, where numpy call overhead dominates."""

    def __init__(self, axes: np.ndarray) -> None:
        self.a2, self.b2, self.c2 = (float(v) ** 2 for v in axes)

    def radial(self, x: float, y: float, z: float) -> Vec:
        k = math.sqrt(x * x / self.a2 + y * y / self.b2 + z * z / self.c2)
        return x / k, y / k, z / k

    def normal(self, q: Vec) -> Vec:
        nx, ny, nz = q[0] / self.a2, q[1] / self.b2, q[2] / self.c2
        m = math.sqrt(nx * nx + ny * ny + nz * nz)
        return nx / m, ny / m, nz / m

    def project(self, x: float, y: float, z: float, h: float) -> tuple[Vec, Vec]:
        """Point at height h above the normal foot of (x, y, z), and the normal there
        (fixed-point iteration as in Heart.project)."""
        q = self.radial(x, y, z)
        for _ in range(4):
            n = self.normal(q)
            d = (x - q[0]) * n[0] + (y - q[1]) * n[1] + (z - q[2]) * n[2]
            q = self.radial(x - d * n[0], y - d * n[1], z - d * n[2])
        n = self.normal(q)
        return (q[0] + h * n[0], q[1] + h * n[1], q[2] + h * n[2]), n


def _cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _tangential(v: Vec, n: Vec) -> Vec:
    k = _dot(v, n)
    return (v[0] - k * n[0], v[1] - k * n[1], v[2] - k * n[2])


def _norm(v: Vec) -> Vec:
    m = math.sqrt(_dot(v, v))
    return (v[0] / m, v[1] / m, v[2] / m)


def walk_on_heart(
    heart: Heart, start: np.ndarray, direction: np.ndarray, spec: WalkSpec
) -> np.ndarray:
    """Walk from ``start`` (world mm) in ``direction`` (world) over the offset epicardium.

    At each step the heading turns (within the tangent plane) toward the steering direction
    plus a smooth random wiggle, the turn limited to ``kappa_max`` rad/mm so the curvature
    radius stays above 1 / kappa_max; the new point is projected back to the offset
    surface. Returns the coarse points (K, 3) in world mm, the first one ``start`` exactly.
    """
    ell = _Ellipsoid(heart.axes)
    h = spec.step_mm
    max_turn = spec.kappa_max * h
    gain = min(1.0, h / spec.relax_mm)
    p0 = heart.to_local(start)
    p: Vec = tuple(p0.tolist())
    d: Vec = tuple((direction @ heart.rotation).tolist())
    n = ell.normal(ell.radial(*p))
    pts = [p]
    wiggle = spec.wiggle.tolist()
    for i in range(math.ceil(spec.length_mm / h)):
        s = i * h
        d = _norm(_tangential(d, n))
        theta = wiggle[min(i, len(wiggle) - 1)] * h
        if s >= spec.straight_mm:
            want = spec.steer(p, s)
            if want is not None:
                want = _tangential(want, n)
                if _dot(want, want) > 1e-12:
                    theta += gain * math.atan2(_dot(n, _cross(d, want)), _dot(d, want))
        theta = min(max(theta, -max_turn), max_turn)
        c, sn = math.cos(theta), math.sin(theta)
        nd = _cross(n, d)
        d = (c * d[0] + sn * nd[0], c * d[1] + sn * nd[1], c * d[2] + sn * nd[2])
        q, n = ell.project(p[0] + h * d[0], p[1] + h * d[1], p[2] + h * d[2], spec.offset(s + h))
        d = _norm((q[0] - p[0], q[1] - p[1], q[2] - p[2]))
        p = q
        pts.append(p)
        if spec.stop is not None and spec.stop(p, s + h):
            break
    out = heart.to_world(np.asarray(pts))
    out[0] = start
    return out
