"""One TensorRT path: ONNX Runtime's TensorRT execution provider, prepared by build-engines
with exactly the settings and input shapes the pipeline then runs.

No machine here has TensorRT, so ONNX Runtime is faked one level down: the machine
claims the TensorRT provider, and ``InferenceSession`` records the provider list and
options it is given and every input shape it runs, while a real CPU session computes.
What this proves is the wiring (same provider options, so the same engine cache; same
shapes, so no engine is built on the first case); that the TensorRT provider itself
builds and caches engines is not tested here (not yet run on a GPU).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from angio_deploy import models as M
from angio_deploy.backends import clear_session_cache
from angio_deploy.backends import providers as P
from angio_deploy.cli import main
from angio_deploy.pipeline.segmenters import OnnxSegmenter

ort = pytest.importorskip("onnxruntime")

H, W = 160, 256


class _Recorder:
    def __init__(self) -> None:
        self.opened: list[list[tuple[str, dict[str, str]]]] = []
        self.shapes: list[tuple[int, ...]] = []


@pytest.fixture
def fake_tensorrt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> _Recorder:
    rec = _Recorder()
    real = ort.InferenceSession
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(P, "available_providers", lambda: [P.TENSORRT, P.CUDA, P.CPU])

    class FakeSession:
        def __init__(self, path: str, sess_options: Any = None, providers: Any = None):
            rec.opened.append([(name, dict(opts)) for name, opts in providers])
            self._names = [name for name, _ in providers]
            self._cpu = real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

        def get_providers(self) -> list[str]:
            return list(self._names)  # as if every requested provider started

        def run(self, names: Any, feeds: dict[str, np.ndarray]) -> Any:
            rec.shapes.extend(tuple(v.shape) for v in feeds.values())
            return self._cpu.run(names, feeds)

        def __getattr__(self, name: str) -> Any:  # metadata, inputs, outputs
            return getattr(self._cpu, name)

    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    return rec


@pytest.fixture
def model_dir(tmp_path: Path, affine_model) -> Path:
    folder = tmp_path / "models"
    M.register_model(
        affine_model("models/segmenter.onnx", scale=2.0, shift=1.0),
        name="segmenter",
        role="segmenter",
        folder=folder,
        input={"name": "image", "dtype": "float32", "shape": [None, 1, H, W]},
        crop={"width": W, "height": H},
        version="test",
    )
    return folder


def _two_views() -> list[tuple[Any, Any]]:
    rng = np.random.default_rng(0)
    crop = SimpleNamespace(warp=lambda image, cval=0.0: image)
    return [(SimpleNamespace(image=rng.random((H, W))), crop) for _ in range(2)]


def test_build_engines_prepares_what_the_pipeline_runs(
    fake_tensorrt: _Recorder, model_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "engines.json"
    code = main(["build-engines", "--models-dir", str(model_dir), "--json", str(out)])
    assert code == 0
    assert "TensorRT engines built and cached" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["models"]
    assert row["provider"] == P.TENSORRT
    name, opts = fake_tensorrt.opened[-1][0]
    assert name == P.TENSORRT
    assert opts["trt_engine_cache_enable"] == "True" and opts["trt_fp16_enable"] == "True"
    assert opts["trt_engine_cache_path"] == str(tmp_path / "cache" / "angio-deploy" / "tensorrt")
    prepared_providers = fake_tensorrt.opened[-1]
    prepared_shapes = set(fake_tensorrt.shapes)

    # A later process: nothing cached in memory, the pipeline's segmenter with its defaults.
    clear_session_cache()
    fake_tensorrt.shapes.clear()
    seg = OnnxSegmenter(folder=model_dir, provider="auto")
    probs = seg.segment(_two_views())
    assert seg.session.provider == P.TENSORRT
    # The same provider list and options (so ORT finds the engines build-engines cached)
    # and only input shapes that build-engines ran (so no engine is built on a case).
    assert fake_tensorrt.opened[-1] == prepared_providers
    assert set(fake_tensorrt.shapes) <= prepared_shapes == {(4, 1, H, W)}
    assert len(probs) == 2 and probs[0].shape == (H, W)


def test_the_result_does_not_depend_on_the_provider(
    fake_tensorrt: _Recorder, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same session interface whatever runs it: a CPU-only machine gives the same
    # probabilities through the same OnnxSegmenter (here both are computed on the CPU,
    # so this checks that the TensorRT wiring changes nothing else).
    trt = OnnxSegmenter(folder=model_dir).segment(_two_views())
    clear_session_cache()
    monkeypatch.setattr(P, "available_providers", lambda: [P.CPU])
    cpu_seg = OnnxSegmenter(folder=model_dir)
    assert cpu_seg.session.provider == P.CPU
    assert fake_tensorrt.opened[-1] == [(P.CPU, {})]
    for a, b in zip(trt, cpu_seg.segment(_two_views()), strict=True):
        np.testing.assert_array_equal(a, b)
