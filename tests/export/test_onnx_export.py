"""Checkpoint -> ONNX export: torch vs ONNX Runtime parity, metadata, fp16 weight storage.

A randomly initialised EfficientNet-B0 U-Net (the B3 of the product, smaller: same block
types, same decoder) with randomised BatchNorm statistics, saved as a checkpoint folder
exactly as training writes it, exported through the CLI.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
smp = pytest.importorskip("segmentation_models_pytorch")
pytest.importorskip("safetensors")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from export.compact import fp16_weights, ort_optimisation_report  # noqa: E402
from export.onnx_export import CheckpointError, load_checkpoint, main  # noqa: E402

from angio_deploy.backends import get_session  # noqa: E402
from angio_deploy.pipeline.crop import normalise_crop  # noqa: E402

ENCODER = "efficientnet-b0"
CROP = {"width": 256, "height": 160, "margin_px": 24, "max_scale": 2.0}
FP32_TOLERANCE = 1e-4  # issue 4: max abs logit difference torch vs ONNX Runtime


def _config(**kw) -> dict:
    cfg = {"arch": "unet", "encoder": ENCODER, "in_channels": 1, "classes": 1, "crop": CROP}
    cfg.update(kw)
    return cfg


def _write_checkpoint(folder: Path, model, config: dict) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _random_model():
    torch.manual_seed(0)
    model = smp.Unet(ENCODER, encoder_weights=None, in_channels=1, classes=1)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial BatchNorm: the exporter folds it into the convs
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(m.num_features, generator=g))
                m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return model.eval()


def _inputs() -> np.ndarray:
    """Three seeded N(0, 1) crops (a batch size the trace never saw) + one crop-like image."""
    rng = np.random.default_rng(123)
    x = rng.standard_normal((3, 1, 160, 256)).astype(np.float32)
    img = np.full((160, 256), 200.0) + rng.normal(0, 8, (160, 256))
    img[76:84, 10:246] -= 90.0  # a dark horizontal vessel along the SOI line
    return np.concatenate([x, normalise_crop(img)[None, None]])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = _random_model()
    ckpt = _write_checkpoint(root / "ckpt", model, _config(version="t1"))
    out = root / "segmenter.onnx"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main([str(ckpt), str(out)])
    assert rc == 0
    x = _inputs()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    return {"ckpt": ckpt, "onnx": out, "summary": json.loads(buf.getvalue()), "x": x, "ref": ref}


def test_fp32_parity_torch_vs_onnxruntime(exported) -> None:
    sess = get_session(exported["onnx"], provider="cpu")
    got = sess(exported["x"])
    diff = float(np.abs(got - exported["ref"]).max())
    print(f"\nfp32 export: max |logit diff| = {diff:.3g} (max |logit| {np.abs(got).max():.3g})")
    assert got.shape == exported["ref"].shape == (4, 1, 160, 256)
    assert diff <= FP32_TOLERANCE
    assert exported["summary"]["parity"]["max_abs_logit_diff"] <= FP32_TOLERANCE
    assert exported["summary"]["ort_optimisation"]["unfolded_weight_casts"] == 0


def test_metadata_names_and_shapes(exported) -> None:
    model = onnx.load(str(exported["onnx"]))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    weights = exported["ckpt"] / "model.safetensors"
    assert meta["source_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert meta["name"] == "segmenter" and meta["version"] == "t1"
    assert meta["role"] == "segmenter" and meta["encoder"] == ENCODER
    assert json.loads(meta["crop"]) == CROP
    assert meta["weights_storage"] == "float32"
    assert (meta["input_name"], meta["output_name"]) == ("image", "logits")
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert dims(model.graph.input[0]) == ["batch", 1, 160, 256]
    assert dims(model.graph.output[0]) == ["batch", 1, 160, 256]
    assert (
        exported["summary"]["sha256"] == hashlib.sha256(exported["onnx"].read_bytes()).hexdigest()
    )


def test_runtime_refuses_wrong_crop_size(exported) -> None:
    from angio_deploy.backends import ModelInputError

    sess = get_session(exported["onnx"], provider="cpu")
    with pytest.raises(ModelInputError, match=r"'segmenter'.*float32 \(N, 1, 160, 256\)"):
        sess(np.zeros((1, 1, 256, 256), np.float32))


def test_fp16_weight_storage_accuracy_and_size(exported, tmp_path: Path) -> None:
    """fp16-stored weights: half the file; logits within a first-order rounding bound.

    Each weight is rounded to float16 with relative error at most 2**-11; BatchNorm is
    folded, so each conv layer's output moves by at most ~2**-11 of its scale, and to
    first order these add along the network's depth. The bound below is that worst case,
    L * 2**-11 * max(1, max|logit|) with L the number of Conv nodes (~80 here, 0.04 at
    unit scale); the measured difference is ~1e-3, and pixels that change side of the
    0.5 threshold must be rarer than 1 in 1000 (only those with logits within ~1e-3 of 0).
    """
    src = onnx.load(str(exported["onnx"]))
    compact, stats = fp16_weights(src)
    path = tmp_path / "segmenter_fp16.onnx"
    onnx.save(compact, str(path))
    onnx.checker.check_model(str(path))
    ratio = path.stat().st_size / exported["onnx"].stat().st_size
    assert ratio < 0.52, ratio
    assert stats.kept_range == 0
    assert ort_optimisation_report(path)["unfolded_weight_casts"] == 0

    got = get_session(path, provider="cpu")(exported["x"])
    ref = exported["ref"]
    diff = float(np.abs(got - ref).max())
    n_conv = sum(n.op_type == "Conv" for n in src.graph.node)
    bound = n_conv * 2.0**-11 * max(1.0, float(np.abs(ref).max()))
    flips = float(np.mean((got > 0) != (ref > 0)))
    print(
        f"\nfp16 weights: size ratio {ratio:.3f}, max |logit diff| = {diff:.3g} "
        f"(bound {bound:.3g}, {n_conv} convs), mask flips {flips:.2e}"
    )
    assert 0 < diff <= bound
    assert flips <= 1e-3


def test_checkpoint_errors_name_the_problem(tmp_path: Path, capsys) -> None:
    with pytest.raises(CheckpointError, match=r"config\.json: not found"):
        load_checkpoint(tmp_path)
    cfg = _config()
    del cfg["crop"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="missing key 'crop'"):
        load_checkpoint(tmp_path)
    assert main([str(tmp_path), str(tmp_path / "x.onnx")]) == 65
    assert "missing key 'crop'" in capsys.readouterr().err
    (tmp_path / "config.json").write_text(json.dumps(_config(arch="fpn")))
    with pytest.raises(CheckpointError, match="arch 'fpn'"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(_config()))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not found"):
        load_checkpoint(tmp_path)
    assert not (tmp_path / "x.onnx").exists()


def test_weights_that_do_not_match_the_config_are_refused(tmp_path: Path) -> None:
    small = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)
    _write_checkpoint(tmp_path, small, _config())  # says efficientnet-b0, holds resnet18
    with pytest.raises(CheckpointError, match="does not match config"):
        load_checkpoint(tmp_path)
