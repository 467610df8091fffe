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
usual 3D-QCA definition, less sensitive to the junction's own shape than tangents). The
chord's direction error falls as 1 / length: 1 px (~0.3 mm at the vessel) at its end
turns a 5 mm chord by ~3.5 degrees, and the angle takes the errors of two chords, so the
chord is 10 mm, the shortest side-branch segment the synthetic cases hold. Prediction
and truth use the same function (:func:`bifurcation_angle_deg`).

How well two views determine each direction (:func:`direction_conditioning`): a
direction is known from its two projections, each defining a plane through its view's
source; it is their intersection. It is ill-conditioned when the planes nearly coincide
(the direction lies close to the views' epipolar plane) or when a view sees it
foreshortened (its projection is short, so its 2D direction is noisy). The 2D centreline
noise (:data:`~angio_deploy.pipeline.geometry_refinement.CURVE_SIGMA_PX`) propagated
through that intersection gives each direction's first-order 1-sigma error and the
angle's, reported as ``angle_sigma_deg``: a conservative figure (mesh initialisation
matches whole curves, not two tangents; on the synthetic test split the typical error
was several times smaller). The gross failures it does not predict are flagged
``angle_low_confidence`` (:func:`angle_confidence`): a view that sees a direction end-on,
or a branch start outside the main lumen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from angio_deploy import kernels
from angio_deploy.curves import arc_lengths
from angio_deploy.geometry import source_of
from angio_deploy.topology import N_AROUND

from .geometry_refinement import CURVE_SIGMA_PX
from .qca import BranchQCA
from .result import MIResult

#: Chord length (mm) along each vessel from the junction that defines the angle
#: (module docstring).
ANGLE_DISTANCE_MM = 10.0
#: Reference diameters of the bifurcation are read this far (mm) from the junction.
REFERENCE_OFFSET_MM = 2.0
#: A translation longer than this (mm) to meet the main centreline is reported.
WARN_ATTACH_MM = 3.0
#: The attaching shift fades out over this much of the branch (mm); 0 moves the whole
#: branch rigidly, as the paper does.
ATTACH_BLEND_MM = 10.0
#: Step (rad) of the numerical derivative of a direction by its 2D directions.
_DPHI = 1e-4


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


@dataclass(frozen=True)
class BifurcationDirections:
    """The two directions the angle is measured between: the junction (mm, on the main
    centreline), the unit chord directions of the main (distal, or the proximal one
    continued through a junction at the main's end) and of the side branch, and the
    chord lengths (mm) actually used (shorter where a vessel ends first)."""

    junction_mm: np.ndarray
    main: np.ndarray
    side: np.ndarray
    main_chord_mm: float
    side_chord_mm: float

    @property
    def angle_deg(self) -> float:
        """Angle (degrees, 0-180) between the two directions."""
        return float(np.degrees(np.arccos(np.clip(float(self.main @ self.side), -1.0, 1.0))))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def bifurcation_directions(
    main_centreline_mm: np.ndarray,
    branch_centreline_mm: np.ndarray,
    *,
    distance_mm: float = ANGLE_DISTANCE_MM,
) -> BifurcationDirections:
    """The chord directions at the junction that define the angle (module docstring).
    Where less than 1 mm of the main segment lies distal of the junction, the proximal
    main direction continued through it is used. World mm."""
    main = np.asarray(main_centreline_mm, dtype=np.float64)
    br = np.asarray(branch_centreline_mm, dtype=np.float64)
    junction, s_j, _ = nearest_on_polyline(main, br[0])
    length = float(arc_lengths(main)[-1])
    if length - s_j >= 1.0:
        d_main = _point_at(main, min(s_j + distance_mm, length)) - junction
    else:
        d_main = junction - _point_at(main, max(s_j - distance_mm, 0.0))
    d_br = _point_at(br, min(distance_mm, float(arc_lengths(br)[-1]))) - br[0]
    return BifurcationDirections(
        junction,
        _unit(d_main),
        _unit(d_br),
        float(np.linalg.norm(d_main)),
        float(np.linalg.norm(d_br)),
    )


def bifurcation_angle_deg(
    main_centreline_mm: np.ndarray,
    branch_centreline_mm: np.ndarray,
    *,
    distance_mm: float = ANGLE_DISTANCE_MM,
) -> float:
    """Angle (degrees, 0-180) between the distal main vessel and the side branch at their
    junction (module docstring, :func:`bifurcation_directions`). The one definition for
    the product's report and for the truth in evaluation."""
    return bifurcation_directions(
        main_centreline_mm, branch_centreline_mm, distance_mm=distance_mm
    ).angle_deg


@dataclass(frozen=True)
class DirectionConditioning:
    """How well two views determine a 3D direction at a point.

    ``foreshortening``: per view, the projected length over the 3D length (the sine of
    the angle between the direction and the view's ray; 1 = seen side on, 0 = along the
    ray). ``epipolar_angle_deg``: the angle between the two planes through each view's
    source that contain the direction's projection (0 = the direction lies in the
    epipolar plane, where two views cannot determine it). ``sigma_deg``: the direction's
    1-sigma error from the 2D noise, to first order (capped at 90)."""

    foreshortening: tuple[float, ...]
    epipolar_angle_deg: float
    sigma_deg: float

    def to_dict(self) -> dict[str, object]:
        return {
            "foreshortening": [float(f) for f in self.foreshortening],
            "epipolar_angle_deg": self.epipolar_angle_deg,
            "sigma_deg": self.sigma_deg,
        }


def _plane_normal(P: np.ndarray, x0: np.ndarray, phi: float) -> np.ndarray:
    """Unit normal of the plane through the source of P that projects onto the image line
    through x0 (px) at angle phi (rad): the back-projection P^T l of that line l."""
    line = np.cross(np.append(x0, 1.0), np.append(x0 + np.array([np.cos(phi), np.sin(phi)]), 1.0))
    return _unit((P.T @ line)[:3])


def direction_conditioning(
    point_mm: np.ndarray,
    direction: np.ndarray,
    chord_mm: float,
    matrices: tuple[np.ndarray, np.ndarray],
    *,
    sigma_px: float = CURVE_SIGMA_PX,
) -> DirectionConditioning:
    """How well the two views (3x4 matrices, world mm -> px) determine ``direction``
    (unit, world) measured over a chord of ``chord_mm`` from ``point_mm``
    (:class:`DirectionConditioning`). The 2D direction of the chord's projection in
    each view has a 1-sigma error of sqrt(2) ``sigma_px`` over its projected length
    (px); both are propagated through the intersection of the two back-projected planes
    by numerical differentiation."""
    X = np.asarray(point_mm, dtype=np.float64)
    t = _unit(np.asarray(direction, dtype=np.float64))
    Ps = [np.asarray(P, dtype=np.float64) for P in matrices]
    fs, x0s, phis, sig_phi = [], [], [], []
    for P in Ps:
        ray = _unit(X - source_of(P))
        fs.append(min(float(np.linalg.norm(np.cross(ray, t))), 1.0))
        x0, x1 = kernels.project(P, np.stack([X, X + chord_mm * t]))
        u = x1 - x0
        x0s.append(x0)
        phis.append(float(np.arctan2(u[1], u[0])))
        sig_phi.append(np.sqrt(2.0) * sigma_px / max(float(np.linalg.norm(u)), 1e-9))
    normals = [_plane_normal(P, x0, phi) for P, x0, phi in zip(Ps, x0s, phis, strict=True)]
    epi = float(np.degrees(np.arccos(np.clip(abs(float(normals[0] @ normals[1])), 0.0, 1.0))))
    var = 0.0
    for k in range(2):
        n = list(normals)
        n[k] = _plane_normal(Ps[k], x0s[k], phis[k] + _DPHI)
        moved = np.cross(n[0], n[1])
        if float(np.linalg.norm(moved)) < 1e-12:
            var = np.inf
            break
        moved = _unit(moved)
        cos = abs(float(moved @ t))
        dtheta = float(np.arccos(np.clip(cos, -1.0, 1.0)))
        var += (dtheta / _DPHI * sig_phi[k]) ** 2
    sigma = float(min(np.degrees(np.sqrt(var)), 90.0))
    return DirectionConditioning(tuple(fs), epi, sigma)


def angle_confidence(
    directions: BifurcationDirections,
    matrices: tuple[np.ndarray, np.ndarray],
    *,
    main_radius_mm: float,
    side_radius_mm: float,
    attach_distance_mm: float,
) -> dict[str, object]:
    """How far the angle can be trusted: each direction's :func:`direction_conditioning`
    at the junction, ``angle_sigma_deg`` (the two directions' first-order errors added as
    variances, capped at 90) and ``low_confidence`` with its ``reasons`` where the
    reconstruction at the junction shows one of the two ways it fails grossly, which no
    noise model predicts: a view sees a direction end-on (its chord projects shorter than
    the vessel's diameter, so that view's trace there is the vessel's blob, not its
    course), or the branch started outside the main lumen before it was attached (the
    two triangulations disagree at the junction by more than the main radius, so at
    least one of them is wrong there). All lengths mm."""
    c_main = direction_conditioning(
        directions.junction_mm, directions.main, directions.main_chord_mm, matrices
    )
    c_side = direction_conditioning(
        directions.junction_mm, directions.side, directions.side_chord_mm, matrices
    )
    reasons = []
    for name, c, chord, r in (
        ("main", c_main, directions.main_chord_mm, main_radius_mm),
        ("side branch", c_side, directions.side_chord_mm, side_radius_mm),
    ):
        for view, f in zip("ab", c.foreshortening, strict=False):
            if f * chord < 2.0 * r:
                reasons.append(
                    f"view {view} sees the {name} end-on at the junction (its {chord:.0f} mm "
                    f"chord projects to {f * chord:.1f} mm, less than its {2 * r:.1f} mm "
                    "diameter)"
                )
    if attach_distance_mm > main_radius_mm:
        reasons.append(
            f"the branch started {attach_distance_mm:.1f} mm from the main centreline, "
            f"outside its {main_radius_mm:.1f} mm radius"
        )
    return {
        "angle_sigma_deg": float(min(np.hypot(c_main.sigma_deg, c_side.sigma_deg), 90.0)),
        "low_confidence": bool(reasons),
        "reasons": reasons,
        "main": c_main.to_dict(),
        "side": c_side.to_dict(),
    }


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
    directions = bifurcation_directions(main.centreline_mm, branch.centreline_mm)
    out: dict[str, object] = {
        "branch": branch.branch,
        "angle_deg": directions.angle_deg,
        "angle_distance_mm": ANGLE_DISTANCE_MM,
        "junction_arc_mm": s_j,
        "reference_diameter_mm": {"proximal_main": prox, "distal_main": dist, "side": side},
        "attachment": attachment.to_dict(),
    }
    if len(main.geometries) == 2:
        cond = angle_confidence(
            directions,
            (main.geometries[0].P, main.geometries[1].P),
            main_radius_mm=radius_at(main, s_j),
            side_radius_mm=float(branch.radius_mm[k_out]),
            attach_distance_mm=float(np.linalg.norm(attachment.translation_mm)),
        )
        out["angle_sigma_deg"] = cond["angle_sigma_deg"]
        out["angle_low_confidence"] = cond["low_confidence"]
        out["angle_low_confidence_reasons"] = cond["reasons"]
        out["angle_conditioning"] = {"main": cond["main"], "side": cond["side"]}
    return out


def bifurcation_warnings(bifurcations: list[dict[str, Any]]) -> list[str]:
    """One report warning per bifurcation whose angle is flagged low confidence
    (``angle_low_confidence`` in report.json's ``qca.bifurcations``), naming the branch,
    the angle (degrees) and why: the flag marks the gross failures the angle's sigma does
    not predict, so a reader of the report alone must see it."""
    return [
        f"{b['branch']}: the bifurcation angle ({b['angle_deg']:.0f} deg) is low confidence: "
        + "; ".join(b["angle_low_confidence_reasons"])
        for b in bifurcations
        if b.get("angle_low_confidence")
    ]
