"""C-arm geometry (GEOMETRY.md): views, view pairs, triangulation helpers."""

from .normalise import NormalisedFrame
from .pair import (
    MIN_SEPARATION_DEG,
    WARN_SEPARATION_DEG,
    check_view_pair,
    epipolar_distances,
    fundamental_matrix,
)
from .view import ViewGeometry, carm_rotation, separation_angle_deg, source_of

__all__ = [
    "MIN_SEPARATION_DEG",
    "WARN_SEPARATION_DEG",
    "NormalisedFrame",
    "ViewGeometry",
    "carm_rotation",
    "check_view_pair",
    "epipolar_distances",
    "fundamental_matrix",
    "separation_angle_deg",
    "source_of",
]
