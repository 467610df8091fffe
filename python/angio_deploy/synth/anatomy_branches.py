"""Side branches of the synthetic coronary tree: planning, diameters, growth, twigs.

World frame: DICOM LPS, millimetres. Side branches (diagonals, OMs, RV and acute
marginals, PDA, PL, conus, sinus node) leave their parent at a drawn angle and steer toward
the apex or the lateral wall; septal perforators dive into the septum; named side branches
carry small twigs. Each branch point is a recorded bifurcation with its law (Finet or
Murray), and the parent's diameter steps down at it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .anatomy_curves import Pursuit, point_at, resample_polyline
from .anatomy_diameters import FINET_RHO, Law, choose_law, draw_side_ratio, taper_for_target
from .anatomy_heart import rotation_about, unit
from .anatomy_scene import Scene, VesselRecord


@dataclass
class SidePlan:
    """A planned side branch on a parent vessel: where (arc length s_mm from the parent's
    start), which law, side-to-parent diameter ratio rho, which kind."""

    name: str
    s_mm: float
    law: Law
    rho: float
    kind: str


def plan_sides(scene: Scene, parent: int, table: list[tuple]) -> list[SidePlan]:
    """Place side branches on a parent: (name, s_lo, s_hi as fractions of its length,
    rho_lo, rho_hi, kind, probability). Branch points are >= 6 mm apart. Probabilities
    below the scene's ``side_presence_min`` are raised to it."""
    rng = scene.rng
    length = scene.length(parent)
    floor = scene.p.side_presence_min
    sides: list[SidePlan] = []
    for name, f_lo, f_hi, r_lo, r_hi, kind, prob in table:
        present = rng.random() < max(prob, floor)
        law = choose_law(rng, r_lo, r_hi, scene.p.finet_share)
        rho = draw_side_ratio(rng, law, r_lo, r_hi)
        tries = rng.uniform(f_lo, max(f_lo, f_hi), size=8) * length
        if not present:
            continue
        for s_b in tries:
            ok = 4.0 <= s_b <= length - 8.0
            if ok and all(abs(s_b - o.s_mm) >= 6.0 for o in sides):
                sides.append(SidePlan(name, float(s_b), law, rho, kind))
                break
    return sorted(sides, key=lambda x: x.s_mm)


def with_extra_twigs(scene: Scene, table: list[tuple], prefix: str) -> list[tuple]:
    """A main vessel's side-branch table with the scene's ``extra_main_twigs`` twigs
    appended (anywhere along 8-95 % of the vessel, 0.2-0.45 of its diameter). Appended,
    not interleaved: the draws of the table's own rows stay where they were."""
    extra = [
        (f"{prefix}x{k + 1}", 0.08, 0.95, 0.20, 0.45, "twig", 1.0)
        for k in range(scene.p.extra_main_twigs)
    ]
    return table + extra


def set_taper(
    scene: Scene, idx: int, d0: float, d_target: float, s_target: float, sides: list[SidePlan]
) -> None:
    """Diameter plan of vessel ``idx``: d0 (mm) at its start, a step at every planned side
    branch, and the exponential taper that reaches d_target (mm) at s_target (mm)."""
    rec = scene.recs[idx]
    rec.d0 = d0
    rec.steps = [(sd.s_mm, sd.law.step(sd.rho)) for sd in sides]
    rec.decay = taper_for_target(d0, d_target, s_target, rec.steps, floor=5e-4)


def grow_sides(scene: Scene, parent: int, sides: list[SidePlan]) -> None:
    """Grow the planned side branches of ``parent`` in order."""
    for side in sides:
        grow_side(scene, parent, side)


def _steer_field(rng: np.random.Generator, kind: str) -> tuple[float, float, float, float]:
    """(weight toward the apex, weight along +phi, length lo, hi mm) per branch kind."""
    beta = float(np.deg2rad(rng.uniform(30.0, 55.0)))
    table = {
        "diagonal": (math.cos(beta), math.sin(beta), 50.0, 90.0),
        "marginal": (1.0, 0.25, 40.0, 80.0),
        "rv": (1.0, 0.35, 30.0, 60.0),
        "acute": (1.0, 0.0, 40.0, 70.0),
        "pda": (1.0, 0.0, 50.0, 85.0),
        "pl": (1.0, -0.3, 25.0, 50.0),
        "conus": (-0.25, 1.0, 20.0, 35.0),
        "sinus": (-1.0, -0.3, 15.0, 30.0),
        "septal": (0.0, 0.0, 18.0, 40.0),
        "twig": (0.8, float(rng.uniform(-0.8, 0.8)), 10.0, 32.0),
    }
    return table[kind]


def grow_side(scene: Scene, parent: int, side: SidePlan) -> None:
    """Walk one side branch from its origin ON the parent centreline.

    Named side branches (generation 1: diagonals, marginals, RV, acute, PDA, PL)
    carry their own small twigs (generation 2), planned before the branch's taper is
    set so that each twig is a recorded bifurcation with its law (Finet or Murray) and
    the branch steps down at it like any parent. Twigs off the main vessels (kind
    "twig") are generation 2 too. Twigs are 10-32 mm long, >= ~0.5 mm wide, and
    meander on a 5-12 mm scale; they may wrap the apex. With the scene's
    ``twig_max_generation`` at 3 (generator version 2), generation-2 vessels carry
    twigs of their own (generation 3) where they are wide enough.
    """
    rng, heart = scene.rng, scene.heart
    prec = scene.recs[parent]
    twig = side.kind == "twig"
    c_long, c_phi, len_lo, len_hi = _steer_field(rng, side.kind)
    length = float(rng.uniform(len_lo, len_hi))
    angle_range = (40.0, 90.0) if twig else scene.p.branch_angle_deg
    alpha = float(np.deg2rad(rng.uniform(*angle_range)))
    if side.kind == "septal":
        # Septal perforators leave the LAD steeply into the septum.
        alpha = float(np.deg2rad(60.0)) + 0.5 * (alpha - float(np.deg2rad(35.0)))
    tort = float(rng.uniform(0.01, 0.04))
    twist = float(rng.uniform(0.3, 0.6)) if twig else float(rng.uniform(0.05, 0.15))
    flip = rng.random() < 0.5
    gap = float(rng.uniform(0.3, 1.0))
    p0, t_par = point_at(prec.points, side.s_mm)
    d_p = float(prec.diameter_at(side.s_mm - 1.0))
    d_side = side.rho * d_p
    n0 = heart.normal(p0)
    if side.kind == "septal":
        pts = _septal(scene, p0, t_par, n0, length, alpha)
        course = "septal"
    else:
        t_tan = unit(t_par - (t_par @ n0) * n0)
        plus = rotation_about(n0, alpha) @ t_tan
        minus = rotation_about(n0, -alpha) @ t_tan
        pref = _field(scene, p0, c_long, c_phi)
        d0 = plus if plus @ pref >= minus @ pref else minus
        if twig and flip:
            d0 = minus if d0 is plus else plus
        h_own = 0.5 * d_side + gap
        if side.kind == "pda":
            steer: Any = Pursuit(_pda_path(scene, p0, h_own, length))
        elif twig:
            steer = None  # twigs wander off at their take-off angle
        else:
            steer = _field_steer(scene, c_long, c_phi)
        pts = scene.walk(
            p0,
            d0,
            length,
            lambda s: h_own,
            steer,
            tort,
            twist=twist,
            twist_from=(2.0, 8.0) if twig else (0.3 * length, 0.7 * length),
            kappa_max=0.15 if twig else 0.13,
            apex_stop=not twig,
        )
        course = "epicardial"
    # Twigs are generation 2 at least (off a main vessel too); a twig's twig is 3.
    generation = max(2, prec.generation + 1) if twig else prec.generation + 1
    rec = VesselRecord(side.name, pts, course, parent, side.s_mm, d0=d_side, generation=generation)
    rec.iodine = scene.fill_by_generation[min(generation, 2)]
    # Taper to 45-70 % over the branch, at most 1.8 %/mm (short branches, twigs).
    end = d_side * float(rng.uniform(0.45, 0.7))
    end = max(end, d_side * math.exp(-0.018 * rec.length))
    twigs: list[SidePlan] = []
    carries = 1 <= generation < scene.p.twig_max_generation
    if course == "epicardial" and carries and side.kind not in ("conus", "sinus"):
        twigs = _plan_twigs(scene, rec, end)
    idx = scene.add(rec)
    set_taper(scene, idx, d_side, end, rec.length, twigs)
    d1 = d_p * side.law.step(side.rho)
    scene.record_bifurcation(parent, side.s_mm, (parent, idx), (d_p, d1, d_side), side.law)
    grow_sides(scene, idx, twigs)


def _plan_twigs(scene: Scene, rec: VesselRecord, end: float) -> list[SidePlan]:
    """Twig positions, laws and side ratios on a side branch: one per 9-16 mm (the
    scene's ``twig_spacing_mm``), where
    the branch (estimated before the twigs' own small steps) is still wide enough for
    a twig of >= 0.5 mm."""
    rng = scene.rng
    length = rec.length
    decay = math.log(rec.d0 / end) / max(length, 1.0)
    n = int(length / float(rng.uniform(*scene.p.twig_spacing_mm)))
    cand = np.sort(rng.uniform(5.0, max(5.0, length - 8.0), size=n))
    u_rho, u_law, u_k = rng.random((3, n))
    sides: list[SidePlan] = []
    for k, s_b in enumerate(cand):
        d_est = rec.d0 * math.exp(-decay * float(s_b))
        rho_lo, rho_hi = max(0.3, 0.55 / d_est), 0.62
        if rho_lo > rho_hi - 0.04 or any(abs(s_b - o.s_mm) < 6.0 for o in sides):
            continue
        if rho_hi >= 0.5 and u_law[k] < scene.p.finet_share:
            law = Law("finet")
        else:
            law = Law("murray", 2.1 + 0.9 * float(u_k[k]))
        lo, hi = rho_lo, min(rho_hi, law.rho_max() - 0.01)
        if law.name == "finet":
            lo = max(lo, FINET_RHO[0] + 0.01)
        rho = lo + float(u_rho[k]) * max(hi - lo, 0.0)
        sides.append(SidePlan(f"{rec.name}-{len(sides) + 1}", float(s_b), law, rho, "twig"))
    return sides


def _field(scene: Scene, p: np.ndarray, c_long: float, c_phi: float) -> np.ndarray:
    return c_long * scene.heart.e_long + c_phi * scene.heart.azimuth_dir(p)


def _field_steer(scene: Scene, c_long: float, c_phi: float) -> Any:
    """Steering in heart-local coordinates: c_long toward the apex, c_phi along +phi."""
    _, b, c = scene.heart.axes

    def steer(p: tuple[float, float, float], s: float) -> tuple[float, float, float]:
        phi = math.atan2(p[1] / b, p[2] / c)
        ay, az = b * math.cos(phi), -c * math.sin(phi)
        m = math.hypot(ay, az)
        return (c_long, c_phi * ay / m, c_phi * az / m)

    return steer


def _pda_path(scene: Scene, p0: np.ndarray, h: float, length: float) -> np.ndarray:
    """Posterior interventricular groove from the crux toward the apex."""
    t0, _ = scene.heart.coords(p0)
    t_end = min(0.9, float(t0) + length / scene.heart.axes[0])
    tau = np.linspace(0.0, 1.0, 120)
    phi = scene.phi_pda + float(np.deg2rad(scene.rng.uniform(-8, 8))) * tau
    return scene.groove(float(t0) + (t_end - float(t0)) * tau, phi, h, 2.0)


def _septal(
    scene: Scene, p0: np.ndarray, t_par: np.ndarray, n0: np.ndarray, length: float, alpha: float
) -> np.ndarray:
    """Septal perforator: leaves the LAD into the septum (inward, in the plane of the
    LAD tangent and the surface normal) and bends gently toward the apex."""
    d0 = math.cos(alpha) * t_par - math.sin(alpha) * n0
    bend = unit(d0 + 0.6 * scene.heart.e_long)
    c1 = p0 + 0.5 * length * d0
    c2 = c1 + 0.5 * length * bend
    u = np.linspace(0.0, 1.0, max(16, math.ceil(length / 0.1)))[:, None]
    curve = (1 - u) ** 2 * p0 + 2 * u * (1 - u) * c1 + u**2 * c2
    return resample_polyline(curve, scene.p.spacing_mm)
