"""Atomic outputs: single files and whole result folders (CASE_FORMAT.md, "Output").

A run writes every output into a hidden temporary sibling of the final folder and swaps it
into place only when everything succeeded, so a failed run leaves no half-written files
and never replaces an earlier good result with a partial one::

    with atomic_output_dir(case_dir / "out") as tmp:
        write_ply(tmp / "mesh.ply", vertices, faces)
        ...                      # an exception here leaves case_dir/out untouched

Single files are written to a temporary file in the same folder, flushed and fsynced, then
renamed over the target with :func:`os.replace`, which is atomic on POSIX file systems.

Windows notes (comments only; the code is the same): :func:`os.replace` replaces files
atomically on NTFS, but fails with PermissionError while another process holds the target
open (e.g. a viewer showing mesh.stl); directories cannot be renamed over an existing
directory on any platform, which is why the folder swap moves the old folder aside first,
and a folder with an open file inside cannot be renamed at all on Windows -- the swap then
fails cleanly and the old result is restored.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: Suffixes of the hidden siblings; a crash (kill -9, power loss) can leave these behind.
TMP_TAG = ".tmp-"
OLD_TAG = ".old-"


def _hidden_sibling(final: Path, tag: str) -> Path:
    return final.with_name(f".{final.name}{tag}{secrets.token_hex(4)}")


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX); a no-op where dirs cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; renames are journalled there.
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, replace.

    The file gets the usual permissions (0o666 minus the umask). On failure the temporary
    file is removed and any existing ``path`` is left as it was.
    """
    path = Path(path)
    for _ in range(100):
        tmp = _hidden_sibling(path, TMP_TAG)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 100 random collisions
        raise FileExistsError(errno.EEXIST, "could not create a temporary file", str(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` atomically (see :func:`atomic_write_bytes`); newlines are kept as given."""
    return atomic_write_bytes(path, text.encode(encoding))


def _make_temp_dir(final: Path) -> Path:
    for _ in range(100):
        tmp = _hidden_sibling(final, TMP_TAG)
        try:
            tmp.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0o700
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(  # pragma: no cover - 100 random collisions
        errno.EEXIST, "could not create a temporary folder", str(final)
    )


class _Flock:
    """An advisory ``flock`` on a folder, released on close or when the process dies.

    A writer holds one on its own temporary folder for its whole life, and one on the
    parent folder while it swaps: so a sibling that nobody holds was left by a killed run.
    Where ``fcntl`` is missing (Windows) or the folder cannot be opened, it locks nothing.
    """

    def __init__(self, path: Path, *, blocking: bool = True):
        self.fd: int | None = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError:
            os.close(fd)
            raise
        self.fd = fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> _Flock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _siblings(final: Path, tag: str) -> list[Path]:
    prefix = f".{final.name}{tag}"
    try:
        return sorted(p for p in final.parent.iterdir() if p.name.startswith(prefix))
    except OSError:
        return []


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def recover(final_dir: str | Path) -> None:
    """Repair what a killed writer left next to ``final_dir``; call under the parent lock.

    A ``.old-`` sibling is a complete earlier result moved aside by a swap that did not
    finish: if ``final_dir`` is missing it is moved back, otherwise it is deleted. A
    ``.tmp-`` sibling that no live writer holds is a partial result and is deleted.
    """
    final = Path(final_dir)
    olds = _siblings(final, OLD_TAG)
    if olds and not os.path.lexists(final):
        newest = max(olds, key=lambda p: p.stat().st_mtime_ns)
        os.replace(newest, final)
        olds.remove(newest)
        log.warning("restored %s from %s, left by an interrupted run", final, newest.name)
    for stale in olds:
        with contextlib.suppress(OSError):
            _remove(stale)
            log.info("removed %s, left by an interrupted run", stale)
    for tmp in _siblings(final, TMP_TAG):
        if not tmp.is_dir() or tmp.is_symlink():
            continue  # a single-file temp of atomic_write_bytes: not ours to judge
        try:
            held = _Flock(tmp, blocking=False)
        except OSError:
            continue  # a live writer's folder
        with held, contextlib.suppress(OSError):
            shutil.rmtree(tmp)
            log.info("removed %s, left by an interrupted run", tmp)


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; an existing ``final`` is moved aside, then deleted.

    If the second rename fails the old folder is renamed back, so ``final`` holds either
    the old or the new result, never a mix. (Between the two renames ``final`` is briefly
    absent; POSIX has no atomic exchange of non-empty directories short of renameat2. A
    kill there leaves the old result in a ``.old-`` sibling, which :func:`recover` moves
    back on the next write.)
    """
    if not os.path.lexists(final):
        os.replace(tmp, final)
        return
    backup = _hidden_sibling(final, OLD_TAG)
    os.replace(final, backup)
    try:
        os.replace(tmp, final)
    except BaseException:
        try:
            os.replace(backup, final)
        except OSError:
            log.error("could not restore %s; the previous result is kept in %s", final, backup)
        raise
    try:
        _remove(backup)
    except OSError as exc:
        log.warning("new result is in place but the old one could not be removed: %s", exc)


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove temporary folder %s: %s", path, exc)


@contextlib.contextmanager
def atomic_output_dir(
    final_dir: str | Path,
    *,
    overwrite: bool = True,
    check: Callable[[Path], object] | None = None,
) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``final_dir`` atomically.

    The temporary folder is a hidden sibling (``.<name>.tmp-<random>``) on the same file
    system. If the ``with`` body raises, the temporary folder is deleted, the exception
    propagates and an existing ``final_dir`` is left byte-identical. If the swap itself
    fails, the old ``final_dir`` is restored. Parents of ``final_dir`` are created.

    Concurrent writers of one folder each finish with a complete result in place (the
    swaps are serialised by a lock on the parent folder; the last one wins), and what a
    killed writer left is repaired first (:func:`recover`). ``check(final)`` is called
    before the body and again under the lock just before the swap: it raises to refuse
    the target (e.g. :func:`angio_deploy.io.output_dir.check_output_dir`).

    Raises FileExistsError if ``final_dir`` exists and ``overwrite`` is false (checked
    before and after the body), and NotADirectoryError if it exists and is not a folder.
    """
    final = Path(final_dir).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    with _Flock(final.parent):
        recover(final)
        _check_target(final, overwrite, check)
        # Created and locked under the parent lock: recover() runs only under that lock,
        # so another writer can never see this folder unheld and take it for a dead run's.
        tmp = _make_temp_dir(final)
        try:
            tmp_lock = _Flock(tmp)
        except BaseException:
            _remove_tree(tmp)
            raise
    try:
        with tmp_lock:
            yield tmp
            with _Flock(final.parent):
                recover(final)
                _check_target(final, overwrite, check)
                _swap_into_place(tmp, final)
    except BaseException:
        _remove_tree(tmp)
        raise
    _fsync_dir(final.parent)
    log.debug("wrote %s", final)


def _check_target(final: Path, overwrite: bool, check: Callable[[Path], object] | None) -> None:
    if check is not None:
        check(final)
    if not os.path.lexists(final):
        return
    if not final.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, "output path exists and is not a folder", str(final)
        )
    if not overwrite:
        raise FileExistsError(
            errno.EEXIST, "output folder exists (overwrite not allowed)", str(final)
        )
