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
from collections.abc import Iterator
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


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; an existing ``final`` is moved aside, then deleted.

    If the second rename fails the old folder is renamed back, so ``final`` holds either
    the old or the new result, never a mix. (Between the two renames ``final`` is briefly
    absent; POSIX has no atomic exchange of non-empty directories short of renameat2.)
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
        if backup.is_dir() and not backup.is_symlink():
            shutil.rmtree(backup)
        else:
            backup.unlink()
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
def atomic_output_dir(final_dir: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``final_dir`` atomically.

    The temporary folder is a hidden sibling (``.<name>.tmp-<random>``) on the same file
    system. If the ``with`` body raises, the temporary folder is deleted, the exception
    propagates and an existing ``final_dir`` is left byte-identical. If the swap itself
    fails, the old ``final_dir`` is restored. Parents of ``final_dir`` are created.

    Raises FileExistsError if ``final_dir`` exists and ``overwrite`` is false (checked
    before and after the body), and NotADirectoryError if it exists and is not a folder.
    """
    final = Path(final_dir).absolute()
    _check_target(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temp_dir(final)
    try:
        yield tmp
        _check_target(final, overwrite)
        _swap_into_place(tmp, final)
    except BaseException:
        _remove_tree(tmp)
        raise
    _fsync_dir(final.parent)
    log.debug("wrote %s", final)


def _check_target(final: Path, overwrite: bool) -> None:
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
