"""Surface refinement tests need torch (and torch-geometric for the graph network)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

TRAIN_SEEDS = (0, 1)
VAL_SEEDS = (1_000_000,)


@pytest.fixture(scope="session")
def sr_data(tmp_path_factory):
    """A tiny SR cache (2 training, 1 validation case), truth-mask segmentation: it keeps
    the tests independent of the shipped segmenter."""
    pytest.importorskip("safetensors")
    from training.surface.data import build_sr_cache

    root = tmp_path_factory.mktemp("srdata")
    build_sr_cache(root / "train", TRAIN_SEEDS, segmenter="oracle")
    build_sr_cache(root / "val", VAL_SEEDS, segmenter="oracle")
    return root
