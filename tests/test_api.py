"""The vendor API (issue 14, part 1): cases from memory reconstruct bit for bit like their
folder, the typed immutable result and its mesh bytes, threads, cancellation, the case id
on every log record, and the package-root import."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

import angio_deploy
from angio_deploy import (
    Cancelled,
    CancelToken,
    InputError,
    MemoryView,
    Reconstructor,
    case_from_memory,
)
from angio_deploy.case_log import CaseIdFilter, case_context
from angio_deploy.result_types import ReconstructionResult

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "example_case"


def vendor_views(source: str = "arrays") -> tuple[list[MemoryView], dict[str, Any]]:
    """The example case as a host application holds it: pixels and tags read with
    pydicom (not with angio_deploy), the SOI points its user clicked."""
    doc = json.loads((EXAMPLE / "case.json").read_text())
    views = []
    for k, v in zip("ab", doc["views"], strict=True):
        ds = pydicom.dcmread(EXAMPLE / f"view_{k}.dcm")
        if source == "datasets":
            views.append(MemoryView(ds, v["soi"]))
            continue
        geometry = {
            "primary_angle_deg": float(ds.PositionerPrimaryAngle),
            "secondary_angle_deg": float(ds.PositionerSecondaryAngle),
            "sid_mm": float(ds.DistanceSourceToDetector),
            "sod_mm": float(ds.DistanceSourceToPatient),
            "pixel_spacing_mm": [float(x) for x in ds.ImagerPixelSpacing],
        }
        views.append(
            MemoryView(
                ds.pixel_array,
                (v["soi"]["start"], v["soi"]["end"]),
                geometry=geometry,
                bits_stored=int(ds.BitsStored),
                photometric=str(ds.PhotometricInterpretation),
            )
        )
    return views, doc


@pytest.fixture(scope="module")
def network() -> Reconstructor:
    return Reconstructor("network")


@pytest.fixture(scope="module")
def frangi() -> Reconstructor:
    pytest.importorskip("skimage")
    return Reconstructor("frangi")


@pytest.fixture(scope="module")
def from_folder(network):
    return network.reconstruct(EXAMPLE)


@pytest.mark.parametrize("source", ["arrays", "datasets"])
def test_memory_gives_the_folders_mesh_bit_for_bit(network, from_folder, source) -> None:
    views, doc = vendor_views(source)
    r = network.reconstruct(case_from_memory(views, case_id=doc["id"]))
    assert (
        r.report["stages"]["surface_refinement"]
        == from_folder.report["stages"]["surface_refinement"]
    )
    assert np.array_equal(r.vertices, from_folder.vertices)
    assert np.array_equal(r.faces, from_folder.faces)
    assert np.array_equal(r.mi.vertices, from_folder.mi.vertices)
    assert np.array_equal(r.result.centreline_mm, from_folder.result.centreline_mm)
    assert np.array_equal(r.result.radius_mm, from_folder.result.radius_mm)
    assert r.report["case"] == "<memory:example-lad-55pct>"
    assert [v["kind"] for v in r.report["views"]] == (
        ["array", "array"] if source == "arrays" else ["dicom", "dicom"]
    )


def test_typed_result_is_immutable_and_complete(from_folder) -> None:
    res = from_folder.to_result()
    assert isinstance(res, ReconstructionResult)
    assert res.case_id == "example-lad-55pct"
    m = res.main
    assert m.name == "main" and m.mesh.vertices.shape == (6000, 3)
    assert np.array_equal(m.mesh.vertices, from_folder.vertices)
    assert m.centreline_mm.shape == (100, 3) and m.radius_mm.shape == (100,)
    assert res.centreline_mm is m.centreline_mm and res.radius_mm is m.radius_mm
    assert m.qca.mld_mm == pytest.approx(from_folder.report["qca"]["branches"][0]["mld_mm"])
    assert m.qca.profile_diameter_mm.shape == (100,)
    assert res.quality.reprojection_dice == tuple(
        from_folder.report["quality"]["reprojection_dice"]
    )
    assert res.warnings == tuple(from_folder.report["warnings"])
    assert res.provenance.backend["kernels"] == from_folder.report["backend"]["kernels"]
    assert res.provenance.case_source == str(EXAMPLE)
    assert res.joined is None and res.branches == () and res.meshes == (m.mesh,)
    assert res.report() == json.loads(json.dumps(from_folder.report))
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.main = m  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        m.mesh.vertices[0, 0] = 1.0
    with pytest.raises(TypeError):
        res.provenance.versions["angio_deploy"] = "x"  # type: ignore[index]
    # A copy: changing the pipeline's arrays later does not reach the result.
    assert not np.shares_memory(m.mesh.vertices, from_folder.vertices)


def test_mesh_bytes_are_the_files(network, from_folder, tmp_path, monkeypatch) -> None:
    views, doc = vendor_views()
    r = network.reconstruct(case_from_memory(views, case_id=doc["id"]))
    res = r.to_result()
    # A case in memory has no folder: any output folder is fine, the current one's too.
    monkeypatch.chdir(tmp_path)
    out = r.write("out")
    assert out == (tmp_path / "out").resolve()
    assert res.main.mesh.ply_bytes() == (out / "mesh.ply").read_bytes()
    assert res.main.mesh.stl_bytes() == (out / "mesh.stl").read_bytes()
    assert json.loads(res.report_json) == json.loads((out / "report.json").read_text())
    # The folder's check still protects a case folder.
    from angio_deploy.errors import OutputError

    with pytest.raises(OutputError, match="is the case folder"):
        from_folder.write(EXAMPLE)


def test_cancel_before_and_during_a_run(frangi) -> None:
    views, doc = vendor_views()
    case = case_from_memory(views, case_id=doc["id"])
    token = CancelToken()
    assert not token.cancelled
    token.cancel()
    assert token.cancelled
    with pytest.raises(Cancelled, match="after stage 'load'") as err:
        frangi.reconstruct(case, cancel=token)
    assert err.value.exit_code == 130 and not isinstance(err.value, InputError)
    assert err.value.source == "<memory:example-lad-55pct>"

    token, stages = CancelToken(), []

    def progress(stage: str, seconds: float) -> None:
        stages.append(stage)
        if stage == "segment":  # e.g. the user pressed Cancel in the host's UI
            token.cancel()

    with pytest.raises(Cancelled, match="after stage 'segment'"):
        frangi.reconstruct(case, cancel=token, progress=progress)
    assert stages[-1] == "segment" and "mesh" not in stages
    # An untouched token changes nothing.
    r = frangi.reconstruct(case, cancel=CancelToken())
    assert r.vertices.shape == (6000, 3)


def test_every_record_of_a_run_carries_its_case_id(frangi, caplog) -> None:
    views, _ = vendor_views()
    cases = {cid: case_from_memory(views, case_id=cid) for cid in ("case-one", "case-two")}
    caplog.set_level(logging.DEBUG, logger="angio_deploy")
    caplog.handler.addFilter(CaseIdFilter())
    threads_of: dict[str, str] = {}

    def run(cid: str) -> None:
        threads_of[threading.current_thread().name] = cid
        frangi.reconstruct(cases[cid])

    ts = [threading.Thread(target=run, args=(cid,), name=f"t-{cid}") for cid in cases]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    mine = [r for r in caplog.records if r.threadName in threads_of]
    assert {r.name for r in mine} > {"angio_deploy.api"}  # pipeline modules log too
    for r in mine:
        assert r.case_id == threads_of[r.threadName], (r.name, r.getMessage())
    assert any(r.getMessage().startswith("[case-one] reconstructing") for r in mine)
    # Outside a run the id is None; inside case_context it is set.
    logging.getLogger("angio_deploy.test").info("outside")
    with case_context("x"):
        logging.getLogger("angio_deploy.test").info("inside")
    assert [r.case_id for r in caplog.records[-2:]] == [None, "x"]


def test_thread_options_reach_the_run() -> None:
    rec = Reconstructor("network", threads=1, intra_op_threads=1, surface=False)
    r = rec.reconstruct(EXAMPLE)
    assert r.report["backend"]["kernel_threads"] == 1
    assert r.report["backend"]["intra_op_threads"] == 1
    with pytest.raises(ValueError, match="positive integer"):
        Reconstructor("frangi", threads=0)


def test_package_root_import_is_lazy() -> None:
    code = (
        "import sys, angio_deploy\n"
        "heavy = [m for m in ('angio_deploy.api', 'pydicom', 'onnxruntime', 'numpy') "
        "if m in sys.modules]\n"
        "from angio_deploy import Reconstructor, case_from_memory\n"
        "import angio_deploy.api as api\n"
        "assert Reconstructor is api.Reconstructor\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert "Reconstructor" in dir(angio_deploy)
    with pytest.raises(AttributeError):
        _ = angio_deploy.NoSuchThing  # type: ignore[attr-defined]
