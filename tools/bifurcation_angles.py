"""The bifurcation angle error per case from results already written (issue 13).

For every case folder of CASES_DIR with ``truth/side_0.ply`` and a result under OUT_ROOT
(``OUT_ROOT/CASE/mesh.ply``, ``branch_1.ply``, ``report.json``, as ``angio-deploy
evaluate --out-root`` writes them), the angle of the first side branch, predicted minus
true, with :func:`angio_deploy.pipeline.branches.bifurcation_angle_deg` on the ring
centres of both (evaluate's definition), at each chord length asked for; and the angle's
confidence as the product reports it (:func:`~angio_deploy.pipeline.branches.
angle_confidence`, from the geometry the result used, its radii and its attaching
distance). The meshes are the same whatever the chord, so this compares angle
definitions on one set of reconstructions without running the pipeline again.

Usage: ``python tools/bifurcation_angles.py OUT_ROOT CASES_DIR [--distances 5 10]``.
Prints one line per case (worst first at the last distance) and mean / SD / median over
all cases and over those not flagged low confidence.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from angio_deploy.curves import arc_lengths
from angio_deploy.io.mesh_io import read_ply
from angio_deploy.metrics.case import ring_centres
from angio_deploy.pipeline.branches import (
    angle_confidence,
    bifurcation_angle_deg,
    bifurcation_directions,
    nearest_on_polyline,
)
from angio_deploy.topology import N_AROUND


def _rings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Ring centres (R, 3) mm and mean ring radii (R,) mm of a ring mesh."""
    v = read_ply(path)[0].reshape(-1, N_AROUND, 3)
    c = v.mean(axis=1)
    return c, np.linalg.norm(v - c[:, None], axis=2).mean(axis=1)


def case_row(out: Path, truth: Path, distances: list[float]) -> dict[str, object]:
    """Errors (degrees) at each chord length and the confidence at the last one."""
    main_p, r_main = _rings(out / "mesh.ply")
    side_p, r_side = _rings(out / "branch_1.ply")
    main_t = ring_centres(read_ply(truth / "mesh.ply")[0])
    side_t = ring_centres(read_ply(truth / "side_0.ply")[0])
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    matrices = tuple(np.array(v["geometry_used"]["projection_matrix"]) for v in report["views"])
    bif = report["qca"]["bifurcations"][0]
    errors = [
        bifurcation_angle_deg(main_p, side_p, distance_mm=d)
        - bifurcation_angle_deg(main_t, side_t, distance_mm=d)
        for d in distances
    ]
    _, s_j, _ = nearest_on_polyline(main_p, side_p[0])
    k_out = min(int(bif["attachment"]["rings_inside_main"]), len(r_side) - 1)
    conf = angle_confidence(
        bifurcation_directions(main_p, side_p, distance_mm=distances[-1]),
        matrices,  # type: ignore[arg-type]
        main_radius_mm=float(np.interp(s_j, arc_lengths(main_p), r_main)),
        side_radius_mm=float(r_side[k_out]),
        attach_distance_mm=float(bif["attachment"]["distance_mm"]),
    )
    return {"errors": errors, **conf}


def _stats(e: np.ndarray) -> str:
    if len(e) < 2:
        return f"n={len(e)}"
    return (
        f"n={len(e)} mean {e.mean():+.2f} SD {e.std(ddof=1):.2f} median {np.median(e):+.2f}"
        f" |max| {np.abs(e).max():.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_root", type=Path)
    ap.add_argument("cases_dir", type=Path)
    ap.add_argument("--distances", type=float, nargs="+", default=[5.0, 10.0])
    args = ap.parse_args()
    rows = []
    for case in sorted(p for p in args.cases_dir.iterdir() if (p / "truth/side_0.ply").exists()):
        out = args.out_root / case.name
        if (out / "branch_1.ply").exists() and (out / "report.json").exists():
            rows.append((case.name, case_row(out, case / "truth", args.distances)))
    head = " ".join(f"err@{d:g}mm" for d in args.distances)
    print(f"case           {head}  sigma  low-confidence reasons")
    for name, r in sorted(rows, key=lambda x: -abs(x[1]["errors"][-1])):  # type: ignore[index]
        errs = " ".join(f"{e:+9.1f}" for e in r["errors"])  # type: ignore[union-attr]
        print(f"{name:14s} {errs} {r['angle_sigma_deg']:6.1f}  {'; '.join(r['reasons'])}")
    errors = np.array([r["errors"] for _, r in rows], dtype=np.float64)
    low = np.array([r["low_confidence"] for _, r in rows], dtype=bool)
    for k, d in enumerate(args.distances):
        print(f"chord {d:g} mm, all:       {_stats(errors[:, k])}")
        print(f"chord {d:g} mm, confident: {_stats(errors[~low, k])} ({int(low.sum())} flagged)")


if __name__ == "__main__":
    main()
