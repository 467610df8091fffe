"""Mesh initialisation (3DAngioNet section 2.2): two views in, a 100 x 60 tube mesh out.

Stages, each timed: crop each view around its SOI; segment (both views in one batch);
2D centreline and lumen widths per view, mapped back to image pixels; refinement of view
B's geometry against view A (optional); epipolar correspondence and triangulation of the
two centrelines into 100 points evenly spaced in arc length (native core); per-ring
radius from the two views' widths scaled to mm at the 3D point; tube mesh (native core).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from angio_deploy import kernels
from angio_deploy.geometry import ViewGeometry
from angio_deploy.io.case import Case, CaseView

from .centreline2d import Centreline2D, extract_centreline
from .crop import SoiCrop
from .refine import RefinementResult, refine_view_b
from .segmenters import Segmenter

log = logging.getLogger(__name__)

N_RINGS = 100
N_AROUND = 60
#: Gaussian smoothing of the ring radii along the centreline (rings).
RADIUS_SMOOTH_RINGS = 1.0

Progress = Callable[[str, float], None]


@dataclass(eq=False)
class ViewResult:
    """One view after segmentation: crop, probabilities (crop space), centreline (image px)."""

    view: CaseView
    crop: SoiCrop
    prob: np.ndarray
    centreline: Centreline2D
    points_px: np.ndarray  # (K, 2) image pixels
    widths_px: np.ndarray  # (K,) image pixels


@dataclass(eq=False)
class MIResult:
    """Mesh initialisation output: 3D centreline, radii, mesh, and what happened."""

    centreline_mm: np.ndarray  # (100, 3) world mm
    radius_mm: np.ndarray  # (100,)
    vertices: np.ndarray  # (6000, 3) world mm
    faces: np.ndarray  # (11880, 3)
    views: tuple[ViewResult, ViewResult]
    geometries: tuple[ViewGeometry, ViewGeometry]
    refinement: RefinementResult | None
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _timed(timings: dict[str, float], name: str, progress: Progress | None, t0: float) -> float:
    t1 = time.perf_counter()
    timings[name] = timings.get(name, 0.0) + (t1 - t0)
    if progress is not None:
        progress(name, t1 - t0)
    return t1


def _widths_at(points3d: np.ndarray, g: ViewGeometry, vr: ViewResult) -> np.ndarray:
    """Lumen diameter (mm) seen in one view at each 3D centreline point."""
    uv = g.project(points3d)
    _, idx = cKDTree(vr.points_px).query(uv)
    return vr.widths_px[idx] * g.pixel_size_at_mm(points3d)


def segment_views(
    case: Case, segmenter: Segmenter, timings: dict[str, float], progress: Progress | None
) -> tuple[ViewResult, ViewResult]:
    """Crop, segment and trace the SOI in both views."""
    t = time.perf_counter()
    cfg = segmenter.crop
    crops = [
        SoiCrop.from_points(
            v.soi.start,
            v.soi.end,
            width=int(cfg["width"]),
            height=int(cfg["height"]),
            margin_px=int(cfg["margin_px"]),
            max_scale=float(cfg["max_scale"]),
        )
        for v in case.views
    ]
    t = _timed(timings, "crop", progress, t)
    probs = segmenter.segment(list(zip(case.views, crops, strict=True)))
    t = _timed(timings, "segment", progress, t)
    out = []
    for v, c, p in zip(case.views, crops, probs, strict=True):
        ends = c.to_crop(np.stack([v.soi.start, v.soi.end]))
        cl = extract_centreline(p, ends[0], ends[1], view=f"{v.name} ({v.image_path.name})")
        out.append(ViewResult(v, c, p, cl, c.to_image(cl.points), cl.widths / c.scale))
    _timed(timings, "centreline_2d", progress, t)
    return out[0], out[1]


def mesh_initialisation(
    case: Case,
    segmenter: Segmenter,
    *,
    refine: bool = True,
    progress: Progress | None = None,
) -> MIResult:
    """Run mesh initialisation on a loaded case (see module docstring)."""
    timings: dict[str, float] = {}
    warnings: list[str] = []
    va, vb = segment_views(case, segmenter, timings, progress)
    ga, gb = va.view.geometry, vb.view.geometry

    t = time.perf_counter()
    refinement = None
    if refine:
        # Residuals in mm at the isocenter, where the operator centres the segment.
        mm_per_px = float(ga.pixel_size_at_mm(np.zeros((1, 3)))[0])
        refinement = refine_view_b(
            ga,
            gb,
            np.stack([va.points_px[0], va.points_px[-1]]),
            np.stack([vb.points_px[0], vb.points_px[-1]]),
            va.points_px,
            vb.points_px,
            mm_per_px=mm_per_px,
        )
        gb = refinement.geometry_b
        warnings.extend(refinement.warnings)
    t = _timed(timings, "refine", progress, t)

    centres, _ = kernels.correspond_centrelines(ga.P, gb.P, va.points_px, vb.points_px, N_RINGS)
    t = _timed(timings, "triangulate", progress, t)

    d = 0.5 * (_widths_at(centres, ga, va) + _widths_at(centres, gb, vb))
    radius = ndimage.gaussian_filter1d(0.5 * d, RADIUS_SMOOTH_RINGS, mode="nearest")
    radius = np.maximum(radius, 0.1)
    # Vertex order convention shared with the truth meshes (synth.truth.ring_mesh).
    vertices, faces = kernels.tube_mesh(centres, radius, n_around=N_AROUND, reference=ga.direction)
    _timed(timings, "mesh", progress, t)
    return MIResult(
        centreline_mm=centres,
        radius_mm=radius,
        vertices=vertices,
        faces=faces,
        views=(va, vb),
        geometries=(ga, gb),
        refinement=refinement,
        timings_s=timings,
        warnings=warnings,
    )


def reprojection_dice(result: MIResult) -> list[float]:
    """Dice (per view) of the mesh's silhouette against the thresholded segmentation,
    both in image space: a quality check that needs no truth."""
    _, capped = kernels.tube_mesh(
        result.centreline_mm,
        result.radius_mm,
        n_around=N_AROUND,
        caps=True,
        reference=result.geometries[0].direction,
    )
    out = []
    for vr, g in zip(result.views, result.geometries, strict=True):
        seg = vr.crop.unwarp(vr.prob, (g.height, g.width)) >= 0.5
        sil = kernels.rasterize_silhouette(g.P, result.vertices, capped, g.width, g.height) > 0
        denom = seg.sum() + sil.sum()
        out.append(float(2.0 * (seg & sil).sum() / denom) if denom else 0.0)
    return out


def summary(result: MIResult) -> dict[str, Any]:
    """JSON-ready facts for the run report."""
    return {
        "timings_s": dict(result.timings_s),
        "refinement": None if result.refinement is None else result.refinement.to_dict(),
        "centreline_length_mm": float(
            np.linalg.norm(np.diff(result.centreline_mm, axis=0), axis=1).sum()
        ),
        "radius_mm": {
            "min": float(result.radius_mm.min()),
            "max": float(result.radius_mm.max()),
        },
        "off_vessel_share": [v.centreline.off_vessel_share for v in result.views],
    }
