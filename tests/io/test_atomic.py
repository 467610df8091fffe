"""Atomic output folders and files (angio_deploy.io.atomic)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from angio_deploy.io import atomic
from angio_deploy.io.atomic import atomic_output_dir, atomic_write_bytes, atomic_write_text


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture
def old_result(tmp_path: Path) -> Path:
    out = tmp_path / "case" / "out"
    out.mkdir(parents=True)
    (out / "mesh.ply").write_bytes(b"old mesh\x00\x01")
    (out / "sub").mkdir()
    (out / "sub" / "report.json").write_text('{"old": true}')
    return out


def test_first_run_creates_folder_and_parents(tmp_path: Path) -> None:
    final = tmp_path / "a" / "b" / "out"
    with atomic_output_dir(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.startswith(".out.tmp-")
        assert not final.exists()
        (tmp / "mesh.stl").write_bytes(b"new")
    assert snapshot(final) == {"mesh.stl": b"new"}
    assert hidden(final.parent) == []


def test_success_replaces_old_result(old_result: Path) -> None:
    with atomic_output_dir(old_result) as tmp:
        (tmp / "mesh.ply").write_bytes(b"new mesh")
        assert snapshot(old_result)["mesh.ply"] == b"old mesh\x00\x01"  # untouched until the end
    assert snapshot(old_result) == {"mesh.ply": b"new mesh"}
    assert hidden(old_result.parent) == []


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_exception_inside_leaves_old_result(old_result: Path, exc_type: type) -> None:
    before = snapshot(old_result)

    def failing_run() -> None:
        with atomic_output_dir(old_result) as tmp:
            (tmp / "mesh.ply").write_bytes(b"half")
            raise exc_type("stage failed")

    with pytest.raises(exc_type):
        failing_run()
    assert snapshot(old_result) == before
    assert hidden(old_result.parent) == []


def test_failed_rename_into_place_restores_old(old_result: Path, monkeypatch) -> None:
    before = snapshot(old_result)
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst, *args, **kwargs):
        calls.append((Path(src).name, Path(dst).name))
        if ".tmp-" in Path(src).name:  # the new result moving into place
            raise OSError(5, "simulated I/O error")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", flaky_replace)
    monkeypatch.setattr(os, "rename", flaky_replace)
    with pytest.raises(OSError, match="simulated"), atomic_output_dir(old_result) as tmp:
        (tmp / "mesh.ply").write_bytes(b"new mesh")
    assert snapshot(old_result) == before
    assert hidden(old_result.parent) == []
    # old moved aside, new failed, old moved back
    assert [c[1] for c in calls][-1] == "out" and len(calls) == 3


def test_failed_move_aside_leaves_old(old_result: Path, monkeypatch) -> None:
    before = snapshot(old_result)

    def failing_replace(src, dst, *args, **kwargs):
        raise PermissionError(13, "in use")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError), atomic_output_dir(old_result) as tmp:
        (tmp / "mesh.ply").write_bytes(b"new mesh")
    assert snapshot(old_result) == before
    assert hidden(old_result.parent) == []


def test_no_overwrite(old_result: Path) -> None:
    before = snapshot(old_result)
    with pytest.raises(FileExistsError), atomic_output_dir(old_result, overwrite=False):
        pytest.fail("body must not run")
    assert snapshot(old_result) == before


def test_no_overwrite_when_created_meanwhile(tmp_path: Path) -> None:
    final = tmp_path / "out"

    def racing_run() -> None:
        with atomic_output_dir(final, overwrite=False) as tmp:
            (tmp / "x").write_text("new")
            final.mkdir()
            (final / "y").write_text("someone else")

    with pytest.raises(FileExistsError):
        racing_run()
    assert snapshot(final) == {"y": b"someone else"}
    assert hidden(tmp_path) == []


def test_output_path_that_is_a_file(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.write_text("not a folder")
    with pytest.raises(NotADirectoryError), atomic_output_dir(final):
        pytest.fail("body must not run")
    assert final.read_text() == "not a folder"


def test_atomic_write_bytes_and_text(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    atomic_write_text(path, '{"a": 1}\n')
    assert path.read_bytes() == b'{"a": 1}\n'
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert hidden(tmp_path) == []
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_write_failure_keeps_old_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "mesh.stl"
    path.write_bytes(b"old")

    def failing_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert hidden(tmp_path) == []
