from __future__ import annotations

import dataclasses

import numpy as np
import torch
from training.segmenter.augment import AugmentParams, CropParams
from training.segmenter.dataset import EpochBatchSampler, SegDataset


def test_sample_shapes_and_dtypes(seg_data):
    ds = SegDataset(seg_data / "train", augment=AugmentParams())
    x, y = ds[(0, 0)]
    assert x.shape == (1, 160, 256) and x.dtype == torch.float32
    assert y.shape == (1, 160, 256) and y.dtype == torch.float32
    assert set(torch.unique(y).tolist()) <= {0.0, 1.0}
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3  # normalise_crop
    small = SegDataset(seg_data / "train", crop=CropParams(width=128, height=64))
    assert small[0][0].shape == (1, 64, 128)


def test_validation_masks_lie_along_the_midline(seg_data):
    ds = SegDataset(seg_data / "val", augment=None, segments="main")
    assert len(ds) == 4  # 2 cases x 2 views
    H, W = 160, 256
    for i in range(len(ds)):
        _, y = ds[i]
        m = y[0].numpy().astype(bool)
        assert m.sum() > 200
        rows, cols = np.nonzero(m)
        # the SOI runs from the start (left margin) to the end (right margin)
        assert cols.min() < 40 and cols.max() > W - 40
        # both ends sit on the mid-line: mask pixels near the click points
        for c in (24, W - 1 - 24):
            near = m[:, c - 3 : c + 4].any(axis=1)
            assert near.any()
            assert abs(np.flatnonzero(near).mean() - (H - 1) / 2) < 12
        # most of the vessel stays in the middle half of the crop's height
        assert (np.abs(rows - (H - 1) / 2) < H / 4).mean() > 0.6


def test_augmentation_is_keyed_by_epoch_and_index(seg_data):
    ds = SegDataset(seg_data / "train", augment=AugmentParams(), seed=7)
    a, ya = ds[(1, 3)]
    b, yb = ds[(1, 3)]
    assert torch.equal(a, b) and torch.equal(ya, yb)
    c, _ = ds[(1, 4)]
    assert not torch.equal(a, c)
    v = SegDataset(seg_data / "train", augment=None)
    assert torch.equal(v[(1, 3)][0], v[(1, 4)][0])  # no augmentation: epoch-free


def test_segments_selection(seg_data):
    all_ = SegDataset(seg_data / "train", segments="all")
    main = SegDataset(seg_data / "train", segments="main")
    assert len(main) == 6 and len(all_) > len(main)
    assert all(main.segment_of(i) == 0 for i in range(len(main)))


def test_batch_sampler_resumes_mid_epoch():
    full = list(EpochBatchSampler(23, 4, seed=1, epoch=2))
    assert len(full) == 5 and all(len(b) == 4 for b in full)
    assert {e for b in full for _, e in b} == {2}
    assert list(EpochBatchSampler(23, 4, seed=1, epoch=2, start_batch=3)) == full[3:]
    assert full != list(EpochBatchSampler(23, 4, seed=1, epoch=3))


def test_real_cache_mixes_with_synthetic_and_repeats_draw_new_augmentations(
    seg_data, real_seg_dir, tmp_path
) -> None:
    from training.segmenter.augment import AugmentParams, CropParams
    from training.segmenter.cache import SegCache, build_cache
    from training.segmenter.dataset import MixedDataset, SegDataset

    real = build_cache(tmp_path / "real", real=(real_seg_dir, [1], 5))
    cache = SegCache(real)
    assert cache.meta["source"] == "real" and cache.n_samples == 5 and cache.n_views == 1
    crop = CropParams(128, 64)
    aug = AugmentParams(lowres_prob=1.0, invert_prob=0.0)
    synth = SegDataset(seg_data / "train", crop=crop, augment=aug)
    real_ds = SegDataset(cache, crop=crop, augment=aug, seed=1)
    mix = MixedDataset([(synth, 1), (real_ds, 3)])
    assert len(mix) == len(synth) + 3 * 5
    a, _ = mix[(len(synth), 0)]
    b, _ = mix[(len(synth) + 5, 0)]  # the same real sample, second repeat
    assert a.shape == (1, 64, 128) and not torch.equal(a, b)
    assert torch.equal(mix[(len(synth), 0)][0], a)  # keyed, not random
    # Its mask is the task's truth warped into the crop: the SOI on the mid-line.
    _, y = mix[(len(synth), 0)]
    assert y[0, 32].sum() >= 10  # the crop is scaled to the task: a good share of its width


def test_inversion_and_lowres_augmentations() -> None:
    from training.segmenter.augment import AugmentParams, intensity_augment

    x = np.full((64, 128), 0.8, np.float32)
    x[30:34] = 0.2
    p = AugmentParams(gamma=(1, 1), contrast=(1, 1), noise_sd=(0, 0), blur_prob=0.0)
    rng = np.random.default_rng(0)
    inv = intensity_augment(x, rng, dataclasses.replace(p, invert_prob=1.0))
    assert inv[32].mean() > inv[0].mean()  # vessels bright
    low = intensity_augment(
        x, rng, dataclasses.replace(p, lowres_prob=1.0, lowres_factor=(0.5, 0.5))
    )
    assert low.shape == x.shape and low[29].mean() < 0.8  # edges spread
    same = intensity_augment(x, np.random.default_rng(0), p)
    np.testing.assert_allclose(same, x, atol=1e-6)
