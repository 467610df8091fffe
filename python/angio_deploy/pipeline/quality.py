"""Plausibility of a finished reconstruction: an obviously wrong mesh is not a success.

Two checks that need no truth (issue 12). Each looks at both views, because one view can
be poor (foreshortening, overlap) while the mesh is right:

* the mesh's reprojection Dice on the segmentation is below :data:`MIN_REPROJECTION_DICE`
  in *both* views (the mesh lies where neither image shows the vessel);
* its rings are more than :data:`MAX_WIDTH_RATIO` times wider (mm) than the widest lumen
  that view's 2D centreline measured, taken at the isocenter's pixel size, in *both* views
  (an exploded triangulation puts the rings far in depth, where the same pixel widths
  become hundreds of mm), or the centreline runs more than :data:`MAX_FROM_ISOCENTER_MM`
  from the isocenter (the operator centres the heart there).
"""

from __future__ import annotations

import numpy as np

from angio_deploy import kernels
from angio_deploy.topology import N_AROUND, ring_faces

from .result import MIResult

#: Below this reprojection Dice in both views the mesh is refused.
MIN_REPROJECTION_DICE = 0.3
#: Rings wider (mm) than this multiple of the widest 2D lumen (mm at the isocenter).
MAX_WIDTH_RATIO = 3.0
#: A centreline farther than this from the isocenter (world origin) is refused (mm).
MAX_FROM_ISOCENTER_MM = 300.0


def implausibilities(result: MIResult, dice: list[float]) -> list[str]:
    """Why the result is obviously wrong (empty if it is plausible)."""
    problems = []
    if len(dice) == 2 and max(dice) < MIN_REPROJECTION_DICE:
        problems.append(
            f"the mesh does not cover the segmented vessel in either view (reprojection Dice "
            f"{dice[0]:.2f} / {dice[1]:.2f} < {MIN_REPROJECTION_DICE})"
        )
    ratios = []
    for vr, g in zip(result.views, result.geometries, strict=True):
        widest = float(np.max(vr.widths_px)) if len(vr.widths_px) else 0.0
        mm_px = float(g.pixel_size_at_mm(np.zeros((1, 3)))[0])
        ratios.append(2.0 * float(result.radius_mm.max()) / max(widest * mm_px, 1e-6))
    if min(ratios) > MAX_WIDTH_RATIO:
        problems.append(
            f"rings up to {2 * float(result.radius_mm.max()):.1f} mm across are "
            f"{min(ratios):.1f}x wider than any lumen either view shows"
        )
    far = float(np.linalg.norm(result.centreline_mm, axis=1).max())
    if not far <= MAX_FROM_ISOCENTER_MM:  # also catches NaN
        problems.append(
            f"the centreline reaches {far:.0f} mm from the isocenter "
            f"(> {MAX_FROM_ISOCENTER_MM:.0f})"
        )
    return problems


def reprojection_dice(result: MIResult) -> list[float]:
    """Dice (per view) of the mesh's silhouette against the thresholded segmentation,
    both in image space: a quality check that needs no truth."""
    capped = ring_faces(len(result.vertices) // N_AROUND, N_AROUND, caps=True)
    out = []
    for vr, g in zip(result.views, result.geometries, strict=True):
        seg = vr.crop.unwarp(vr.prob, (g.height, g.width)) >= 0.5
        sil = kernels.rasterise_silhouette(g.P, result.vertices, capped, g.width, g.height) > 0
        denom = seg.sum() + sil.sum()
        out.append(float(2.0 * (seg & sil).sum() / denom) if denom else 0.0)
    return out
