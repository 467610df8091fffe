"""float16 weight storage (no torch): half the bytes, float32 compute, Casts folded by ORT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from export.compact import FP16_SUFFIX, fp16_weights, ort_optimisation_report  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _matmul_model(w: np.ndarray, small: np.ndarray, huge: np.ndarray) -> onnx.ModelProto:
    k, n = w.shape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["y0"]),
            helper.make_node("Add", ["y0", "b"], ["y1"]),
            helper.make_node("MatMul", ["x", "huge"], ["z"]),
            helper.make_node("Add", ["y1", "z"], ["y"]),
        ],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])],
        initializer=[
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(small, "b"),
            numpy_helper.from_array(huge, "huge"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_fp16_weights_halves_storage_and_keeps_float32_compute(tmp_path: Path) -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 64)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)  # small: stays float32
    huge = np.zeros((256, 64), np.float32)
    huge[0, 0] = 1e6  # beyond float16's range: stays float32
    model = _matmul_model(w, b, huge)
    compact, stats = fp16_weights(model)
    onnx.checker.check_model(compact, full_check=True)
    assert (stats.converted, stats.kept_small, stats.kept_range) == (1, 1, 1)
    assert stats.bytes_after == stats.bytes_before - w.nbytes // 2
    assert stats.max_rel_rounding <= 2.0**-11  # round to nearest: half an ulp
    types = {i.name: i.data_type for i in compact.graph.initializer}
    assert types == {"w" + FP16_SUFFIX: TensorProto.FLOAT16, "b": 1, "huge": 1}

    p32, p16 = tmp_path / "m32.onnx", tmp_path / "m16.onnx"
    onnx.save(model, str(p32))
    onnx.save(compact, str(p16))
    x = rng.standard_normal((3, 256)).astype(np.float32)
    s16 = ort.InferenceSession(str(p16), providers=["CPUExecutionProvider"])
    got = s16.run(None, {"x": x})[0]
    # Exactly the float32 model with rounded weights: compute stays float32.
    w_rounded = w.astype(np.float16).astype(np.float32)
    expect = x @ w_rounded + b + x @ huge
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-3)
    assert got.dtype == np.float32

    rep = ort_optimisation_report(p16)
    assert rep["fp16_weights"] == 1
    assert rep["unfolded_weight_casts"] == 0  # ORT folded the Cast at load
    assert "FLOAT16" not in rep["optimised_initializer_dtypes"]


def test_original_model_is_not_modified() -> None:
    w = np.ones((64, 64), np.float32)
    model = _matmul_model(w, np.zeros(64, np.float32), np.zeros((64, 64), np.float32))
    before = model.SerializeToString()
    fp16_weights(model, min_elements=16)
    assert model.SerializeToString() == before
