"""tools/real_seg_bench.py: the real-image benchmark's tasks, metrics and per-split summary."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import ClassVar

import numpy as np

_PATH = Path(__file__).resolve().parents[2] / "tools" / "real_seg_bench.py"


def _tool():
    spec = importlib.util.spec_from_file_location("real_seg_bench", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _MaskSegmenter:
    """Returns a fixed full-image mask (the whole tree, or nothing) in crop space."""

    name = "mask"
    crop: ClassVar[dict[str, float]] = {
        "width": 256,
        "height": 160,
        "margin_px": 24,
        "max_scale": 2.0,
    }

    def __init__(self, mask):
        self.mask = mask.astype(np.float32)

    def segment(self, items):
        return [c.warp(self.mask) for _, c in items]

    def report(self):
        return {"segmenter": self.name}


def test_whole_tree_mask_connects_and_stays_on_the_vessel(real_seg_dir) -> None:
    tool = _tool()
    masks = {n: tool.read_plain_image(real_seg_dir / "masks" / f"{n}.png") > 0.5 for n in (1, 31)}
    res = tool.run_benchmark(real_seg_dir, _MaskSegmenter(masks[1]), tasks_per_image=4, ids=[1])
    s = res["summary"]["train"]
    assert s["tasks"] == 4 and res["summary"]["val"] == {"tasks": 0}
    # One task runs from a branch back through the junction, which lies outside the
    # SOI crop: within the crop its two ends are on different pieces of the tree.
    assert s["connected"] == 0.75 and s["path_ok"] == 1.0 and s["on_vessel"] == 1.0
    # The whole tree is more than the segment: Dice below 1 but well above chance.
    assert 0.3 < s["dice_mean"] < 1.0


def test_an_empty_segmentation_scores_zero(real_seg_dir) -> None:
    tool = _tool()
    empty = _MaskSegmenter(np.zeros((300, 300), bool))
    s = tool.run_benchmark(real_seg_dir, empty, tasks_per_image=3, ids=[31])["summary"]["val"]
    assert s["dice_mean"] == 0.0 and s["connected"] == 0.0 and s["path_ok"] == 0.0


def test_cli_writes_rows_per_task(real_seg_dir, tmp_path) -> None:
    out = tmp_path / "bench.json"
    args = [str(real_seg_dir), "--segmenter", "frangi", "--tasks-per-image", "2"]
    assert _tool().main([*args, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert {r["split"] for r in doc["tasks"]} == {"train", "val"}
    assert len(doc["tasks"]) == 4 and doc["segmenter"]["segmenter"] == "frangi"
    assert _tool().main([str(tmp_path / "nothing")]) == 66
