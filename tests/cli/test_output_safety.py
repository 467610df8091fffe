"""No run may delete user data (issue 11): `run --out` and `evaluate --out-root` replace
an earlier result and nothing else (CASE_FORMAT.md, "Output"; exit 73, one line)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from angio_deploy.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example_case"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def case(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE, tmp_path / "cases" / "c1"))


def _refused(argv: list[str], capsys, *must_name: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 73, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err
    for s in must_name:
        assert s in err
    return err


def test_run_refuses_a_folder_holding_other_files(case, tmp_path, capsys) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "x").write_text("keep")
    _refused(["run", str(case), "--segmenter", "frangi", "--out", str(d)], capsys, str(d), "x")
    assert (d / "x").read_text() == "keep" and sorted(p.name for p in d.iterdir()) == ["x"]


@pytest.mark.parametrize("where", ["case", "parent", "dotdot"])
def test_run_refuses_the_case_folder_and_folders_containing_it(case, capsys, where) -> None:
    before = _tree(case.parent)
    out = {"case": case, "parent": case.parent, "dotdot": case / "out" / ".."}[where]
    _refused(["run", str(case), "--segmenter", "frangi", "--out", str(out)], capsys, "case folder")
    assert _tree(case.parent) == before


def test_run_refuses_a_file_or_a_path_under_a_file(case, tmp_path, capsys) -> None:
    f = tmp_path / "file.txt"
    f.write_text("data")
    for out in (f, f / "sub"):
        _refused(["run", str(case), "--segmenter", "frangi", "--out", str(out)], capsys, "folder")
    assert f.read_text() == "data"


def test_run_replaces_its_own_earlier_result(case, tmp_path, capsys) -> None:
    pytest.importorskip("skimage")
    out = tmp_path / "res"
    assert main(["run", str(case), "--segmenter", "frangi", "--out", str(out)]) == 0
    first = (out / "report.json").stat().st_mtime_ns
    assert main(["run", str(case), "--segmenter", "frangi", "--out", str(out)]) == 0
    assert (out / "report.json").stat().st_mtime_ns >= first
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    capsys.readouterr()


def test_evaluate_refuses_out_root_equal_to_the_cases_folder(case, capsys) -> None:
    assert (case / "truth").is_dir()  # the example has truth/: it is an evaluate case
    before = _tree(case.parent)
    _refused(
        ["evaluate", str(case.parent), "--segmenter", "frangi", "--out-root", str(case.parent)],
        capsys,
        "case folder",
    )
    assert _tree(case.parent) == before


def test_closed_stdout_pipe_is_a_quiet_stop(monkeypatch, capsys) -> None:
    import sys

    class ClosedPipe:
        def write(self, _s: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    rc = main(["info", str(EXAMPLE)])
    assert rc == 141
    assert capsys.readouterr().err == ""


def test_closed_pipe_through_a_real_shell_pipeline() -> None:
    import subprocess
    import sys

    # `info --json | head -c 1`: head exits after one byte, the rest hits a closed pipe.
    cmd = f'"{sys.executable}" -m angio_deploy info --json "{EXAMPLE}" | head -c 1 >/dev/null'
    for _ in range(3):
        proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
