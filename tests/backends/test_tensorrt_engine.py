"""TensorRT engine backend.

Without tensorrt (every CPU machine, including the development one) only the
"unavailable" paths run: they must raise BackendUnavailableError (exit 69), never an
ImportError. With tensorrt, cuda-python and a GPU the build/run/parity tests run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from angio_deploy.backends import tensorrt_engine as T
from angio_deploy.errors import EX_UNAVAILABLE, BackendUnavailableError


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def test_import_is_free() -> None:
    import subprocess

    code = (
        "import sys, angio_deploy.backends.tensorrt_engine as t; "
        "print(any(m in sys.modules for m in ('tensorrt', 'cuda', 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_tensorrt_is_backend_unavailable(no_tensorrt, tmp_path: Path) -> None:
    assert T.tensorrt_available() is False
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed") as info:
        T.build_engine(tmp_path / "m.onnx", tmp_path / "m.engine")
    assert info.value.exit_code == EX_UNAVAILABLE
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed"):
        T.TensorRTEngine(tmp_path / "m.engine")


def test_missing_cuda_python_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cuda", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    with pytest.raises(BackendUnavailableError, match="cuda-python"):
        T._import_cudart()


def test_cuda_error_tuples_are_unpacked_or_raised() -> None:
    cudart = pytest.importorskip("cuda.bindings.runtime")
    ok = cudart.cudaError_t.cudaSuccess
    assert T._cuda_check(cudart, (ok, 42)) == 42
    assert T._cuda_check(cudart, (ok,)) is None
    with pytest.raises(RuntimeError, match="CUDA error"):
        T._cuda_check(cudart, (cudart.cudaError_t.cudaErrorMemoryAllocation, None))


@pytest.fixture
def gpu_tensorrt():
    pytest.importorskip("tensorrt")
    if not T.tensorrt_available():
        pytest.skip("tensorrt installed but no CUDA device / cuda-python")


def test_engine_build_and_run_matches_known_output(gpu_tensorrt, affine_model, tmp_path) -> None:
    onnx_path = affine_model(scale=2.0, shift=1.0)
    engine_path = T.build_engine(onnx_path, tmp_path / "tiny.engine", fp16=False)
    assert engine_path.is_file() and (tmp_path / "tiny.engine.json").is_file()
    x = np.random.default_rng(0).standard_normal((3, 1, 160, 256)).astype(np.float32)
    with T.TensorRTEngine(engine_path) as eng:
        assert eng.input_names == ["image"] and eng.output_names == ["logits"]
        np.testing.assert_allclose(eng(x), 2.0 * x + 1.0, atol=1e-5)
        np.testing.assert_allclose(eng(x[:1]), 2.0 * x[:1] + 1.0, atol=1e-5)  # new batch
        with pytest.raises(ValueError, match="axis 2"):
            eng(np.zeros((1, 1, 128, 256), np.float32))
        with pytest.raises(ValueError, match="axis 0"):
            eng(np.zeros((9, 1, 160, 256), np.float32))  # beyond the profile's max batch
        assert eng.report()["build"]["fp16"] is False


def test_fp16_engine_matches_onnxruntime(gpu_tensorrt, affine_model, tmp_path) -> None:
    from angio_deploy.backends import get_session

    onnx_path = affine_model(scale=0.5, shift=-0.25)
    engine_path = T.build_engine(onnx_path, tmp_path / "tiny16.engine", fp16=True)
    x = np.random.default_rng(1).standard_normal((2, 1, 160, 256)).astype(np.float32)
    ref = get_session(onnx_path, provider="cpu")(x)
    with T.TensorRTEngine(engine_path) as eng:
        np.testing.assert_allclose(eng(x), ref, atol=5e-3)  # fp16 arithmetic
