"""The ONNX segmenter wrapper: manifest settings, flip test-time augmentation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from angio_deploy.backends import clear_session_cache
from angio_deploy.models import register_model
from angio_deploy.pipeline.crop import SoiCrop, normalise_crop
from angio_deploy.pipeline.segmenters import OnnxSegmenter

H, W = 160, 256


def _ramp_model(path, ramp: np.ndarray):
    """logits = 2 * image + ramp[row]: not symmetric under a vertical flip."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    shape = ["batch", 1, H, W]
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["image", "two"], ["scaled"]),
            helper.make_node("Add", ["scaled", "ramp"], ["logits"]),
        ],
        "ramp",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)],
        initializer=[
            numpy_helper.from_array(np.array([2.0], np.float32), "two"),
            numpy_helper.from_array(ramp.reshape(1, 1, H, 1).astype(np.float32), "ramp"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(autouse=True)
def _fresh_sessions():
    clear_session_cache()
    yield
    clear_session_cache()


def test_flip_tta_averages_the_flipped_pass_and_manifest_settings_apply(tmp_path) -> None:
    ramp = np.linspace(-3.0, 1.0, H)
    path = _ramp_model(tmp_path / "segmenter.onnx", ramp)
    register_model(path, name="segmenter", role="segmenter", width_level=0.6)
    image = np.random.default_rng(0).random((512, 512)).astype(np.float32)
    crop = SoiCrop.from_points([150.0, 260.0], [350.0, 240.0])
    items = [(SimpleNamespace(image=image), crop)]
    x = normalise_crop(crop.warp(image))

    seg = OnnxSegmenter(folder=tmp_path)
    assert seg.flip_tta is True and seg.width_level == 0.6
    assert seg.report()["flip_tta"] is True
    (p,) = seg.segment(items)
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    expected = 0.5 * (sig(2 * x + ramp[:, None]) + sig(2 * x + ramp[::-1, None]))
    np.testing.assert_allclose(p, expected, atol=1e-5)

    (q,) = OnnxSegmenter(folder=tmp_path, flip_tta=False).segment(items)
    np.testing.assert_allclose(q, sig(2 * x + ramp[:, None]), atol=1e-5)


def test_outside_the_image_the_network_sees_the_median_not_black(tmp_path) -> None:
    path = _ramp_model(tmp_path / "segmenter.onnx", np.zeros(H))
    register_model(path, name="segmenter", role="segmenter")
    image = np.random.default_rng(1).uniform(0.4, 0.9, (512, 512)).astype(np.float32)
    crop = SoiCrop.from_points([5.0, 256.0], [200.0, 256.0])  # reaches past the left edge
    black = crop.warp(image)
    outside = crop.warp(np.ones_like(image)) < 0.5
    assert outside.any() and np.all(black[outside] == 0.0)
    (p,) = OnnxSegmenter(folder=tmp_path, flip_tta=False).segment(
        [(SimpleNamespace(image=image), crop)]
    )
    x = normalise_crop(crop.warp(image, cval=float(np.median(image))))
    np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(-2.0 * x)), atol=1e-5)
    assert not np.allclose(x, normalise_crop(black))
