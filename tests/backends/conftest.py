"""Tiny ONNX models built with onnx.helper (no torch): known outputs, crop-sized inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from angio_deploy.backends import clear_session_cache

H, W = 160, 256


def make_affine_model(
    path: Path,
    *,
    scale: float = 2.0,
    shift: float = 1.0,
    height: int = H,
    width: int = W,
    name: str = "tiny",
    extra_input: bool = False,
) -> Path:
    """``logits = image * scale + shift`` over (batch, 1, height, width) float32."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    shape = ["batch", 1, height, width]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)]
    nodes = [
        helper.make_node("Mul", ["image", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["logits"]),
    ]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("bias", TensorProto.FLOAT, [1]))
        nodes[-1] = helper.make_node("Add", ["scaled", "shift"], ["pre"])
        nodes.append(helper.make_node("Add", ["pre", "bias"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        name,
        inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)],
        initializer=[
            numpy_helper.from_array(np.array([scale], np.float32), "scale"),
            numpy_helper.from_array(np.array([shift], np.float32), "shift"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"name": name, "version": "1", "role": "segmenter"})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def affine_model(tmp_path: Path) -> Callable[..., Path]:
    def make(filename: str = "tiny.onnx", **kw) -> Path:
        return make_affine_model(tmp_path / filename, **kw)

    return make


@pytest.fixture(autouse=True)
def _fresh_session_cache():
    clear_session_cache()
    yield
    clear_session_cache()
