"""How much can landmark correspondences add to view-B geometry refinement (issue 12)?

Geometry alone, on synthetic cases with truth: the true SOI centreline (truth/centreline.csv)
is projected with the true geometry into both views and triangulated (linear, per point)
with view B's geometry as given (header), refined from the SOI (noisy end clicks, 1.5 px,
and the two exact curves), and refined from the SOI plus point correspondences:

* ``perfect_K``: K random 3D points within ~15 mm (1 sigma) of the segment, projected with
  the true geometry (1 px noise): the most any landmark could give;
* ``detected``: junctions found by :func:`angio_deploy.pipeline.landmarks.detect_junctions`
  in each view and matched by ``match_junctions`` through the given geometry.

Reported: mean 3D error (mm) of the triangulated centreline per configuration (median and
mean over cases), the part of the ``perfect_30`` error left after removing the best uniform
scaling about view A's source (the one motion of view B no epipolar constraint sees),
and for the detected junctions the matches per case and how many lie within 6 px of their
epipolar line at the true geometry. ``--exact`` uses the true geometry as the header
(do-no-harm check). Usage: ``python tools/landmark_ceiling.py CASES_DIR [--exact]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from angio_deploy.geometry import ViewGeometry
from angio_deploy.io.case import load_case
from angio_deploy.pipeline.geometry_refinement import refine_view_b
from angio_deploy.pipeline.landmarks import detect_junctions, epipolar_gate, match_junctions

PERFECT_COUNTS = (4, 30)
LANDMARK_SPREAD_MM = 15.0
CONSISTENT_PX = 6.0


def triangulate(Pa: np.ndarray, Pb: np.ndarray, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Linear (DLT) triangulation of corresponding pixels (N, 2) -> world mm (N, 3)."""
    out = []
    for (ua, va), (ub, vb) in zip(xa, xb, strict=True):
        A = np.stack(
            [ua * Pa[2] - Pa[0], va * Pa[2] - Pa[1], ub * Pb[2] - Pb[0], vb * Pb[2] - Pb[1]]
        )
        X = np.linalg.svd(A)[2][-1]
        out.append(X[:3] / X[3])
    return np.array(out)


def case_rows(case_dir: Path, exact: bool, rng: np.random.Generator) -> dict[str, float]:
    case = load_case(case_dir)
    meta = json.loads((case_dir / "truth" / "meta.json").read_text(encoding="utf-8"))
    X = np.loadtxt(case_dir / "truth" / "centreline.csv", delimiter=",", skiprows=1)[:, 1:4]
    ga, gbt = (
        ViewGeometry.from_matrix(
            np.array(vm["true"]["projection_matrix"]), v.geometry.width, v.geometry.height
        )
        for v, vm in zip(case.views, meta["views"], strict=True)
    )
    gb = gbt if exact else case.views[1].geometry
    xa, xb = ga.project(X), gbt.project(X)
    ends_a = xa[[0, -1]] + rng.normal(0, 1.5, (2, 2))
    ends_b = xb[[0, -1]] + rng.normal(0, 1.5, (2, 2))

    def error(g: ViewGeometry) -> float:
        return float(np.mean(np.linalg.norm(triangulate(ga.P, g.P, xa, xb) - X, axis=1)))

    def refined(pa: np.ndarray, pb: np.ndarray) -> ViewGeometry:
        pts_a, pts_b = np.vstack([ends_a, pa]), np.vstack([ends_b, pb])
        return refine_view_b(ga, gb, pts_a, pts_b, [(xa, xb)]).geometry_b

    none = np.zeros((0, 2))
    row = {"header": error(gb), "soi": error(refined(none, none))}
    for k in PERFECT_COUNTS:
        L = X.mean(axis=0) + rng.normal(0, LANDMARK_SPREAD_MM, (k, 3))
        g = refined(
            ga.project(L) + rng.normal(0, 1, (k, 2)), gbt.project(L) + rng.normal(0, 1, (k, 2))
        )
        row[f"perfect_{k}"] = error(g)
    # The part of the perfect_30 error that is a uniform scaling about view A's source.
    S = np.linalg.svd(ga.P)[2][-1]
    S = S[:3] / S[3]
    u, v = (triangulate(ga.P, g.P, xa, xb) - S).ravel(), (X - S).ravel()
    s = (u @ v) / (u @ u)
    row["perfect_30_scaling_removed"] = float(
        np.mean(np.linalg.norm(S + s * (triangulate(ga.P, g.P, xa, xb) - S) - X, axis=1))
    )
    row["scaling_pct"] = 100.0 * abs(s - 1.0)
    ja = detect_junctions(case.views[0].image, xa)
    jb = detect_junctions(case.views[1].image, xb)
    matches = match_junctions(ga, gb, ja, jb)
    pa = np.array([m.point_a for m in matches]).reshape(-1, 2)
    pb = np.array([m.point_b for m in matches]).reshape(-1, 2)
    row["detected"] = error(refined(pa, pb)) if matches else row["soi"]
    row["matches"] = len(matches)
    d_true, _ = epipolar_gate(ga, gbt, pa, pb, np.zeros((6, 6)))
    row["matches_consistent"] = int((np.abs(np.diag(d_true)) < CONSISTENT_PX).sum())
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cases", type=Path)
    ap.add_argument("--exact", action="store_true", help="true geometry as the header")
    ap.add_argument("--json", type=Path, help="per-case rows")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    dirs = sorted(p.parent.parent for p in args.cases.glob("*/truth/meta.json"))
    rows = [case_rows(d, args.exact, rng) for d in dirs]
    for key in rows[0]:
        vals = np.array([r[key] for r in rows], dtype=float)
        print(
            f"{key:26s} median {np.median(vals):7.3f}  mean {vals.mean():7.3f}  "
            f"sum {vals.sum():7.1f}"
        )
    soi = np.array([r["soi"] for r in rows])
    det = np.array([r["detected"] for r in rows])
    print(
        f"detected vs soi: better by > 0.05 mm in {int((soi - det > 0.05).sum())}, "
        f"worse in {int((det - soi > 0.05).sum())} of {len(rows)} cases"
    )
    if args.json:
        args.json.write_text(
            json.dumps([{"case": d.name, **r} for d, r in zip(dirs, rows, strict=True)], indent=1)
        )


if __name__ == "__main__":
    main()
