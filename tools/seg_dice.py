"""Segmentation Dice of the runtime segmenter on synthetic case folders (docs/RESULTS.md).

    python tools/seg_dice.py data_cache/test500 [--models-dir DIR] [--segmenter network]
        [--limit N] [--json OUT.json]

For every view of every case folder (written by ``angio-deploy synth``): the view is read
from its DICOM file and cropped around the case's clicked SOI points exactly as
``angio-deploy run`` does, segmented through the runtime (ONNX Runtime, no torch), and the
probability >= 0.5 compared with the main segment's own lumen mask (re-rendered from the
case's seed with the true geometry, the target the network was trained on; the written
truth/mask_*.png also holds the side branches) warped into the same crop. Dice per view,
in crop pixels; summary over views: mean, median, 10th and 5th percentile, minimum.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from angio_deploy.evaluate import find_cases
from angio_deploy.io.case import load_case
from angio_deploy.pipeline.crop import SoiCrop
from angio_deploy.pipeline.segmenters import FrangiSegmenter, OnnxSegmenter
from angio_deploy.synth.engine import GENERATOR_VERSION, generate_case
from angio_deploy.synth.truth import lumen_mask, segment_slice


def main_masks(case_dir: Path) -> list[np.ndarray]:
    """The main SOI's lumen mask (H, W) bool per view, from the case's seed."""
    meta = json.loads((case_dir / "truth" / "meta.json").read_text(encoding="utf-8"))
    if str(meta["generator_version"]) != GENERATOR_VERSION:
        raise SystemExit(
            f"{case_dir}: generator version {meta['generator_version']} != {GENERATOR_VERSION}"
        )
    gen = generate_case(int(meta["seed"]))
    a = gen.anatomy
    piece = segment_slice(a.vessels[a.soi.vessel], a.soi.s_start_mm, a.soi.s_end_mm)
    return [lumen_mask(spec.true, [piece]) > 0 for spec in gen.views]


def dice(p: np.ndarray, t: np.ndarray) -> float:
    denom = int(p.sum()) + int(t.sum())
    return 2.0 * float((p & t).sum()) / denom if denom else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cases_dir")
    ap.add_argument("--models-dir", default=None, help="model folder (default: the shipped models)")
    ap.add_argument("--segmenter", choices=("network", "frangi"), default="network")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None, help="write per-view rows and the summary here")
    args = ap.parse_args()

    seg = (
        OnnxSegmenter(folder=args.models_dir) if args.segmenter == "network" else FrangiSegmenter()
    )
    rows = []
    t0 = time.perf_counter()
    cases = find_cases(args.cases_dir)[: args.limit]
    for k, case_dir in enumerate(cases):
        case = load_case(case_dir)
        masks = main_masks(case_dir)
        crops = [SoiCrop.from_config(v.soi.start, v.soi.end, seg.crop) for v in case.views]
        probs = seg.segment(list(zip(case.views, crops, strict=True)))
        for v, crop, prob, m in zip(case.views, crops, probs, masks, strict=True):
            truth = crop.warp(m.astype(np.float32)) > 0.5
            rows.append({"case": case_dir.name, "view": v.name, "dice": dice(prob >= 0.5, truth)})
        if (k + 1) % 50 == 0:
            print(f"{k + 1}/{len(cases)} cases", file=sys.stderr)
    d = np.array([r["dice"] for r in rows])
    summary = {
        "views": len(d),
        "cases": len(cases),
        "mean": float(d.mean()),
        "median": float(np.median(d)),
        "p10": float(np.percentile(d, 10)),
        "p5": float(np.percentile(d, 5)),
        "min": float(d.min()),
        "share_ge_0.9": float(np.mean(d >= 0.9)),
        "seconds": round(time.perf_counter() - t0, 1),
        "segmenter": seg.report(),
    }
    worst = sorted(rows, key=lambda r: r["dice"])[:10]
    print(json.dumps(summary, indent=1, default=str))
    print("worst views:", ", ".join(f"{r['case']}/{r['view']} {r['dice']:.3f}" for r in worst))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"summary": summary, "views": rows}, indent=1, default=str)
        )


if __name__ == "__main__":
    main()
