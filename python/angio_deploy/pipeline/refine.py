"""Geometry refinement of view B against view A (GEOMETRY.md, "Refinement").

Header angles and distances are approximate (table shift, C-arm sag, isocenter offsets).
Only the geometry of B relative to A is observable from two images, so view A is the
reference and B gets a small rigid correction: a rotation about the isocenter (rotation
vector, radians) and a translation (mm) of the world as seen by B, six parameters found by
Levenberg-Marquardt (scipy.optimize.least_squares) minimising

* the symmetric epipolar distance of the clinician's start and end correspondences
  (weighted by the click uncertainty),
* epipolar consistency of the two 2D centrelines: the epipolar line of every centreline
  point must cross the other view's centreline (distance to it, 0 when it crosses),
* a prior that keeps the correction small (header errors are a few mm and degrees).

If the optimiser does not lower the residual, or the correction leaves the plausible range,
the header geometry is kept and a warning says so. Residuals are reported in pixels and
in mm at the segment (pixel size at its depth).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from angio_deploy.geometry import ViewGeometry, epipolar_distances, fundamental_matrix

log = logging.getLogger(__name__)

CLICK_SIGMA_PX = 1.5
CURVE_SIGMA_PX = 1.0
PRIOR_ANGLE_DEG = 1.5
PRIOR_SHIFT_MM = 3.0
#: Corrections beyond these are implausible: refinement is declared diverged.
MAX_ANGLE_DEG = 6.0
MAX_SHIFT_MM = 15.0
#: A mean residual above this (px) after refinement is reported as a warning.
WARN_RESIDUAL_PX = 2.0
N_CURVE_SAMPLES = 40


@dataclass(frozen=True)
class RefinementResult:
    """The refined view B and what refinement did, for the run report."""

    geometry_b: ViewGeometry
    applied: bool
    rotation_deg: tuple[float, float, float]
    translation_mm: tuple[float, float, float]
    residual_px_before: float
    residual_px_after: float
    residual_mm_before: float
    residual_mm_after: float
    iterations: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "rotation_deg": list(self.rotation_deg),
            "translation_mm": list(self.translation_mm),
            "residual_px": {"before": self.residual_px_before, "after": self.residual_px_after},
            "residual_mm": {"before": self.residual_mm_before, "after": self.residual_mm_after},
            "iterations": self.iterations,
            "warnings": list(self.warnings),
        }


def _line_to_polyline(lines: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance (px) of each line (L, 3) to a polyline (K, 2): 0 where it crosses."""
    n = np.hypot(lines[:, 0], lines[:, 1])[:, None]
    sd = (lines[:, :1] * poly[None, :, 0] + lines[:, 1:2] * poly[None, :, 1] + lines[:, 2:]) / n
    crosses = (np.sign(sd[:, :-1]) * np.sign(sd[:, 1:]) <= 0).any(axis=1)
    return np.where(crosses, 0.0, np.abs(sd).min(axis=1))


def _subsample(poly: np.ndarray, n: int) -> np.ndarray:
    if len(poly) <= n + 2:
        return poly[1:-1]
    idx = np.linspace(0, len(poly) - 1, n + 2).round().astype(int)[1:-1]
    return poly[idx]


def _residuals(
    P_a: np.ndarray,
    P_b: np.ndarray,
    ends_a: np.ndarray,
    ends_b: np.ndarray,
    line_a: np.ndarray,
    line_b: np.ndarray,
    sub_a: np.ndarray,
    sub_b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    F = fundamental_matrix(P_a, P_b)
    r_ends = epipolar_distances(F, ends_a, ends_b)
    la = np.column_stack([sub_a, np.ones(len(sub_a))]) @ F.T  # lines in B
    lb = np.column_stack([sub_b, np.ones(len(sub_b))]) @ F  # lines in A
    r_curve = np.concatenate([_line_to_polyline(la, line_b), _line_to_polyline(lb, line_a)])
    return r_ends, r_curve


def _transform(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return Rotation.from_rotvec(p[:3]).as_matrix(), p[3:]


def refine_view_b(
    a: ViewGeometry,
    b: ViewGeometry,
    ends_a: np.ndarray,
    ends_b: np.ndarray,
    line_a: np.ndarray,
    line_b: np.ndarray,
    *,
    mm_per_px: float = 1.0,
) -> RefinementResult:
    """Refine view B against view A from start/end correspondences ``ends_a``/``ends_b``
    (2, 2) px and the 2D centrelines ``line_a``/``line_b`` (K, 2) px of each view.

    ``mm_per_px`` (pixel size at the segment) converts residuals to mm for the report.
    """
    ends_a = np.asarray(ends_a, dtype=np.float64)
    ends_b = np.asarray(ends_b, dtype=np.float64)
    line_a = np.asarray(line_a, dtype=np.float64)
    line_b = np.asarray(line_b, dtype=np.float64)
    sub_a, sub_b = _subsample(line_a, N_CURVE_SAMPLES), _subsample(line_b, N_CURVE_SAMPLES)
    prior = np.array([math.radians(PRIOR_ANGLE_DEG)] * 3 + [PRIOR_SHIFT_MM] * 3)

    def residuals(p: np.ndarray) -> np.ndarray:
        R, t = _transform(p)
        r_e, r_c = _residuals(a.P, b.moved(R, t).P, ends_a, ends_b, line_a, line_b, sub_a, sub_b)
        return np.concatenate([r_e / CLICK_SIGMA_PX, r_c / CURVE_SIGMA_PX, p / prior])

    def mean_px(p: np.ndarray) -> float:
        R, t = _transform(p)
        r_e, r_c = _residuals(a.P, b.moved(R, t).P, ends_a, ends_b, line_a, line_b, sub_a, sub_b)
        return float(np.mean(np.concatenate([r_e, r_c])))

    p0 = np.zeros(6)
    before = mean_px(p0)
    sol = least_squares(residuals, p0, method="lm", x_scale=prior, max_nfev=400)
    after = mean_px(sol.x)
    angle = math.degrees(float(np.linalg.norm(sol.x[:3])))
    shift = float(np.linalg.norm(sol.x[3:]))
    warnings: list[str] = []
    ok = sol.success and np.all(np.isfinite(sol.x))
    if not ok or after > before or angle > MAX_ANGLE_DEG or shift > MAX_SHIFT_MM:
        msg = (
            f"geometry refinement diverged (residual {before:.2f} -> {after:.2f} px, "
            f"correction {angle:.1f} deg / {shift:.1f} mm); using the header geometry"
        )
        log.warning(msg)
        return RefinementResult(
            b,
            False,
            (0.0, 0.0, 0.0),
            (0.0, 0.0, 0.0),
            before,
            before,
            before * mm_per_px,
            before * mm_per_px,
            int(sol.nfev),
            [msg],
        )
    if after > WARN_RESIDUAL_PX:
        msg = f"epipolar residual stays large after refinement: {after:.2f} px"
        log.warning(msg)
        warnings.append(msg)
    R, t = _transform(sol.x)
    rot = tuple(float(math.degrees(v)) for v in sol.x[:3])
    return RefinementResult(
        geometry_b=b.moved(R, t, note="refined against view A (Levenberg-Marquardt)"),
        applied=True,
        rotation_deg=rot,  # type: ignore[arg-type]
        translation_mm=tuple(float(v) for v in sol.x[3:]),  # type: ignore[arg-type]
        residual_px_before=before,
        residual_px_after=after,
        residual_mm_before=before * mm_per_px,
        residual_mm_after=after * mm_per_px,
        iterations=int(sol.nfev),
        warnings=warnings,
    )
