"""The GPU burst's whole path on the CPU (smoke preset): data, fine-tune, pack, unpack."""

from __future__ import annotations

import json

import pytest
import torch
from training.segmenter.checkpoint import load_tensors, sha256_file

from training import gpu_burst

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def burst(real_seg_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("burst")
    # The real set's 40 ids, each a copy of the stand-in's training (1) or validation (31)
    # image: the burst builds tasks from all of them.
    real = root / "real_seg"
    for sub in ("images", "masks"):
        (real / sub).mkdir(parents=True)
        for n in range(1, 41):
            src = real_seg_dir / sub / f"{1 if n <= 30 else 31}.png"
            (real / sub / f"{n}.png").write_bytes(src.read_bytes())
    manifest = gpu_burst.run(
        real, root / "work", root / "out", preset_name="smoke", budget_min=10, workers=1
    )
    return root, manifest


def test_burst_fits_the_device_tools_file_limits(burst) -> None:
    root, manifest = burst
    files = sorted(p.name for p in (root / "out").iterdir())
    # At most 8 files come back, 16 MiB each.
    assert len(files) <= 8
    assert all((root / "out" / f).stat().st_size < 16 * 1024 * 1024 for f in files)
    assert {p["name"] for p in manifest["parts"]} | {"burst.json", "train_log.jsonl"} == set(files)
    assert manifest["model"]["dtype"] == "float16"
    # The run trained, on the CPU here, and validated on both sets before it was packed.
    assert manifest["device_name"] == "cpu"
    vals = [h for h in manifest["history"] if h["event"] == "val"]
    assert vals and "val1_dice" in vals[-1]
    assert manifest["config"]["training"]["device"] == "cpu"
    assert manifest["config"]["step"] == 2
    on_disk = json.loads((root / "out" / "burst.json").read_text())
    assert on_disk["parts"] == manifest["parts"]


def test_unpack_gives_the_trained_weights_back(burst, tmp_path) -> None:
    root, _ = burst
    dest = gpu_burst.unpack(root / "out", tmp_path / "last")
    got = load_tensors(dest / "model.safetensors")
    want = load_tensors(root / "work" / "run" / "last" / "model.safetensors")
    assert got.keys() == want.keys()
    for k, v in want.items():
        if v.is_floating_point():
            assert got[k].dtype == torch.float32
            assert torch.equal(got[k], v.half().float()), k
        else:
            assert torch.equal(got[k], v), k
    cfg = json.loads((dest / "config.json").read_text())
    assert cfg["model_sha256"] == sha256_file(dest / "model.safetensors")
    assert cfg["gpu_burst"]["preset"]["name"] == "smoke"


def test_unpack_refuses_a_damaged_part(burst, tmp_path) -> None:
    root, manifest = burst
    files = tmp_path / "files"
    files.mkdir()
    for p in (root / "out").iterdir():
        (files / p.name).write_bytes(p.read_bytes())
    name = manifest["parts"][-1]["name"]
    data = bytearray((files / name).read_bytes())
    data[100] ^= 0xFF
    (files / name).write_bytes(bytes(data))
    with pytest.raises(ValueError, match=name):
        gpu_burst.unpack(files, tmp_path / "last")


def test_a_second_call_reuses_the_data_and_resumes(tmp_path) -> None:
    work = tmp_path / "work"
    for name in ("seg", "seg_v2", "real"):
        for split in ("train", "val"):
            (work / name / split).mkdir(parents=True)
    assert gpu_burst.build_data(work, tmp_path, gpu_burst.PRESETS["gpu"], 4) == {}
    args = gpu_burst.train_args(work, tmp_path / "m.onnx", gpu_burst.PRESETS["gpu"], 4, 6.5, True)
    assert args[-1] == "--resume"
    assert args[args.index("--device") + 1] == "auto"
    assert args[args.index("--time-limit-min") + 1] == "6.500"


@pytest.mark.parametrize("name", sorted(gpu_burst.PRESETS))
def test_every_preset_parses_and_keeps_to_the_seed_splits(name, tmp_path) -> None:
    # A typo found on a lent GPU costs its minutes: each preset's command line goes
    # through the trainer's parser here, and its seeds through the split check.
    from training.build_seg_data import check_split, parse_seeds
    from training.train_segmenter import parse_config

    preset = gpu_burst.PRESETS[name]
    if not preset.any_split:
        check_split(parse_seeds(preset.v1_train_seeds), "train")
        check_split(parse_seeds(preset.v2_train_seeds), "train")
        check_split(parse_seeds(preset.val_seeds), "val")
    args = gpu_burst.train_args(tmp_path, tmp_path / "m.onnx", preset, 14, 6.5, False)
    cfg = parse_config(args)
    assert cfg.device == "auto" and cfg.amp
    assert cfg.time_limit_s == pytest.approx(390.0)
    assert cfg.batch_size == preset.batch_size and cfg.lr == preset.lr
    assert len(cfg.extra_train) == 2 and len(cfg.extra_val) == 1
    assert cfg.workers == (14 if preset.loader_workers is None else preset.loader_workers)
