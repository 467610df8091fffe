"""C-arm view pairs for a synthetic case: standard projections, jitter, header error.

Angles follow GEOMETRY.md: primary > 0 is LAO, < 0 RAO; secondary > 0 is cranial (CRA),
< 0 caudal (CAU). Each case draws two different standard projections for its vessel,
jittered, at least :data:`MIN_SEPARATION_DEG` apart, with SID, SOD and detector field of
view in clinical ranges.

Header error. Real systems report angles and distances that differ from the true
acquisition geometry (table shift between runs, C-arm sag, isocenter offsets). Only the
geometry of view B relative to view A can be recovered from two images (an overall rigid
motion of both is invisible), so the world frame of every case is view A's nominal frame:
view A's header is exact, and view B carries the whole relative error — an isocenter
offset of a few mm and angle errors up to about 2 degrees. truth/meta.json keeps the true
geometry of both views; refinement downstream exists to undo the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from angio_deploy.geometry import ViewGeometry, separation_angle_deg

#: Minimum separation (degrees) between the two views of a synthetic case.
MIN_SEPARATION_DEG = 30.0

#: Standard projections (primary range, secondary range), degrees, per vessel class.
STANDARD_VIEWS: dict[str, dict[str, tuple[tuple[float, float], tuple[float, float]]]] = {
    "left": {
        "LAO-CAU (spider)": ((40.0, 50.0), (-40.0, -25.0)),
        "RAO-CAU": ((-45.0, -30.0), (-40.0, -30.0)),
        "AP/RAO-CRA": ((-10.0, -5.0), (35.0, 45.0)),
        "LAO-CRA": ((30.0, 45.0), (25.0, 35.0)),
    },
    "right": {
        "LAO": ((45.0, 60.0), (-5.0, 5.0)),
        "RAO": ((-45.0, -30.0), (-5.0, 5.0)),
        "AP-CRA": ((-5.0, 5.0), (20.0, 30.0)),
    },
}
#: Which projections show each left-tree vessel best (weights for drawing the pair).
LEFT_PREFERENCE = {
    "LAD": {"AP/RAO-CRA": 3.0, "LAO-CRA": 3.0, "RAO-CAU": 1.0, "LAO-CAU (spider)": 1.0},
    "LCx": {"RAO-CAU": 3.0, "LAO-CAU (spider)": 3.0, "AP/RAO-CRA": 0.5, "LAO-CRA": 1.0},
}
RIGHT_PREFERENCE = {"LAO": 3.0, "RAO": 3.0, "AP-CRA": 1.0}

JITTER_DEG = 4.0
SID_RANGE_MM = (900.0, 1200.0)
SOD_RANGE_MM = (700.0, 800.0)
FOV_RANGE_MM = (150.0, 250.0)  # detector field of view (square)
LARGE_IMAGE_SHARE = 0.15  # share of 1024 x 1024 views; the rest are 512 x 512
ANGLE_ERROR_MAX_DEG = 2.0
OFFSET_ERROR_SD_MM = 2.0
OFFSET_ERROR_MAX_MM = 5.0


@dataclass(frozen=True)
class ViewRanges:
    """Image size and detector field-of-view distributions (pixels, mm); the defaults
    are generator version 1's (:mod:`angio_deploy.synth.profiles`).

    One uniform draw u picks the size: 1024 px when u < ``large_share``, a side drawn in
    ``small_size_px`` (even, inclusive) when u < ``large_share + small_share``, else
    512 px. The square detector field of view is drawn in ``fov_mm``, ``fov_small_mm``
    or ``fov_large_mm`` by size class (None: ``fov_mm``), so vessel widths in pixels stay
    in range at every size.
    """

    large_share: float = LARGE_IMAGE_SHARE
    small_share: float = 0.0
    small_size_px: tuple[int, int] = (300, 400)
    fov_mm: tuple[float, float] = FOV_RANGE_MM
    fov_small_mm: tuple[float, float] | None = None
    fov_large_mm: tuple[float, float] | None = None

    def draw_size(self, rng: np.random.Generator) -> int:
        """Image side (px) of one case."""
        u = rng.random()
        if u < self.large_share:
            return 1024
        if u < self.large_share + self.small_share:
            lo, hi = self.small_size_px
            return 2 * int(rng.integers(lo // 2, hi // 2 + 1))
        return 512

    def fov_for(self, size: int) -> tuple[float, float]:
        """Field-of-view range (mm) for an image of ``size`` px."""
        if size < 512 and self.fov_small_mm is not None:
            return self.fov_small_mm
        if size > 512 and self.fov_large_mm is not None:
            return self.fov_large_mm
        return self.fov_mm


@dataclass(frozen=True)
class ViewSpec:
    """One view: projection name, true and header geometry, and the header error applied."""

    name: str
    projection: str
    true: ViewGeometry
    header: ViewGeometry
    angle_error_deg: tuple[float, float]
    offset_error_mm: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        def geo(g: ViewGeometry) -> dict[str, Any]:
            d = g.to_dict()
            d.pop("provenance", None)
            return d

        return {
            "name": self.name,
            "projection": self.projection,
            "true": geo(self.true),
            "header": geo(self.header),
            "angle_error_deg": list(self.angle_error_deg),
            "isocenter_offset_mm": list(self.offset_error_mm),
        }


def _vessel_class(tree: str, vessel_name: str) -> str:
    if tree == "right":
        return "RCA"
    return "LCx" if vessel_name.upper().startswith(("LCX", "OM")) else "LAD"


def _draw_pair(rng: np.random.Generator, tree: str, vessel_name: str) -> list[str]:
    table = STANDARD_VIEWS[tree]
    if tree == "right":
        pref = RIGHT_PREFERENCE
    else:
        pref = LEFT_PREFERENCE[_vessel_class(tree, vessel_name)]
    names = list(table)
    w = np.array([pref.get(n, 1.0) for n in names])
    first = int(rng.choice(len(names), p=w / w.sum()))
    w2 = w.copy()
    w2[first] = 0.0
    second = int(rng.choice(len(names), p=w2 / w2.sum()))
    return [names[first], names[second]]


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def draw_view_pair(
    rng: np.random.Generator,
    tree: str,
    vessel_name: str,
    *,
    size: int | None = None,
    ranges: ViewRanges | None = None,
) -> tuple[ViewSpec, ViewSpec]:
    """Draw two views for a vessel of ``tree`` ("left"/"right"), at least 30 degrees apart.

    ``size`` forces the image size in pixels (square); by default it is drawn from
    ``ranges`` (None: version 1's, 512 px and sometimes 1024).
    """
    ranges = ranges or ViewRanges()
    if size is None:
        size = ranges.draw_size(rng)
    fov_range = ranges.fov_for(size)
    for _ in range(100):
        projections = _draw_pair(rng, tree, vessel_name)
        nominal = []
        for proj in projections:
            (pa, pb) = STANDARD_VIEWS[tree][proj]
            a = _uniform(rng, pa) + float(rng.normal(0.0, JITTER_DEG / 2))
            b = _uniform(rng, pb) + float(rng.normal(0.0, JITTER_DEG / 2))
            sid = _uniform(rng, SID_RANGE_MM)
            sod = min(_uniform(rng, SOD_RANGE_MM), sid - 150.0)
            spacing = _uniform(rng, fov_range) / size
            # DICOM DS values carry 16 characters; round so headers hold them exactly.
            nominal.append(
                (round(a, 2), round(b, 2), round(sid, 1), round(sod, 1), round(spacing, 6))
            )
        ga = ViewGeometry.from_angles(*nominal[0][:4], (nominal[0][4],) * 2, size, size)
        gb = ViewGeometry.from_angles(*nominal[1][:4], (nominal[1][4],) * 2, size, size)
        if separation_angle_deg(ga, gb) >= MIN_SEPARATION_DEG + ANGLE_ERROR_MAX_DEG:
            break
    else:  # pragma: no cover - the standard projections are far apart
        raise RuntimeError("could not draw a view pair 30 degrees apart")

    da = float(np.clip(rng.normal(0.0, 0.8), -ANGLE_ERROR_MAX_DEG, ANGLE_ERROR_MAX_DEG))
    db = float(np.clip(rng.normal(0.0, 0.8), -ANGLE_ERROR_MAX_DEG, ANGLE_ERROR_MAX_DEG))
    off = np.clip(rng.normal(0.0, OFFSET_ERROR_SD_MM, 3), -OFFSET_ERROR_MAX_MM, OFFSET_ERROR_MAX_MM)
    a2, b2, sid2, sod2, sp2 = nominal[1]
    gb_true = ViewGeometry.from_angles(
        a2 + da, b2 + db, sid2, sod2, (sp2, sp2), size, size, isocenter_offset_mm=off
    )
    spec_a = ViewSpec("a", projections[0], ga, ga, (0.0, 0.0), (0.0, 0.0, 0.0))
    spec_b = ViewSpec(
        "b", projections[1], gb_true, gb, (da, db), (float(off[0]), float(off[1]), float(off[2]))
    )
    return spec_a, spec_b
