"""tools/edge_convention.py: half-depth widths of an image profile and the per-task widths
and Dice variants, on a drawn vessel whose widths are known."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from scipy import ndimage

_PATH = Path(__file__).resolve().parents[2] / "tools" / "edge_convention.py"


def _tool():
    spec = importlib.util.spec_from_file_location("edge_convention", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _MaskSegmenter:
    """A fixed full-image mask as the probability (crop space)."""

    name = "mask"
    width_level = 0.5
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


def _band(half_width: float, shape=(200, 300), y0=100.0) -> np.ndarray:
    """A horizontal vessel band |y - y0| <= half_width (image px)."""
    y = np.arange(shape[0])[:, None] + np.zeros(shape[1])[None, :]
    return np.abs(y - y0) <= half_width


def test_half_depth_width_of_a_box_profile_is_its_width():
    tool = _tool()
    img = np.ones((80, 120))
    img[30:41, :] = 0.2  # rows 30..40: 11 px dark box, edges half-way between rows
    img = ndimage.gaussian_filter(img, 1.0)  # blur keeps the half-depth points of a wide box
    pts = np.column_stack([np.arange(20.0, 100.0), np.full(80, 35.0)])
    nrm = np.tile([0.0, 1.0], (80, 1))
    w = tool.half_depth_widths(img, pts, nrm, np.full(80, 11.0))
    assert np.allclose(w, 11.0, atol=0.3)


def test_half_depth_width_is_nan_without_a_dip():
    tool = _tool()
    pts = np.array([[40.0, 40.0]])
    w = tool.half_depth_widths(np.ones((80, 80)), pts, np.array([[0.0, 1.0]]), np.array([6.0]))
    assert np.isnan(w).all()


def test_task_widths_and_dice_variants_see_a_network_that_runs_wide():
    tool = _tool()
    truth = _band(3.0)  # 7 px wide
    image = np.where(truth, 0.3, 0.8).astype(np.float32)
    image = ndimage.gaussian_filter(image, 0.7)
    wide = _band(5.0)  # the "network" paints 11 px
    start, end = np.array([60.0, 100.0]), np.array([240.0, 100.0])
    row = tool.measure_task(_MaskSegmenter(wide), image, start, end, truth)
    s = tool.summarise([row])
    # Crop px: a 2x crop doubles widths; ratios are scale-free.
    assert s["network_over_mask"] == pytest.approx(11.0 / 7.0, rel=0.08)
    assert s["half_depth_over_mask"] == pytest.approx(1.0, abs=0.12)
    assert s["network_minus_mask_crop_px"] == pytest.approx(4.0 * row["scale"], rel=0.15)
    # Eroding the wide mask (it runs 2 image px wide) brings it closer; on the pixel grid
    # 0.5 and 1 image px may take off the same rim.
    assert row["dice_eroded_1px"] >= row["dice_eroded_0.5px"] > row["dice"] + 0.02
    assert row["dice"] == pytest.approx(2 * 7 / 18, abs=0.05)
    # The truth grown by 1 px on each side: 2 * 7 / (7 + 9).
    assert row["dice_truth_grown_1px"] == pytest.approx(2 * 7 / 16, abs=0.04)
    assert row["dice_truth_shrunk_1px"] == pytest.approx(2 * 5 / 12, abs=0.05)


def test_a_task_without_a_path_keeps_its_dice_and_has_no_widths():
    tool = _tool()
    truth = _band(3.0)
    image = np.full(truth.shape, 0.8, dtype=np.float32)
    start, end = np.array([60.0, 100.0]), np.array([240.0, 100.0])
    row = tool.measure_task(_MaskSegmenter(np.zeros_like(truth)), image, start, end, truth)
    assert "w_net" not in row
    assert row["dice"] == 0.0
    s = tool.summarise([row])
    assert s["tasks"] == 1 and "points" not in s
