"""Mesh initialisation with a perfect segmentation: what the geometry stages achieve.

    python tools/oracle_mi.py [--count 8] [--first-seed 2000000]

Generates test-split cases in memory, segments each view with its truth mask
(OracleSegmenter), and reports vertex MAE (mm, METRICS.md) per case for three geometries:
the DICOM headers as read, the headers after view-B refinement, and the true geometry
(truth/meta.json). The gap between the last two is the part of the header error that the
refinement does not undo (docs/DATASET.md, "Header error").
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from angio_deploy.errors import AngioDeployError
from angio_deploy.evaluate import with_true_geometry
from angio_deploy.io.case import load_case
from angio_deploy.io.mesh_io import read_ply
from angio_deploy.pipeline.mi import mesh_initialisation
from angio_deploy.pipeline.segmenters import OracleSegmenter
from angio_deploy.synth.engine import GENERATOR_VERSION, generate_case, write_case

MODES = ("header", "header+refine", "true geometry")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--first-seed", type=int, default=2_000_000)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.count):
            d = write_case(generate_case(seed), Path(tmp) / f"case_{seed}")
            masks = {k: np.asarray(Image.open(d / "truth" / f"mask_{k}.png")) > 0 for k in "ab"}
            truth, _, _ = read_ply(d / "truth" / "mesh.ply")
            case = load_case(d)
            row = []
            for mode in MODES:
                c = with_true_geometry(case) if mode == "true geometry" else case
                try:
                    res = mesh_initialisation(
                        c, OracleSegmenter(masks), geometry_refinement=mode == "header+refine"
                    )
                    row.append(float(np.linalg.norm(res.vertices - truth, axis=1).mean()))
                except AngioDeployError:
                    row.append(float("nan"))
            rows.append(row)
            print(f"{seed}: " + "  ".join(f"{m} {v:.3f}" for m, v in zip(MODES, row, strict=True)))
    arr = np.array(rows)
    print(f"\ngenerator version {GENERATOR_VERSION}; vertex MAE (mm), oracle segmentation")
    print("| geometry | median | mean |\n|---|---:|---:|")
    for k, m in enumerate(MODES):
        print(f"| {m} | {np.nanmedian(arr[:, k]):.3f} | {np.nanmean(arr[:, k]):.3f} |")


if __name__ == "__main__":
    main()
