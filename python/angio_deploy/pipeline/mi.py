"""Mesh initialisation (3DAngioNet section 2.2): two views in, a 100 x 60 tube mesh out,
for the main segment and each side branch through the same route.

Stages, each timed: crop each view around each segment; segment (every crop in one
batch); 2D centreline and lumen widths per view, mapped back to image pixels; geometry
refinement of view B against view A (optional), once per case from every segment's
correspondences; per segment, epipolar correspondence and triangulation of the two
centrelines into 100 points evenly spaced in arc length (native core), per-ring radius
from the two views' widths scaled to mm at the 3D point, tube mesh (native core).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation
from scipy.stats import chi2

from angio_deploy import kernels
from angio_deploy.curves import arc_lengths
from angio_deploy.errors import InputError
from angio_deploy.geometry import ViewGeometry, separation_angle_deg
from angio_deploy.io.case import Case, SegmentPoints
from angio_deploy.topology import N_AROUND, N_RINGS

from .centreline2d import Centreline2D, extract_centreline
from .crop import SoiCrop
from .geometry_refinement import (
    CURVE_SIGMA_PX,
    PRIOR_ANGLE_DEG,
    PRIOR_SHIFT_MM,
    GeometryRefinementResult,
    refine_view_b,
)
from .result import MAIN, MIResult, Progress, ViewResult, branch_name
from .segmenters import Segmenter

log = logging.getLogger(__name__)

#: Gaussian smoothing of the ring radii along the centreline (rings).
RADIUS_SMOOTH_RINGS = 1.0

#: Points of the dense 3D centreline before the end fit.
DENSE_POINTS = 400
#: A side branch's start click further than this (px) outside the main's lumen (its 2D
#: half-width) from the main's 2D path is a guide point the path missed.
BRANCH_START_MISS_PX = 3.0
#: Gaussian smoothing (mm of arc) of the 3D centreline, and its sampling step.
CENTRELINE_SMOOTH_MM = 2.0
SMOOTH_STEP_MM = 0.25
#: A 95 % position bound (mm) above this on any ring is reported as a warning.
WARN_UNCERTAINTY_MM = 3.0
#: 95 % quantile of chi-square with 3 degrees of freedom (the ball of a 3D Gaussian).
CHI2_3_95 = float(chi2.ppf(0.95, 3))
#: How far (mm) the end fit may move each end along the centreline, and its step.
END_FIT_MM = 3.0
END_FIT_STEP_MM = 0.02


def _timed(timings: dict[str, float], name: str, progress: Progress | None, t0: float) -> float:
    t1 = time.perf_counter()
    timings[name] = timings.get(name, 0.0) + (t1 - t0)
    if progress is not None:
        progress(name, t1 - t0)
    return t1


def _nearest_2d(points3d: np.ndarray, g: ViewGeometry, vr: ViewResult) -> np.ndarray:
    """Index of the view's 2D centreline point nearest each 3D point's projection."""
    _, idx = cKDTree(vr.points_px).query(g.project(points3d))
    return idx


def _widths_at(points3d: np.ndarray, g: ViewGeometry, vr: ViewResult) -> np.ndarray:
    """Lumen diameter (mm) seen in one view at each 3D centreline point."""
    return vr.widths_px[_nearest_2d(points3d, g, vr)] * g.pixel_size_at_mm(points3d)


def _polyline_at(points: np.ndarray, s: np.ndarray, arc: np.ndarray) -> np.ndarray:
    """Points at arc positions ``s`` (mm) of a polyline, extended linearly past its ends."""
    t0 = points[1] - points[0]
    t1 = points[-1] - points[-2]
    t0 /= max(np.linalg.norm(t0), 1e-12)
    t1 /= max(np.linalg.norm(t1), 1e-12)
    out = np.stack([np.interp(s, arc, points[:, k]) for k in range(3)], axis=1)
    lo, hi = s < 0.0, s > arc[-1]
    out[lo] = points[0] + s[lo, None] * t0
    out[hi] = points[-1] + (s[hi] - arc[-1])[:, None] * t1
    return out


def smooth_centreline(points: np.ndarray, sigma_mm: float) -> np.ndarray:
    """Gaussian smoothing of a 3D polyline (K, 3) mm along its arc length, resampled at
    SMOOTH_STEP_MM; odd reflection at the ends keeps their position and direction.

    Where the vessel runs along the epipolar lines, depth is ill-conditioned and the
    triangulated points zigzag in depth: unsmoothed, the curve comes out 4-10 % too long
    and every ring slides along the vessel.
    """
    arc = arc_lengths(points)
    n = max(2, int(np.ceil(arc[-1] / SMOOTH_STEP_MM)) + 1)
    u = _polyline_at(points, np.linspace(0.0, arc[-1], n), arc)
    if sigma_mm <= 0.0 or n < 5:
        return u
    pad = min(n - 1, int(np.ceil(4.0 * sigma_mm / SMOOTH_STEP_MM)))
    head = 2.0 * u[0] - u[pad:0:-1]
    tail = 2.0 * u[-1] - u[-2 : -pad - 2 : -1]
    ext = np.concatenate([head, u, tail])
    sm = ndimage.gaussian_filter1d(ext, sigma_mm / SMOOTH_STEP_MM, axis=0, mode="nearest")
    return sm[pad : pad + n]


def fit_ends(
    dense: np.ndarray,
    geometries: tuple[ViewGeometry, ViewGeometry],
    starts_px: tuple[np.ndarray, np.ndarray],
    ends_px: tuple[np.ndarray, np.ndarray],
    n_out: int = N_RINGS,
) -> np.ndarray:
    """Trim or extend a dense 3D centreline (K, 3) mm so that it starts and ends where its
    projections come closest to the clinician's clicks in both views; resample to n_out.

    The clicks are noisy observations of the projected 3D end points, which lie on the
    curve. Forcing the two start clicks to correspond instead turns their axial noise
    along the epipolar lines into depth error, and a path that starts at the first medial
    pixel starts about one radius late.
    """
    arc = arc_lengths(dense)
    L = float(arc[-1])
    reach = min(END_FIT_MM, 0.25 * L)

    def best(click: tuple[np.ndarray, np.ndarray], centre: float) -> float:
        s = np.arange(centre - reach, centre + reach + 1e-9, END_FIT_STEP_MM)
        X = _polyline_at(dense, s, arc)
        cost = sum(
            ((g.project(X) - np.asarray(c)) ** 2).sum(axis=1)
            for g, c in zip(geometries, click, strict=True)
        )
        return float(s[int(np.nanargmin(cost))])

    s0, s1 = best(starts_px, 0.0), best(ends_px, L)
    if not s1 - s0 > 0.5 * L:
        return resample(dense, n_out)
    return _polyline_at(dense, np.linspace(s0, s1, n_out), arc)


def resample(points: np.ndarray, n_out: int) -> np.ndarray:
    """A polyline (K, 3) resampled to n_out points evenly spaced in arc length."""
    arc = arc_lengths(points)
    return _polyline_at(points, np.linspace(0.0, arc[-1], n_out), arc)


def trace_view(
    image: np.ndarray,
    soi: SegmentPoints,
    crop: SoiCrop,
    prob: np.ndarray,
    *,
    width_level: float = 0.5,
    view: str = "?",
) -> Centreline2D:
    """The 2D centreline stage of one view: the SOI's clicks and guide points (image px)
    into the crop, the crop's image as gap evidence, :func:`extract_centreline`."""
    ends = crop.to_crop(np.stack([soi.start, soi.end]))
    via = getattr(soi, "via", None)
    return extract_centreline(
        prob,
        ends[0],
        ends[1],
        view=view,
        width_level=width_level,
        # Out-of-image pixels take the median so the image border is no "vessel".
        image=crop.warp(image, cval=float(np.median(image))),
        via=crop.to_crop(via) if via is not None and len(via) else None,
    )


@dataclass(frozen=True)
class SegmentSpec:
    """A segment to reconstruct: its name and its points (start, end, guide points) in
    view A and view B, image px."""

    name: str
    points: tuple[SegmentPoints, SegmentPoints]


def case_segments(case: Case) -> list[SegmentSpec]:
    """The main segment, then every side branch in case.json order (``branch_K``)."""
    out = [SegmentSpec(MAIN, (case.views[0].soi, case.views[1].soi))]
    for k, pts in enumerate(case.side_branches, start=1):
        out.append(SegmentSpec(branch_name(k), (pts[0], pts[1])))
    return out


@dataclass(frozen=True)
class SkippedSegment:
    """A side branch left out (``--skip-failed-branches``) and why."""

    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"branch": self.name, "reason": self.reason}


def trace_segments(
    case: Case,
    segmenter: Segmenter,
    segments: Sequence[SegmentSpec],
    timings: dict[str, float],
    progress: Progress | None = None,
    *,
    skip_failed_branches: bool = False,
) -> tuple[list[tuple[ViewResult, ViewResult] | SkippedSegment], list[str]]:
    """Crop, segment (all segments' crops in one batch) and trace every segment in both
    views, the main through the side branches' starts it misses
    (:func:`through_branch_starts`, whose warnings come back too). A side branch whose 2D
    path cannot be found raises InputError naming it (field ``side_branches[k]``), or with
    ``skip_failed_branches`` comes back as a :class:`SkippedSegment`; the main segment's
    failure always raises."""
    t = time.perf_counter()
    items = []
    for seg in segments:
        for v, pts in zip(case.views, seg.points, strict=True):
            view = v if pts is v.soi else dataclasses.replace(v, soi=pts)
            items.append((view, SoiCrop.from_config(pts.start, pts.end, segmenter.crop)))
    t = _timed(timings, "crop", progress, t)
    probs = segmenter.segment(items)
    t = _timed(timings, "segment", progress, t)
    width_level = float(getattr(segmenter, "width_level", 0.5))
    out: list[tuple[ViewResult, ViewResult] | SkippedSegment] = []
    for i, seg in enumerate(segments):
        pair = []
        for (v, c), p in zip(items[2 * i : 2 * i + 2], probs[2 * i : 2 * i + 2], strict=True):
            where = f"{v.name} ({v.image_path.name})"
            try:
                cl = trace_view(v.image, v.soi, c, p, width_level=width_level, view=where)
            except InputError as exc:
                if seg.name == MAIN:
                    raise
                err = branch_error(seg.name, exc.message, source=exc.source or str(case.path))
                if not skip_failed_branches:
                    raise err from exc
                log.warning("%s", err)
                out.append(SkippedSegment(seg.name, exc.message))
                break
            pair.append(ViewResult.traced(v, c, p, cl))
        else:
            out.append((pair[0], pair[1]))
    kept = [k for k, tr in enumerate(out) if isinstance(tr, tuple)]
    retraced, warnings = through_branch_starts(
        [(segments[k], out[k]) for k in kept], width_level=width_level
    )
    for k, (_, pair) in zip(kept, retraced, strict=True):
        out[k] = pair
    _timed(timings, "centreline_2d", progress, t)
    return out, warnings


def through_branch_starts(
    traced: Sequence[tuple[SegmentSpec, tuple[ViewResult, ViewResult]]],
    *,
    width_level: float = 0.5,
) -> tuple[list[tuple[SegmentSpec, tuple[ViewResult, ViewResult]]], list[str]]:
    """The main segment's 2D paths, traced again through every side branch's start that
    they miss, and a warning for each.

    A side branch starts on or near the main segment (CASE_FORMAT.md), so its start click
    is a guide point of the main in each view. Where a view sees the main foreshortened
    into a loop, the cheapest path between its ends can cut the loop off (case_2000006,
    view b: 40 px from the branch start), and the 3D centreline then lands millimetres off
    near the junction. A start counts as missed when it lies more than BRANCH_START_MISS_PX
    outside the lumen's half-width from the path; the guide points (the user's and these)
    are visited in the order of their nearest points on the first path. If the new path
    cannot be traced, the first one stays.
    """
    traced = list(traced)
    main_k = next((k for k, (seg, _) in enumerate(traced) if seg.name == MAIN), None)
    if main_k is None or len(traced) < 2:
        return traced, []
    seg, pair = traced[main_k]
    views = list(pair)
    warnings: list[str] = []
    for v, vr in enumerate(pair):
        missed = []
        for bseg, bpair in traced:
            if bseg.name == MAIN:
                continue
            click = np.asarray(bpair[v].view.soi.start, dtype=float)
            d = np.linalg.norm(vr.points_px - click, axis=1)
            i = int(d.argmin())
            if d[i] > 0.5 * vr.widths_px[i] + BRANCH_START_MISS_PX:
                missed.append((i, click, bseg.name, float(d[i])))
        if not missed:
            continue
        soi = vr.view.soi
        guides = [
            (int(np.linalg.norm(vr.points_px - q, axis=1).argmin()), np.asarray(q, float))
            for q in soi.via
        ]
        guides += [(i, q) for i, q, _, _ in missed]
        guides.sort(key=lambda g: g[0])
        where = f"{vr.view.name} ({vr.view.image_path.name})"
        names = ", ".join(f"{n}'s start ({d:.0f} px)" for _, _, n, d in missed)
        try:
            cl = trace_view(
                vr.view.image,
                dataclasses.replace(soi, via=np.stack([q for _, q in guides])),
                vr.crop,
                vr.prob,
                width_level=width_level,
                view=where,
            )
        except InputError as exc:
            log.info("view %s: not traced again through %s: %s", where, names, exc.message)
            continue
        views[v] = ViewResult.traced(vr.view, vr.crop, vr.prob, cl)
        warnings.append(
            f"view {vr.view.name}: the main segment's 2D path missed {names}; traced again "
            "through it"
        )
    traced[main_k] = (seg, (views[0], views[1]))
    return traced, warnings


def branch_error(name: str, message: str, *, source: str | None = None) -> InputError:
    """The error of a side branch that cannot be reconstructed: names it and its case.json
    field, and says how to write the rest anyway."""
    k = int(name.rsplit("_", 1)[1]) - 1
    return InputError(
        f"{name} cannot be reconstructed: {message} "
        "(--skip-failed-branches writes the other segments without it)",
        source=source,
        field=f"side_branches[{k}]",
    )


def refine_geometry(
    traced: Sequence[tuple[ViewResult, ViewResult]],
    names: Sequence[str] | None = None,
) -> GeometryRefinementResult:
    """Geometry refinement of view B against view A once for the case, from every
    segment's start/end clicks and 2D centreline (GEOMETRY.md "Refinement")."""
    va, vb = traced[0]
    ga, gb = va.view.geometry, vb.view.geometry
    # Residuals in mm at the isocenter, where the operator centres the segment.
    mm_per_px = float(ga.pixel_size_at_mm(np.zeros((1, 3)))[0])
    names = list(names) if names is not None else [f"segment_{i}" for i in range(len(traced))]
    ends_a = np.concatenate([np.stack([a.points_px[0], a.points_px[-1]]) for a, _ in traced])
    ends_b = np.concatenate([np.stack([b.points_px[0], b.points_px[-1]]) for _, b in traced])
    labels = [f"{n} {end}" for n in names for end in ("start", "end")]
    return refine_view_b(
        ga,
        gb,
        ends_a,
        ends_b,
        [(a.points_px, b.points_px) for a, b in traced],
        mm_per_px=mm_per_px,
        end_labels=labels,
        curve_labels=[f"{n} centreline" for n in names],
    )


def build_segment(
    name: str,
    va: ViewResult,
    vb: ViewResult,
    gb: ViewGeometry,
    geometry_refinement: GeometryRefinementResult | None,
    timings: dict[str, float],
    progress: Progress | None = None,
) -> MIResult:
    """Triangulate one traced segment with view B's geometry ``gb`` (refined or header),
    its per-ring position uncertainty, radii and the tube mesh."""
    ga = va.view.geometry
    warnings: list[str] = []
    t = time.perf_counter()
    label = "" if name == MAIN else f"{name}: "
    centres = triangulate(ga, gb, va, vb)
    t = _timed(timings, "triangulate", progress, t)
    cov = None if geometry_refinement is None else geometry_refinement.covariance
    uncertainty = position_uncertainty(ga, gb, va, vb, centres, cov)
    if float(uncertainty.max()) > WARN_UNCERTAINTY_MM:
        warnings.append(
            f"{label}3D position uncertainty reaches {float(uncertainty.max()):.1f} mm (95 %) "
            f"at ring {int(uncertainty.argmax())}: the views do not pin the segment down well"
        )
    t = _timed(timings, "uncertainty", progress, t)

    d = 0.5 * (_widths_at(centres, ga, va) + _widths_at(centres, gb, vb))
    low = va.gap[_nearest_2d(centres, ga, va)] | vb.gap[_nearest_2d(centres, gb, vb)]
    if low.any():
        warnings.append(
            f"{label}{int(low.sum())} of {len(low)} rings cross a gap in the segmentation "
            "(bridged on image evidence; radius taken from the neighbouring rings)"
        )
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
        geometry_refinement=geometry_refinement,
        timings_s=timings,
        warnings=warnings,
        low_confidence=low,
        uncertainty_mm=uncertainty,
        branch=name,
    )


@dataclass(eq=False)
class CaseSegments:
    """Every segment of a case after mesh initialisation: ``results`` (main first, then
    the side branches that worked) and the branches left out."""

    results: list[MIResult]
    skipped: list[SkippedSegment]

    @property
    def main(self) -> MIResult:
        return self.results[0]

    @property
    def branches(self) -> list[MIResult]:
        return self.results[1:]


def initialise_segments(
    case: Case,
    segmenter: Segmenter,
    *,
    geometry_refinement: bool = True,
    segments: Sequence[SegmentSpec] | None = None,
    skip_failed_branches: bool = False,
    progress: Progress | None = None,
) -> CaseSegments:
    """Mesh initialisation of every segment of the case (``segments``, default
    :func:`case_segments`: the main segment first, then each side branch). View B's
    geometry is refined once, from all of them (``geometry_refinement``); each segment is
    then triangulated with it. The timings dict is the case's, shared by all results."""
    timings: dict[str, float] = {}
    segments = case_segments(case) if segments is None else list(segments)
    traced_all, retraced = trace_segments(
        case, segmenter, segments, timings, progress, skip_failed_branches=skip_failed_branches
    )
    skipped = [t for t in traced_all if isinstance(t, SkippedSegment)]
    kept = [(s, t) for s, t in zip(segments, traced_all, strict=True) if isinstance(t, tuple)]
    gb = case.views[1].geometry
    t = time.perf_counter()
    refined = None
    if geometry_refinement:
        refined = refine_geometry([tr for _, tr in kept], [s.name for s, _ in kept])
        gb = refined.geometry_b
    _timed(timings, "refine", progress, t)
    out = [
        build_segment(seg.name, va, vb, gb, refined, timings, progress) for seg, (va, vb) in kept
    ]
    if refined is not None:
        out[0].warnings[:0] = refined.warnings
    out[0].warnings[:0] = retraced
    return CaseSegments(out, skipped)


def mesh_initialisation(
    case: Case,
    segmenter: Segmenter,
    *,
    geometry_refinement: bool = True,
    progress: Progress | None = None,
) -> MIResult:
    """Mesh initialisation of the case's main segment alone (side branches not traced and
    not used by geometry refinement; :func:`initialise_segments` does them all)."""
    return initialise_segments(
        case,
        segmenter,
        geometry_refinement=geometry_refinement,
        segments=case_segments(case)[:1],
        progress=progress,
    ).main


def triangulate(ga: ViewGeometry, gb: ViewGeometry, va: ViewResult, vb: ViewResult) -> np.ndarray:
    """The (N_RINGS, 3) world-mm centreline from the two views' 2D centrelines and clicks."""
    dense, _ = kernels.correspond_centrelines(ga.P, gb.P, va.points_px, vb.points_px, DENSE_POINTS)
    return fit_ends(
        smooth_centreline(dense, CENTRELINE_SMOOTH_MM),
        (ga, gb),
        (va.view.soi.start, vb.view.soi.start),
        (va.view.soi.end, vb.view.soi.end),
    )


def position_uncertainty(
    ga: ViewGeometry,
    gb: ViewGeometry,
    va: ViewResult,
    vb: ViewResult,
    centres: np.ndarray,
    covariance: np.ndarray | None,
) -> np.ndarray:
    """Per-ring 95 % bound (mm) of the 3D centreline position.

    Two parts, added as variances: the geometry's, from the posterior covariance of view
    B's correction
    (:class:`~angio_deploy.pipeline.geometry_refinement.GeometryRefinementResult`; the
    prior's when geometry refinement was off), propagated by re-triangulating at +/- one
    sigma along each of its principal axes; and the triangulation's own, the 2D centreline
    noise (:data:`~angio_deploy.pipeline.geometry_refinement.CURVE_SIGMA_PX`) at the ring's
    pixel size, in the image plane and, divided by sin(separation), in depth. The bound is
    the radius of the 95 % ball of an isotropic Gaussian with the same total variance.
    """
    if covariance is None:
        covariance = np.diag(
            np.concatenate([np.full(3, np.radians(PRIOR_ANGLE_DEG)), np.full(3, PRIOR_SHIFT_MM)])
            ** 2
        )
    var = np.zeros(len(centres))
    evals, evecs = np.linalg.eigh(covariance)
    for lam, v in zip(evals, evecs.T, strict=True):
        if lam <= 0:
            continue
        d = np.sqrt(lam) * v
        moved = []
        for sign in (1.0, -1.0):
            R = Rotation.from_rotvec(sign * d[:3]).as_matrix()
            moved.append(triangulate(ga, gb.moved(R, sign * d[3:]), va, vb))
        var += (0.5 * np.linalg.norm(moved[0] - moved[1], axis=1)) ** 2
    sep = np.radians(max(separation_angle_deg(ga, gb), 1.0))
    mm_px = 0.5 * (ga.pixel_size_at_mm(centres) + gb.pixel_size_at_mm(centres))
    var += (CURVE_SIGMA_PX * mm_px) ** 2 * (2.0 + 1.0 / np.sin(sep) ** 2)
    return np.sqrt(CHI2_3_95 * var / 3.0)


def summary(result: MIResult) -> dict[str, Any]:
    """JSON-ready facts for the run report."""
    return {
        "timings_s": dict(result.timings_s),
        "refinement": (
            None if result.geometry_refinement is None else result.geometry_refinement.to_dict()
        ),
        "centreline_length_mm": float(
            np.linalg.norm(np.diff(result.centreline_mm, axis=0), axis=1).sum()
        ),
        "radius_mm": {
            "min": float(result.radius_mm.min()),
            "max": float(result.radius_mm.max()),
        },
        "off_vessel_share": [v.centreline.off_vessel_share for v in result.views],
        "bridged_share": [v.centreline.bridged_share for v in result.views],
        "position_uncertainty_95_mm": (
            None
            if result.uncertainty_mm is None
            else {
                "max": float(result.uncertainty_mm.max()),
                "median": float(np.median(result.uncertainty_mm)),
            }
        ),
        "low_confidence_rings": (
            []
            if result.low_confidence is None
            else [int(i) for i in np.flatnonzero(result.low_confidence)]
        ),
    }
