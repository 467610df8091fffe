"""sha256 of files (models, checkpoints), computed once per (path, size, mtime) and shared
by every caller: the runtime's model checks, the exporters and the training checkpoints."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

_LOCK = threading.Lock()
_CACHE: dict[tuple[str, int, int], str] = {}


def file_key(path: str | Path) -> tuple[str, int, int]:
    """(real path, size, mtime in ns): changes when the file is replaced or edited."""
    real = os.path.realpath(path)
    st = os.stat(real)
    return real, st.st_size, st.st_mtime_ns


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file; cached until the file's size or modification time changes."""
    key = file_key(path)
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with open(key[0], "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _LOCK:
        _CACHE[key] = digest
    return digest


def clear_hash_cache() -> None:
    with _LOCK:
        _CACHE.clear()
