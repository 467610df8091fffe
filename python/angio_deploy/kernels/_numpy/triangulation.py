"""Two-view triangulation: linear least squares, then Gauss-Newton on reprojection error."""

from __future__ import annotations

import numpy as np

from .projection import project_one


def _solve3(N: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Solve N x = r for stacks of symmetric 3x3 systems (K, 3, 3) by the adjugate.

    Written out so that the rounding matches csrc/linalg.hpp.
    """
    a, b, c = N[:, 0, 0], N[:, 0, 1], N[:, 0, 2]
    d, e, f = N[:, 1, 0], N[:, 1, 1], N[:, 1, 2]
    g, h, i = N[:, 2, 0], N[:, 2, 1], N[:, 2, 2]
    A = e * i - f * h
    B = f * g - d * i
    C = d * h - e * g
    det = a * A + b * B + c * C
    r0, r1, r2 = r[:, 0], r[:, 1], r[:, 2]
    x0 = (A * r0 + (c * h - b * i) * r1 + (b * f - c * e) * r2) / det
    x1 = (B * r0 + (a * i - c * g) * r1 + (c * d - a * f) * r2) / det
    x2 = (C * r0 + (b * g - a * h) * r1 + (a * e - b * d) * r2) / det
    return np.stack([x0, x1, x2], axis=1)


def _normal_equations(rows: list[np.ndarray], rhs: list[np.ndarray]):
    """Accumulate J^T J and J^T r from per-row (K, 3) Jacobians and (K,) residuals."""
    K = rows[0].shape[0]
    N = np.zeros((K, 3, 3))
    r = np.zeros((K, 3))
    for row, b in zip(rows, rhs, strict=True):
        for p in range(3):
            for q in range(3):
                N[:, p, q] = N[:, p, q] + row[:, p] * row[:, q]
            r[:, p] = r[:, p] + row[:, p] * b
    return N, r


def triangulate(
    P1: np.ndarray, P2: np.ndarray, uv1: np.ndarray, uv2: np.ndarray, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate corresponding pixels uv1, uv2 (N, 2) -> points (N, 3) mm, RMS error (N,) px.

    Linear step: for each view the rows u*P[2]-P[0] and v*P[2]-P[1] of the homogeneous
    system, solved in least squares for the inhomogeneous point. Then ``iterations``
    Gauss-Newton steps minimising the squared reprojection error in pixels.
    """
    rows: list[np.ndarray] = []
    rhs: list[np.ndarray] = []
    for P, uv in ((P1, uv1), (P2, uv2)):
        for k in (0, 1):
            c = uv[:, k]
            row = np.stack([c * P[2, m] - P[k, m] for m in range(3)], axis=1)
            rows.append(row)
            rhs.append(-(c * P[2, 3] - P[k, 3]))
    N, r = _normal_equations(rows, rhs)
    X = _solve3(N, r)

    for _ in range(iterations):
        rows, rhs = [], []
        x, y, z = X[:, 0], X[:, 1], X[:, 2]
        for P, uv in ((P1, uv1), (P2, uv2)):
            pu, pv, w = project_one(P, x, y, z)
            for k, pk in ((0, pu), (1, pv)):
                # d(pk)/dX = (P[k, :3] - pk * P[2, :3]) / w
                row = np.stack([(P[k, m] - pk * P[2, m]) / w for m in range(3)], axis=1)
                rows.append(row)
                rhs.append(-(pk - uv[:, k]))
        N, r = _normal_equations(rows, rhs)
        X = X + _solve3(N, r)

    x, y, z = X[:, 0], X[:, 1], X[:, 2]
    sq = np.zeros(X.shape[0])
    for P, uv in ((P1, uv1), (P2, uv2)):
        pu, pv, _ = project_one(P, x, y, z)
        du = pu - uv[:, 0]
        dv = pv - uv[:, 1]
        sq = sq + du * du + dv * dv
    return X, np.sqrt(sq / 4.0)
