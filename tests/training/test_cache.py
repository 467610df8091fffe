from __future__ import annotations

import json

import numpy as np
import pytest
from training.segmenter.cache import SegCache, build_cache

from .conftest import TRAIN_SEEDS


def test_cache_layout_and_views(seg_data):
    from angio_deploy.synth.engine import generate_case

    cache = SegCache(seg_data / "train")
    assert cache.meta["source"] == "seeds"
    assert cache.meta["seeds"] == [[0, 2], [3, 4]]
    assert cache.n_views == 2 * len(TRAIN_SEEDS)
    assert sorted(p.name for p in cache.path.iterdir()) == [
        "images.bin",
        "masks.bin",
        "meta.json",
        "tables.npz",
    ]
    t = cache.tables
    case = generate_case(0, size=512)
    for k in range(2):
        stored, bits = cache.view_stored(k)
        assert stored.dtype == np.uint16
        np.testing.assert_array_equal(stored, case.stored[k])
        assert bits == case.bits_stored[k]
        img = cache.view_image(k)
        assert img.dtype == np.float32
        assert img.min() >= 0.0 and img.max() <= 1.0
    assert bool(t["view_has_side"][0]) == bool(case.side_points)


def test_main_mask_is_main_only_and_side_samples_have_their_own(seg_data):
    from angio_deploy.synth.engine import generate_case

    cache = SegCache(seg_data / "train")
    case = generate_case(0, size=512)
    assert case.side_points, "seed 0 is expected to have a side branch"
    t = cache.tables
    rows = np.flatnonzero(t["sample_view"] < 2)  # the samples of seed 0
    main = [r for r in rows if t["sample_segment"][r] == 0]
    side = [r for r in rows if t["sample_segment"][r] > 0]
    assert len(main) == 2 and len(side) == 2 * len(case.side_points)
    for r in main:
        k = int(t["sample_view"][r])
        m = cache.sample_mask(r)
        union = case.masks[k].astype(bool)
        assert m.shape == union.shape and m.dtype == np.uint8
        assert m.sum() > 100
        assert not (m.astype(bool) & ~union).any()  # inside the truth union
        start, end = cache.sample_points(r)
        np.testing.assert_allclose(start, case.soi_points[k]["start"], atol=1e-4)
        np.testing.assert_allclose(end, case.soi_points[k]["end"], atol=1e-4)
    # main + side masks together give the engine's truth mask
    for k in range(2):
        acc = np.zeros_like(case.masks[k], dtype=bool)
        for r in rows:
            if t["sample_view"][r] == k:
                acc |= cache.sample_mask(r).astype(bool)
        np.testing.assert_array_equal(acc, case.masks[k].astype(bool))
    assert not t["sample_union"].any()


def test_case_folder_route(tmp_path):
    from angio_deploy.synth.engine import generate_case, write_case

    case = generate_case(0, size=512)
    write_case(case, tmp_path / "cases" / case.case_id)
    out = build_cache(tmp_path / "c", case_dirs=[tmp_path / "cases" / case.case_id], workers=1)
    cache = SegCache(out)
    assert cache.meta["source"] == "case_folders"
    assert cache.n_samples == 2
    t = cache.tables
    assert t["sample_union"].all()  # seed 0 has a side branch: truth masks are unions
    for k in range(2):
        ref = case.stored[k] / ((1 << case.bits_stored[k]) - 1)
        np.testing.assert_allclose(cache.view_image(k), ref, atol=1e-4)
        np.testing.assert_array_equal(cache.sample_mask(k), case.masks[k])

    from training.segmenter.dataset import SegDataset

    assert len(SegDataset(cache)) == 0
    assert len(SegDataset(cache, allow_union=True)) == 2


@pytest.mark.slow
def test_parallel_build_is_identical(seg_data, tmp_path):
    out = build_cache(tmp_path / "par", seeds=TRAIN_SEEDS, size=512, workers=2)
    for name in ("images.bin", "masks.bin"):
        assert (out / name).read_bytes() == (seg_data / "train" / name).read_bytes()
    a = np.load(out / "tables.npz", allow_pickle=False)
    b = np.load(seg_data / "train" / "tables.npz", allow_pickle=False)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["n_samples"] == SegCache(seg_data / "train").n_samples


def test_build_refuses_to_overwrite(seg_data):
    with pytest.raises(FileExistsError):
        build_cache(seg_data / "train", seeds=[5], size=512, workers=1)
