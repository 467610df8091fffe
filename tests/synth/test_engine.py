"""The synthetic engine end to end: case folders, truth, determinism, CLI arguments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from angio_deploy import kernels
from angio_deploy.cli import main
from angio_deploy.io.case import load_case
from angio_deploy.io.centreline_csv import read_centreline_csv
from angio_deploy.io.mesh_io import read_ply
from angio_deploy.synth.engine import generate_case, synthesise, write_case
from angio_deploy.synth.truth import mesh_percent_ds

SEEDS = (11, 12, 13)


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("synth")
    return synthesise(out / "cases", len(SEEDS), SEEDS[0])


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2.0 * (a & b).sum() / (a.sum() + b.sum())


def test_case_folder_layout(cases) -> None:
    for case in cases:
        names = {p.relative_to(case).as_posix() for p in case.rglob("*") if p.is_file()}
        for required in (
            "case.json",
            "view_a.dcm",
            "view_b.dcm",
            "truth/mesh.ply",
            "truth/centreline.csv",
            "truth/mask_a.png",
            "truth/mask_b.png",
            "truth/meta.json",
        ):
            assert required in names, (case, required)


def test_dicom_reads_back_with_header_geometry(cases) -> None:
    for case_dir in cases:
        meta = json.loads((case_dir / "truth" / "meta.json").read_text())
        case = load_case(case_dir)
        for view, vm in zip(case.views, meta["views"], strict=True):
            np.testing.assert_allclose(
                view.geometry.P, np.array(vm["header"]["projection_matrix"]), rtol=1e-9, atol=1e-9
            )
            assert view.image.shape == (vm["header"]["height"], vm["header"]["width"])
        assert case.separation_deg >= 30.0


def test_truth_mesh_silhouette_matches_mask(cases) -> None:
    for case_dir in cases:
        meta = json.loads((case_dir / "truth" / "meta.json").read_text())
        v, f = read_ply(case_dir / "truth" / "mesh.ply")[:2]
        assert v.shape == (6000, 3)
        if meta["side_branches"]:
            v, f = read_ply(case_dir / "truth" / "mesh_joined.ply")[:2]
        for name, vm in zip("ab", meta["views"], strict=True):
            P = np.array(vm["true"]["projection_matrix"])
            mask = np.asarray(Image.open(case_dir / "truth" / f"mask_{name}.png"))
            sil = kernels.rasterise_silhouette(P, v, f, mask.shape[1], mask.shape[0])
            assert _dice(sil, mask) >= 0.98, (case_dir.name, name)


def test_soi_points_are_noisy_projections_of_true_ends(cases) -> None:
    for case_dir in cases:
        meta = json.loads((case_dir / "truth" / "meta.json").read_text())
        doc = json.loads((case_dir / "case.json").read_text())
        cl = read_centreline_csv(case_dir / "truth" / "centreline.csv")
        for view, vm in zip(doc["views"], meta["views"], strict=True):
            P = np.array(vm["true"]["projection_matrix"])
            uv = kernels.project(P, cl.points[[0, -1]])
            assert np.linalg.norm(uv[0] - view["soi"]["start"]) < 5.0
            assert np.linalg.norm(uv[1] - view["soi"]["end"]) < 5.0


def test_stenosis_in_meta_equals_truth_mesh(cases) -> None:
    seen = 0
    for case_dir in cases:
        meta = json.loads((case_dir / "truth" / "meta.json").read_text())
        v, _, _ = read_ply(case_dir / "truth" / "mesh.ply")
        ds = mesh_percent_ds(v, np.array(meta["reference_radius_mm"]))
        length = meta["soi"]["length_mm"]
        for les in meta["stenoses"]:
            ring = round(les["position_from_start_mm"] / length * 99)
            window = ds[max(ring - 2, 0) : ring + 3]
            assert abs(window.max() - les["percent_ds"]) < 2.0, (case_dir.name, les)
            seen += 1
    assert seen >= 1


def test_bifurcation_laws_hold(cases) -> None:
    for case_dir in cases:
        meta = json.loads((case_dir / "truth" / "meta.json").read_text())
        for b in meta["bifurcations"]:
            dp, d1, d2 = b["diameters_mm"]
            if b["law"] == "finet":
                assert dp == pytest.approx(0.678 * (d1 + d2), rel=0.01)
            else:
                k = b["exponent"]
                assert 2.1 <= k <= 3.0
                assert dp**k == pytest.approx(d1**k + d2**k, rel=0.01)


def test_same_seed_gives_byte_identical_files(tmp_path) -> None:
    a = write_case(generate_case(5), tmp_path / "a")
    b = write_case(generate_case(5), tmp_path / "b")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    c = write_case(generate_case(6), tmp_path / "c")
    assert (a / "view_a.dcm").read_bytes() != (c / "view_a.dcm").read_bytes()


def test_cli_synth_writes_cases(tmp_path, capsys) -> None:
    rc = main(["synth", str(tmp_path / "out"), "--count", "1", "--seed", "7", "-q"])
    assert rc == 0
    assert (tmp_path / "out" / "case_0000007" / "case.json").is_file()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--count", "-1", "--seed", "0"], "--count"),
        (["--count", "1", "--seed", "-5"], "--seed"),
    ],
)
def test_cli_synth_bad_numbers(tmp_path, capsys, argv, needle) -> None:
    out = tmp_path / "out"
    rc = main(["synth", str(out), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_synth_refuses_non_empty_and_unwritable(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    rc = main(["synth", str(out), "--count", "1", "--seed", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "not empty" in err and "--overwrite" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["synth", str(blocker / "sub"), "--count", "1", "--seed", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot be created" in err
    assert blocker.read_text() == "x"
