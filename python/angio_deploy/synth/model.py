"""Data model of the synthetic angiography engine (world frame: DICOM LPS, mm).

The isocenter of the C-arm is the world origin (GEOMETRY.md). The anatomy is generated
so that the segment of interest lies near the isocenter, as an operator centres the
table on the vessel being studied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from angio_deploy.curves import arc_lengths


@dataclass(frozen=True)
class Lesion:
    """One stenosis along a vessel.

    ``center_s_mm`` is the arc length (mm from the vessel's proximal end) of the point of
    minimal lumen; ``length_mm`` the full length over which the lumen is narrowed;
    ``percent_ds`` the percent diameter stenosis at the centre relative to the reference
    (tapered, lesion-free) diameter; ``eccentricity`` in [0, 1]: 0 concentric, 1 all of
    the narrowing from one side, the side given by ``angle_rad`` measured in the vessel's
    (major_dir, tangent x major_dir) frame; ``profile`` is "cosine" or "gaussian".
    """

    center_s_mm: float
    length_mm: float
    percent_ds: float
    eccentricity: float = 0.0
    angle_rad: float = 0.0
    profile: str = "cosine"

    def to_dict(self) -> dict[str, Any]:
        return {
            "center_s_mm": self.center_s_mm,
            "length_mm": self.length_mm,
            "percent_ds": self.percent_ds,
            "eccentricity": self.eccentricity,
            "angle_rad": self.angle_rad,
            "profile": self.profile,
        }


@dataclass(eq=False)
class Vessel:
    """A tubular structure: a coronary artery or the contrast-filled catheter.

    ``points`` (M, 3) mm is the centreline from proximal to distal, spaced at most 0.5 mm.
    The lumen cross-section at point i is an ellipse centred on the centreline (offset by
    ``offset`` (M, 3) mm for eccentric lesions, perpendicular to the tangent) with
    semi-axes ``semi_axes[i] = (a, b)`` mm, a along the unit vector ``major_dir[i]``
    (perpendicular to the tangent). ``reference_radius`` (M,) is the lesion-free radius
    (mm) from which percent stenosis is measured. ``iodine`` scales the contrast
    concentration (1 = fully opacified).
    """

    name: str
    kind: str  # "artery" or "catheter"
    points: np.ndarray
    semi_axes: np.ndarray
    major_dir: np.ndarray
    reference_radius: np.ndarray
    offset: np.ndarray | None = None
    iodine: float = 1.0
    parent: int | None = None
    parent_s_mm: float | None = None
    lesions: list[Lesion] = field(default_factory=list)

    @property
    def arc_lengths(self) -> np.ndarray:
        """Cumulative arc length (M,) mm from the proximal end."""
        return arc_lengths(self.points)

    @property
    def length_mm(self) -> float:
        return float(self.arc_lengths[-1])

    @property
    def radius(self) -> np.ndarray:
        """Equivalent lumen radius (M,) mm: sqrt(a b), the radius of a circle of equal area."""
        return np.sqrt(self.semi_axes[:, 0] * self.semi_axes[:, 1])

    @property
    def lumen_centres(self) -> np.ndarray:
        """Centres (M, 3) mm of the lumen cross-sections (centreline plus lesion offset)."""
        return self.points if self.offset is None else self.points + self.offset


@dataclass(frozen=True)
class SegmentOfInterest:
    """A stretch [s_start_mm, s_end_mm] of vessel ``vessel`` (index into Anatomy.vessels)."""

    vessel: int
    s_start_mm: float
    s_end_mm: float

    @property
    def length_mm(self) -> float:
        return self.s_end_mm - self.s_start_mm


@dataclass(frozen=True)
class Bifurcation:
    """A branching point: parent vessel, the two daughter vessels, and the diameter law."""

    parent: int
    s_mm: float
    daughters: tuple[int, int]  # (distal main, side branch); index of the parent for main
    diameters_mm: tuple[float, float, float]  # (parent, distal main, side branch)
    law: str  # "finet" or "murray"
    exponent: float | None  # Murray exponent (2.1 to 3) or None for Finet
    angle_deg: float


@dataclass(eq=False)
class Anatomy:
    """A whole synthetic scene: vessels, catheter, segment(s) of interest, heart shape."""

    vessels: list[Vessel]
    soi: SegmentOfInterest
    side_sois: list[SegmentOfInterest] = field(default_factory=list)
    bifurcations: list[Bifurcation] = field(default_factory=list)
    tree: str = "left"  # "left" (LM/LAD/LCx) or "right" (RCA)
    heart_center_mm: np.ndarray = field(default_factory=lambda: np.zeros(3))
    heart_axes_mm: np.ndarray = field(default_factory=lambda: np.array([60.0, 50.0, 45.0]))
    heart_rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    meta: dict[str, Any] = field(default_factory=dict)
