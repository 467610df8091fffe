"""The synthetic scene under construction: heart, grooves, vessel records, bifurcations.

World frame: DICOM LPS, millimetres. ``Scene`` holds the state the tree, branch and
catheter builders share and the primitives they use: the groove layout in heart surface
coordinates (t along the long axis, azimuth phi), the steered walk that lays a vessel on
the epicardium, and the record of each bifurcation. All randomness comes from
``scene.rng`` in a fixed order, so a scene is deterministic in its generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from angio_deploy.curves import arc_lengths

from .anatomy_aorta import AorticRoot
from .anatomy_curves import (
    Pursuit,
    WalkSpec,
    point_at,
    smooth_noise,
    spline_resample,
    walk_on_heart,
)
from .anatomy_diameters import Law, diameter_profile
from .anatomy_heart import Heart, draw_heart, unit
from .anatomy_params import AnatomyParams
from .model import Bifurcation


@dataclass
class VesselRecord:
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
        """Centreline length (mm)."""
        return float(arc_lengths(self.points)[-1])

    def diameter_at(self, s: np.ndarray | float) -> np.ndarray:
        """Reference diameter (mm) at arc length s (mm) from the vessel's start."""
        return diameter_profile(np.asarray(s, dtype=float), self.d0, self.decay, self.steps)


def chord(points: np.ndarray, s_mm: float) -> np.ndarray:
    """Chord vector (mm) from the first point to the point at arc length s_mm."""
    p1, _ = point_at(points, min(s_mm, float(arc_lengths(points)[-1])))
    return p1 - points[0]


class Scene:
    """One scene under construction; all randomness comes from ``rng`` in a fixed order."""

    def __init__(self, rng: np.random.Generator, params: AnatomyParams) -> None:
        self.rng = rng
        self.p = params
        self.heart: Heart = draw_heart(rng)
        self.recs: list[VesselRecord] = []
        self.bifs: list[Bifurcation] = []
        self.aorta: AorticRoot | None = None  # placed with the main vessels
        self._grooves()
        # Partial filling in a share of runs: contrast fades toward the small branches
        # (inflow mixing with unopacified blood); iodine per generation 0, 1, 2 (and the
        # third-generation twigs of generator version 2 as generation 2).
        share, fade_range = params.partial_fill_share, params.partial_fill_fade
        fade = float(rng.uniform(*fade_range)) if rng.random() < share else 0.0
        self.fill_by_generation = (1.0, 1.0 - 0.4 * fade, 1.0 - fade)

    # ----- layout of the grooves -----------------------------------------------------------

    def _grooves(self) -> None:
        """Draw the AV ring and the interventricular groove azimuths."""
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

    # ----- walking vessels -----------------------------------------------------------------

    def _wiggle(self, length: float, step: float, amp: float) -> np.ndarray:
        s = np.arange(0.0, length + 2 * step, step)
        return smooth_noise(self.rng, s, amp, (12.0, 45.0))

    def _stop_apex(self, p: tuple[float, float, float], s: float) -> bool:
        """Stop a branch (heart-local point p) at the apex or at the top of the atria."""
        a, b, c = self.heart.axes
        k = math.sqrt((p[0] / a) ** 2 + (p[1] / b) ** 2 + (p[2] / c) ** 2)
        t = p[0] / (a * k)
        return t > 0.93 or t < -0.92

    def _stop_atria(self, p: tuple[float, float, float], s: float) -> bool:
        """Stop a twig at the top of the atria (twigs may wrap the apex)."""
        a, b, c = self.heart.axes
        k = math.sqrt((p[0] / a) ** 2 + (p[1] / b) ** 2 + (p[2] / c) ** 2)
        return p[0] / (a * k) < -0.92

    def walk(
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
        between ``twist_from`` (mm), as small distal vessels near the apex show. The
        scene's parameters scale all three (``tortuosity_scale``, ``twist_scale``,
        ``kappa_max_scale``; 1 in generator version 1) and add ``twist_min`` (rad/mm; 0 in
        version 1) to the meander, so main vessels meander too."""
        tortuosity = tortuosity * self.p.tortuosity_scale
        twist = twist * self.p.twist_scale + self.p.twist_min
        kappa_max = kappa_max * self.p.kappa_max_scale
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

    # ----- records -------------------------------------------------------------------------

    def add(self, rec: VesselRecord) -> int:
        """Append a vessel record; its index."""
        self.recs.append(rec)
        return len(self.recs) - 1

    def length(self, idx: int) -> float:
        """Centreline length (mm) of vessel ``idx``."""
        return self.recs[idx].length

    def record_bifurcation(
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
            p1, _ = point_at(main_pts, min(s_mm + 2.0, self.length(parent)))
            d_main = unit(p1 - p0)
        else:
            d_main = unit(chord(self.recs[daughters[0]].points, 2.0))
        d_side = unit(chord(self.recs[daughters[1]].points, 2.0))
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
