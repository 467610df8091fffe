"""Segment of interest (SOI) of a synthetic scene: which vessel and which stretch of it.

Arc lengths in mm from the vessel's start. The SOI lies on the LAD, LCx, a large D1 or OM1
(left tree) or the RCA (right); in a share of cases a side-branch SOI starts at a branch
origin inside the main SOI.
"""

from __future__ import annotations

import numpy as np

from .anatomy_params import AnatomyParams
from .anatomy_scene import Scene
from .model import SegmentOfInterest


def choose_soi(
    rng: np.random.Generator, scene: Scene, tree: str, p: AnatomyParams
) -> tuple[SegmentOfInterest, SegmentOfInterest | None]:
    """SOI on the LAD/LCx/large D1/OM1 (left) or the RCA (right); a side-branch SOI in a
    share of cases, its branch origin inside the main SOI."""
    names = [r.name for r in scene.recs]
    weights = {"LAD": 0.55, "LCx": 0.25, "D1": 0.1, "OM1": 0.1} if tree == "left" else {"RCA": 1.0}
    cands = []
    for name, wgt in weights.items():
        if name in names:
            rec = scene.recs[names.index(name)]
            if rec.length >= 45.0 and rec.d0 >= 2.0:
                cands.append((names.index(name), wgt))
    u_pick, u_len, u_side, u_pos, u_side_len = rng.random(5)
    w = np.array([c[1] for c in cands])
    vi = cands[int(np.searchsorted(np.cumsum(w) / w.sum(), u_pick))][0]
    length = scene.recs[vi].length
    lo, hi = p.soi_length_mm
    # Lesions sit mostly proximal-to-mid, so SOIs are kept off the last few mm.
    room = length - 3.0 - 8.0
    seg = float(min(lo + u_len * (hi - lo), room))
    side_soi = None
    start = 3.0 + u_pos * (room - seg)
    if u_side < p.side_soi_share:
        options = [
            (bf, scene.recs[bf.daughters[1]])
            for bf in scene.bifs
            if bf.parent == vi
            and bf.daughters[0] == vi
            and scene.recs[bf.daughters[1]].course == "epicardial"
            and scene.recs[bf.daughters[1]].generation == 1
            and scene.recs[bf.daughters[1]].length >= p.side_soi_length_mm[0] + 3.0
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
