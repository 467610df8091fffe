"""Calibrate the probability level at which lumen widths are measured, on the val split.

    python tools/calibrate_width_level.py [--models-dir DIR] [--count 100] [--write]

A segmenter trained with BCE + Dice need not put the lumen edge at probability 0.5: its
edges can run wide or narrow, which biases every radius. For validation cases (seeds
1000000.., never the test split) this runs mesh initialisation with the TRUE geometry (so
calibration error does not mix in) at several levels and reports the mean signed radius
error (mm, ring by ring against the truth mesh) per level; the level where it crosses
zero (linear interpolation) is the calibrated one. ``--write`` stores it as
``width_level`` in the segmenter's manifest entry, which the runtime reads.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from angio_deploy.errors import AngioDeployError
from angio_deploy.evaluate import with_true_geometry
from angio_deploy.io.case import load_case
from angio_deploy.io.mesh_io import read_ply
from angio_deploy.pipeline.mi import mesh_initialisation
from angio_deploy.pipeline.segmenters import OnnxSegmenter
from angio_deploy.pipeline.sr import ring_summary
from angio_deploy.synth.engine import generate_case, write_case

LEVELS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class _Cached:
    """The network's probabilities computed once per case, at any width level."""

    def __init__(self, seg: OnnxSegmenter):
        self.seg, self.name, self.crop = seg, seg.name, seg.crop
        self.width_level = 0.5
        self.probs = None

    def segment(self, items):
        if self.probs is None:
            self.probs = self.seg.segment(items)
        return self.probs

    def report(self):
        return self.seg.report()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--first-seed", type=int, default=1_000_000)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--write", action="store_true", help="store the level in the manifest")
    args = ap.parse_args()
    seg = OnnxSegmenter(folder=args.models_dir)
    bias = {lv: [] for lv in LEVELS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.count):
            d = write_case(generate_case(seed), Path(tmp) / f"case_{seed}")
            case = with_true_geometry(load_case(d))
            truth, _, _ = read_ply(d / "truth" / "mesh.ply")
            _, r_true = ring_summary(truth)
            cached = _Cached(seg)
            row = {}
            try:
                for lv in LEVELS:
                    cached.width_level = lv
                    res = mesh_initialisation(case, cached, geometry_refinement=False)
                    row[lv] = float(np.mean(res.radius_mm - r_true))
            except AngioDeployError:
                continue  # a case that fails at any level is left out at every level
            for lv in LEVELS:
                bias[lv].append(row[lv])
    means = np.array([np.mean(bias[lv]) for lv in LEVELS])
    print(f"{len(bias[LEVELS[0]])} validation cases (true geometry)")
    print("| width level | mean radius error mm | median |\n|---:|---:|---:|")
    for lv, m in zip(LEVELS, means, strict=True):
        print(f"| {lv:.1f} | {m:+.3f} | {np.median(bias[lv]):+.3f} |")
    # Radius falls as the level rises: find the zero crossing.
    order = np.argsort(means)
    level = float(np.interp(0.0, means[order], np.array(LEVELS)[order]))
    level = float(np.clip(level, min(LEVELS), max(LEVELS)))
    print(f"calibrated width level: {level:.3f}")
    if args.write:
        from angio_deploy.models import load_manifest, register_model

        entry = load_manifest(args.models_dir).get("segmenter")
        extra = {**entry.extra, "width_level": round(level, 3)}
        register_model(entry.path, name=entry.name, role=entry.role, **extra)
        print(f"wrote width_level {level:.3f} to {entry.folder / 'manifest.json'}")


if __name__ == "__main__":
    main()
