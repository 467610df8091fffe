"""Silhouette overlap, radius and %DS errors, and the summary, on hand-computable inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from angio_deploy import kernels
from angio_deploy.metrics import (
    dice_jaccard,
    lesion_window,
    mean_overlap,
    percent_ds,
    percent_ds_error,
    radius_errors,
    ring_radii,
    silhouette_overlap,
    summarise,
)
from angio_deploy.synth.truth import mesh_percent_ds

# Orthographic 3x4 matrix: u = x, v = y (pixels = mm), depth ignored.
P_ORTHO = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
W, H = 48, 40


def box(u0: float, v0: float, side: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """A closed axis-aligned box whose footprint is [u0, u0 + side] x [v0, v0 + side]."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    v = corners * [side, side, 5.0] + [u0, v0, 0.0]
    f = np.array(
        [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
         [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    )  # fmt: skip
    return v, f


def test_box_silhouette_against_its_own_raster_is_perfect():
    v, f = box(10.5, 10.5)  # pixel centres 11..30: 20 x 20 pixels
    mask = kernels.rasterise_silhouette(P_ORTHO, v, f, W, H)
    assert int(mask.sum()) == 400
    assert silhouette_overlap(v, f, P_ORTHO, mask) == (1.0, 1.0)


def test_shifted_box_overlap_is_hand_computed():
    mask = kernels.rasterise_silhouette(P_ORTHO, *box(10.5, 10.5), W, H)
    v, f = box(15.5, 10.5)  # 5 px to the right: overlap 15 x 20 = 300 of 400 + 400
    dice, jac = silhouette_overlap(v, f, P_ORTHO, mask)
    assert dice == pytest.approx(2 * 300 / 800)
    assert jac == pytest.approx(300 / 500)
    both = mean_overlap(v, f, [(P_ORTHO, mask), (P_ORTHO, np.asarray(mask))])
    assert both["Dice"] == pytest.approx(0.75) and both["dice"] == [dice, dice]


def test_dice_of_empty_images_is_undefined():
    z = np.zeros((4, 4), np.uint8)
    assert all(math.isnan(x) for x in dice_jaccard(z, z))
    one = z.copy()
    one[0, 0] = 1
    assert dice_jaccard(one, z) == (0.0, 0.0)


def test_radius_errors_signed_and_absolute():
    true = np.full(100, 1.5)
    pred = true + np.where(np.arange(100) < 50, 0.2, -0.1)  # half +0.2, half -0.1
    e = radius_errors(pred, true)
    assert e["radius_mae"] == pytest.approx(0.15)
    assert e["radius_bias"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="ring count"):
        radius_errors(pred[:99], true)


def stenosed_tube(ds_percent: float, ref: float = 1.6) -> tuple[np.ndarray, np.ndarray]:
    """Straight 40 mm tube, reference radius ``ref`` narrowed by ``ds_percent`` at ring 40."""
    k = np.arange(100)
    radii = ref * (1.0 - ds_percent / 100.0 * np.exp(-(((k - 40) / 6.0) ** 2)))
    z = np.linspace(0.0, 40.0, 100)
    centres = np.stack([np.sin(z / 10), np.zeros_like(z), z], axis=1)
    return kernels.tube_mesh(centres, radii)[0], radii


def test_ring_radii_recover_the_tube_radii_and_match_the_truth_measurement():
    v, radii = stenosed_tube(60.0)
    np.testing.assert_allclose(ring_radii(v), radii, rtol=1e-12)
    ref = np.full(100, 1.6)
    np.testing.assert_allclose(percent_ds(ring_radii(v), ref), mesh_percent_ds(v, ref), atol=1e-9)


def test_percent_ds_error_on_known_stenoses():
    ref = np.full(100, 1.6)
    true_v, _ = stenosed_tube(60.0)
    pred_v, _ = stenosed_tube(45.0)
    window = lesion_window(100, 40.0, position_mm=40 * 40 / 99, length_mm=8.0)
    # Ring spacing 40 / 99 mm: rings 31..49 lie within 4 mm of ring 40.
    assert np.array_equal(np.flatnonzero(window), np.arange(31, 50))
    e = percent_ds_error(ring_radii(pred_v), ring_radii(true_v), ref, window)
    assert e["DS_true"] == pytest.approx(60.0)
    assert e["DS_pred"] == pytest.approx(45.0)
    assert e["DS_error"] == pytest.approx(-15.0)


def test_lesion_window_never_empty():
    w = lesion_window(100, 40.0, position_mm=10.1, length_mm=0.01)
    assert w.sum() == 1 and w[round(10.1 * 99 / 40)]


def test_summarise_skips_nans_per_metric_with_counts():
    rows = [
        {"case": "a", "MAE": 1.0, "DS_error": float("nan"), "dice": [0.9, 0.8]},
        {"case": "b", "MAE": 2.0, "DS_error": 4.0},
        {"case": "c", "MAE": 3.0, "DS_error": -2.0},
        {"case": "d", "MAE": 10.0},
        {"case": "e", "MAE": 4.0, "Only_nan": float("nan")},
    ]
    s = summarise(rows)
    assert set(s) == {"MAE", "DS_error", "Only_nan"}
    assert s["MAE"] == {
        "mean": 4.0,
        "median": 3.0,
        "p95": pytest.approx(10.0 - 0.2 * 6.0),  # linear: 4 + 0.8 * (10 - 4)
        "sd": pytest.approx(np.std([1, 2, 3, 10, 4], ddof=1)),
        "n": 5,
        "skipped": 0,
    }
    assert s["DS_error"]["mean"] == 1.0 and s["DS_error"]["median"] == 1.0
    assert s["DS_error"]["n"] == 2 and s["DS_error"]["skipped"] == 3
    assert math.isnan(s["Only_nan"]["mean"]) and s["Only_nan"]["n"] == 0
