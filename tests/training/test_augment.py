from __future__ import annotations

import numpy as np
import pytest
from training.segmenter.augment import (
    AugmentParams,
    CropParams,
    intensity_augment,
    jitter_points,
    make_sample,
    warp_region,
)

from angio_deploy.pipeline.crop import SoiCrop


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ((100.0, 200.0), (400.0, 300.0)),  # long: scale < 0.8, pre-smoothed
        ((200.0, 250.0), (260.0, 230.0)),  # short: magnified
        ((5.0, 10.0), (500.0, 505.0)),  # corner to corner: crop leaves the image
    ],
)
def test_warp_region_matches_full_image_warp(start, end):
    rng = np.random.default_rng(0)
    img = rng.random((512, 512)).astype(np.float32)
    crop = SoiCrop.from_points(np.array(start), np.array(end))
    np.testing.assert_allclose(warp_region(crop, img), crop.warp(img), atol=1e-6)
    stored = (img * 4095).astype(np.uint16)
    np.testing.assert_allclose(
        warp_region(crop, stored, 1 / 4095),
        crop.warp(stored.astype(np.float32) / 4095),
        atol=1e-6,
    )


def test_crop_entirely_outside_gives_zeros():
    crop = SoiCrop.from_points(np.array([2000.0, 2000.0]), np.array([2100.0, 2000.0]))
    assert not warp_region(crop, np.ones((64, 64), np.float32)).any()


def test_jitter_is_bounded():
    p = AugmentParams()
    rng = np.random.default_rng(1)
    s0, e0 = np.array([10.0, 20.0]), np.array([200.0, 40.0])
    for _ in range(200):
        s, e = jitter_points(s0, e0, rng, p)
        assert np.abs(s - s0).max() <= p.jitter_max_px
        assert np.abs(e - e0).max() <= p.jitter_max_px


def test_intensity_augment_keeps_dark_vessel_dark():
    x = np.full((32, 64), 0.7, np.float32)
    x[14:18] = 0.2
    rng = np.random.default_rng(2)
    for _ in range(20):
        y = intensity_augment(x, rng, AugmentParams())
        assert y.dtype == np.float32 and y.shape == x.shape
        assert y[14:18].mean() < y[:8].mean()  # no inversion


def test_make_sample_without_augmentation_is_the_runtime_crop():
    from angio_deploy.pipeline.crop import normalise_crop

    rng = np.random.default_rng(3)
    stored = (rng.random((300, 400)) * 255).astype(np.uint16)
    mask = np.zeros((300, 400), np.uint8)
    mask[148:153, 50:350] = 1
    s, e = np.array([60.0, 150.0]), np.array([340.0, 150.0])
    cp = CropParams(width=128, height=64)
    x, y = make_sample(stored, 8, mask, s, e, cp)
    crop = cp.make(s, e)
    np.testing.assert_allclose(x, normalise_crop(crop.warp(stored / 255.0)), atol=1e-5)
    assert y.dtype == np.uint8 and set(np.unique(y)) <= {0, 1}
    rows = np.flatnonzero(y.any(axis=1))
    assert abs(rows.mean() - (64 - 1) / 2) < 2
