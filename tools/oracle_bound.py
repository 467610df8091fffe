"""What a perfect segmentation would score, on the full METRICS.md, case folders with truth.

    python tools/oracle_bound.py data_cache/test500 --limit 100 --json docs/results/oracle_mi.json
        [--true-geometry] [--no-refine-geometry]

Every case is reconstructed exactly as ``angio-deploy evaluate --no-surface-refinement`` does (DICOM
headers, view-B geometry refinement, mesh initialisation), except that each view is
segmented by its truth mask (``OracleSegmenter``), and scored with
:func:`angio_deploy.metrics.evaluate_case`. The JSON has the shape of ``angio-deploy
evaluate --json`` (``tools/results_report.py`` reads it).

Why: it bounds what any image-driven refinement can reach. A surface refinement that read
the images perfectly could at best make the mesh reproject onto the true masks in the
geometry the pipeline works in, which is what this reconstruction does already (up to
its circular cross-sections); what remains is the calibration error no image shows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from angio_deploy.api import Reconstructor
from angio_deploy.errors import AngioDeployError
from angio_deploy.evaluate import find_cases, with_true_geometry
from angio_deploy.io.case import load_case
from angio_deploy.metrics import evaluate_case, summarise
from angio_deploy.pipeline.segmenters import OracleSegmenter


def oracle_row(
    case_dir: Path, out_dir: Path, *, true_geometry: bool, refine_geometry: bool
) -> dict:
    row: dict = {"case": case_dir.name}
    try:
        case = load_case(case_dir)
        if true_geometry:
            case = with_true_geometry(case)
        masks = {
            v.name: np.asarray(Image.open(case_dir / "truth" / f"mask_{v.name}.png")) > 0
            for v in case.views
        }
        rec = Reconstructor(OracleSegmenter(masks), surface=False)
        result = rec.reconstruct(case, refine_geometry=refine_geometry, refine_surface=False)
        result.write(out_dir)
        row.update(evaluate_case(out_dir, case_dir / "truth"))
        row["case"] = case_dir.name
    except (AngioDeployError, OSError) as exc:  # OSError: a case folder missing a mask
        row["error"] = str(exc)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cases", type=Path)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--true-geometry", action="store_true")
    ap.add_argument("--no-refine-geometry", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    cases = find_cases(args.cases)[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        for k, d in enumerate(cases):
            rows.append(
                oracle_row(
                    d,
                    Path(tmp) / f"{k:05d}_{d.name}",
                    true_geometry=args.true_geometry,
                    refine_geometry=not args.no_refine_geometry,
                )
            )
            r = rows[-1]
            print(f"{k + 1}/{len(cases)} {d.name} " + (r.get("error") or f"HD {r['HD']:.3f}"))
    doc = {
        "cases": rows,
        "summary": summarise(rows),
        "n_cases": len(rows),
        "failed": sum("error" in r for r in rows),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
