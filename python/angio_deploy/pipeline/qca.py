"""3D quantitative coronary analysis (QCA) of a reconstructed branch (CASE_FORMAT.md).

From the rings of a branch (centreline, world mm; equivalent circular radius per ring, mm):

* the **diameter profile** along the arc (mm) and the lumen area per ring (mm^2);
* the **reference diameter profile**: the healthy vessel the lesions interrupt, as the
  "interpolated reference" of QCA software, without user-placed reference points
  (:func:`reference_diameter`): the healthy rings are their own reference -- so the
  reference follows the taper *and* the steps where side branches leave, which a single
  straight taper cannot -- and across each lesion (and each ostial bulge) the reference
  is interpolated linearly in arc length between the healthy rings on either side;
* **MLD** (minimum lumen diameter) and its arc position, the reference diameter there,
  percent diameter stenosis %DS = 100 (1 - MLD / ref) and area stenosis
  %AS = 100 (1 - (MLD / ref)^2);
* **lesions**: every stretch where the diameter stays more than :data:`LESION_THRESHOLD`
  (20 %) below the reference (stretches closer than :data:`MERGE_GAP_MM` merged), each
  with its position, length, MLD, reference and %DS / %AS;
* **foreshortening** of the branch in each view: its projected length (perpendicular to
  each ray, i.e. magnification-corrected) over its 3D length, 1 when the view sees it side
  on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from angio_deploy.curves import arc_lengths
from angio_deploy.geometry import ViewGeometry

#: Rings narrower than the filled profile (or wider than the bulge-free one) by more
#: than this share are not healthy: about the ring-to-ring noise of the diameters.
REFERENCE_TOLERANCE = 0.05
#: Peaks of the diameter profile narrower than this (mm) are bulges, not healthy vessel:
#: a side branch's ostium widens the projected lumen over about the branch's diameter
#: over the sine of its angle, 2-4 mm.
BULGE_MM = 5.0
#: Dips narrower than this (mm) are filled as lesions (focal lesions are up to ~25 mm
#: long); a longer narrowing counts as the vessel's own calibre.
LESION_SPAN_MM = 30.0
#: The excluded stretch around a dip grows by this share of its length on each side: a
#: smooth lesion's shoulders, narrower than the reference by less than the tolerance
#: (for a cosine-shaped lesion of 30-70 %DS, 10-18 % of the stretch on each side).
SHOULDER_SHARE = 0.2
#: Gaussian smoothing (mm of arc) of the healthy rings' diameters, against ring noise.
REFERENCE_SMOOTH_MM = 1.0
#: A lesion: the diameter more than this share below the reference (CASE_FORMAT.md).
LESION_THRESHOLD = 0.20
#: Lesion stretches separated by less than this (mm) are one lesion.
MERGE_GAP_MM = 1.0


@dataclass(frozen=True)
class Lesion:
    """One lesion of a branch; arc positions in mm from the branch start."""

    start_mm: float
    end_mm: float
    mld_mm: float
    mld_position_mm: float
    reference_mm: float

    @property
    def length_mm(self) -> float:
        return self.end_mm - self.start_mm

    @property
    def percent_ds(self) -> float:
        return 100.0 * (1.0 - self.mld_mm / self.reference_mm)

    @property
    def percent_as(self) -> float:
        return 100.0 * (1.0 - (self.mld_mm / self.reference_mm) ** 2)

    def to_dict(self) -> dict[str, float]:
        return {
            "start_mm": self.start_mm,
            "end_mm": self.end_mm,
            "length_mm": self.length_mm,
            "mld_mm": self.mld_mm,
            "mld_position_mm": self.mld_position_mm,
            "reference_diameter_mm": self.reference_mm,
            "percent_ds": self.percent_ds,
            "percent_as": self.percent_as,
        }


@dataclass(frozen=True)
class BranchQCA:
    """QCA of one branch: per-ring profiles (N,) and the summary."""

    branch: str
    arc_mm: np.ndarray
    diameter_mm: np.ndarray
    reference_mm: np.ndarray
    lesions: tuple[Lesion, ...]
    foreshortening: tuple[float, ...]

    @property
    def area_mm2(self) -> np.ndarray:
        return np.pi * (0.5 * self.diameter_mm) ** 2

    @property
    def length_mm(self) -> float:
        return float(self.arc_mm[-1])

    def to_dict(self) -> dict[str, Any]:
        k = int(np.argmin(self.diameter_mm))
        mld, ref = float(self.diameter_mm[k]), float(self.reference_mm[k])
        return {
            "branch": self.branch,
            "length_mm": self.length_mm,
            "mld_mm": mld,
            "mld_position_mm": float(self.arc_mm[k]),
            "reference_diameter_at_mld_mm": ref,
            "percent_ds": 100.0 * (1.0 - mld / ref),
            "percent_as": 100.0 * (1.0 - (mld / ref) ** 2),
            "reference_diameter_mm": {
                "proximal": float(self.reference_mm[0]),
                "distal": float(self.reference_mm[-1]),
            },
            "lesions": [les.to_dict() for les in self.lesions],
            "foreshortening": list(self.foreshortening),
            "method": (
                "reference: the healthy rings' diameters, interpolated linearly across "
                "lesions and bulges (grey-scale opening 5 mm, closing 30 mm); lesion: "
                "diameter > 20 % below the reference"
            ),
        }


def _odd_rings(length_mm: float, spacing_mm: float) -> int:
    n = max(1, round(length_mm / spacing_mm))
    return n if n % 2 else n + 1


def _closing(d: np.ndarray, size: int, *, opening: bool = False) -> np.ndarray:
    """Grey-scale closing (or opening) of ``d`` over ``size`` rings whose windows may end
    at the segment's ends: nothing is assumed beyond them. (Constant padding would make a
    taper that reaches an end read as a dip there, and its last stretch as a lesion.)"""
    first, second = (
        (ndimage.grey_erosion, ndimage.grey_dilation)
        if opening
        else (ndimage.grey_dilation, ndimage.grey_erosion)
    )
    half = size // 2
    # Values outside the segment that never win the first filter's min / max.
    span = float(np.ptp(d)) + 1.0
    neutral = float(d.max()) + span if opening else float(d.min()) - span
    ext = np.concatenate([np.full(half, neutral), d, np.full(half, neutral)])
    out = second(first(ext, size=size, mode="nearest"), size=size, mode="nearest")
    return out[half : half + len(d)]


def healthy_rings(arc_mm: np.ndarray, diameter_mm: np.ndarray) -> np.ndarray:
    """Boolean (N,): the rings whose diameter is the healthy vessel's.

    Two grey-scale morphological filters of the diameter profile along the arc: an
    opening over :data:`BULGE_MM` removes the narrow peaks (ostial bulges, overlaps), a
    closing of that over :data:`LESION_SPAN_MM` fills the dips (lesions) and keeps
    monotone changes (taper, branch steps). A ring more than
    :data:`REFERENCE_TOLERANCE` below the filled profile is in a lesion (the stretch
    widened by :data:`SHOULDER_SHARE` of its length on each side, the lesion's
    shoulders); one more than that above the opened profile is in a bulge.
    """
    s = np.asarray(arc_mm, dtype=np.float64)
    d = np.asarray(diameter_mm, dtype=np.float64)
    if len(s) < 3:
        return np.ones(len(s), dtype=bool)
    spacing = float(np.median(np.diff(s)))
    opened = _closing(d, _odd_rings(BULGE_MM, spacing), opening=True)
    filled = _closing(opened, _odd_rings(LESION_SPAN_MM, spacing))
    narrow = d < (1.0 - REFERENCE_TOLERANCE) * filled
    excluded = narrow | (d > (1.0 + REFERENCE_TOLERANCE) * opened)
    labels, n = ndimage.label(narrow)
    for k in range(1, n + 1):
        idx = np.flatnonzero(labels == k)
        margin = SHOULDER_SHARE * (s[idx[-1]] - s[idx[0]])
        excluded |= (s >= s[idx[0]] - margin) & (s <= s[idx[-1]] + margin)
    return ~excluded


def reference_diameter(arc_mm: np.ndarray, diameter_mm: np.ndarray) -> np.ndarray:
    """Healthy reference diameter (N,) mm along the arc (module docstring): the
    :func:`healthy_rings`' diameters (smoothed over :data:`REFERENCE_SMOOTH_MM`),
    interpolated linearly in arc length across the others and held constant beyond the
    first and last healthy ring."""
    s = np.asarray(arc_mm, dtype=np.float64)
    d = np.asarray(diameter_mm, dtype=np.float64)
    healthy = healthy_rings(s, d)
    if healthy.sum() < 2:  # no healthy stretch to interpolate from: the vessel itself
        return np.maximum(d, 1e-3)
    sigma = REFERENCE_SMOOTH_MM / float(np.median(np.diff(s)))
    # Smoothing normalised by the healthy rings' weight: lesion rings do not pull it down.
    weight = ndimage.gaussian_filter1d(healthy.astype(np.float64), sigma, mode="nearest")
    total = ndimage.gaussian_filter1d(np.where(healthy, d, 0.0), sigma, mode="nearest")
    smooth = total[healthy] / np.maximum(weight[healthy], 1e-9)
    return np.maximum(np.interp(s, s[healthy], smooth), 1e-3)


def find_lesions(
    arc_mm: np.ndarray, diameter_mm: np.ndarray, reference_mm: np.ndarray
) -> tuple[Lesion, ...]:
    """Stretches where the diameter is more than 20 % below the reference."""
    s, d, ref = (np.asarray(x, dtype=np.float64) for x in (arc_mm, diameter_mm, reference_mm))
    below = d < (1.0 - LESION_THRESHOLD) * ref
    spacing = float(np.median(np.diff(s))) if len(s) > 1 else 0.0
    runs: list[list[int]] = []
    for k in np.flatnonzero(below):
        if runs and s[k] - s[runs[-1][-1]] <= spacing + MERGE_GAP_MM:
            runs[-1].append(int(k))
        else:
            runs.append([int(k)])
    lesions = []
    for run in runs:
        idx = np.arange(run[0], run[-1] + 1)
        m = idx[int(np.argmin(d[idx]))]
        # Edges half a ring spacing outside the first and last ring below the threshold.
        lo = s[run[0]] - 0.5 * (s[run[0]] - s[run[0] - 1]) if run[0] > 0 else s[0]
        hi = s[run[-1]] + 0.5 * (s[run[-1] + 1] - s[run[-1]]) if run[-1] + 1 < len(s) else s[-1]
        lesions.append(Lesion(float(lo), float(hi), float(d[m]), float(s[m]), float(ref[m])))
    return tuple(lesions)


def foreshortening(points: np.ndarray, geometry: ViewGeometry) -> float:
    """Projected (perpendicular to the rays) over true 3D length of a polyline, in [0, 1]."""
    p = np.asarray(points, dtype=np.float64)
    steps = np.diff(p, axis=0)
    mid = 0.5 * (p[1:] + p[:-1])
    rays = mid - geometry.source_mm[None, :]
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    perp = steps - np.einsum("ij,ij->i", steps, rays)[:, None] * rays
    total = float(np.linalg.norm(steps, axis=1).sum())
    return float(np.linalg.norm(perp, axis=1).sum() / total) if total > 0 else 0.0


def branch_qca(
    centreline_mm: np.ndarray,
    radius_mm: np.ndarray,
    geometries: Sequence[ViewGeometry] = (),
    *,
    branch: str = "main",
) -> BranchQCA:
    """QCA of one branch from its rings: centreline (N, 3) world mm, radius (N,) mm."""
    s = arc_lengths(np.asarray(centreline_mm, dtype=np.float64))
    d = 2.0 * np.asarray(radius_mm, dtype=np.float64)
    ref = reference_diameter(s, d)
    return BranchQCA(
        branch=branch,
        arc_mm=s,
        diameter_mm=d,
        reference_mm=ref,
        lesions=find_lesions(s, d, ref),
        foreshortening=tuple(foreshortening(centreline_mm, g) for g in geometries),
    )


def qca_csv(branches: Sequence[BranchQCA]) -> str:
    """qca.csv (CASE_FORMAT.md): ``branch,ring,arc_mm,diameter_mm,reference_diameter_mm,
    area_mm2``, one row per ring of every branch."""
    lines = ["branch,ring,arc_mm,diameter_mm,reference_diameter_mm,area_mm2"]
    for b in branches:
        for k, (s, d, r, a) in enumerate(
            zip(b.arc_mm, b.diameter_mm, b.reference_mm, b.area_mm2, strict=True)
        ):
            lines.append(f"{b.branch},{k},{s:.4f},{d:.4f},{r:.4f},{a:.4f}")
    return "\n".join(lines) + "\n"


def diameter_plot(b: BranchQCA, size: tuple[int, int] = (720, 300)):
    """A PIL image: diameter (black) and reference (blue dashed) along the arc, lesions
    shaded red, MLD marked; axes in mm."""
    from PIL import Image, ImageDraw

    W, H = size
    left, right, top, bottom = 56, 16, 28, 40
    im = Image.new("RGB", size, "white")
    dr = ImageDraw.Draw(im)
    L = max(b.length_mm, 1e-6)
    dmax = float(max(b.diameter_mm.max(), b.reference_mm.max())) * 1.15

    def xy(s: float, d: float) -> tuple[float, float]:
        return (
            left + (W - left - right) * s / L,
            H - bottom - (H - top - bottom) * d / max(dmax, 1e-6),
        )

    for les in b.lesions:
        x0, _ = xy(les.start_mm, 0)
        x1, _ = xy(les.end_mm, 0)
        dr.rectangle([x0, top, max(x1, x0 + 1), H - bottom], fill=(255, 215, 215))
    dr.line([xy(0, 0), xy(L, 0)], fill="black")
    dr.line([xy(0, 0), xy(0, dmax)], fill="black")
    for t in np.linspace(0, L, 6):
        x, y = xy(float(t), 0)
        dr.line([(x, y), (x, y + 4)], fill="black")
        dr.text((x - 10, y + 6), f"{t:.0f}", fill="black")
    for t in np.linspace(0, dmax, 5):
        x, y = xy(0, float(t))
        dr.line([(x - 4, y), (x, y)], fill="black")
        dr.text((6, y - 6), f"{t:.1f}", fill="black")
    dr.text((W // 2 - 40, H - 16), "arc length (mm)", fill="black")
    dr.text((6, 6), f"{b.branch}: diameter (mm)", fill="black")
    ref = [xy(float(s), float(r)) for s, r in zip(b.arc_mm, b.reference_mm, strict=True)]
    for k in range(0, len(ref) - 1, 2):
        dr.line([ref[k], ref[k + 1]], fill=(40, 80, 220), width=2)
    dr.line(
        [xy(float(s), float(d)) for s, d in zip(b.arc_mm, b.diameter_mm, strict=True)],
        fill="black",
        width=2,
    )
    k = int(np.argmin(b.diameter_mm))
    x, y = xy(float(b.arc_mm[k]), float(b.diameter_mm[k]))
    dr.ellipse([x - 4, y - 4, x + 4, y + 4], outline=(200, 0, 0), width=2)
    ds = 100.0 * (1.0 - b.diameter_mm[k] / b.reference_mm[k])
    dr.text((x + 6, y + 2), f"MLD {b.diameter_mm[k]:.2f} mm, {ds:.0f} %DS", fill=(200, 0, 0))
    return im
