"""Tiny segmenter caches built once per session from engine seeds (512 px images)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")
pytest.importorskip("safetensors")

#: Seed 0 has a side branch (its truth masks are main + side), seed 1 has none.
TRAIN_SEEDS = (0, 1, 3)
VAL_SEEDS = (1_000_000, 1_000_001)


@pytest.fixture(scope="session")
def seg_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with train/ and val/ caches, as training.build_seg_data writes it."""
    from training.segmenter.cache import build_cache

    root = tmp_path_factory.mktemp("segdata")
    build_cache(root / "train", seeds=TRAIN_SEEDS, size=512, workers=1)
    build_cache(root / "val", seeds=VAL_SEEDS, size=512, workers=1)
    return root
