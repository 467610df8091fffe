"""Side branches at the main segment: attaching each to it, and the bifurcation's numbers.

A side branch is reconstructed like the main segment (:mod:`.mi`), from its own clicks.
Its start lies on or near the main segment, but two independent triangulations never
meet exactly, so (the paper's "Stitching") the branch is translated so that its start
meets the nearest point of the main centreline. Near its start the branch runs inside
the main vessel, where its 2D widths measure the junction, not the branch: its rings
there take the radius of its first ring outside the main lumen, so they cannot bulge
out of the main tube. The union itself is :func:`angio_deploy.stitching.union_tubes`.

Bifurcation angle: between the distal main centreline and the side branch, each as the
chord from the junction to the point :data:`ANGLE_DISTANCE_MM` further along it (the
usual 3D-QCA definition, less sensitive to the junction's own shape than tangents).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from angio_deploy.curves import arc_lengths
from angio_deploy.topology import N_AROUND

from .qca import BranchQCA
from .result import MIResult

log = logging.getLogger(__name__)

#: Chord length (mm) along each vessel from the junction that defines the angle.
ANGLE_DISTANCE_MM = 5.0
#: Reference diameters of the bifurcation are read this far (mm) from the junction.
REFERENCE_OFFSET_MM = 2.0
#: A translation longer than this (mm) to meet the main centreline is reported.
WARN_ATTACH_MM = 3.0
#: The attaching shift fades out over this much of the branch (mm); 0 moves the whole
#: branch rigidly, as the paper does.
ATTACH_BLEND_MM = 10.0


@dataclass(frozen=True)
class Attachment:
    """How a side branch was attached: translation (mm, world), the junction on the main
    centreline (arc mm from the main start) and the rings set to the outside radius."""

    translation_mm: np.ndarray
    junction_arc_mm: float
    junction_mm: np.ndarray
    inner_rings: int

    def to_dict(self) -> dict[str, object]:
        return {
            "translation_mm": [float(x) for x in self.translation_mm],
            "distance_mm": float(np.linalg.norm(self.translation_mm)),
            "junction_arc_mm": self.junction_arc_mm,
            "junction_mm": [float(x) for x in self.junction_mm],
            "rings_inside_main": self.inner_rings,
        }


def nearest_on_polyline(points: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The point of a polyline (N, 3) nearest ``q`` (3,), its arc position (mm) and its
    distance (mm)."""
    p = np.asarray(points, dtype=np.float64)
    a, b = p[:-1], p[1:]
    ab = b - a
    t = np.einsum("ij,ij->i", q - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12)
    t = np.clip(t, 0.0, 1.0)
    foot = a + t[:, None] * ab
    d = np.linalg.norm(foot - q, axis=1)
    k = int(np.argmin(d))
    arc = arc_lengths(p)
    return foot[k], float(arc[k] + t[k] * (arc[k + 1] - arc[k])), float(d[k])


def radius_at(main: MIResult, arc_mm: float) -> float:
    """The main segment's ring radius (mm) at an arc position."""
    return float(np.interp(arc_mm, arc_lengths(main.centreline_mm), main.radius_mm))


def attach(main: MIResult, branch: MIResult) -> tuple[MIResult, Attachment]:
    """The branch translated so that its start meets the main centreline, with the rings
    inside the main lumen set to the radius of the first ring outside it (ring shapes kept,
    scaled about their centres). World mm throughout."""
    junction, s_j, dist = nearest_on_polyline(main.centreline_mm, branch.centreline_mm[0])
    shift = junction - branch.centreline_mm[0]
    # Each ring moves by the shift times a weight that falls from 1 at the start to 0 at
    # ATTACH_BLEND_MM along the branch (raised cosine; the whole branch if shorter).
    s = arc_lengths(branch.centreline_mm)
    blend = min(ATTACH_BLEND_MM, float(s[-1])) if ATTACH_BLEND_MM > 0 else np.inf
    w = (
        0.5 * (1.0 + np.cos(np.pi * np.clip(s / blend, 0.0, 1.0)))
        if np.isfinite(blend)
        else np.ones_like(s)
    )
    centres = branch.centreline_mm + w[:, None] * shift
    rings = branch.vertices.reshape(-1, N_AROUND, 3) + w[:, None, None] * shift
    radius = branch.radius_mm.astype(np.float64).copy()
    # Rings from the start up to the first one whose centre lies outside the main lumen.
    n_in = 0
    for c in centres:
        _, s_c, d = nearest_on_polyline(main.centreline_mm, c)
        if d >= radius_at(main, s_c):
            break
        n_in += 1
    if 0 < n_in < len(radius):
        r_out = radius[n_in]
        scale = r_out / np.maximum(radius[:n_in], 1e-9)
        ring_c = rings[:n_in].mean(axis=1, keepdims=True)
        rings[:n_in] = ring_c + (rings[:n_in] - ring_c) * scale[:, None, None]
        radius[:n_in] = r_out
    warnings = list(branch.warnings)
    if dist > WARN_ATTACH_MM:
        warnings.append(
            f"{branch.branch}: its start is {dist:.1f} mm from the main centreline; "
            "translated to meet it (check its start click in both views)"
        )
    moved = dataclasses.replace(
        branch,
        centreline_mm=centres,
        radius_mm=radius,
        vertices=rings.reshape(-1, 3),
        warnings=warnings,
    )
    return moved, Attachment(shift, s_j, junction, n_in)


def _point_at(points: np.ndarray, arc_mm: float) -> np.ndarray:
    s = arc_lengths(points)
    return np.array([np.interp(arc_mm, s, points[:, k]) for k in range(3)])


def bifurcation_angle_deg(
    main_centreline_mm: np.ndarray,
    branch_centreline_mm: np.ndarray,
    *,
    distance_mm: float = ANGLE_DISTANCE_MM,
) -> float:
    """Angle (degrees, 0-180) between the distal main vessel and the side branch at their
    junction (module docstring). Where less than 1 mm of the main segment lies distal of
    the junction, the proximal main direction continued through it is used."""
    main = np.asarray(main_centreline_mm, dtype=np.float64)
    br = np.asarray(branch_centreline_mm, dtype=np.float64)
    junction, s_j, _ = nearest_on_polyline(main, br[0])
    length = float(arc_lengths(main)[-1])
    if length - s_j >= 1.0:
        d_main = _point_at(main, min(s_j + distance_mm, length)) - junction
    else:
        d_main = junction - _point_at(main, max(s_j - distance_mm, 0.0))
    d_br = _point_at(br, min(distance_mm, float(arc_lengths(br)[-1]))) - br[0]
    cos = float(np.dot(d_main, d_br) / max(np.linalg.norm(d_main) * np.linalg.norm(d_br), 1e-12))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def bifurcation_report(
    main: MIResult,
    branch: MIResult,
    main_qca: BranchQCA,
    branch_qca: BranchQCA,
    attachment: Attachment,
) -> dict[str, object]:
    """The bifurcation's numbers for report.json (CASE_FORMAT.md): angle, and the
    reference diameters (mm) of the proximal main, distal main and side branch,
    :data:`REFERENCE_OFFSET_MM` from the junction (the side branch's beyond the main
    lumen)."""
    s_j = attachment.junction_arc_mm
    L = float(main_qca.arc_mm[-1])
    prox = float(
        np.interp(max(s_j - REFERENCE_OFFSET_MM, 0.0), main_qca.arc_mm, main_qca.reference_mm)
    )
    dist = float(
        np.interp(min(s_j + REFERENCE_OFFSET_MM, L), main_qca.arc_mm, main_qca.reference_mm)
    )
    k_out = min(attachment.inner_rings, len(branch_qca.arc_mm) - 1)
    s_side = float(branch_qca.arc_mm[k_out]) + REFERENCE_OFFSET_MM
    side = float(np.interp(s_side, branch_qca.arc_mm, branch_qca.reference_mm))
    return {
        "branch": branch.branch,
        "angle_deg": bifurcation_angle_deg(main.centreline_mm, branch.centreline_mm),
        "angle_distance_mm": ANGLE_DISTANCE_MM,
        "junction_arc_mm": s_j,
        "reference_diameter_mm": {"proximal_main": prox, "distal_main": dist, "side": side},
        "attachment": attachment.to_dict(),
    }
