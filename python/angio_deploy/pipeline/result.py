"""What a reconstructed segment is: the result types every stage passes on.

Mesh initialisation (:mod:`.mi`) makes an :class:`MIResult` per segment (the main
segment and each side branch); surface refinement (:mod:`.sr`) returns the same type
with moved vertices; quality checks, QCA, stitching and the writers read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from angio_deploy.geometry import ViewGeometry
from angio_deploy.io.case import CaseView

from .centreline2d import Centreline2D
from .crop import SoiCrop
from .geometry_refinement import GeometryRefinementResult

#: ``progress(stage, seconds)``, called after each stage.
Progress = Callable[[str, float], None]

#: Name of the main segment; side branches are ``branch_1``, ``branch_2``, ... in
#: case.json order (CASE_FORMAT.md).
MAIN = "main"


def branch_name(k: int) -> str:
    """Name of the k-th side branch (k = 1, 2, ...), as in its file ``branch_K.ply``."""
    return f"branch_{k}"


@dataclass(eq=False)
class ViewResult:
    """One view of one segment after segmentation: the view (with this segment's points
    as its ``soi``), crop, probabilities (crop space), centreline (image px)."""

    view: CaseView
    crop: SoiCrop
    prob: np.ndarray
    centreline: Centreline2D
    points_px: np.ndarray  # (K, 2) image pixels
    widths_px: np.ndarray  # (K,) image pixels

    @classmethod
    def traced(
        cls, view: CaseView, crop: SoiCrop, prob: np.ndarray, centreline: Centreline2D
    ) -> ViewResult:
        """The view's result from its crop-space centreline, mapped to image pixels."""
        return cls(
            view,
            crop,
            prob,
            centreline,
            crop.to_image(centreline.points),
            centreline.widths / crop.scale,
        )

    @property
    def gap(self) -> np.ndarray:
        """(K,) bool: the point crosses a gap of the segmentation (width from neighbours)."""
        g = self.centreline.gap
        return np.zeros(len(self.points_px), dtype=bool) if g is None else g


@dataclass(eq=False)
class MIResult:
    """One reconstructed segment: 3D centreline, radii, mesh, and what happened.

    The name says mesh initialisation (the paper's stage that makes it); surface
    refinement returns the same type with the refined surface."""

    centreline_mm: np.ndarray  # (100, 3) world mm
    radius_mm: np.ndarray  # (100,)
    vertices: np.ndarray  # (6000, 3) world mm
    faces: np.ndarray  # (11880, 3)
    views: tuple[ViewResult, ViewResult]
    geometries: tuple[ViewGeometry, ViewGeometry]
    #: What geometry refinement of view B did (None when it was off); the report's
    #: "refinement" entry.
    geometry_refinement: GeometryRefinementResult | None
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: (100,) bool: rings seen in a gap of the segmentation in either view; their radius
    #: comes from the neighbouring rings, so it is less certain.
    low_confidence: np.ndarray | None = None
    #: (N_RINGS,) 95 % bound of each ring's 3D position, mm (position_uncertainty).
    uncertainty_mm: np.ndarray | None = None
    #: :data:`MAIN` or ``branch_K``.
    branch: str = MAIN
