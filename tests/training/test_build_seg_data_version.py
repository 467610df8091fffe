"""The segmenter cache builds from either generator version and records which."""

from __future__ import annotations

import json

import numpy as np
import pytest
from training.build_seg_data import main
from training.segmenter.cache import SegCache, build_cache


def _meta(path):
    return json.loads((path / "meta.json").read_text())


def test_v2_cache_holds_v2_pixels_and_says_so(tmp_path):
    from angio_deploy.synth.engine import generate_case

    out = tmp_path / "v2"
    rc = main(
        [
            "--out",
            str(out),
            "--train-seeds",
            "0:1",
            "--val-seeds",
            "1000000:1000001",
            "--workers",
            "1",
            "--generator-version",
            "2",
        ]
    )
    assert rc == 0
    for split in ("train", "val"):
        assert _meta(out / split)["generator_version"] == "2"
    cache = SegCache(out / "train")
    v2 = generate_case(0, version=2)
    v1 = generate_case(0, version=1)
    t = cache.tables
    for k in range(2):
        stored, bits = cache.view_stored(k)
        np.testing.assert_array_equal(stored, v2.stored[k])
        assert bits == v2.bits_stored[k]
        # v1 of the same seed is another image (here even another size), so the
        # version really reached the engine rather than only the meta
        assert stored.shape != v1.stored[k].shape or not np.array_equal(stored, v1.stored[k])
        main_rows = np.flatnonzero((t["sample_view"] == k) & (t["sample_segment"] == 0))
        assert len(main_rows) == 1
        m = cache.sample_mask(int(main_rows[0])).astype(bool)
        assert m.sum() > 50
        assert not (m & ~v2.masks[k].astype(bool)).any()  # the main SOI lies in the truth
        start, _ = cache.sample_points(int(main_rows[0]))
        np.testing.assert_allclose(start, v2.soi_points[k]["start"], atol=1e-4)


def test_default_is_v1_and_recorded(tmp_path):
    from angio_deploy.synth.engine import generate_case

    out = build_cache(tmp_path / "c", seeds=[1], size=512, workers=1)
    assert _meta(out)["generator_version"] == "1"
    stored, _ = SegCache(out).view_stored(0)
    np.testing.assert_array_equal(stored, generate_case(1, size=512).stored[0])


def test_version_only_for_seeds(tmp_path):
    with pytest.raises(ValueError, match="seed caches only"):
        build_cache(tmp_path / "x", case_dirs=[tmp_path], generator_version="2", workers=1)
    with pytest.raises(ValueError, match="not in"):
        build_cache(tmp_path / "y", seeds=[0], generator_version="3", workers=1)
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "z"), "--real", str(tmp_path), "--generator-version", "2"])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
