from __future__ import annotations

import json

import pytest
import torch
from training.segmenter.checkpoint import (
    find_checkpoint,
    load_tensors,
    optimizer_state_dict,
    save_checkpoint,
    verify_checkpoint,
)


def _tiny():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.96)
    m(torch.randn(2, 1, 8, 8)).sum().backward()
    opt.step()
    sched.step()
    return m, opt, sched


def _save(path, m, opt, sched, **state):
    return save_checkpoint(
        path,
        model=m,
        config={"arch": "test"},
        state={"step": 1, "scheduler": sched.state_dict(), **state},
        optimizer=opt,
        rng_state=torch.get_rng_state(),
    )


def assert_no_pickles(ckpt):
    """Every file opens with safetensors' safe_open or json, nothing else."""
    from safetensors import safe_open

    for p in ckpt.iterdir():
        if p.suffix == ".safetensors":
            with safe_open(str(p), framework="pt") as f:
                assert list(f.keys())
            raw = p.read_bytes()  # safetensors: u64 header length, JSON header, raw data
            n = int.from_bytes(raw[:8], "little")
            header = json.loads(raw[8 : 8 + n])
            assert all(v["dtype"] for k, v in header.items() if k != "__metadata__")
        elif p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
        else:
            pytest.fail(f"unexpected file {p.name}")


def test_roundtrip_model_optimizer_scheduler_rng(tmp_path):
    m, opt, sched = _tiny()
    ckpt = _save(tmp_path / "last", m, opt, sched)
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "config.json",
        "model.safetensors",
        "optim.safetensors",
        "state.json",
    ]
    assert_no_pickles(ckpt)
    state = verify_checkpoint(ckpt)
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["model_sha256"] == state["sha256"]["model.safetensors"]

    m2, opt2, sched2 = _tiny()
    torch.manual_seed(123)
    m2.load_state_dict(load_tensors(ckpt / "model.safetensors"))
    tensors = load_tensors(ckpt / "optim.safetensors")
    opt2.load_state_dict(optimizer_state_dict(tensors, state["optimizer"]))
    sched2.load_state_dict(state["scheduler"])
    for k, v in m.state_dict().items():
        assert torch.equal(m2.state_dict()[k], v), k
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for pid in a["state"]:
        for k in a["state"][pid]:
            assert torch.equal(a["state"][pid][k], b["state"][pid][k])
    assert sched2.get_last_lr() == sched.get_last_lr()
    torch.set_rng_state(tensors["rng.torch"])


def test_tampered_checkpoint_is_rejected_and_old_copy_found(tmp_path):
    m, opt, sched = _tiny()
    ckpt = _save(tmp_path / "last", m, opt, sched)
    assert find_checkpoint(tmp_path) == ckpt
    # a kill between the swap's two renames leaves only the hidden old copy
    old = tmp_path / ".last.old-deadbeef"
    ckpt.rename(old)
    assert find_checkpoint(tmp_path) == old
    with open(old / "model.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ValueError, match="does not match"):
        verify_checkpoint(old)
    assert find_checkpoint(tmp_path) is None


def test_failed_save_keeps_previous(tmp_path, monkeypatch):
    m, opt, sched = _tiny()
    ckpt = _save(tmp_path / "last", m, opt, sched, marker=1)
    before = {p.name: p.read_bytes() for p in ckpt.iterdir()}

    import training.segmenter.checkpoint as cp

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cp, "optimizer_tensors", boom)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path / "last", m, opt, sched, marker=2)
    assert {p.name: p.read_bytes() for p in ckpt.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["last"]
