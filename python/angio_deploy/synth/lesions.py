"""Stenoses of the synthetic coronary tree (world frame: DICOM LPS, mm).

A lesion narrows the lumen over ``length_mm`` around ``center_s_mm`` with a smooth profile
f(s) in [0, ds] (ds = percent_ds / 100), f = ds at the centre and 0 at both ends:
- "cosine": f = ds (1 + cos(2 pi x)) / 2 for x = (s - c) / L in [-1/2, 1/2];
- "gaussian": a Gaussian of sigma = L / 6, shifted and rescaled to reach 0 at the ends.
The equivalent lumen radius becomes r_ref (1 - f) (both ellipse semi-axes scale by 1 - f).
An eccentric lesion puts the plaque on one side (direction ``angle_rad`` in the vessel's
(major_dir, tangent x major_dir) frame), so the lumen centre moves away from it by
eccentricity * (r_ref - r): eccentricity 1 keeps the far wall where the healthy wall was.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .anatomy_curves import tangents
from .model import Lesion, Vessel

_GAUSS_END = float(np.exp(-0.5 * 3.0**2))


def profile(s: np.ndarray, lesion: Lesion) -> np.ndarray:
    """Fractional diameter reduction f(s) in [0, percent_ds / 100] along arc length s (mm)."""
    x = (np.asarray(s, dtype=float) - lesion.center_s_mm) / lesion.length_mm
    inside = np.abs(x) <= 0.5
    if lesion.profile == "cosine":
        shape = 0.5 * (1.0 + np.cos(2.0 * np.pi * x))
    elif lesion.profile == "gaussian":
        shape = (np.exp(-0.5 * (6.0 * x) ** 2) - _GAUSS_END) / (1.0 - _GAUSS_END)
    else:
        raise ValueError(f"unknown lesion profile {lesion.profile!r}")
    return np.where(inside, lesion.percent_ds / 100.0 * shape, 0.0)


def lesion_mask(vessel: Vessel, lesion: Lesion) -> np.ndarray:
    """Boolean mask (M,) of the centreline samples inside the lesion's extent."""
    s = vessel.arc_lengths
    return np.abs(s - lesion.center_s_mm) <= 0.5 * lesion.length_mm


def measured_percent_ds(vessel: Vessel, lesion: Lesion) -> float:
    """Percent diameter stenosis the geometry shows: 100 (1 - D_min / D_ref) with D_min the
    smallest lumen diameter 2 sqrt(a b) inside the lesion and D_ref the reference
    (lesion-free, tapered) diameter at that same sample."""
    m = lesion_mask(vessel, lesion)
    d = 2.0 * vessel.radius[m]
    i = int(np.argmin(d))
    return float(100.0 * (1.0 - d[i] / (2.0 * vessel.reference_radius[m][i])))


def apply_lesions(vessel: Vessel, base_semi_axes: np.ndarray) -> None:
    """Set ``vessel.semi_axes`` and ``vessel.offset`` from its lesion-free ellipse
    ``base_semi_axes`` (M, 2) mm and its (non-overlapping) ``lesions``."""
    s = vessel.arc_lengths
    keep = np.ones(len(s))
    offset = np.zeros_like(vessel.points)
    tan = tangents(vessel.points)
    binormal = np.cross(tan, vessel.major_dir)
    for lesion in vessel.lesions:
        f = profile(s, lesion)
        keep *= 1.0 - f
        side = np.cos(lesion.angle_rad) * vessel.major_dir + np.sin(lesion.angle_rad) * binormal
        shift = lesion.eccentricity * vessel.reference_radius * f
        offset -= shift[:, None] * side
    vessel.semi_axes = base_semi_axes * keep[:, None]
    vessel.offset = offset if np.any(offset) else None


@dataclass(frozen=True)
class LesionParams:
    """Ranges for drawing lesions: %DS, length (mm), share of eccentric lesions, share of
    Gaussian profiles, minimum gap (mm) between two lesions and to the SOI ends."""

    percent_ds: tuple[float, float] = (30.0, 90.0)
    length_mm: tuple[float, float] = (5.0, 25.0)
    eccentric_share: float = 0.5
    gaussian_share: float = 0.5
    gap_mm: float = 2.0


def _draw_lengths(
    rng: np.random.Generator, count: int, room: float, p: LesionParams
) -> list[float]:
    """Lesion lengths (mm) in p.length_mm that fit together (with gaps) into ``room`` mm."""
    lo, hi = p.length_mm
    lengths = rng.uniform(lo, hi, size=count)
    budget = room - p.gap_mm * (count - 1)
    if lengths.sum() > budget:
        # Shrink proportionally above the minimum so the set still fits.
        excess = lengths - lo
        lengths = lo + excess * max(0.0, budget - lo * count) / max(excess.sum(), 1e-9)
    return [float(x) for x in lengths]


def draw_lesions(
    rng: np.random.Generator,
    vessel: Vessel,
    s_range: tuple[float, float],
    count: int,
    params: LesionParams | None = None,
) -> list[Lesion]:
    """Draw ``count`` non-overlapping lesions strictly inside [s0, s1] (mm along ``vessel``).

    Each centre is snapped to a centreline sample, so the narrowest sampled lumen is the
    designed one. The returned ``percent_ds`` are the design values; call
    ``finalise_lesions`` after ``apply_lesions`` to make them equal to the measured ones.
    """
    p = params or LesionParams()
    s0, s1 = s_range[0] + p.gap_mm, s_range[1] - p.gap_mm
    if count <= 0 or s1 - s0 < p.length_mm[0] * count + p.gap_mm * (count - 1):
        return []
    lengths = _draw_lengths(rng, count, s1 - s0, p)
    slack = max(0.0, (s1 - s0) - sum(lengths) - p.gap_mm * (count - 1))
    # Distribute the free room randomly before, between and after the lesions.
    cuts = np.sort(rng.uniform(0.0, slack, size=count))
    s_axis = vessel.arc_lengths
    lesions: list[Lesion] = []
    start = s0
    prev_cut = 0.0
    for length, cut in zip(lengths, cuts, strict=True):
        start += cut - prev_cut
        prev_cut = cut
        # Snap the centre to the nearest sample (moves it < 0.25 mm, well inside the gaps).
        i = int(np.argmin(np.abs(s_axis - (start + 0.5 * length))))
        centre = float(s_axis[i])
        lesions.append(_draw_one(rng, centre, length, p))
        start += length + p.gap_mm
    return lesions


def _draw_one(rng: np.random.Generator, centre: float, length: float, p: LesionParams) -> Lesion:
    lo, hi = p.percent_ds
    eccentric = rng.random() < p.eccentric_share
    return Lesion(
        center_s_mm=centre,
        length_mm=length,
        # Half a point inside the range: sampling and taper move the measured value slightly.
        percent_ds=float(rng.uniform(lo + 0.5, hi - 0.5)),
        eccentricity=float(rng.uniform(0.3, 1.0)) if eccentric else 0.0,
        angle_rad=float(rng.uniform(0.0, 2.0 * np.pi)),
        profile="gaussian" if rng.random() < p.gaussian_share else "cosine",
    )


def finalise_lesions(vessel: Vessel) -> None:
    """Replace each lesion's design %DS with the value its geometry shows (they differ by a
    fraction of a point where the taper or a branch step moves the narrowest sample)."""
    vessel.lesions = [
        dataclasses.replace(les, percent_ds=measured_percent_ds(vessel, les))
        for les in vessel.lesions
    ]
