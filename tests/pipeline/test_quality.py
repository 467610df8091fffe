"""An obviously wrong mesh is never written as a success (issue 12)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from angio_deploy.api import Reconstructor
from angio_deploy.cli import main
from angio_deploy.pipeline import quality
from angio_deploy.pipeline.mi import mesh_initialisation
from angio_deploy.pipeline.quality import reprojection_dice

pytest.importorskip("skimage")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example_case"


@pytest.fixture(scope="module")
def mi():
    from angio_deploy.io.case import load_case

    rec = Reconstructor("frangi", surface=False)
    return mesh_initialisation(load_case(EXAMPLE), rec.segmenter)


def test_a_good_result_is_plausible(mi) -> None:
    assert quality.implausibilities(mi, reprojection_dice(mi)) == []


def test_low_reprojection_dice_in_both_views(mi) -> None:
    assert "either view" in quality.implausibilities(mi, [0.22, 0.18])[0]
    assert quality.implausibilities(mi, [0.22, 0.8]) == []  # one poor view is no proof


def test_exploded_rings_and_far_centreline(mi) -> None:
    wide = dataclasses.replace(mi, radius_mm=mi.radius_mm * 20)
    assert "wider than any lumen" in quality.implausibilities(wide, [0.9, 0.9])[0]
    far = dataclasses.replace(mi, centreline_mm=mi.centreline_mm + np.array([500.0, 0.0, 0.0]))
    assert "from the isocenter" in quality.implausibilities(far, [0.9, 0.9])[0]


def test_run_refuses_unless_forced(tmp_path, monkeypatch, capsys) -> None:
    case = Path(shutil.copytree(EXAMPLE, tmp_path / "case"))
    monkeypatch.setattr("angio_deploy.api.reprojection_dice", lambda r: [0.2, 0.1])
    assert main(["run", str(case), "--segmenter", "frangi"]) == 65
    err = capsys.readouterr().err
    assert "either view" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert not (case / "out").exists()
    assert main(["run", str(case), "--segmenter", "frangi", "--force"]) == 0
    assert "IMPLAUSIBLE" in capsys.readouterr().err
    assert (case / "out" / "mesh.ply").exists()
