"""Checks on a pair of views before triangulation."""

from __future__ import annotations

import logging

from angio_deploy.errors import InputError

from .view import ViewGeometry, separation_angle_deg

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
    """Separation angle (degrees) of two views and warnings; raise InputError below the floor."""
    angle = separation_angle_deg(a, b)
    warnings: list[str] = []
    if angle < MIN_SEPARATION_DEG:
        raise InputError(
            f"views are {angle:.1f} degrees apart; at least {MIN_SEPARATION_DEG:.0f} degrees "
            "are needed to triangulate (25 or more recommended)",
            source=source,
            field="views",
        )
    if angle < WARN_SEPARATION_DEG:
        msg = (
            f"views are only {angle:.1f} degrees apart (< {WARN_SEPARATION_DEG:.0f}): "
            "depth will be poorly determined"
        )
        log.warning(msg)
        warnings.append(msg)
    return angle, warnings
