"""Checks on a pair of views before triangulation."""

from __future__ import annotations

import logging

import numpy as np

from angio_deploy.errors import InputError

from .view import ViewGeometry, ray_angle_deg, separation_angle_deg

log = logging.getLogger(__name__)

#: Below this separation (degrees) triangulation is ill-conditioned: the run warns.
WARN_SEPARATION_DEG = 25.0
#: Below this separation (degrees) the pair is refused. Depth error grows as
#: 1 / sin(separation): at 15 degrees a 0.5 px (~0.1 mm) matching error becomes ~0.4 mm
#: in depth, the whole error budget of the paper's MAE, and with the ~2 degree header
#: errors real systems have the epipolar matching of a curved vessel becomes ambiguous.
MIN_SEPARATION_DEG = 15.0


def check_view_pair(
    a: ViewGeometry, b: ViewGeometry, *, source: str | None = None
) -> tuple[float, list[str]]:
    """Separation (degrees, min(theta, 180 - theta)) of two views and warnings; raise
    InputError below the floor."""
    angle = separation_angle_deg(a, b)
    theta = ray_angle_deg(a, b)
    # Near-opposite views: say both numbers, or "170 degrees apart" reads as fine.
    apart = (
        f"{angle:.1f} degrees apart"
        if theta <= 90.0
        else f"{theta:.1f} degrees apart, nearly opposite: a separation of {angle:.1f} degrees"
    )
    warnings: list[str] = []
    if angle < MIN_SEPARATION_DEG:
        raise InputError(
            f"views are {apart}; at least {MIN_SEPARATION_DEG:.0f} degrees of separation "
            "are needed to triangulate (25 or more recommended)",
            source=source,
            field="views",
        )
    if angle < WARN_SEPARATION_DEG:
        msg = (
            f"views are only {apart} (< {WARN_SEPARATION_DEG:.0f}): depth will be poorly determined"
        )
        log.warning(msg)
        warnings.append(msg)
    return angle, warnings


def fundamental_matrix(P1: np.ndarray, P2: np.ndarray) -> np.ndarray:
    """F (3, 3) with x2^T F x1 = 0 for corresponding pixels (homogeneous [u, v, 1]).

    F = [e2]x P2 P1^+, with e2 = P2 C1 the epipole of view 1's source in view 2.
    """
    P1 = np.asarray(P1, dtype=np.float64)
    P2 = np.asarray(P2, dtype=np.float64)
    C1 = np.append(-np.linalg.solve(P1[:, :3], P1[:, 3]), 1.0)
    e = P2 @ C1
    ex = np.array([[0.0, -e[2], e[1]], [e[2], 0.0, -e[0]], [-e[1], e[0], 0.0]])
    return ex @ P2 @ np.linalg.pinv(P1)


def epipolar_distances(F: np.ndarray, uv1: np.ndarray, uv2: np.ndarray) -> np.ndarray:
    """Symmetric epipolar distance (pixels) of point pairs uv1, uv2 (N, 2): the mean of
    each point's distance to the other's epipolar line."""
    x1 = np.column_stack([uv1, np.ones(len(uv1))])
    x2 = np.column_stack([uv2, np.ones(len(uv2))])
    l2 = x1 @ F.T
    l1 = x2 @ F
    num = np.abs(np.einsum("ij,ij->i", x2, l2))
    return 0.5 * (num / np.hypot(l2[:, 0], l2[:, 1]) + num / np.hypot(l1[:, 0], l1[:, 1]))
