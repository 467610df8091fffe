"""Where the lesions of a synthetic scene go, and their lumen narrowing in the tree.

Arc lengths in mm from each vessel's start. 0, 1 or 2 lesions in the SOI, maybe one in
the side-branch SOI and one elsewhere in the tree; the lesion model itself (shape,
narrowing, measured %DS) is ``lesions``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .anatomy_params import AnatomyParams
from .anatomy_scene import VesselRecord
from .lesions import apply_lesions, draw_lesions, finalise_lesions, measured_percent_ds
from .model import SegmentOfInterest, Vessel


def place_lesions(
    rng: np.random.Generator,
    vessels: list[Vessel],
    soi: SegmentOfInterest,
    side_soi: SegmentOfInterest | None,
    recs: list[VesselRecord],
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


def shape_lesions(v: Vessel, semi: np.ndarray, ds_range: tuple[float, float]) -> None:
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
    finalise_lesions(v)
