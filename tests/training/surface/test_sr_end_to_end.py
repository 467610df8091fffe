"""SR end to end on tiny data: cache -> train (resumable) -> export -> torch-free runtime.

Truth-mask segmentation keeps the test independent of the shipped segmenter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("torch_geometric")
pytest.importorskip("onnx")
pytest.importorskip("safetensors")

VAL_SEEDS = (1_000_000,)  # the validation seeds of the sr_data fixture (conftest.py)


@pytest.fixture(scope="module")
def sr_run(sr_data, tmp_path_factory):
    from training.surface.trainer import SRTrainConfig, train_sr

    out = tmp_path_factory.mktemp("srrun")
    cfg = SRTrainConfig(data=str(sr_data), out=str(out), epochs=1, threads=1, keep_epochs=True)
    st = train_sr(cfg)
    return out, st, cfg


def test_cache_holds_mi_inputs_and_truth(sr_data) -> None:
    from training.surface.data import SRCache

    c = SRCache(sr_data / "train")
    assert len(c) == 2 and c.index["segmenter_kind"] == "oracle"
    s = c[0]
    assert s["crops"].shape == (2, 2, 160, 256) and s["crops"].dtype == np.float16
    assert s["mi"].shape == s["truth"].shape == (6000, 3)
    # True geometry + truth masks: the MI mesh is already close to the truth.
    assert float(np.linalg.norm(s["mi"] - s["truth"], axis=1).mean()) < 1.0
    # The surface target: on the truth surface, and no farther from each MI vertex than
    # the truth vertex of the same index (it is the nearest surface point).
    from angio_deploy.metrics import point_mesh_distance
    from angio_deploy.topology import ring_faces

    tgt = s["truth_surface"].astype(np.float64)
    assert tgt.shape == (6000, 3)
    assert point_mesh_distance(tgt, s["truth"], ring_faces()).max() < 1e-4
    to_target = np.linalg.norm(s["mi"] - tgt, axis=1)
    assert (to_target <= np.linalg.norm(s["mi"] - s["truth"], axis=1) + 1e-4).all()


def test_cases_far_from_the_truth_can_be_left_out(sr_data, tmp_path) -> None:
    from training.surface.data import SRCache
    from training.surface.trainer import SRTrainConfig, train_sr

    c = SRCache(sr_data / "train")
    mae = c.mi_mae_mm()
    assert mae.shape == (2,)
    assert mae[1] == pytest.approx(np.linalg.norm(c[1]["mi"] - c[1]["truth"], axis=1).mean())
    sub = c.subset(np.array([False, True]))
    assert len(sub) == 1 and sub.keys == c.keys[1:] and len(c) == 2
    np.testing.assert_array_equal(sub[0]["mi"], c[1]["mi"])
    cfg = SRTrainConfig(data=str(sr_data), out=str(tmp_path), epochs=1, max_mi_mae_mm=1e-6)
    with pytest.raises(ValueError, match="no case with MI MAE"):
        train_sr(cfg)


def test_training_validates_checkpoints_and_resumes(sr_run) -> None:
    from training.surface.trainer import train_sr

    out, st, cfg = sr_run
    assert st["epoch"] == 1 and st["step"] == 2 and st["best_val_mae"] is not None
    assert (out / "best" / "model.safetensors").is_file()
    assert (out / "epoch_1" / "model.safetensors").is_file()
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert any(e["event"] == "val" for e in log)
    cfg.epochs, cfg.resume = 2, True
    st2 = train_sr(cfg)
    assert st2["epoch"] == 2 and st2["step"] == 4 and len(st2["history"]) == 2
    cfg.resume = False
    with pytest.raises(FileExistsError):
        train_sr(cfg)


def test_export_parity_and_runtime_matches_torch(sr_run, sr_data, tmp_path) -> None:
    from export.sr_export import export_sr, load_sr_checkpoint, register_sr

    from angio_deploy.evaluate import with_true_geometry
    from angio_deploy.io.case import load_case
    from angio_deploy.pipeline.mi import mesh_initialisation
    from angio_deploy.pipeline.segmenters import OracleSegmenter
    from angio_deploy.pipeline.sr import SurfaceRefiner, encoder_input, sr_frame
    from angio_deploy.synth.engine import generate_case, write_case

    out, _, _ = sr_run
    models = tmp_path / "models"
    summary = export_sr(out / "best", models)
    assert summary["encoder"]["max_abs_diff"] <= 1e-4
    assert summary["gcn"]["max_abs_diff"] <= 1e-5
    register_sr(summary)

    from PIL import Image

    d = write_case(generate_case(2_000_001), tmp_path / "case")
    masks = {k: np.asarray(Image.open(d / "truth" / f"mask_{k}.png")) > 0 for k in "ab"}
    mi = mesh_initialisation(
        with_true_geometry(load_case(d)), OracleSegmenter(masks), geometry_refinement=False
    )
    sr = SurfaceRefiner(folder=models).refine(mi)
    assert {"sr_encoder", "sr_gcn"} <= set(sr.timings_s)

    net, _, _ = load_sr_checkpoint(out / "best")
    f = sr_frame(mi.vertices, mi.geometries[0].direction)
    crops = torch.as_tensor(np.stack([encoder_input(vr) for vr in mi.views]))
    crop_P = torch.as_tensor(
        np.stack([vr.crop.projection(g.P) for vr, g in zip(mi.views, mi.geometries, strict=True)]),
        dtype=torch.float32,
    )
    with torch.no_grad():
        pred, _ = net(
            crops,
            crop_P,
            torch.as_tensor(mi.vertices, dtype=torch.float32),
            torch.as_tensor(f.R, dtype=torch.float32),
            torch.as_tensor(f.b, dtype=torch.float32),
            f.scale,
        )
    torch_world = f.to_world(pred.numpy().astype(np.float64))
    moved = np.linalg.norm(sr.vertices - mi.vertices, axis=1)
    assert float(moved.max()) > 1e-4  # the trained network does move the mesh
    # Native sampling + ONNX Runtime vs grid_sample + torch (measured ~5e-6 mm).
    np.testing.assert_allclose(sr.vertices, torch_world, atol=1e-4)


def test_api_runs_surface_refinement_and_reports_it(sr_run, tmp_path) -> None:
    from export.sr_export import export_sr, register_sr
    from PIL import Image

    from angio_deploy.api import Reconstructor
    from angio_deploy.io.mesh_io import read_ply
    from angio_deploy.models import ModelFileError
    from angio_deploy.pipeline.segmenters import OracleSegmenter
    from angio_deploy.synth.engine import generate_case, write_case

    out, _, _ = sr_run
    models = tmp_path / "models"
    register_sr(export_sr(out / "best", models))
    d = write_case(generate_case(2_000_002), tmp_path / "case")
    seg = OracleSegmenter(
        {k: np.asarray(Image.open(d / "truth" / f"mask_{k}.png")) > 0 for k in "ab"}
    )

    # Default: SR only with the network segmenter.
    rec = Reconstructor(seg, models_dir=models)
    assert rec.refiner is None and "network segmenter" in rec.surface_note
    rec = Reconstructor(seg, models_dir=models, surface=True)
    r = rec.reconstruct(d)
    assert r.report["stages"]["surface_refinement"] is True
    sr = r.report["surface_refinement"]
    assert sr["applied"] is True
    moved = np.linalg.norm(r.vertices - r.mi.vertices, axis=1)
    assert sr["displacement_mm"]["max"] == pytest.approx(moved.max())
    assert 0 < sr["displacement_mm"]["mean"] <= sr["displacement_mm"]["p95"] <= moved.max()
    assert len(sr["reprojection_dice_before"]) == len(r.report["quality"]["reprojection_dice"]) == 2
    assert {"sr_encoder", "sr_gcn"} <= set(r.report["timings_s"])
    assert not np.allclose(r.vertices, r.mi.vertices)
    r.write(tmp_path / "out")
    v, _, _ = read_ply(tmp_path / "out" / "mesh.ply")
    np.testing.assert_allclose(v, r.vertices, atol=1e-9)
    mi_only = rec.reconstruct(d, refine_surface=False)
    assert mi_only.report["surface_refinement"] == {"applied": False, "reason": "not requested"}
    np.testing.assert_allclose(mi_only.vertices, mi_only.mi.vertices)
    with pytest.raises(ModelFileError):
        Reconstructor(seg, models_dir=tmp_path / "nothing_here", surface=True)


def test_both_stages_run_profile_first(sr_run, tmp_path) -> None:
    from export.profile_export import export_profile, register_profile
    from export.sr_export import export_sr, register_sr
    from training.segmenter.checkpoint import save_checkpoint
    from training.surface.profile import CONFIG_FORMAT, ProfileNet

    from angio_deploy.pipeline.profile import N_FEATURES
    from angio_deploy.pipeline.sr import SurfaceRefiner

    out, _, _ = sr_run
    models = tmp_path / "models"
    register_sr(export_sr(out / "best", models))
    ckpt = save_checkpoint(
        tmp_path / "untrained",
        model=ProfileNet(),
        config={"format": CONFIG_FORMAT, "n_features": N_FEATURES},
        state={"epoch": 0},
    )
    register_profile(export_profile(ckpt, models))
    ref = SurfaceRefiner(folder=models)
    assert ref.stages == ["profile", "gcn"]
    assert set(ref.report()) == {"stages", "profile", "encoder", "gcn"}

    from PIL import Image

    from angio_deploy.evaluate import with_true_geometry
    from angio_deploy.io.case import load_case
    from angio_deploy.pipeline.mi import mesh_initialisation
    from angio_deploy.pipeline.segmenters import OracleSegmenter
    from angio_deploy.synth.engine import generate_case, write_case

    d = write_case(generate_case(2_000_001), tmp_path / "case")
    masks = {k: np.asarray(Image.open(d / "truth" / f"mask_{k}.png")) > 0 for k in "ab"}
    mi = mesh_initialisation(
        with_true_geometry(load_case(d)), OracleSegmenter(masks), geometry_refinement=False
    )
    calls = []
    out_mi = ref.refine(mi, progress=lambda stage, s: calls.append(stage))
    assert calls == ["sr_profile", "sr_encoder", "sr_gcn"]  # profile first, then the GCN
    # The untrained profile network leaves MI's rings as they were; the GCN moved them.
    assert not np.allclose(out_mi.vertices, mi.vertices)
    only_gcn = SurfaceRefiner(folder=models)
    only_gcn.profile = None
    np.testing.assert_allclose(out_mi.vertices, only_gcn.refine(mi).vertices, atol=1e-6)


def test_rebuild_completes_a_cache_with_a_broken_case(sr_data, tmp_path) -> None:
    import shutil

    from training.surface.data import SRCache, build_sr_cache

    d = Path(shutil.copytree(sr_data / "val", tmp_path / "val"))
    f = d / "seed_1000000.npz"
    f.write_bytes(f.read_bytes()[:1000])  # a build killed mid-write (older, non-atomic)
    build_sr_cache(d, VAL_SEEDS, segmenter="oracle")
    assert SRCache(d)[0]["mi"].shape == (6000, 3)
