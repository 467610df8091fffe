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

**Do no harm.** Two clicks and a smooth curve pin down only some of the six directions,
and a least-squares fit moves the others freely within the prior, which on a right header
only adds error. So, after a first fit with the prior:

1. *Observability*: the data's Fisher information in prior-whitened coordinates,
   ``A = W J^T J W`` (``J`` the Jacobian of the noise-scaled residuals, ``W`` the prior
   sigmas), is diagonalised; a direction is observable when the data know it at least
   :data:`OBSERVABLE_GAIN` times better than the prior (eigenvalue above that). Only those
   directions are fitted; the rest stay at the header.
2. *Significance*: the correction is applied only if it explains the data significantly
   better than the header: the drop in the data's misfit, over the noise scale, must
   exceed the chi-square quantile :data:`SIGNIFICANCE` for as many degrees of freedom as
   observable directions (a likelihood-ratio test; the noise scale is the residuals' own,
   but never below the assumed click and curve sigmas). The misfit is a heavy-tailed
   (Cauchy, scale :data:`ROBUST_SCALE` sigmas) negative log-likelihood, not chi-square:
   at the exact geometry the residuals have such tails (a traced end a few px off, a
   stretch of a 2D centreline on the wrong vessel), and under a Gaussian model those
   alone passed the test in 10 of 58 cases. The curve samples along one centreline are
   correlated, so they count as :data:`CURVE_EFFECTIVE_SAMPLES` independent ones each.
   The fit itself stays least squares, the efficient estimate where the data are right
   (a Cauchy fit was measured too: no better at the exact geometry, worse with header
   error; docs/RESULTS.md). ``chi2_header``/``chi2_refined`` in the report are these
   misfits.
3. *Consistency*: a right correction explains all the evidence at once; one that a single
   outlying part wants makes the rest worse. So no group of evidence -- any one point
   correspondence, any one curve, all points together, all curves together -- may fit
   significantly worse after the correction than at the header (misfit increase over the
   noise scale above the 1-degree-of-freedom quantile :data:`SIGNIFICANCE`); otherwise
   the header is kept.
4. *Uncertainty*: the posterior covariance of the correction, ``W (A + I)^-1 W`` with the
   fitted noise scale, is reported (1-sigma per parameter) and used by mesh
   initialisation to give every ring a 3D position uncertainty.

A correction that still leaves the plausible range is declared diverged and the header is
kept with a warning. Residuals are reported in pixels and in mm at the segment.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation
from scipy.stats import chi2

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
#: The samples of one centreline carry about this many independent observations: its
#: epipolar constraints are correlated along the curve (smooth segmentation errors).
CURVE_EFFECTIVE_SAMPLES = 8
#: A direction is fitted only if the data know it this many times better than the prior
#: (eigenvalue of the whitened Fisher information; 9 = a 3x smaller sigma).
OBSERVABLE_GAIN = 9.0
#: Likelihood-ratio test level: the header is kept unless the correction's chi-square
#: drop exceeds this quantile of chi-square with k (observable) degrees of freedom.
SIGNIFICANCE = 0.99
#: Scale (in noise sigmas) of the Cauchy misfit of the tests: residuals up to about this
#: count as Gaussian, larger ones only logarithmically.
ROBUST_SCALE = 2.5


@dataclass(frozen=True)
class GeometryRefinementResult:
    """The refined view B and what refinement did, for the run report.

    ``covariance``: (6, 6) posterior covariance of the correction [rotation vector (rad),
    translation (mm)] of the geometry used (the header's uncertainty where nothing was
    applied), for the 3D uncertainty of the centreline."""

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
    observable_directions: int = 0
    test: dict[str, float | bool] = field(default_factory=dict)
    covariance: np.ndarray | None = None
    reason: str = ""
    #: Every correspondence used, with its residual (px) before and after: points
    #: (segment ends) and curves (mean over the curve's samples).
    correspondences: tuple[dict[str, Any], ...] = ()

    def sigma(self) -> tuple[list[float], list[float]]:
        """1-sigma of the correction: rotation (deg, 3) and translation (mm, 3)."""
        if self.covariance is None:
            return [0.0] * 3, [0.0] * 3
        sd = np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))
        return [math.degrees(float(v)) for v in sd[:3]], [float(v) for v in sd[3:]]

    def to_dict(self) -> dict[str, Any]:
        rot_sd, shift_sd = self.sigma()
        return {
            "applied": self.applied,
            "reason": self.reason,
            "rotation_deg": list(self.rotation_deg),
            "translation_mm": list(self.translation_mm),
            "sigma_rotation_deg": rot_sd,
            "sigma_translation_mm": shift_sd,
            "observable_directions": self.observable_directions,
            "significance_test": dict(self.test),
            "residual_px": {"before": self.residual_px_before, "after": self.residual_px_after},
            "residual_mm": {"before": self.residual_mm_before, "after": self.residual_mm_after},
            "iterations": self.iterations,
            "correspondences": [dict(c) for c in self.correspondences],
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
    curves: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Epipolar distances (px) of the end correspondences, and per curve (line A, line B,
    samples of A, samples of B) the distances of the samples' epipolar lines to the other
    view's curve."""
    F = fundamental_matrix(P_a, P_b)
    r_ends = epipolar_distances(F, ends_a, ends_b)
    r_curves = []
    for line_a, line_b, sub_a, sub_b in curves:
        la = np.column_stack([sub_a, np.ones(len(sub_a))]) @ F.T  # lines in B
        lb = np.column_stack([sub_b, np.ones(len(sub_b))]) @ F  # lines in A
        r_curves.append(
            np.concatenate([_line_to_polyline(la, line_b), _line_to_polyline(lb, line_a)])
        )
    return r_ends, r_curves


def _cauchy(z: np.ndarray) -> np.ndarray:
    """Cauchy misfit of noise-scaled residuals ``z``, per residual; ``z**2`` for small z."""
    return ROBUST_SCALE**2 * np.log1p((np.asarray(z) / ROBUST_SCALE) ** 2)


def _transform(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return Rotation.from_rotvec(p[:3]).as_matrix(), p[3:]


def _jacobian(fun, p: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Central differences, steps a hundredth of each prior sigma."""
    cols = []
    for k in range(len(p)):
        h = np.zeros_like(p)
        h[k] = 0.01 * scale[k]
        cols.append((fun(p + h) - fun(p - h)) / (2 * h[k]))
    return np.stack(cols, axis=1)


def refine_view_b(
    a: ViewGeometry,
    b: ViewGeometry,
    ends_a: np.ndarray,
    ends_b: np.ndarray,
    curves: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    mm_per_px: float = 1.0,
    end_labels: Sequence[str] | None = None,
    curve_labels: Sequence[str] | None = None,
) -> GeometryRefinementResult:
    """Refine view B against view A from point correspondences ``ends_a``/``ends_b``
    (N, 2) px (every segment's start and end clicks) and ``curves``: for each segment its
    2D centrelines (line A (K, 2) px, line B (L, 2) px).

    Only observable directions are corrected, and only when the correction is significant
    (module docstring). ``mm_per_px`` (pixel size at the segment) converts residuals to mm
    for the report; the labels name each correspondence in it.
    """
    ends_a = np.asarray(ends_a, dtype=np.float64).reshape(-1, 2)
    ends_b = np.asarray(ends_b, dtype=np.float64).reshape(-1, 2)
    prepared = []
    for line_a, line_b in curves:
        la = np.asarray(line_a, dtype=np.float64)
        lb = np.asarray(line_b, dtype=np.float64)
        prepared.append((la, lb, _subsample(la, N_CURVE_SAMPLES), _subsample(lb, N_CURVE_SAMPLES)))
    prior = np.array([math.radians(PRIOR_ANGLE_DEG)] * 3 + [PRIOR_SHIFT_MM] * 3)
    # Each curve's samples together weigh as CURVE_EFFECTIVE_SAMPLES independent ones.
    n_curves = [len(c[2]) + len(c[3]) for c in prepared]
    w_curves = [math.sqrt(2 * CURVE_EFFECTIVE_SAMPLES / max(n, 1)) for n in n_curves]
    n_eff = len(ends_a) + sum(min(n, 2 * CURVE_EFFECTIVE_SAMPLES) for n in n_curves)

    def residuals(p: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        R, t = _transform(p)
        return _residuals(a.P, b.moved(R, t).P, ends_a, ends_b, prepared)

    # Groups of evidence for the consistency test: each point correspondence, each curve.
    n_pts = len(ends_a)
    bounds = np.cumsum([0, *([1] * n_pts), *n_curves])
    # Per residual: its weight (a curve's samples share its effective count) and sigma.
    weight = np.concatenate(
        [np.ones(n_pts), *(np.full(n, w) for n, w in zip(n_curves, w_curves, strict=True))]
    )
    sig_w = np.concatenate([np.full(n_pts, CLICK_SIGMA_PX), np.full(sum(n_curves), CURVE_SIGMA_PX)])
    sig_w = sig_w / weight

    def data(p: np.ndarray) -> np.ndarray:
        """Noise-scaled, weighted data residuals (unit variance if the sigmas are right)."""
        r_e, r_c = residuals(p)
        return np.concatenate([r_e, *r_c]) / sig_w

    def misfit(p: np.ndarray) -> np.ndarray:
        """Per-residual robust misfit (Cauchy) of the noise-scaled residuals, weighted:
        the tests' negative log-likelihood (``data(p)**2`` where residuals are small)."""
        return weight**2 * _cauchy(data(p) / weight)

    def mean_px(p: np.ndarray) -> float:
        r_e, r_c = residuals(p)
        return float(np.mean(np.concatenate([r_e, *r_c])))

    def per_correspondence(p_after: np.ndarray) -> list[dict[str, Any]]:
        e0, c0 = residuals(np.zeros(6))
        e1, c1 = residuals(p_after)
        e_names = list(end_labels) if end_labels is not None else []
        e_names += [f"point {k}" for k in range(len(e_names), len(e0))]
        c_names = list(curve_labels) if curve_labels is not None else []
        c_names += [f"curve {k}" for k in range(len(c_names), len(c0))]
        out: list[dict[str, Any]] = [
            {"name": n, "kind": "point", "residual_px": {"before": float(x0), "after": float(x1)}}
            for n, x0, x1 in zip(e_names, e0, e1, strict=True)
        ]
        out += [
            {
                "name": n,
                "kind": "curve",
                "residual_px": {"before": float(np.mean(x0)), "after": float(np.mean(x1))},
            }
            for n, x0, x1 in zip(c_names, c0, c1, strict=True)
        ]
        return out

    p0 = np.zeros(6)
    before = mean_px(p0)
    m_header = misfit(p0)
    chi2_header = float(m_header.sum())
    # 1. A first fit with the prior finds where the data pull.
    first = least_squares(
        lambda p: np.concatenate([data(p), p / prior]),
        p0,
        method="lm",
        x_scale=prior,
        max_nfev=400,
    )
    nfev = int(first.nfev)
    # 2. Observable directions: the data's information along the header->fit path, in
    #    prior-whitened coordinates (the hinge of the curve residual makes the Jacobian at
    #    the fit alone blind to constraints already met there).
    # least_squares' own Jacobian at its solution (data rows) costs nothing more.
    J = np.vstack([_jacobian(data, p0, prior), first.jac[: -len(p0)]])
    A = (J * prior).T @ (J * prior) / 2.0
    lam, V = np.linalg.eigh(A)
    obs = lam >= OBSERVABLE_GAIN
    k = int(obs.sum())
    header_cov = np.diag(prior**2)

    def keep(
        reason: str, warn: str | None, cov: np.ndarray, test: dict
    ) -> GeometryRefinementResult:
        if warn:
            log.warning(warn)
        else:
            log.info("geometry refinement: %s", reason)
        return GeometryRefinementResult(
            b,
            False,
            (0.0, 0.0, 0.0),
            (0.0, 0.0, 0.0),
            before,
            before,
            before * mm_per_px,
            before * mm_per_px,
            nfev,
            [warn] if warn else [],
            observable_directions=k,
            test=test,
            covariance=cov,
            reason=reason,
            correspondences=tuple(per_correspondence(np.zeros(6))),
        )

    if k == 0:
        return keep("no direction is observable from these correspondences", None, header_cov, {})
    Vo = V[:, obs]

    # 3. Fit only the observable directions: p = W Vo c, prior |c|^2.
    def p_of(c: np.ndarray) -> np.ndarray:
        return prior * (Vo @ c)

    c0 = Vo.T @ (first.x / prior)
    sol = least_squares(lambda c: np.concatenate([data(p_of(c)), c]), c0, method="lm", max_nfev=400)
    nfev += int(sol.nfev)
    p_hat = p_of(sol.x)
    m_fit = misfit(p_hat)
    chi2_fit = float(m_fit.sum())
    # Noise scale: the fit's own, never below the assumed sigmas.
    scale = max(1.0, chi2_fit / max(n_eff - k, 1))
    threshold = float(chi2.ppf(SIGNIFICANCE, k))
    stat = (chi2_header - chi2_fit) / scale
    # Consistency: the misfit increase of each group, of all points, of all curves.
    rise = np.array([m_fit[i:j].sum() - m_header[i:j].sum() for i, j in pairwise(bounds)])
    worst_rise = float(max(rise.max(), rise[:n_pts].sum(), rise[n_pts:].sum())) / scale
    rise_threshold = float(chi2.ppf(SIGNIFICANCE, 1))
    consistent = worst_rise <= rise_threshold
    test = {
        "chi2_header": chi2_header,
        "chi2_refined": chi2_fit,
        "noise_scale": scale,
        "statistic": stat,
        "threshold": threshold,
        "dof": k,
        "significant": bool(stat > threshold),
        "worst_group_rise": worst_rise,
        "rise_threshold": rise_threshold,
        "consistent": bool(consistent),
    }
    # Posterior covariance (whitened: data information over the noise scale plus prior).
    Cq = np.linalg.inv(A / scale + np.eye(6))
    cov = (prior[:, None] * Cq) * prior[None, :]
    if not stat > threshold:
        return keep(
            f"the correction is not significant (statistic {stat:.1f} <= {threshold:.1f}, "
            f"{k} observable direction(s)); header kept",
            None,
            cov,
            test,
        )
    if not consistent:
        return keep(
            f"the correction is inconsistent: one group of evidence fits significantly "
            f"worse with it (misfit rise {worst_rise:.1f} > {rise_threshold:.1f}); header kept",
            None,
            cov,
            test,
        )
    after = mean_px(p_hat)
    angle = math.degrees(float(np.linalg.norm(p_hat[:3])))
    shift = float(np.linalg.norm(p_hat[3:]))
    ok = sol.success and np.all(np.isfinite(p_hat))
    if not ok or after > before or angle > MAX_ANGLE_DEG or shift > MAX_SHIFT_MM:
        return keep(
            "diverged",
            f"geometry refinement diverged (residual {before:.2f} -> {after:.2f} px, "
            f"correction {angle:.1f} deg / {shift:.1f} mm); using the header geometry",
            header_cov,
            test,
        )
    warnings: list[str] = []
    if after > WARN_RESIDUAL_PX:
        msg = f"epipolar residual stays large after refinement: {after:.2f} px"
        log.warning(msg)
        warnings.append(msg)
    R, t = _transform(p_hat)
    rot = tuple(float(math.degrees(v)) for v in p_hat[:3])
    return GeometryRefinementResult(
        geometry_b=b.moved(R, t, note="refined against view A (observable directions)"),
        applied=True,
        rotation_deg=rot,  # type: ignore[arg-type]
        translation_mm=tuple(float(v) for v in p_hat[3:]),  # type: ignore[arg-type]
        residual_px_before=before,
        residual_px_after=after,
        residual_mm_before=before * mm_per_px,
        residual_mm_after=after * mm_per_px,
        iterations=nfev,
        warnings=warnings,
        observable_directions=k,
        test=test,
        covariance=cov,
        reason=f"significant in {k} observable direction(s)",
        correspondences=tuple(per_correspondence(p_hat)),
    )
