"""Ring-profile network: targets, symmetries, training (resumable), export, runtime, API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")


def _reversed_mesh(z: dict) -> dict:
    """The same case with the rings in the opposite order (the vessel run backwards)."""
    out = dict(z)
    out["mi"] = z["mi"].reshape(100, 60, 3)[::-1].reshape(-1, 3).copy()
    return out


def test_targets_are_zero_when_mi_is_the_truth(sr_data) -> None:
    from training.surface.data import SRCache
    from training.surface.profile import case_profiles, edge_targets

    z = SRCache(sr_data / "train")[0]
    rp = case_profiles(z)
    np.testing.assert_allclose(edge_targets(rp, z["mi"]), 0.0, atol=1e-6)
    t = edge_targets(rp, z["truth"])
    assert t.shape == (100, 4) and np.isfinite(t).all()
    # Truth masks, true geometry: MI's edges are within about a radius of the truth's.
    assert np.median(np.abs(t)) < 0.3


def test_symmetries_are_those_of_the_data(sr_data) -> None:
    from training.surface.data import SRCache
    from training.surface.profile import case_profiles, edge_targets, symmetry_permutations

    syms = symmetry_permutations()
    assert len(syms) == 8
    fi, fs, ti, ts = syms[0]
    assert torch.equal(fi, torch.arange(len(fi))) and bool((fs == 1).all())
    for fi, fs, ti, ts in syms:  # each is its own inverse
        assert torch.equal(fi[fi], torch.arange(len(fi))) and torch.equal(ti[ti], torch.arange(4))
        assert bool((fs[fi] * fs == 1).all()) and bool((ts[ti] * ts == 1).all())
    z = SRCache(sr_data / "train")[0]
    rp, rq = case_profiles(z), case_profiles(_reversed_mesh(z))
    # Running the rings backwards flips every line across the vessel and the context
    # order: the last symmetry (reverse + mirror both views), exactly.
    fi, fs, ti, ts = syms[7]
    x = torch.from_numpy(rp.features)
    np.testing.assert_allclose(rq.features[::-1], (x[:, fi] * fs).numpy(), atol=2e-4)
    t = torch.from_numpy(edge_targets(rp, z["truth"]))
    tq = edge_targets(rq, z["truth"])[::-1]
    inner = slice(3, -3)  # truth-ring matching differs at the ends
    np.testing.assert_allclose(tq[inner], (t[:, ti] * ts).numpy()[inner], atol=1e-6)


@pytest.fixture(scope="module")
def profile_run(sr_data, tmp_path_factory):
    from training.surface.profile import ProfileTrainConfig, train_profile

    out = tmp_path_factory.mktemp("profilerun")
    cfg = ProfileTrainConfig(data=str(sr_data), out=str(out), epochs=2, threads=1, batch=32)
    return out, train_profile(cfg), cfg


def test_training_validates_and_keeps_the_best(profile_run) -> None:
    out, st, _ = profile_run
    assert st["epoch"] == 2 and st["best_epoch"] in (1, 2)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
    assert all(e["val_mi_mean"] > 0 and e["val_mean"] > 0 for e in log)
    assert st["best_val_mean"] == min(e["val_mean"] for e in log)
    assert json.loads((out / "best" / "state.json").read_text())["epoch"] == st["best_epoch"]


def test_a_resumed_run_equals_an_uninterrupted_one(sr_data, tmp_path) -> None:
    from training.segmenter.checkpoint import load_tensors
    from training.surface.profile import ProfileTrainConfig, train_profile

    def cfg(out, epochs, resume=False):
        return ProfileTrainConfig(
            data=str(sr_data), out=str(out), epochs=epochs, threads=1, batch=32, resume=resume
        )

    train_profile(cfg(tmp_path / "straight", 2))
    train_profile(cfg(tmp_path / "resumed", 1))
    with pytest.raises(FileExistsError):
        train_profile(cfg(tmp_path / "resumed", 2))
    assert train_profile(cfg(tmp_path / "resumed", 2, resume=True))["epoch"] == 2
    a = load_tensors(tmp_path / "straight" / "last" / "model.safetensors")
    b = load_tensors(tmp_path / "resumed" / "last" / "model.safetensors")
    for k in a:  # weights and Adam state restored, the same shuffles: the same model
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    assert len((tmp_path / "resumed" / "train_log.jsonl").read_text().splitlines()) == 2


def _mi_of_case(tmp_path, seed: int):
    from PIL import Image

    from angio_deploy.evaluate import with_true_geometry
    from angio_deploy.io.case import load_case
    from angio_deploy.pipeline.mi import mesh_initialisation
    from angio_deploy.pipeline.segmenters import OracleSegmenter
    from angio_deploy.synth.engine import generate_case, write_case

    d = write_case(generate_case(seed), tmp_path / "case")
    seg = OracleSegmenter(
        {k: np.asarray(Image.open(d / "truth" / f"mask_{k}.png")) > 0 for k in "ab"}
    )
    return (
        d,
        seg,
        mesh_initialisation(with_true_geometry(load_case(d)), seg, geometry_refinement=False),
    )


def test_export_parity_and_runtime_matches_torch(profile_run, tmp_path) -> None:
    from export.profile_export import export_profile, register_profile
    from training.surface.profile import load_profile_net

    from angio_deploy.models import load_manifest
    from angio_deploy.pipeline.profile import refined_mesh, ring_profiles
    from angio_deploy.pipeline.sr import SurfaceRefiner, encoder_input

    out, _, _ = profile_run
    models = tmp_path / "models"
    summary = export_profile(out / "best", models)
    assert summary["max_abs_diff"] <= 1e-5
    entry = register_profile(summary)
    assert entry["role"] == "profile" and load_manifest(models).get("sr_profile").size > 0

    _, _, mi = _mi_of_case(tmp_path, 2_000_001)
    ref = SurfaceRefiner(folder=models)
    assert ref.stages == ["profile"] and ref.report()["stages"] == ["profile"]
    sr = ref.refine(mi)
    assert "sr_profile" in sr.timings_s
    assert sr.vertices.shape == mi.vertices.shape and not np.allclose(sr.vertices, mi.vertices)
    np.testing.assert_allclose(sr.centreline_mm, sr.vertices.reshape(100, 60, 3).mean(1), atol=1e-6)

    net, _, _ = load_profile_net(out / "best")
    rp = ring_profiles(
        [encoder_input(vr) for vr in mi.views],
        [vr.crop.projection(g.P) for vr, g in zip(mi.views, mi.geometries, strict=True)],
        mi.vertices,
    )
    with torch.no_grad():
        corr = net(torch.from_numpy(rp.features)).numpy().astype(np.float64)
    np.testing.assert_allclose(
        sr.vertices, refined_mesh(rp, corr, mi.geometries[0].direction)[0], atol=1e-4
    )


def test_a_model_for_other_features_is_refused_at_load(profile_run, tmp_path) -> None:
    from export.profile_export import export_profile, register_profile

    from angio_deploy.models import ModelFileError
    from angio_deploy.pipeline.sr import SurfaceRefiner

    out, _, _ = profile_run
    models = tmp_path / "models"
    register_profile(export_profile(out / "best", models))
    doc = json.loads((models / "manifest.json").read_text())
    doc["models"][0]["input"]["context_rings"] = 3
    (models / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="context_rings"):
        SurfaceRefiner(folder=models)


def test_api_runs_the_profile_stage(profile_run, tmp_path) -> None:
    from export.profile_export import export_profile, register_profile

    from angio_deploy.api import Reconstructor

    out, _, _ = profile_run
    models = tmp_path / "models"
    register_profile(export_profile(out / "best", models))
    d, seg, _ = _mi_of_case(tmp_path, 2_000_002)
    r = Reconstructor(seg, models_dir=models, surface=True).reconstruct(d)
    assert r.report["backend"]["surface_refinement"]["stages"] == ["profile"]
    assert r.report["surface_refinement"]["applied"] is True
    assert "sr_profile" in r.report["timings_s"] and "sr_gcn" not in r.report["timings_s"]
    assert r.report["surface_refinement"]["displacement_mm"]["max"] > 0


def test_command_line_trains_and_resumes(sr_data, tmp_path, capsys) -> None:
    from training.train_profile import main

    args = ["--data", str(sr_data), "--out", str(tmp_path / "run"), "--threads", "1"]
    assert main([*args, "--epochs", "1", "--batch", "64"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epoch"] == 1
    with pytest.raises(SystemExit):  # argparse's usage error: the run exists, --resume
        main([*args, "--epochs", "2"])
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epoch"] == 2


def test_sr_diagnostics_run_on_a_cache(sr_data, profile_run, capsys) -> None:
    import importlib.util
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "tools" / "sr_diagnostics.py"
    spec = importlib.util.spec_from_file_location("sr_diagnostics", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    assert tool.main(["residual", "--data", str(sr_data / "val")]) == 0
    values = [float(x) for x in re.findall(r"(\d+\.\d{4})", capsys.readouterr().out)]
    # Removing the ring-wise harmonics leaves less than the raw error.
    assert len(values) == 4 and 0 <= values[-1] < values[0]
    out, _, _ = profile_run
    assert tool.main(["edges", str(out / "best"), "--data", str(sr_data / "val")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(" px -> " in x for x in lines)
