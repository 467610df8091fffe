"""End-to-end: the CLI trains, checkpoints, and resumes bit-for-bit."""

from __future__ import annotations

import json

import pytest
import torch
from training.segmenter.checkpoint import load_tensors, verify_checkpoint

from .test_checkpoint import assert_no_pickles

pytestmark = pytest.mark.slow

SMALL = [
    *("--crop-width", "128", "--crop-height", "64"),
    *("--batch-size", "2", "--workers", "0", "--threads", "1"),
]


def _train(data, out, *extra):
    from training.train_segmenter import main

    assert main(["--data", str(data), "--out", str(out), "--log-every", "1", *SMALL, *extra]) == 0
    lines = (out / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _losses(records):
    return {r["step"]: r["loss"] for r in records if r["event"] == "train"}


def test_two_steps_then_resume_equals_uninterrupted(seg_data, tmp_path):
    # 10 training samples (3 cases, with side branches), batch 2: 5 steps an epoch;
    # 7 steps cross an epoch boundary (validation, scheduler step).
    full = _train(seg_data, tmp_path / "full", "--max-steps", "7")
    _train(seg_data, tmp_path / "part", "--max-steps", "2")
    last = tmp_path / "part" / "last"
    assert_no_pickles(last)
    state = verify_checkpoint(last)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (2, 0, 2)
    cfg = json.loads((last / "config.json").read_text())
    assert cfg["arch"] == "unet" and cfg["encoder"] == "efficientnet-b3"
    assert cfg["crop"] == {"width": 128, "height": 64, "margin_px": 24, "max_scale": 2.0}
    assert cfg["data"]["train"]["seeds"] == [[0, 2], [3, 4]]
    assert cfg["data"]["train"]["generator_version"] == "1"
    assert "val_dice" in cfg["metrics"]
    assert (tmp_path / "part" / "best" / "model.safetensors").is_file()

    with pytest.raises(FileExistsError):
        _train(seg_data, tmp_path / "part", "--max-steps", "7")
    resumed = _train(seg_data, tmp_path / "part", "--max-steps", "7", "--resume")
    assert any(r["event"] == "resume" and r["step"] == 2 for r in resumed)

    lf, lr = _losses(full), _losses(resumed)
    assert sorted(lf) == [1, 2, 3, 4, 5, 6, 7]
    assert lf == lr  # same batches, same augmentation, same drop-connect: same losses
    a = load_tensors(tmp_path / "full" / "last" / "model.safetensors")
    b = load_tensors(tmp_path / "part" / "last" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sf = verify_checkpoint(tmp_path / "full" / "last")
    assert (sf["step"], sf["epoch"], sf["batch_in_epoch"]) == (7, 1, 2)
    assert sf["scheduler"]["_last_lr"] == [pytest.approx(1e-3 * 0.96)]
    vals = [r for r in full if r["event"] == "val"]
    assert [v["step"] for v in vals] == [5, 7]


def test_resume_refuses_changed_settings(seg_data, tmp_path):
    _train(seg_data, tmp_path / "r", "--max-steps", "1")
    from training.train_segmenter import main

    with pytest.raises(ValueError, match="batch_size"):
        main(
            [
                *("--data", str(seg_data), "--out", str(tmp_path / "r"), "--resume"),
                *("--max-steps", "2", "--crop-width", "128", "--crop-height", "64"),
                *("--batch-size", "4", "--threads", "1"),
            ]
        )


def test_sigterm_saves_last_after_the_current_step(seg_data, tmp_path, monkeypatch):
    import os
    import signal

    from training.segmenter.augment import CropParams
    from training.segmenter.trainer import TrainConfig, _StopFlag, train

    with _StopFlag() as flag:
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.signal == signal.SIGTERM
    cfg = TrainConfig(
        data=seg_data,
        out=tmp_path / "s",
        max_steps=4,
        batch_size=2,
        threads=1,
        crop=CropParams(width=128, height=64),
    )
    import training.segmenter.trainer as tr

    class Preset(_StopFlag):
        def __enter__(self):
            self.signal = signal.SIGTERM
            return self

    monkeypatch.setattr(tr, "_StopFlag", Preset)
    summary = train(cfg)
    monkeypatch.undo()
    assert summary["event"] == "interrupted" and summary["step"] == 1
    assert verify_checkpoint(tmp_path / "s" / "last")["step"] == 1
    cfg.resume = True
    assert train(cfg)["step"] == 4


def test_time_limit_validates_and_saves_then_stops(seg_data, tmp_path):
    # A zero-minute budget: the first step, then the run validates and saves last/.
    records = _train(seg_data, tmp_path / "run", "--time-limit-min", "0", "--epochs", "50")
    assert [r["step"] for r in records if r["event"] == "train"] == [1]
    assert any(r["event"] == "val" for r in records)
    assert verify_checkpoint(tmp_path / "run" / "last")["step"] == 1


def test_device_choice(monkeypatch):
    from training.segmenter.trainer import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="expected cpu"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
