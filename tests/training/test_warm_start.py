"""Fine-tuning starts from the shipped ONNX segmenter: same outputs, BatchNorm frozen."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training.segmenter.model import build_segmenter
from training.segmenter.warm_start import (
    _module_path,
    check_parity,
    freeze_batchnorm,
    load_from_onnx,
)

SHIPPED = Path(__file__).resolve().parents[2] / "python" / "angio_deploy" / "models"


def test_module_paths_of_exporter_node_names() -> None:
    assert (
        _module_path("/encoder/_blocks.3/_depthwise_conv/Conv")
        == "encoder._blocks.3._depthwise_conv"
    )
    assert _module_path("/decoder/blocks.0/conv1/conv1.0/Conv") == "decoder.blocks.0.conv1.0"
    assert _module_path("/segmentation_head/segmentation_head.0/Conv") == "segmentation_head.0"


@pytest.mark.slow
def test_shipped_segmenter_rebuilds_with_parity_and_trains_with_frozen_statistics() -> None:
    onnx_path = SHIPPED / "segmenter.onnx"
    model = build_segmenter()
    info = load_from_onnx(model, onnx_path)
    assert info["convs"] > 100 and info["batchnorms_folded"] > 50
    # float16 weights upcast in the graph, the same weights here: float32 rounding only.
    assert check_parity(model, onnx_path) < 1e-3
    model.train()
    n = freeze_batchnorm(model)
    assert n > 50
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    model(torch.randn(2, 1, 64, 128))
    assert torch.equal(bn.running_mean, before)
    assert bn.weight.requires_grad


def test_a_model_of_another_architecture_is_refused() -> None:
    model = build_segmenter("resnet18")
    with pytest.raises(ValueError, match=r"segmenter\.onnx"):
        load_from_onnx(model, SHIPPED / "segmenter.onnx", shape=(64, 128))
