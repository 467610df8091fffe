"""Reference lumen diameters: Dodge et al. 1992 draws, bifurcation laws, tapering (mm).

Bifurcation laws relate the parent diameter D_p just proximal to a branch point to the
distal main D_1 and side branch D_2 just distal to it:
- Finet: D_p = 0.678 (D_1 + D_2);
- Murray-type: D_p^k = D_1^k + D_2^k, exponent k in [2.1, 3].
Both are scale-free, so a side branch with ratio rho = D_2 / D_p steps the main vessel down by
a fixed factor D_1 / D_p that does not depend on the absolute size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FINET = 0.678
MURRAY_K = (2.1, 3.0)
# Side-branch ratio window in which Finet's law keeps D_side <= D_1 <= D_p.
FINET_RHO = (1.0 / FINET - 1.0, 0.5 / FINET)


@dataclass(frozen=True)
class Law:
    """A bifurcation law: ``name`` "finet" or "murray", ``exponent`` k for Murray."""

    name: str
    exponent: float | None = None

    def parent(self, d1: float, d2: float) -> float:
        """Parent diameter (mm) implied by the two daughters (mm)."""
        if self.name == "finet":
            return FINET * (d1 + d2)
        k = float(self.exponent)
        return (d1**k + d2**k) ** (1.0 / k)

    def step(self, rho: float) -> float:
        """Distal-main to parent diameter ratio D_1 / D_p for side ratio rho = D_2 / D_p."""
        if self.name == "finet":
            return 1.0 / FINET - rho
        k = float(self.exponent)
        return (1.0 - rho**k) ** (1.0 / k)

    def rho_max(self) -> float:
        """Largest side ratio for which the distal main stays at least as wide as the side."""
        if self.name == "finet":
            return FINET_RHO[1]
        return 0.5 ** (1.0 / float(self.exponent))


def law_error(law: Law, d_parent: float, d1: float, d2: float) -> float:
    """Relative error |D_p(law) - D_p| / D_p of a bifurcation under ``law``."""
    return abs(law.parent(d1, d2) - d_parent) / d_parent


def murray_exponent(d_parent: float, d1: float, d2: float) -> float | None:
    """Exponent k with D_p^k = D_1^k + D_2^k (bisection on [1, 8]), None if there is none."""
    if d_parent <= max(d1, d2):
        return None

    def f(k: float) -> float:
        return (d1 / d_parent) ** k + (d2 / d_parent) ** k - 1.0

    lo, hi = 1.0, 8.0
    if f(lo) < 0.0 or f(hi) > 0.0:
        return None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > 0.0 else (lo, mid)
    return 0.5 * (lo + hi)


def reconcile(d: np.ndarray, sigma: np.ndarray, law: Law) -> np.ndarray:
    """Smallest sigma-weighted change of (D_p, D_1, D_2) mm that makes ``law`` hold exactly.

    Independent draws of the three Dodge diameters rarely satisfy a law; projecting them
    onto the law's surface, each moved in proportion to its spread, keeps the population
    means close to Dodge's while every bifurcation obeys the law.
    """
    x = np.asarray(d, dtype=float).copy()
    var = np.asarray(sigma, dtype=float) ** 2
    for _ in range(20):
        g = x[0] - law.parent(x[1], x[2])
        eps = 1e-6
        grad = np.array(
            [
                1.0,
                -(law.parent(x[1] + eps, x[2]) - law.parent(x[1] - eps, x[2])) / (2 * eps),
                -(law.parent(x[1], x[2] + eps) - law.parent(x[1], x[2] - eps)) / (2 * eps),
            ]
        )
        x = x - g * var * grad / float(grad @ (var * grad))
        if abs(g) < 1e-12:
            break
    return x


def choose_law(rng: np.random.Generator, rho_lo: float, rho_hi: float, finet_share: float) -> Law:
    """Draw a law usable for side ratios in [rho_lo, rho_hi] (Finet only where it keeps the
    distal main between the side branch and the parent)."""
    finet_ok = rho_hi >= FINET_RHO[0] + 0.02 and rho_lo <= FINET_RHO[1] - 0.02
    if finet_ok and rng.random() < finet_share:
        return Law("finet")
    return Law("murray", float(rng.uniform(*MURRAY_K)))


def draw_side_ratio(rng: np.random.Generator, law: Law, rho_lo: float, rho_hi: float) -> float:
    """Side-branch ratio D_side / D_parent in [rho_lo, rho_hi] valid for ``law``."""
    lo, hi = rho_lo, min(rho_hi, law.rho_max() - 0.01)
    if law.name == "finet":
        lo = max(lo, FINET_RHO[0] + 0.01)
    return float(rng.uniform(lo, max(lo, hi)))


def smoothstep(x: np.ndarray) -> np.ndarray:
    """C1 step from 0 (x <= 0) to 1 (x >= 1)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def diameter_profile(
    s: np.ndarray,
    d0: float,
    decay_per_mm: float,
    steps: list[tuple[float, float]],
    width_mm: float = 2.0,
) -> np.ndarray:
    """Reference diameter (mm) along arc length ``s`` (mm): exponential taper
    d0 exp(-decay s) times, at each (s_i, ratio_i), a smooth step by ``ratio_i`` over
    [s_i - width/2, s_i + width/2]. Monotone non-increasing when every ratio <= 1."""
    log_d = math.log(d0) - decay_per_mm * s
    for s_i, ratio in steps:
        log_d = log_d + math.log(ratio) * smoothstep((s - s_i) / width_mm + 0.5)
    return np.exp(log_d)


def taper_for_target(
    d0: float, d_target: float, s_target: float, steps: list[tuple[float, float]], floor: float
) -> float:
    """Exponential decay (1/mm) that brings d0 down to ``d_target`` at ``s_target`` given the
    branch steps before it; at least ``floor`` (vessels never widen distally)."""
    log_steps = sum(math.log(r) for s_i, r in steps if s_i < s_target)
    return max(floor, (math.log(d0 / d_target) + log_steps) / s_target)
