"""The output folder rule (CASE_FORMAT.md, "Output"): replace an earlier result and
nothing else, survive a kill between the swap's renames, and let concurrent writers both
finish with a complete result."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from angio_deploy.errors import OutputError
from angio_deploy.io.atomic import atomic_output_dir, recover
from angio_deploy.io.output_dir import REPORT_FORMAT, check_output_dir, is_result_dir


def _result(path: Path, tag: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "report.json").write_text(json.dumps({"format": REPORT_FORMAT, "tag": tag}))
    (path / "mesh.ply").write_text(f"mesh {tag}")
    return path


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_new_empty_and_earlier_result_folders_are_accepted(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "new" / "deeper") == (tmp_path / "new" / "deeper")
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty")
    check_output_dir(_result(tmp_path / "old", "1"))
    assert is_result_dir(tmp_path / "old") and not is_result_dir(tmp_path / "empty")


@pytest.mark.parametrize(
    "report",
    [None, "not json", json.dumps({"format": "angio-case/1"}), json.dumps([1, 2])],
)
def test_folder_with_other_files_is_refused_and_kept(tmp_path: Path, report) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "x").write_text("keep")
    if report is not None:
        (d / "report.json").write_text(report)
    with pytest.raises(OutputError, match="not an earlier result") as err:
        check_output_dir(d)
    assert err.value.exit_code == 73 and str(d) in str(err.value)
    assert (d / "x").read_text() == "keep"


def test_case_folder_and_its_ancestors_are_refused(tmp_path: Path) -> None:
    case = tmp_path / "cases" / "c1"
    case.mkdir(parents=True)
    (case / "case.json").write_text("{}")
    with pytest.raises(OutputError, match="is the case folder"):
        check_output_dir(case, case_dir=case)
    with pytest.raises(OutputError, match="contains the case folder"):
        check_output_dir(tmp_path / "cases", case_dir=case)
    # Even when the ancestor is reached through a symlink or "..".
    os.symlink(tmp_path / "cases", tmp_path / "link")
    with pytest.raises(OutputError, match="contains the case folder"):
        check_output_dir(tmp_path / "link" / "c1" / "..", case_dir=case)
    check_output_dir(case / "out", case_dir=case)  # the default is fine


def test_file_in_the_way_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("data")
    with pytest.raises(OutputError, match="not a folder"):
        check_output_dir(f)
    with pytest.raises(OutputError, match="is not a folder"):
        check_output_dir(f / "under")
    assert f.read_text() == "data"


_KILL_BETWEEN_RENAMES = """
import os, signal, sys
from pathlib import Path
from angio_deploy.io import atomic

real = os.replace
def replace(src, dst):
    real(src, dst)
    if ".old-" in os.fspath(dst):  # the old result moved aside: die before the new moves in
        os.kill(os.getpid(), signal.SIGKILL)
atomic.os.replace = replace
with atomic.atomic_output_dir(sys.argv[1]) as tmp:
    (tmp / "report.json").write_text("new")
"""


def test_kill_between_the_renames_loses_nothing(tmp_path: Path) -> None:
    out = _result(tmp_path / "out", "old")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.run([sys.executable, "-c", _KILL_BETWEEN_RENAMES, str(out)], check=False)
    assert proc.returncode == -9
    assert not out.exists()  # the moment the kill hit: the old result is aside
    assert [n.split("-")[0] for n in _hidden(tmp_path)] == [".out.old", ".out.tmp"]

    # The next writer repairs it first; here it fails, and the old result is back intact.
    def failing_write() -> None:
        with atomic_output_dir(out) as tmp:
            (tmp / "report.json").write_text("half")
            raise RuntimeError("stage failed")

    with pytest.raises(RuntimeError):
        failing_write()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _hidden(tmp_path) == []


def test_recover_after_kill_with_new_result_in_place(tmp_path: Path) -> None:
    out = _result(tmp_path / "out", "new")
    _result(tmp_path / ".out.old-1234abcd", "old")  # killed after the second rename
    (tmp_path / ".out.tmp-deadbeef").mkdir()  # killed while writing
    recover(out)
    assert json.loads((out / "report.json").read_text())["tag"] == "new"
    assert _hidden(tmp_path) == []


def test_live_writers_temporary_folder_is_not_touched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        (tmp / "report.json").write_text("being written")
        recover(out)  # another writer's cleanup while this one is busy
        assert (tmp / "report.json").exists()
    assert (out / "report.json").read_text() == "being written"


def _writer(out: str, tag: str, n: int) -> None:
    for k in range(n):
        with atomic_output_dir(out) as tmp:
            (tmp / "mesh.ply").write_text(f"{tag}{k}")
            (tmp / "report.json").write_text(json.dumps({"format": REPORT_FORMAT, "tag": tag}))


def test_concurrent_writers_both_succeed_and_leave_a_complete_result(tmp_path: Path) -> None:
    out = str(_result(tmp_path / "out", "old"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(out, t, 15)) for t in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    tag = json.loads(Path(out, "report.json").read_text())["tag"]
    assert tag in "ab" and Path(out, "mesh.ply").read_text() == f"{tag}14"
    assert _hidden(tmp_path) == []


def test_new_temporary_folder_is_never_seen_unheld(tmp_path: Path, monkeypatch) -> None:
    """Regression (CI): a second writer's recover() ran between the first writer's mkdir
    and its lock, took the fresh folder for a dead run's and deleted it under it."""
    import threading

    from angio_deploy.io import atomic

    out = tmp_path / "out"
    made = atomic._make_temp_dir
    other_done = threading.Event()

    def make_then_let_another_writer_clean_up(final: Path) -> Path:
        tmp = made(final)

        def other_writer() -> None:
            with atomic._Flock(final.parent):  # what a concurrent atomic_output_dir does
                recover(final)
            other_done.set()

        threading.Thread(target=other_writer, daemon=True).start()
        # The parent lock is still held here, so the other writer must wait for it.
        assert not other_done.wait(0.3)
        return tmp

    monkeypatch.setattr(atomic, "_make_temp_dir", make_then_let_another_writer_clean_up)
    with atomic_output_dir(out) as tmp:
        assert other_done.wait(10)  # it ran once we held our own folder's lock
        assert tmp.is_dir()
        (tmp / "report.json").write_text(json.dumps({"format": REPORT_FORMAT}))
    assert is_result_dir(out)
