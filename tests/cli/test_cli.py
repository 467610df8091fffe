"""`angio-deploy --version` and `angio-deploy info` (CASE_FORMAT.md), with exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from angio_deploy import __version__
from angio_deploy.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "example_case"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"angio-deploy {__version__}"


def test_info_text_names_sources_of_values(capsys, png_case) -> None:
    code, out, err = run(capsys, "info", str(png_case()))
    assert code == 0, err
    assert "view a" in out and "view b" in out
    assert "<- case.json" in out
    assert "separation" in out and "deg" in out
    assert "SOI" in out


def test_info_json_round_trips(capsys, png_case) -> None:
    code, out, _ = run(capsys, "info", "--json", str(png_case()))
    assert code == 0
    doc = json.loads(out)
    assert len(doc["views"]) == 2
    assert doc["views"][0]["geometry"]["sid_mm"] == 1000.0
    assert doc["views"][0]["soi"] == {"start": [40.0, 128.0], "end": [210.0, 126.5]}
    assert 50 < doc["view_separation_deg"] < 70


@pytest.mark.parametrize(
    ("make", "code", "needle"),
    [
        (lambda pc, tmp: tmp / "does-not-exist", 66, "case folder does not exist"),
        (lambda pc, tmp: tmp, 66, "no case.json"),
        (lambda pc, tmp: pc(views=[]), 65, "exactly two views"),
        (
            lambda pc, tmp: pc(_x=lambda d: d["views"][0]["soi"].update(start=[999, 5])),
            65,
            "outside",
        ),
    ],
)
def test_info_errors_one_line_and_exit_code(capsys, png_case, tmp_path, make, code, needle) -> None:
    rc, out, err = run(capsys, "info", str(make(png_case, tmp_path)))
    assert rc == code
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("angio-deploy: error: ") and needle in lines[0]
    assert "Traceback" not in err


def test_usage_error_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["info"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_internal_error_exits_70_without_traceback(capsys, png_case, monkeypatch) -> None:
    import angio_deploy.io.case as case_mod

    def boom(_):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(case_mod, "load_case", boom)
    rc, _, err = run(capsys, "info", str(png_case()))
    assert rc == 70 and "internal error" in err and "kaboom" in err and "Traceback" not in err
    rc, _, err = run(capsys, "--debug", "info", str(png_case()))
    assert rc == 70 and "Traceback" in err


def test_example_case_in_repo(capsys, tmp_path) -> None:
    assert EXAMPLE.is_dir(), "the repo ships an example case"
    size = sum(p.stat().st_size for p in EXAMPLE.rglob("*") if p.is_file())
    assert size < 1_000_000
    # Copy it so nothing the test does can touch the repo.
    case = shutil.copytree(EXAMPLE, tmp_path / "example")
    code, out, err = run(capsys, "info", "--json", str(case))
    assert code == 0, err
    doc = json.loads(out)
    assert [v["kind"] for v in doc["views"]] == ["dicom", "dicom"]
    assert doc["view_separation_deg"] >= 30


def test_console_script_is_installed() -> None:
    exe = shutil.which("angio-deploy", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("package not installed as a distribution (running from the source tree)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"angio-deploy {__version__}"


def test_build_engines_verifies_and_runs_every_shipped_model(capsys, tmp_path) -> None:
    from angio_deploy.models import load_manifest

    out = tmp_path / "engines.json"
    code, stdout, _ = run(capsys, "build-engines", "--provider", "cpu", "--json", str(out))
    assert code == 0 and "no TensorRT on this machine" in stdout
    rows = json.loads(out.read_text())["models"]
    manifest = load_manifest()
    assert [r["name"] for r in rows] == [m.name for m in manifest.models]
    for r in rows:
        assert r["sha256"] == manifest.get(r["name"]).sha256
        assert r["provider"] == "CPUExecutionProvider" and r["first_run_s"] > 0
    shapes = {r["role"]: r["input_shapes"] for r in rows}
    # The pipeline's shapes: 2 views x flip TTA for the segmenter, 100 rings for SR.
    assert shapes["segmenter"]["image"][0] == 4
    if "profile" in shapes:
        assert shapes["profile"]["features"] == [100, 440]


def test_build_engines_for_a_missing_provider_exits_69(capsys) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("TensorRT is available here")
    code, _, err = run(capsys, "build-engines", "--provider", "tensorrt")
    assert code == 69 and "TensorrtExecutionProvider" in err
