from __future__ import annotations

import pytest
import torch
from training.segmenter.model import architecture, build_segmenter, load_encoder_weights


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_segmenter()


def test_architecture(model):
    assert architecture() == {
        "arch": "unet",
        "encoder": "efficientnet-b3",
        "in_channels": 1,
        "classes": 1,
    }
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 64, 128))
    assert out.shape == (1, 1, 64, 128)


def test_local_pretrained_encoder_rgb_to_gray(model, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    rgb = build_segmenter(in_channels=3)
    enc = {k: v.contiguous() for k, v in rgb.encoder.state_dict().items()}
    path = tmp_path / "enc.safetensors"
    save_file(enc, str(path))
    info = load_encoder_weights(model, path)
    assert len(info["adapted"]) == 1 and info["sha256"]
    got = model.encoder.state_dict()
    stem = info["adapted"][0]
    assert torch.allclose(got[stem], enc[stem].sum(dim=1, keepdim=True))
    for k, v in enc.items():
        if k != stem:
            assert torch.equal(got[k], v), k


def test_local_pretrained_whole_model_prefix(model, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(2)
    other = build_segmenter()
    path = tmp_path / "full.safetensors"
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(path))
    info = load_encoder_weights(model, path)
    assert info["adapted"] == []
    for k, v in other.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[k], v)


def test_wrong_encoder_weights_are_refused(model, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "bad.safetensors"
    save_file({"conv.weight": torch.zeros(3, 3)}, str(path))
    with pytest.raises(ValueError, match="do not fit"):
        load_encoder_weights(model, path)
