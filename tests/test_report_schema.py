"""report.schema.json (angio-report/1): shipped in the package, a valid draft 2020-12
schema, and every report the tests produce follows it -- the example case (API and CLI),
a case in memory, a side-branch case (typed result with branches and the joined mesh)
and a case whose branch is skipped."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from angio_deploy.api import Reconstructor
from angio_deploy.cli import main
from angio_deploy.io.case import MemoryView, case_from_memory, load_case
from angio_deploy.pipeline.segmenters import OracleSegmenter
from angio_deploy.report_schema import report_schema, validate_report

jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "example_case"
#: A synthetic test-split case with one side branch (as tests/pipeline/test_side_branches.py).
SEED = 2_000_010


def test_schema_is_shipped_and_valid() -> None:
    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["format"] == {"const": "angio-report/1"}
    assert (Path(__file__).parents[1] / "python/angio_deploy/report.schema.json").is_file()


@pytest.fixture(scope="module")
def example_report() -> dict:
    return Reconstructor("network").reconstruct(EXAMPLE).report


def test_example_report_follows_the_schema(example_report) -> None:
    validate_report(json.loads(json.dumps(example_report)))


def test_the_schema_rejects_broken_reports(example_report) -> None:
    good = json.loads(json.dumps(example_report))
    for edit in (
        lambda r: r.pop("qca"),
        lambda r: r.update(format="angio-report/2"),
        lambda r: r["views"].pop(),
        lambda r: r["quality"].update(reprojection_dice=[1.5, 0.9]),
        lambda r: r["qca"]["branches"][0].update(branch="side"),
        lambda r: r["branches"].append({"branch": "branch_1", "skipped": True}),
    ):
        bad = copy.deepcopy(good)
        edit(bad)
        with pytest.raises(jsonschema.ValidationError):
            validate_report(bad)


def test_cli_and_memory_reports_follow_the_schema(tmp_path, capsys) -> None:
    case = Path(shutil.copytree(EXAMPLE, tmp_path / "case", ignore=shutil.ignore_patterns("out")))
    assert main(["run", str(case), "--out", str(tmp_path / "out"), "--segmenter", "frangi"]) == 0
    capsys.readouterr()
    validate_report(json.loads((tmp_path / "out" / "report.json").read_text()))
    folder = load_case(case)
    views = [
        MemoryView((v.image * 255).round().astype(np.uint8), v.soi.to_dict(), v.geometry.P)
        for v in folder.views
    ]
    r = Reconstructor("frangi").reconstruct(case_from_memory(views, case_id="mem"))
    assert [v["kind"] for v in r.report["views"]] == ["array", "array"]
    validate_report(json.loads(r.to_result().report_json))


@pytest.fixture(scope="module")
def branch_case(tmp_path_factory) -> Path:
    pytest.importorskip("manifold3d")
    from angio_deploy.synth.engine import generate_case, write_case

    return write_case(generate_case(SEED), tmp_path_factory.mktemp("sb") / "case")


def oracle(case: Path) -> OracleSegmenter:
    masks = {k: np.asarray(Image.open(case / "truth" / f"mask_{k}.png")) > 0 for k in "ab"}
    return OracleSegmenter(masks)


def test_side_branch_report_and_typed_result(branch_case) -> None:
    r = Reconstructor(oracle(branch_case), surface=False).reconstruct(branch_case)
    validate_report(json.loads(json.dumps(r.report)))
    res = r.to_result()
    assert [b.name for b in res.branches] == ["branch_1"]
    b = res.branches[0]
    assert np.array_equal(b.mesh.vertices, r.branches[0].vertices)
    assert b.qca.branch == "branch_1" and len(b.reprojection_dice) == 2
    assert res.joined is not None and res.joined.watertight
    assert np.array_equal(res.joined.vertices, r.joined.vertices)
    assert res.joined.stl_bytes()[80:84] == np.uint32(len(r.joined.faces)).tobytes()
    assert [m.name for m in res.meshes] == ["main", "branch_1", "joined"]


def test_skipped_branch_report(branch_case, tmp_path) -> None:
    case = Path(
        shutil.copytree(branch_case, tmp_path / "case", ignore=shutil.ignore_patterns("out"))
    )
    doc = json.loads((case / "case.json").read_text())
    doc["side_branches"][0]["views"][1]["end"] = [3.0, 3.0]  # far out in the background
    (case / "case.json").write_text(json.dumps(doc))
    r = Reconstructor(oracle(branch_case), surface=False).reconstruct(
        case, skip_failed_branches=True
    )
    assert r.report["branches"][0]["skipped"] is True
    validate_report(json.loads(json.dumps(r.report)))
    res = r.to_result()
    assert res.branches == () and res.joined is None
    assert [s.name for s in res.skipped] == ["branch_1"] and res.skipped[0].reason
