"""Synthetic coronary anatomy: heart, coronary tree, catheter, segment of interest, lesions.

World frame: DICOM LPS, millimetres (+x patient left, +y posterior, +z head), isocenter at
the origin (GEOMETRY.md). Entry point: ``generate_anatomy(rng, params=...)``.

Model in brief:
- The epicardium is an ellipsoid (about 12 x 9 x 8 cm) whose long axis points left, anterior
  and inferior, with jittered size and orientation (``anatomy_heart``).
- Grooves are laid out in surface coordinates (t along the long axis, azimuth phi): the
  anterior interventricular groove (LAD), the left and right atrioventricular grooves (LCx,
  RCA) on an oblique AV ring, and the posterior interventricular groove (PDA), each with
  smooth random perturbations. Vessels follow them by a steered walk at a small epicardial
  offset (radius + fat), with their own smooth wiggle and a bounded turning rate, and are
  spline-resampled at <= 0.5 mm (``anatomy_curves``). Side branches (diagonals, OMs, RV and
  acute marginals, PL, conus, sinus node) leave their parent at a drawn angle and steer
  toward the apex or the lateral wall; septal perforators dive into the septum.
- Reference diameters follow Dodge et al. 1992 with exponential taper and a smooth step at
  every branch point given by Finet's or a Murray-type law (``anatomy_diameters``).
- Lumen cross-sections are ellipses (axis ratio 1 to ~1.3, smoothly varying, major axis
  rotating smoothly about a twist-free frame); lesions narrow them (``lesions``).
- A 5 or 6 French guide catheter comes up the descending aorta, over the arch and down the
  ascending aorta into the left or right coronary ostium.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .anatomy_curves import (
    Pursuit,
    WalkSpec,
    arclength,
    hermite,
    point_at,
    resample_polyline,
    rotation_minimizing_normals,
    smooth_noise,
    spline_resample,
    tangents,
    walk_on_heart,
)
from .anatomy_diameters import (
    FINET_RHO,
    Law,
    choose_law,
    diameter_profile,
    draw_side_ratio,
    law_error,
    murray_exponent,
    reconcile,
    taper_for_target,
)
from .anatomy_heart import Heart, draw_heart, rotation_about, unit
from .lesions import (
    LesionParams,
    apply_lesions,
    draw_lesions,
    finalize_lesions,
    measured_percent_ds,
)
from .model import Anatomy, Bifurcation, SegmentOfInterest, Vessel

GENERATOR_VERSION = 2


@dataclass(frozen=True)
class AnatomyParams:
    """Distributions of the anatomy generator (lengths mm, angles degrees).

    Dodge et al. 1992 reference diameters are (mean, sd) in mm.
    """

    left_share: float = 0.7
    spacing_mm: float = 0.45
    dodge_lm: tuple[float, float] = (4.5, 0.5)
    dodge_lad_prox: tuple[float, float] = (3.7, 0.4)
    dodge_lad_dist: tuple[float, float] = (1.9, 0.4)
    dodge_lcx_prox: tuple[float, float] = (3.4, 0.5)
    dodge_rca_prox: tuple[float, float] = (3.9, 0.6)
    finet_share: float = 0.4
    branch_angle_deg: tuple[float, float] = (35.0, 95.0)
    soi_length_mm: tuple[float, float] = (20.0, 80.0)
    side_soi_share: float = 0.3
    side_soi_length_mm: tuple[float, float] = (10.0, 30.0)
    lesion_count_probs: tuple[float, float, float] = (0.15, 0.65, 0.20)
    side_lesion_share: float = 0.3
    extra_lesion_share: float = 0.25
    lesions: LesionParams = field(default_factory=LesionParams)
    ellipse_ratio_max: float = 1.3
    placement_jitter_mm: float = 10.0
    catheter_length_mm: tuple[float, float] = (150.0, 250.0)


@dataclass
class _Rec:
    """A vessel under construction: centreline (world mm), course type and diameter plan."""

    name: str
    points: np.ndarray
    course: str  # "epicardial", "ostial" (starts at an aortic ostium), "septal", "catheter"
    parent: int | None = None
    parent_s_mm: float | None = None
    offset_mm: float = 2.0
    d0: float = 2.0
    decay: float = 0.0
    steps: list[tuple[float, float]] = field(default_factory=list)
    generation: int = 0  # 0 main vessel, 1 named side branch, 2 small twig
    iodine: float = 1.0

    @property
    def length(self) -> float:
        return float(arclength(self.points)[-1])

    def diameter_at(self, s: np.ndarray | float) -> np.ndarray:
        return diameter_profile(np.asarray(s, dtype=float), self.d0, self.decay, self.steps)


@dataclass
class _Side:
    """A planned side branch on a main vessel: where, which law, how wide, which way."""

    name: str
    s_mm: float
    law: Law
    rho: float
    kind: str


def _draw_dodge(rng: np.random.Generator, p: AnatomyParams) -> dict[str, float]:
    """Per-case Dodge diameters (mm), each clipped to +/- 2.5 sd of its mean."""
    out = {}
    for key in ("lm", "lad_prox", "lad_dist", "lcx_prox", "rca_prox"):
        mean, sd = getattr(p, f"dodge_{key}")
        out[key] = float(mean + sd * np.clip(rng.standard_normal(), -2.5, 2.5))
    return out


def _lm_bifurcation(
    rng: np.random.Generator, dodge: dict[str, float], p: AnatomyParams
) -> tuple[Law, np.ndarray]:
    """Law and reconciled (LM, LAD, LCx) diameters (mm) at the left main bifurcation.

    Murray with the exponent the draws imply when it lies in [2.1, 3]; otherwise Finet or the
    nearest Murray exponent, whichever moves the diameters least.
    """
    d = np.array([dodge["lm"], dodge["lad_prox"], dodge["lcx_prox"]])
    sigma = np.array([p.dodge_lm[1], p.dodge_lad_prox[1], p.dodge_lcx_prox[1]])
    k = murray_exponent(*d)
    if k is not None and 2.1 <= k <= 3.0 and rng.random() >= p.finet_share:
        return Law("murray", k), d
    options = [Law("finet"), Law("murray", 2.1 if k is not None and k < 2.1 else 3.0)]
    if rng.random() >= p.finet_share:
        options = options[1:]
    fits = [
        (float(np.sum(((reconcile(d, sigma, law) - d) / sigma) ** 2)), i)
        for i, law in enumerate(options)
    ]
    law = options[min(fits)[1]]
    return law, reconcile(d, sigma, law)


class _Builder:
    """Builds one scene; all randomness comes from ``rng`` in a fixed order."""

    def __init__(self, rng: np.random.Generator, params: AnatomyParams) -> None:
        self.rng = rng
        self.p = params
        self.heart: Heart = draw_heart(rng)
        self.recs: list[_Rec] = []
        self.bifs: list[Bifurcation] = []
        self.laws: list[dict[str, Any]] = []
        self._grooves()
        # Partial filling in a share of runs: contrast fades toward the small branches
        # (inflow mixing with unopacified blood); iodine per generation 0, 1, 2.
        fade = float(rng.uniform(0.1, 0.45)) if rng.random() < 0.4 else 0.0
        self.fill_by_generation = (1.0, 1.0 - 0.4 * fade, 1.0 - fade)

    # ----- layout of the grooves and the aortic root -------------------------------------

    def _grooves(self) -> None:
        """Draw the AV ring, the interventricular groove azimuths and the aortic root."""
        rng = self.rng
        self.t_av0 = float(rng.uniform(-0.5, -0.4))
        self.av_tilt = float(rng.uniform(0.03, 0.10))  # the AV ring is oblique
        self.av_tilt_phase = float(rng.uniform(-0.5, 0.5))
        self.phi_lad = float(np.deg2rad(rng.uniform(5.0, 25.0)))
        self.phi_pda = float(np.deg2rad(rng.uniform(-195.0, -170.0)))
        self.av_noise = (rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.005, 0.015, 2))

    def t_av(self, phi: np.ndarray) -> np.ndarray:
        """Long-axis coordinate t of the AV groove at azimuth phi (rad)."""
        ph, amp = self.av_noise
        wob = amp[0] * np.sin(2 * phi + ph[0]) + amp[1] * np.sin(3 * phi + ph[1])
        return self.t_av0 + self.av_tilt * np.cos(phi - self.av_tilt_phase) + wob

    def groove(self, t: np.ndarray, phi: np.ndarray, h: float, jitter_mm: float) -> np.ndarray:
        """Dense groove path (world mm) at height h, perturbed sideways by up to jitter_mm."""
        s = np.linspace(0.0, 1.0, len(t)) * 150.0
        r = float(np.mean(self.heart.axes[1:]))
        dphi = smooth_noise(self.rng, s, jitter_mm / r, (60.0, 160.0))
        dt = smooth_noise(self.rng, s, jitter_mm / self.heart.axes[0], (60.0, 160.0))
        return self.heart.offset_surface(t + dt, phi + dphi, h)

    def _aorta(self, p_bif: np.ndarray, d_lad: np.ndarray) -> None:
        """Aortic root: LM ostium back from the LM bifurcation (the LAD roughly continues
        the LM), root centre, RCA ostium."""
        rng = self.rng
        jit = 0.15 * rng.standard_normal((4, 3))
        self.d_ao = unit(np.array([-0.2, -0.3, 1.0]) + jit[0])  # ascending: up, anterior, right
        # LM traced back from its bifurcation: right, posterior, up, against the LAD.
        w_l = unit(unit(np.array([-1.0, 0.9, 0.3]) + jit[1]) - 0.8 * d_lad)
        self.lm_length = float(rng.uniform(8.0, 15.0))
        self.o_left = p_bif + self.lm_length * w_l
        self.r_root = float(rng.uniform(12.0, 16.0))
        u_l = unit(-w_l - (-w_l @ self.d_ao) * self.d_ao)  # left sinus faces the LM
        self.root = self.o_left - self.r_root * u_l
        ant_right = np.array([-0.45, -1.0, 0.0]) + jit[2]
        u_r = unit(ant_right - (ant_right @ self.d_ao) * self.d_ao)  # right sinus: anterior
        self.u_left, self.u_right = u_l, u_r
        self.o_right = self.root + self.r_root * u_r

    # ----- walking vessels ---------------------------------------------------------------

    def _wiggle(self, length: float, step: float, amp: float) -> np.ndarray:
        s = np.arange(0.0, length + 2 * step, step)
        return smooth_noise(self.rng, s, amp, (12.0, 45.0))

    def _stop_apex(self, p: tuple[float, float, float], s: float) -> bool:
        """Stop a branch (heart-local point p) at the apex or at the top of the atria."""
        a, b, c = self.heart.axes
        k = math.sqrt((p[0] / a) ** 2 + (p[1] / b) ** 2 + (p[2] / c) ** 2)
        t = p[0] / (a * k)
        return t > 0.93 or t < -0.92

    def _walk(
        self,
        start: np.ndarray,
        direction: np.ndarray,
        length: float,
        offset: Any,
        steer: Any,
        tortuosity: float,
        *,
        twist: float = 0.0,
        twist_from: tuple[float, float] = (2.0, 8.0),
        kappa_max: float = 0.11,
        apex_stop: bool = True,
    ) -> np.ndarray:
        """Walk a vessel over the heart. ``tortuosity`` (rad/mm) is a long-wavelength
        wiggle; ``twist`` (rad/mm) adds shorter-wavelength (9-22 mm) meanders that ramp in
        between ``twist_from`` (mm), as small distal vessels near the apex show."""
        h_start = float(self.heart.height(start))

        def blended(s: float) -> float:
            # Leave the start height (parent vessel, ostium) for the vessel's own height
            # smoothly: a smoothstep over L bends by 6 dh / L^2 at most, kept <= 0.04 /mm.
            target = float(offset(s))
            w = min(1.0, s / max(6.0, math.sqrt(150.0 * abs(target - h_start))))
            return h_start + (target - h_start) * w * w * (3.0 - 2.0 * w)

        wiggle = self._wiggle(length, 1.5, tortuosity)
        if twist > 0.0:
            s_w = np.arange(len(wiggle)) * 1.5
            ramp = np.clip((s_w - twist_from[0]) / max(twist_from[1] - twist_from[0], 1e-6), 0, 1)
            wiggle = wiggle + ramp * smooth_noise(self.rng, s_w, twist, (9.0, 22.0), 3)
        spec = WalkSpec(
            length_mm=length,
            offset=blended,
            steer=steer if steer is not None else (lambda p, s: None),
            wiggle=wiggle,
            kappa_max=kappa_max,
            stop=self._stop_apex if not isinstance(steer, Pursuit) else None,
        )
        if not apex_stop and not isinstance(steer, Pursuit):
            spec.stop = self._stop_atria
        if isinstance(steer, Pursuit):
            spec.stop = lambda p, s: steer.finished
            steer.path = self.heart.to_local(steer.path)
        coarse = walk_on_heart(self.heart, start, direction, spec)
        return spline_resample(coarse, self.p.spacing_mm)

    def _stop_atria(self, p: tuple[float, float, float], s: float) -> bool:
        """Stop a twig at the top of the atria (twigs may wrap the apex)."""
        a, b, c = self.heart.axes
        k = math.sqrt((p[0] / a) ** 2 + (p[1] / b) ** 2 + (p[2] / c) ** 2)
        return p[0] / (a * k) < -0.92

    def _add(self, rec: _Rec) -> int:
        self.recs.append(rec)
        return len(self.recs) - 1

    # ----- main vessels ------------------------------------------------------------------

    def build_left(self, dodge: dict[str, float]) -> None:
        """LM -> LAD (diagonals, septals) and LCx (obtuse marginals)."""
        rng, heart = self.rng, self.heart
        law, (d_lm, d_lad, d_cx) = _lm_bifurcation(rng, dodge, self.p)
        self.dodge_used = {"lm": d_lm, "lad_prox": d_lad, "lcx_prox": d_cx}
        gap = float(rng.uniform(0.3, 1.2))
        h_lad, h_cx = 0.5 * d_lad + gap, 0.5 * d_cx + gap
        t0 = float(self.t_av(np.array(self.phi_lad)))
        tau = np.linspace(0.0, 1.0, 200)
        phi = self.phi_lad + float(np.deg2rad(rng.uniform(-10, 15))) * tau
        # In most hearts the LAD wraps around the apex onto the inferior wall; t beyond 1
        # continues over the apex down the opposite meridian (phi + pi).
        t_end = (
            float(rng.uniform(0.9, 0.97)) if rng.random() < 0.4 else float(rng.uniform(1.05, 1.3))
        )
        t_raw = t0 + (t_end - t0) * tau
        over = t_raw > 1.0
        phi = np.where(over, phi + np.pi, phi)
        lad_path = self.groove(np.where(over, 2.0 - t_raw, t_raw), phi, h_lad, 3.0)
        p_bif = lad_path[0]
        d_lad0 = unit(lad_path[4] - lad_path[0])
        self._aorta(p_bif, d_lad0)
        lad_pts = self._walk(
            p_bif,
            d_lad0,
            190.0,
            lambda s: h_lad,
            Pursuit(lad_path),
            0.02,
            twist=float(rng.uniform(0.02, 0.07)),
            twist_from=(110.0, 150.0),
        )

        # LM: from the ostium (leaving the sinus perpendicular to the root) into the LAD.
        n = max(8, math.ceil(self.lm_length / 0.1))
        # Leaving the sinus between its normal and the straight line to the bifurcation
        # keeps the short LM from bending more tightly than real ones do.
        lm_dir0 = unit(self.u_left + unit(p_bif - self.o_left))
        lm_pts = resample_polyline(
            hermite(self.o_left, lm_dir0, p_bif, d_lad0, n), self.p.spacing_mm
        )
        lm = self._add(_Rec("LM", lm_pts, "ostial", offset_mm=h_lad, d0=d_lm, decay=0.0))
        lad = self._add(_Rec("LAD", lad_pts, "epicardial", lm, self._len(lm), h_lad, d_lad))

        # LCx leaves at the LM bifurcation angle, then follows the left AV groove.
        n0 = heart.normal(p_bif)
        alpha = np.deg2rad(rng.uniform(60.0, 95.0))
        d_cx0 = rotation_about(n0, alpha) @ d_lad0
        if d_cx0 @ heart.azimuth_dir(p_bif) < 0:
            d_cx0 = rotation_about(n0, -alpha) @ d_lad0
        phi_end = float(np.deg2rad(rng.uniform(130.0, 185.0)))
        phis = np.linspace(self.phi_lad + 0.45, phi_end, 160)
        cx_path = self.groove(self.t_av(phis), phis, h_cx, 3.0)
        cx_pts = self._walk(p_bif, d_cx0, 220.0, lambda s: h_cx, Pursuit(cx_path), 0.02)
        lcx = self._add(_Rec("LCx", cx_pts, "epicardial", lm, self._len(lm), h_cx, d_cx))
        self._record_bifurcation(lm, self._len(lm), (lad, lcx), (d_lm, d_lad, d_cx), law)

        lad_len = self._len(lad)
        sides = self._plan_sides(
            lad,
            [
                ("D1", 0.12, 0.30, 0.50, 0.72, "diagonal", 1.0),
                ("D2", 0.33, 0.52, 0.45, 0.65, "diagonal", 1.0),
                ("D3", 0.55, 0.70, 0.40, 0.55, "diagonal", 0.5),
                ("S1", 0.08, 0.25, 0.25, 0.40, "septal", 1.0),
                ("S2", 0.25, 0.45, 0.25, 0.38, "septal", 1.0),
                ("S3", 0.45, 0.65, 0.22, 0.35, "septal", 0.6),
                ("D4", 0.70, 0.82, 0.40, 0.55, "diagonal", 0.4),
                ("S4", 0.62, 0.80, 0.25, 0.38, "septal", 0.5),
                ("LADt1", 0.10, 0.60, 0.20, 0.30, "twig", 0.7),
                ("LADt2", 0.78, 0.90, 0.40, 0.60, "twig", 0.8),
                ("LADt3", 0.90, 0.97, 0.40, 0.60, "twig", 0.6),
            ],
        )
        dist = float(np.clip(dodge["lad_dist"], 1.2, 0.7 * d_lad))
        self._set_taper(lad, d_lad, dist, 0.75 * lad_len, sides)
        self.dodge_used["lad_dist"] = float(self.recs[lad].diameter_at(0.75 * lad_len))
        self.dodge_used["lad_dist_s_mm"] = 0.75 * lad_len
        self._grow_sides(lad, sides)

        cx_sides = self._plan_sides(
            lcx,
            [
                ("OM1", 0.15, 0.40, 0.50, 0.75, "marginal", 1.0),
                ("OM2", 0.42, 0.65, 0.45, 0.65, "marginal", 1.0),
                ("OM3", 0.68, 0.85, 0.40, 0.55, "marginal", 0.5),
                ("Cxt1", 0.05, 0.40, 0.20, 0.30, "twig", 0.6),
                ("Cxt2", 0.50, 0.95, 0.35, 0.55, "twig", 0.7),
            ],
        )
        cx_end = d_cx * float(rng.uniform(0.40, 0.55))
        self._set_taper(lcx, d_cx, cx_end, self._len(lcx), cx_sides)
        self._grow_sides(lcx, cx_sides)

    def build_right(self, dodge: dict[str, float]) -> None:
        """RCA (conus, sinus node, RV and acute marginals, PDA, posterolateral branches)."""
        rng, heart = self.rng, self.heart
        d_rca = float(dodge["rca_prox"])
        self.dodge_used = {"rca_prox": d_rca}
        gap = float(rng.uniform(0.3, 1.2))
        h = 0.5 * d_rca + gap
        # The aortic root is placed from the (unused) left main geometry, as in _aorta.
        t0 = float(self.t_av(np.array(self.phi_lad)))
        self._aorta(heart.offset_surface(np.array(t0), np.array(self.phi_lad), h), heart.e_long)
        phi0 = float(np.deg2rad(rng.uniform(-45.0, -25.0)))
        phi_end = self.phi_pda - float(np.deg2rad(rng.uniform(15.0, 40.0)))
        phis = np.linspace(phi0, phi_end, 200)
        path = self.groove(self.t_av(phis), phis, h, 3.0)
        start_dir = unit(self.u_right + unit(path[0] - self.o_right))
        pts = self._walk(self.o_right, start_dir, 260.0, lambda s: h, Pursuit(path), 0.025)
        rca = self._add(_Rec("RCA", pts, "ostial", offset_mm=h, d0=d_rca))
        length = self._len(rca)
        _, phi_pts = heart.coords(pts)
        phi_un = np.unwrap(phi_pts)
        s_axis = arclength(pts)
        crux = float(np.interp(self.phi_pda, phi_un[::-1], s_axis[::-1]))
        crux = float(np.clip(crux, 0.6 * length, length - 12.0)) / length
        sides = self._plan_sides(
            rca,
            [
                ("conus", 0.02, 0.06, 0.25, 0.35, "conus", 1.0),
                ("SN", 0.05, 0.10, 0.25, 0.35, "sinus", 0.5),
                ("RV1", 0.22, 0.38, 0.30, 0.45, "rv", 1.0),
                ("RV2", 0.40, 0.52, 0.30, 0.45, "rv", 0.5),
                ("AM", 0.55, min(0.7, crux - 0.06), 0.35, 0.55, "acute", 1.0),
                ("PDA", crux - 0.03, crux, 0.50, 0.70, "pda", 1.0),
                ("PL1", crux + 0.03, min(crux + 0.08, 0.94), 0.40, 0.60, "pl", 1.0),
                ("PL2", min(crux + 0.09, 0.95), 0.97, 0.35, 0.50, "pl", 0.5),
                ("RVt1", 0.12, 0.50, 0.20, 0.30, "twig", 0.7),
                ("RVt2", 0.30, 0.60, 0.20, 0.30, "twig", 0.5),
            ],
        )
        end = d_rca * float(rng.uniform(0.45, 0.6))
        self._set_taper(rca, d_rca, end, length, sides)
        self._grow_sides(rca, sides)

    def _len(self, idx: int) -> float:
        return self.recs[idx].length

    # ----- side branches -----------------------------------------------------------------

    def _plan_sides(self, parent: int, table: list[tuple]) -> list[_Side]:
        """Place side branches on a parent: (name, s_lo, s_hi as fractions of its length,
        rho_lo, rho_hi, kind, probability). Branch points are >= 6 mm apart."""
        rng = self.rng
        length = self._len(parent)
        sides: list[_Side] = []
        for name, f_lo, f_hi, r_lo, r_hi, kind, prob in table:
            present = rng.random() < prob
            law = choose_law(rng, r_lo, r_hi, self.p.finet_share)
            rho = draw_side_ratio(rng, law, r_lo, r_hi)
            tries = rng.uniform(f_lo, max(f_lo, f_hi), size=8) * length
            if not present:
                continue
            for s_b in tries:
                ok = 4.0 <= s_b <= length - 8.0
                if ok and all(abs(s_b - o.s_mm) >= 6.0 for o in sides):
                    sides.append(_Side(name, float(s_b), law, rho, kind))
                    break
        return sorted(sides, key=lambda x: x.s_mm)

    def _set_taper(
        self, idx: int, d0: float, d_target: float, s_target: float, sides: list[_Side]
    ) -> None:
        rec = self.recs[idx]
        rec.d0 = d0
        rec.steps = [(sd.s_mm, sd.law.step(sd.rho)) for sd in sides]
        rec.decay = taper_for_target(d0, d_target, s_target, rec.steps, floor=5e-4)

    def _steer_field(self, kind: str) -> tuple[float, float, float, float]:
        """(weight toward the apex, weight along +phi, length lo, hi mm) per branch kind."""
        rng = self.rng
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

    def _grow_sides(self, parent: int, sides: list[_Side]) -> None:
        for side in sides:
            self._grow_side(parent, side)

    def _grow_side(self, parent: int, side: _Side) -> None:
        """Walk one side branch from its origin ON the parent centreline.

        Named side branches (generation 1: diagonals, marginals, RV, acute, PDA, PL)
        carry their own small twigs (generation 2), planned before the branch's taper is
        set so that each twig is a recorded bifurcation with its law (Finet or Murray) and
        the branch steps down at it like any parent. Twigs off the main vessels (kind
        "twig") are generation 2 too. Twigs are 10-32 mm long, >= ~0.5 mm wide, and
        meander on a 5-12 mm scale; they may wrap the apex.
        """
        rng, heart = self.rng, self.heart
        prec = self.recs[parent]
        twig = side.kind == "twig"
        c_long, c_phi, len_lo, len_hi = self._steer_field(side.kind)
        length = float(rng.uniform(len_lo, len_hi))
        angle_range = (40.0, 90.0) if twig else self.p.branch_angle_deg
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
            pts = self._septal(p0, t_par, n0, length, alpha)
            course = "septal"
        else:
            t_tan = unit(t_par - (t_par @ n0) * n0)
            plus = rotation_about(n0, alpha) @ t_tan
            minus = rotation_about(n0, -alpha) @ t_tan
            pref = self._field(p0, c_long, c_phi)
            d0 = plus if plus @ pref >= minus @ pref else minus
            if twig and flip:
                d0 = minus if d0 is plus else plus
            h_own = 0.5 * d_side + gap
            if side.kind == "pda":
                steer: Any = Pursuit(self._pda_path(p0, h_own, length))
            elif twig:
                steer = None  # twigs wander off at their take-off angle
            else:
                steer = self._field_steer(c_long, c_phi)
            pts = self._walk(
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
        generation = 2 if twig else prec.generation + 1
        rec = _Rec(side.name, pts, course, parent, side.s_mm, d0=d_side, generation=generation)
        rec.iodine = self.fill_by_generation[min(generation, 2)]
        # Taper to 45-70 % over the branch, at most 1.8 %/mm (short branches, twigs).
        end = d_side * float(rng.uniform(0.45, 0.7))
        end = max(end, d_side * math.exp(-0.018 * rec.length))
        twigs: list[_Side] = []
        if course == "epicardial" and generation == 1 and side.kind not in ("conus", "sinus"):
            twigs = self._plan_twigs(rec, end)
        idx = self._add(rec)
        self._set_taper(idx, d_side, end, rec.length, twigs)
        d1 = d_p * side.law.step(side.rho)
        self._record_bifurcation(parent, side.s_mm, (parent, idx), (d_p, d1, d_side), side.law)
        self._grow_sides(idx, twigs)

    def _plan_twigs(self, rec: _Rec, end: float) -> list[_Side]:
        """Twig positions, laws and side ratios on a side branch: one per 9-16 mm, where
        the branch (estimated before the twigs' own small steps) is still wide enough for
        a twig of >= 0.5 mm."""
        rng = self.rng
        length = rec.length
        decay = math.log(rec.d0 / end) / max(length, 1.0)
        n = int(length / float(rng.uniform(9.0, 16.0)))
        cand = np.sort(rng.uniform(5.0, max(5.0, length - 8.0), size=n))
        u_rho, u_law, u_k = rng.random((3, n))
        sides: list[_Side] = []
        for k, s_b in enumerate(cand):
            d_est = rec.d0 * math.exp(-decay * float(s_b))
            rho_lo, rho_hi = max(0.3, 0.55 / d_est), 0.62
            if rho_lo > rho_hi - 0.04 or any(abs(s_b - o.s_mm) < 6.0 for o in sides):
                continue
            if rho_hi >= 0.5 and u_law[k] < self.p.finet_share:
                law = Law("finet")
            else:
                law = Law("murray", 2.1 + 0.9 * float(u_k[k]))
            lo, hi = rho_lo, min(rho_hi, law.rho_max() - 0.01)
            if law.name == "finet":
                lo = max(lo, FINET_RHO[0] + 0.01)
            rho = lo + float(u_rho[k]) * max(hi - lo, 0.0)
            sides.append(_Side(f"{rec.name}-{len(sides) + 1}", float(s_b), law, rho, "twig"))
        return sides

    def _field(self, p: np.ndarray, c_long: float, c_phi: float) -> np.ndarray:
        return c_long * self.heart.e_long + c_phi * self.heart.azimuth_dir(p)

    def _field_steer(self, c_long: float, c_phi: float) -> Any:
        """Steering in heart-local coordinates: c_long toward the apex, c_phi along +phi."""
        _, b, c = self.heart.axes

        def steer(p: tuple[float, float, float], s: float) -> tuple[float, float, float]:
            phi = math.atan2(p[1] / b, p[2] / c)
            ay, az = b * math.cos(phi), -c * math.sin(phi)
            m = math.hypot(ay, az)
            return (c_long, c_phi * ay / m, c_phi * az / m)

        return steer

    def _pda_path(self, p0: np.ndarray, h: float, length: float) -> np.ndarray:
        """Posterior interventricular groove from the crux toward the apex."""
        t0, _ = self.heart.coords(p0)
        t_end = min(0.9, float(t0) + length / self.heart.axes[0])
        tau = np.linspace(0.0, 1.0, 120)
        phi = self.phi_pda + float(np.deg2rad(self.rng.uniform(-8, 8))) * tau
        return self.groove(float(t0) + (t_end - float(t0)) * tau, phi, h, 2.0)

    def _septal(
        self, p0: np.ndarray, t_par: np.ndarray, n0: np.ndarray, length: float, alpha: float
    ) -> np.ndarray:
        """Septal perforator: leaves the LAD into the septum (inward, in the plane of the
        LAD tangent and the surface normal) and bends gently toward the apex."""
        d0 = math.cos(alpha) * t_par - math.sin(alpha) * n0
        bend = unit(d0 + 0.6 * self.heart.e_long)
        c1 = p0 + 0.5 * length * d0
        c2 = c1 + 0.5 * length * bend
        u = np.linspace(0.0, 1.0, max(16, math.ceil(length / 0.1)))[:, None]
        curve = (1 - u) ** 2 * p0 + 2 * u * (1 - u) * c1 + u**2 * c2
        return resample_polyline(curve, self.p.spacing_mm)

    def _record_bifurcation(
        self,
        parent: int,
        s_mm: float,
        daughters: tuple[int, int],
        diameters: tuple[float, float, float],
        law: Law,
    ) -> None:
        """Record a bifurcation with the diameters used and the angle the geometry shows."""
        if daughters[0] == parent:
            main_pts = self.recs[parent].points
            p0, _ = point_at(main_pts, s_mm)
            p1, _ = point_at(main_pts, min(s_mm + 2.0, self._len(parent)))
            d_main = unit(p1 - p0)
        else:
            d_main = unit(_chord(self.recs[daughters[0]].points, 2.0))
        d_side = unit(_chord(self.recs[daughters[1]].points, 2.0))
        angle = float(np.degrees(np.arccos(np.clip(d_main @ d_side, -1.0, 1.0))))
        self.bifs.append(
            Bifurcation(
                parent=parent,
                s_mm=float(s_mm),
                daughters=daughters,
                diameters_mm=tuple(float(x) for x in diameters),
                law=law.name,
                exponent=None if law.exponent is None else float(law.exponent),
                angle_deg=angle,
            )
        )

    # ----- catheter ----------------------------------------------------------------------

    def catheter(self, ostium: np.ndarray, u_ostium: np.ndarray, into: np.ndarray) -> _Rec:
        """Guide catheter up the descending aorta, over the arch, down the ascending aorta,
        its tip coaxial with the first mm of the engaged artery and ending at its ostium."""
        rng = self.rng
        d_ao = self.d_ao
        h_asc = float(rng.uniform(45.0, 65.0))
        r_arch = float(rng.uniform(25.0, 35.0))
        ride = float(rng.uniform(6.0, 10.0))  # catheter rides the greater curvature
        back = np.array([0.35, 1.0, 0.0])  # the arch runs posterior and to the left
        w = unit(back - (back @ d_ao) * d_ao)
        top = self.root + h_asc * d_ao
        centre = top + r_arch * w
        pts = []
        down = np.array([0.0, 0.0, -1.0])
        arch_end = centre + (r_arch + ride) * w
        for h in np.arange(220.0, 0.0, -20.0):
            pts.append(arch_end + h * down)
        for th in np.linspace(np.pi, 0.0, 7)[1:-1]:
            pts.append(centre + (r_arch + ride) * (-math.cos(th) * w + math.sin(th) * d_ao))
        lean = -ride * u_ostium  # the body leans on the wall opposite the ostium
        for h in (h_asc, 0.65 * h_asc):
            pts.append(self.root + h * d_ao + lean)
        pts.append(self.root + 18.0 * d_ao + 0.2 * lean)
        pts.append(ostium - 4.0 * into)
        pts.append(ostium)
        coarse = np.asarray(pts)
        dense = spline_resample(coarse, 0.1)
        s = arclength(dense)
        # Keep at least 15 mm of descending aorta, so the catheter visibly comes from below.
        from_tip = s[-1] - s[int(np.argmin(np.linalg.norm(dense - arch_end, axis=1)))]
        lo, hi = self.p.catheter_length_mm
        keep = s >= s[-1] - float(rng.uniform(min(max(lo, from_tip + 15.0), hi), hi))
        pts_out = resample_polyline(dense[keep], self.p.spacing_mm)
        french = 6 if rng.random() < 0.7 else 5
        inner = (1.78 if french == 6 else 1.47) + float(rng.uniform(-0.05, 0.05))
        self.catheter_info = {
            "french": french,
            "outer_diameter_mm": french / 3.0,
            "inner_diameter_mm": inner,
        }
        return _Rec("catheter", pts_out, "catheter", d0=inner)


def _chord(points: np.ndarray, s_mm: float) -> np.ndarray:
    """Chord vector from the first point to the point at arc length s_mm."""
    p1, _ = point_at(points, min(s_mm, float(arclength(points)[-1])))
    return p1 - points[0]


# ----- cross-sections, SOI, lesions, placement ----------------------------------------------


def _cross_sections(
    rng: np.random.Generator, rec: _Rec, heart: Heart, ratio_max: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(reference radius (M,), lesion-free semi-axes (M, 2), major_dir (M, 3), max ratio):
    ellipse ratio in [1, r_max] and major-axis angle varying smoothly along the vessel."""
    s = arclength(rec.points)
    radius = 0.5 * rec.diameter_at(s)
    if rec.course == "catheter":
        r_max = 1.0
        start = np.array([0.0, 1.0, 0.0])
    else:
        r_max = float(rng.uniform(1.0, ratio_max))
        start = heart.normal(rec.points[0])
        if abs(start @ tangents(rec.points[:3])[0]) > 0.9:
            start = heart.e_long
    ratio = 1.0 + (r_max - 1.0) * (0.5 + 0.5 * smooth_noise(rng, s, 1.0, (25.0, 70.0), 2))
    psi = rng.uniform(0, np.pi) + smooth_noise(rng, s, 0.5 * np.pi, (30.0, 90.0), 2)
    ref = rotation_minimizing_normals(rec.points, start)
    tan = tangents(rec.points)
    major = np.cos(psi)[:, None] * ref + np.sin(psi)[:, None] * np.cross(tan, ref)
    semi = np.stack([radius * np.sqrt(ratio), radius / np.sqrt(ratio)], axis=1)
    return radius, semi, major, r_max


def _choose_soi(
    rng: np.random.Generator, b: _Builder, tree: str, p: AnatomyParams
) -> tuple[SegmentOfInterest, SegmentOfInterest | None]:
    """SOI on the LAD/LCx/large D1/OM1 (left) or the RCA (right); a side-branch SOI in a
    share of cases, its branch origin inside the main SOI."""
    names = [r.name for r in b.recs]
    weights = {"LAD": 0.55, "LCx": 0.25, "D1": 0.1, "OM1": 0.1} if tree == "left" else {"RCA": 1.0}
    cands = []
    for name, wgt in weights.items():
        if name in names:
            rec = b.recs[names.index(name)]
            if rec.length >= 45.0 and rec.d0 >= 2.0:
                cands.append((names.index(name), wgt))
    u_pick, u_len, u_side, u_pos, u_side_len = rng.random(5)
    w = np.array([c[1] for c in cands])
    vi = cands[int(np.searchsorted(np.cumsum(w) / w.sum(), u_pick))][0]
    length = b.recs[vi].length
    lo, hi = p.soi_length_mm
    # Lesions sit mostly proximal-to-mid, so SOIs are kept off the last few mm.
    room = length - 3.0 - 8.0
    seg = float(min(lo + u_len * (hi - lo), room))
    side_soi = None
    start = 3.0 + u_pos * (room - seg)
    if u_side < p.side_soi_share:
        options = [
            (bf, b.recs[bf.daughters[1]])
            for bf in b.bifs
            if bf.parent == vi
            and bf.daughters[0] == vi
            and b.recs[bf.daughters[1]].course == "epicardial"
            and b.recs[bf.daughters[1]].generation == 1
            and b.recs[bf.daughters[1]].length >= p.side_soi_length_mm[0] + 3.0
            and 3.0 + 6.0 <= bf.s_mm <= 3.0 + room - 6.0
        ]
        if options:
            bf, srec = options[int(u_pos * len(options)) % len(options)]
            s_lo = max(3.0, bf.s_mm - seg + 6.0)
            s_hi = min(bf.s_mm - 6.0, 3.0 + room - seg)
            if s_hi >= s_lo:
                start = s_lo + u_pos * (s_hi - s_lo)
                a, bb = p.side_soi_length_mm
                side_len = min(a + u_side_len * (bb - a), srec.length - 3.0)
                side_soi = SegmentOfInterest(bf.daughters[1], 0.0, float(side_len))
    return SegmentOfInterest(vi, float(start), float(start + seg)), side_soi


def _place_lesions(
    rng: np.random.Generator,
    vessels: list[Vessel],
    soi: SegmentOfInterest,
    side_soi: SegmentOfInterest | None,
    recs: list[_Rec],
    p: AnatomyParams,
) -> None:
    """Lesions: 0/1/2 in the SOI, maybe one in the side SOI and one elsewhere in the tree."""
    u_count, u_side, u_extra, u_pick = rng.random(4)
    count = int(np.searchsorted(np.cumsum(p.lesion_count_probs), u_count, side="right"))
    plan = [(soi.vessel, (soi.s_start_mm, soi.s_end_mm), min(count, 2))]
    if side_soi is not None and u_side < p.side_lesion_share:
        plan.append((side_soi.vessel, (side_soi.s_start_mm, side_soi.s_end_mm), 1))
    if u_extra < p.extra_lesion_share:
        taken = {soi.vessel} | ({side_soi.vessel} if side_soi else set())
        others = [
            i
            for i, r in enumerate(recs)
            if r.course in ("epicardial", "ostial")
            and r.generation <= 1
            and i not in taken
            and r.length > 30.0
        ]
        if others:
            vi = others[int(u_pick * len(others))]
            plan.append((vi, (3.0, min(vessels[vi].length_mm - 8.0, 60.0)), 1))
    for vi, s_range, n in plan:
        vessels[vi].lesions = draw_lesions(rng, vessels[vi], s_range, n, p.lesions)


def _shape_lesions(v: Vessel, semi: np.ndarray, ds_range: tuple[float, float]) -> None:
    """Narrow the lumen; where a branch step or steep taper under a lesion moves its
    measured %DS outside ``ds_range``, correct the design and narrow again; finally declare
    the measured values."""
    apply_lesions(v, semi)
    for _ in range(3):
        fixed = []
        for les in v.lesions:
            got = measured_percent_ds(v, les)
            want = min(max(got, ds_range[0] + 0.2), ds_range[1] - 0.2)
            fixed.append(dataclasses.replace(les, percent_ds=les.percent_ds + want - got))
        if all(a.percent_ds == b.percent_ds for a, b in zip(fixed, v.lesions, strict=True)):
            break
        v.lesions = fixed
        apply_lesions(v, semi)
    finalize_lesions(v)


def _to_vessel(rec: _Rec, radius: np.ndarray, semi: np.ndarray, major: np.ndarray) -> Vessel:
    return Vessel(
        name=rec.name,
        kind="catheter" if rec.course == "catheter" else "artery",
        points=rec.points,
        semi_axes=semi,
        major_dir=major,
        reference_radius=radius,
        offset=None,
        iodine=rec.iodine,
        parent=rec.parent,
        parent_s_mm=rec.parent_s_mm,
    )


def _f(x: Any) -> Any:
    """JSON-friendly: numpy scalars and arrays to Python floats and lists."""
    if isinstance(x, dict):
        return {str(k): _f(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return [_f(v) for v in x.tolist()]
    if isinstance(x, (list, tuple)):
        return [_f(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    return x


def generate_anatomy(rng: np.random.Generator, *, params: AnatomyParams | None = None) -> Anatomy:
    """Generate one synthetic coronary scene (world LPS, mm), deterministic in ``rng``.

    The scene is a left (LM/LAD/LCx) or right (RCA) tree with a guide catheter, one
    segment of interest (SOI) of 20-80 mm, sometimes a side-branch SOI, 0-2 lesions in the
    SOI, and is translated so that the SOI midpoint lies within ``placement_jitter_mm`` of
    the isocenter.
    """
    p = params or AnatomyParams()
    b = _Builder(rng, p)
    tree = "left" if rng.random() < p.left_share else "right"
    dodge = _draw_dodge(rng, p)
    if tree == "left":
        b.build_left(dodge)
        ostium_vessel = 0
        ostium_u = b.u_left
    else:
        b.build_right(dodge)
        ostium_vessel = 0
        ostium_u = b.u_right
    first = b.recs[ostium_vessel].points
    into = unit(_chord(first, 2.0))
    cath = b.catheter(first[0], ostium_u, into)
    soi, side_soi = _choose_soi(rng, b, tree, p)
    b.recs.append(cath)

    vessels: list[Vessel] = []
    base: list[np.ndarray] = []
    ratio_max: list[float] = []
    for rec in b.recs:
        radius, semi, major, r_max = _cross_sections(rng, rec, b.heart, p.ellipse_ratio_max)
        vessels.append(_to_vessel(rec, radius, semi, major))
        base.append(semi)
        ratio_max.append(r_max)
    _place_lesions(rng, vessels, soi, side_soi, b.recs, p)
    for v, semi in zip(vessels, base, strict=True):
        _shape_lesions(v, semi, p.lesions.percent_ds)

    # Centre the SOI near the isocenter, as the operator centres the table on it.
    mid, _ = point_at(vessels[soi.vessel].points, 0.5 * (soi.s_start_mm + soi.s_end_mm))
    direction = unit(rng.standard_normal(3))
    jitter = direction * p.placement_jitter_mm * float(rng.random()) ** (1.0 / 3.0)
    shift = jitter - mid
    for v in vessels:
        v.points = v.points + shift
    heart = Heart(b.heart.center + shift, b.heart.axes, b.heart.rotation)
    side_sois = [side_soi] if side_soi is not None else []
    meta = _meta(b, vessels, tree, dodge, soi, side_sois, shift, ratio_max, p)
    return Anatomy(
        vessels=vessels,
        soi=soi,
        side_sois=side_sois,
        bifurcations=b.bifs,
        tree=tree,
        heart_center_mm=heart.center,
        heart_axes_mm=heart.axes.copy(),
        heart_rotation=heart.rotation.copy(),
        meta=meta,
    )


def heart_of(anatomy: Anatomy) -> Heart:
    """The ellipsoidal epicardium of a generated scene (world LPS, mm)."""
    return Heart(anatomy.heart_center_mm, anatomy.heart_axes_mm, anatomy.heart_rotation)


def _soi_meta(vessels: list[Vessel], soi: SegmentOfInterest) -> dict[str, Any]:
    pts = vessels[soi.vessel].points
    return {
        "vessel": soi.vessel,
        "name": vessels[soi.vessel].name,
        "s_start_mm": soi.s_start_mm,
        "s_end_mm": soi.s_end_mm,
        "length_mm": soi.length_mm,
        "start_point_mm": _f(point_at(pts, soi.s_start_mm)[0]),
        "end_point_mm": _f(point_at(pts, soi.s_end_mm)[0]),
    }


def _meta(
    b: _Builder,
    vessels: list[Vessel],
    tree: str,
    dodge: dict[str, float],
    soi: SegmentOfInterest,
    side_sois: list[SegmentOfInterest],
    shift: np.ndarray,
    ratio_max: list[float],
    p: AnatomyParams,
) -> dict[str, Any]:
    """Truth for meta.json: tree, vessels, diameters, bifurcations, lesions, SOIs."""
    names = [v.name for v in vessels]
    vmeta = []
    for i, (v, rec) in enumerate(zip(vessels, b.recs, strict=True)):
        vmeta.append(
            {
                "index": i,
                "name": v.name,
                "kind": v.kind,
                "course": rec.course,
                "parent": v.parent,
                "parent_name": None if v.parent is None else names[v.parent],
                "parent_s_mm": v.parent_s_mm,
                "length_mm": v.length_mm,
                "n_points": len(v.points),
                "reference_diameter_start_mm": 2.0 * float(v.reference_radius[0]),
                "reference_diameter_end_mm": 2.0 * float(v.reference_radius[-1]),
                "taper_per_mm": rec.decay,
                "ellipse_ratio_max": ratio_max[i],
                "iodine": v.iodine,
            }
        )
    lesions = []
    soi_ids = {soi.vessel} | {s.vessel for s in side_sois}
    for i, v in enumerate(vessels):
        for les in v.lesions:
            d = les.to_dict()
            d.update(
                vessel=i,
                vessel_name=v.name,
                in_soi=i in soi_ids,
                measured_percent_ds=measured_percent_ds(v, les),
                reference_diameter_mm=2.0
                * float(np.interp(les.center_s_mm, v.arclength, v.reference_radius)),
            )
            lesions.append(d)
    bifs = [
        {
            "parent": bf.parent,
            "parent_name": names[bf.parent],
            "s_mm": bf.s_mm,
            "daughters": list(bf.daughters),
            "daughter_names": [names[i] for i in bf.daughters],
            "diameters_mm": list(bf.diameters_mm),
            "law": bf.law,
            "exponent": bf.exponent,
            "angle_deg": bf.angle_deg,
            "law_error": law_error(Law(bf.law, bf.exponent), *bf.diameters_mm),
        }
        for bf in b.bifs
    ]
    return _f(
        {
            "generator": "angio_deploy.synth.anatomy",
            "generator_version": GENERATOR_VERSION,
            "tree": tree,
            "heart": {
                "center_mm": b.heart.center + shift,
                "semi_axes_mm": b.heart.axes,
                "rotation": b.heart.rotation,
                "axes_order": ["long (base to apex)", "lateral (LV free wall)", "anterior"],
            },
            "dodge_drawn_mm": dodge,
            "dodge_used_mm": b.dodge_used,
            "vessels": vmeta,
            "bifurcations": bifs,
            "lesions": lesions,
            "soi": _soi_meta(vessels, soi),
            "side_sois": [_soi_meta(vessels, s) for s in side_sois],
            "catheter": {
                **b.catheter_info,
                "engages": vessels[0].name,
                "length_mm": vessels[-1].length_mm,
            },
            "translation_mm": shift,
            "params": {
                "left_share": p.left_share,
                "spacing_mm": p.spacing_mm,
                "placement_jitter_mm": p.placement_jitter_mm,
            },
        }
    )
