"""Pinhole projection and back-projection with 3x4 matrices (GEOMETRY.md convention)."""

from __future__ import annotations

import numpy as np


def project_one(P: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray):
    """Pixels (u, v) and depth w of world points (x, y, z) mm under one 3x4 matrix P
    (one array each; u, v inf/NaN where w <= 0 -- callers mask)."""
    # Explicit left-to-right sums (not matmul) so the rounding matches csrc/ exactly.
    a = P[0, 0] * x + P[0, 1] * y + P[0, 2] * z + P[0, 3]
    b = P[1, 0] * x + P[1, 1] * y + P[1, 2] * z + P[1, 3]
    w = P[2, 0] * x + P[2, 1] * y + P[2, 2] * z + P[2, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / w, b / w, w


def project(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Project world points X (N, 3) mm with matrices P (V, 3, 4) -> pixels (V, N, 2).

    Points at or behind the source (w <= 0) give NaN.
    """
    out = np.empty((P.shape[0], X.shape[0], 2), dtype=np.float64)
    x, y, z = X[:, 0], X[:, 1], X[:, 2]
    for k in range(P.shape[0]):
        u, v, w = project_one(P[k], x, y, z)
        bad = ~(w > 0.0)
        u[bad] = np.nan
        v[bad] = np.nan
        out[k, :, 0] = u
        out[k, :, 1] = v
    return out


def inverse3(M: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 matrix by the adjugate (same formula as csrc/linalg.hpp)."""
    a, b, c = M[0, 0], M[0, 1], M[0, 2]
    d, e, f = M[1, 0], M[1, 1], M[1, 2]
    g, h, i = M[2, 0], M[2, 1], M[2, 2]
    A = e * i - f * h
    B = f * g - d * i
    C = d * h - e * g
    det = a * A + b * B + c * C
    inv = np.empty((3, 3), dtype=np.float64)
    inv[0, 0] = A / det
    inv[1, 0] = B / det
    inv[2, 0] = C / det
    inv[0, 1] = (c * h - b * i) / det
    inv[1, 1] = (a * i - c * g) / det
    inv[2, 1] = (b * g - a * h) / det
    inv[0, 2] = (b * f - c * e) / det
    inv[1, 2] = (c * d - a * f) / det
    inv[2, 2] = (a * e - b * d) / det
    return inv


def matvec3(M: np.ndarray, x: float, y: float, z: float):
    return (
        M[0, 0] * x + M[0, 1] * y + M[0, 2] * z,
        M[1, 0] * x + M[1, 1] * y + M[1, 2] * z,
        M[2, 0] * x + M[2, 1] * y + M[2, 2] * z,
    )


def camera_centre(P: np.ndarray) -> np.ndarray:
    """Source position: C = -M^-1 p4 with M = P[:, :3]."""
    Minv = inverse3(P[:, :3])
    cx, cy, cz = matvec3(Minv, P[0, 3], P[1, 3], P[2, 3])
    return np.array([-cx, -cy, -cz])


def backproject(P: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rays through pixels uv (N, 2): origins (N, 3) at the source, unit directions (N, 3).

    Directions point from the source toward the detector (positive depth).
    """
    Minv = inverse3(P[:, :3])
    C = camera_centre(P)
    u, v = uv[:, 0], uv[:, 1]
    dx, dy, dz = matvec3(Minv, u, v, 1.0)
    n = np.sqrt(dx * dx + dy * dy + dz * dz)
    dirs = np.stack([dx / n, dy / n, dz / n], axis=1)
    origins = np.broadcast_to(C, (uv.shape[0], 3)).copy()
    return origins, dirs
