"""Weight averaging of checkpoints, and of a fine-tune with the ONNX model it started from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from training.average_checkpoints import main
from training.segmenter.checkpoint import load_tensors, save_checkpoint
from training.segmenter.model import build_segmenter
from training.segmenter.warm_start import load_from_onnx

SHIPPED = Path(__file__).resolve().parents[2] / "python" / "angio_deploy" / "models"
CONFIG = {
    "arch": "unet",
    "encoder": "efficientnet-b3",
    "in_channels": 1,
    "classes": 1,
    "crop": {"width": 256, "height": 160, "margin_px": 24.0, "max_scale": 4.0},
}


@pytest.mark.slow
def test_wise_average_of_start_and_fine_tune_is_the_weighted_midpoint(
    seg_data: Path, tmp_path: Path
) -> None:
    start = build_segmenter()
    loaded = set(load_from_onnx(start, SHIPPED / "segmenter.onnx")["modules"])
    start_state = {k: v.clone() for k, v in start.state_dict().items()}
    # A "fine-tune": every floating-point tensor moved by a known amount.
    with torch.no_grad():
        for t in start.state_dict().values():
            if t.is_floating_point():
                t.add_(0.01)
    ft = save_checkpoint(tmp_path / "ft", model=start, config=CONFIG, state={"step": 1})
    out = tmp_path / "wise"
    rc = main(
        [
            str(ft),
            "--data",
            str(seg_data),
            "--out",
            str(out),
            "--init-onnx",
            str(SHIPPED / "segmenter.onnx"),
            "--weights",
            "3",
            "1",
        ]
    )
    assert rc == 0
    avg = load_tensors(out / "model.safetensors")
    for k, v in start_state.items():
        if v.is_floating_point():
            # weights 3:1 toward the start: start + 0.25 * 0.01; tensors the ONNX model
            # lacks (modules the forward never runs) come from the fine-tune as they are.
            shift = 0.0025 if k.rpartition(".")[0] in loaded else 0.01
            torch.testing.assert_close(avg[k], v.float() + shift, atol=1e-6, rtol=0)
        else:
            assert torch.equal(avg[k], v)
    cfg = json.loads((out / "config.json").read_text())
    assert [m["weight"] for m in cfg["averaged_from"]] == [0.75, 0.25]
    assert cfg["averaged_from"][0]["path"].endswith("segmenter.onnx")
    assert 0.0 <= cfg["metrics"]["val_dice"] <= 1.0


def test_a_weight_per_member_is_required(tmp_path: Path, seg_data: Path) -> None:
    m = torch.nn.Conv2d(1, 1, 1)
    ck = save_checkpoint(tmp_path / "a", model=m, config=CONFIG, state={"step": 1})
    with pytest.raises(SystemExit):
        main(
            [str(ck), "--data", str(seg_data), "--out", str(tmp_path / "o"), "--weights", "1", "2"]
        )
