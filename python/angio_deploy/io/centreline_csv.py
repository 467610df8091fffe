"""Centreline CSV files (CASE_FORMAT.md): ``out/centreline.csv`` and ``truth/centreline.csv``.

One row per ring, proximal (ring 0) to distal. Columns, in this order::

    ring,x_mm,y_mm,z_mm,radius_mm[,a_mm,b_mm,angle_rad]

- ``ring``: 0-based ring index (integer, strictly increasing; the writer numbers 0..N-1).
- ``x_mm, y_mm, z_mm``: centreline point in world millimetres, DICOM patient frame (LPS).
- ``radius_mm``: equivalent circular lumen radius in mm (> 0).
- ``a_mm, b_mm, angle_rad`` (optional, all three or none): where the lumen is modelled as an
  ellipse, its semi-axes in mm and the angle in radians of the ``a`` axis measured in the
  ring's cross-section frame (the frame is defined by the mesher that writes the file).

Numbers are written as the shortest text that reads back to the same float64, so a
write/read round trip is exact. The reader accepts the columns in any order (found by
name, extra columns ignored with a warning), a UTF-8 BOM and CRLF line ends.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from angio_deploy.errors import InputError, InputNotFoundError

from .atomic import atomic_write_text

log = logging.getLogger(__name__)

BASE_COLUMNS = ("ring", "x_mm", "y_mm", "z_mm", "radius_mm")
ELLIPSE_COLUMNS = ("a_mm", "b_mm", "angle_rad")
#: The ring's 3D position uncertainty, 95 % bound (mm), that a run writes (also in the VTP).
UNCERTAINTY_COLUMN = "uncertainty95_mm"
#: Further columns angio-deploy itself writes: read back without complaint, not parsed.
KNOWN_EXTRA_COLUMNS = (UNCERTAINTY_COLUMN,)


@dataclass(frozen=True, eq=False)
class Centreline:
    """A centreline read from CSV: N rings in world mm (LPS)."""

    ring: np.ndarray  # (N,) int64
    points: np.ndarray  # (N, 3) float64, mm
    radius_mm: np.ndarray  # (N,) float64
    ellipse: np.ndarray | None = None  # (N, 3) float64: a_mm, b_mm, angle_rad

    def __len__(self) -> int:
        return len(self.ring)


def _fmt(x: float) -> str:
    return repr(float(x))


def write_centreline_csv(
    path: str | Path,
    points: np.ndarray,
    radius_mm: np.ndarray,
    *,
    ellipse: np.ndarray | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write ``ring,x_mm,y_mm,z_mm,radius_mm`` (+ ``a_mm,b_mm,angle_rad`` with ``ellipse``).

    ``points`` (N, 3) world mm (LPS), ring 0 first; ``radius_mm`` (N,); ``ellipse`` (N, 3)
    semi-axis a (mm), semi-axis b (mm), angle (rad); ``extra``: more (N,) columns after
    those, by name (readers ignore columns they do not know). Written atomically; returns
    the path.
    """
    p = np.asarray(points, dtype=np.float64)
    r = np.asarray(radius_mm, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {p.shape}")
    if r.shape != (len(p),):
        raise ValueError(f"radius_mm must have shape ({len(p)},), got {r.shape}")
    cols = [p, r[:, None]]
    header = list(BASE_COLUMNS)
    if ellipse is not None:
        e = np.asarray(ellipse, dtype=np.float64)
        if e.shape != (len(p), 3):
            raise ValueError(f"ellipse must have shape ({len(p)}, 3), got {e.shape}")
        cols.append(e)
        header += ELLIPSE_COLUMNS
    for name, values in (extra or {}).items():
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (len(p),) or name in header:
            raise ValueError(f"extra column {name!r} must be new and have shape ({len(p)},)")
        cols.append(v[:, None])
        header.append(name)
    table = np.concatenate(cols, axis=1)
    if not np.all(np.isfinite(table)):
        raise ValueError("centreline values contain NaN or infinite numbers")
    lines = [",".join(header)]
    for i, row in enumerate(table.tolist()):
        lines.append(",".join([str(i), *map(_fmt, row)]))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def _column_index(path: Path, header: list[str]) -> tuple[dict[str, int], bool]:
    names = [h.strip() for h in header]
    index = {}
    for name in names:
        if names.count(name) > 1:
            raise InputError("column appears more than once", source=str(path), field=name)
    for name in BASE_COLUMNS:
        if name not in names:
            raise InputError("required column is missing", source=str(path), field=name)
        index[name] = names.index(name)
    present = [c for c in ELLIPSE_COLUMNS if c in names]
    if present and len(present) != len(ELLIPSE_COLUMNS):
        missing = next(c for c in ELLIPSE_COLUMNS if c not in names)
        raise InputError(
            "ellipse columns must come together (a_mm, b_mm, angle_rad)",
            source=str(path),
            field=missing,
        )
    for c in present:
        index[c] = names.index(c)
    for name in names:
        if name not in index and name not in KNOWN_EXTRA_COLUMNS:
            log.warning("%s: unknown column %r ignored", path, name)
    return index, bool(present)


def _parse_rows(path: Path, rows: list[tuple[int, list[str]]], index: dict[str, int]):
    """-> dict column -> float64 array, with errors naming the line and column."""
    values = {name: np.empty(len(rows)) for name in index}
    for k, (line_no, row) in enumerate(rows):
        for name, j in index.items():
            where = f"line {line_no}, column {name}"
            if j >= len(row) or not row[j].strip():
                raise InputError("value is missing", source=str(path), field=where)
            try:
                x = float(row[j])
            except ValueError:
                raise InputError(
                    f"{row[j].strip()!r} is not a number", source=str(path), field=where
                ) from None
            if not math.isfinite(x):
                raise InputError("value is not finite", source=str(path), field=where)
            values[name][k] = x
    return values


def _check_values(path: Path, values: dict[str, np.ndarray], lines: list[int]) -> np.ndarray:
    ring = values["ring"]
    bad = np.flatnonzero(ring != np.round(ring))
    if bad.size:
        raise InputError(
            "ring must be an integer", source=str(path), field=f"line {lines[bad[0]]}, column ring"
        )
    bad = np.flatnonzero(np.diff(ring) <= 0)
    if bad.size or (ring.size and ring[0] < 0):
        at = lines[bad[0] + 1] if bad.size else lines[0]
        raise InputError(
            "ring must start at 0 or above and increase strictly",
            source=str(path),
            field=f"line {at}, column ring",
        )
    for name in ("radius_mm", "a_mm", "b_mm"):
        if name in values and np.any(values[name] <= 0):
            at = lines[int(np.flatnonzero(values[name] <= 0)[0])]
            raise InputError("must be > 0", source=str(path), field=f"line {at}, column {name}")
    return ring.astype(np.int64)


def read_centreline_csv(path: str | Path) -> Centreline:
    """Read a centreline CSV (see module docstring) -> :class:`Centreline`.

    Raises InputNotFoundError if the file is missing and InputError naming the file,
    line and column for a missing column, a bad number, a non-positive radius, or rings
    that are not strictly increasing integers.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputNotFoundError("file not found", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", source=str(path)) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    if not rows:
        raise InputError("file is empty (no header line)", source=str(path))
    index, has_ellipse = _column_index(path, rows[0][1])
    body = rows[1:]
    if not body:
        raise InputError("no data rows after the header", source=str(path))
    lines = [n for n, _ in body]
    values = _parse_rows(path, body, index)
    ring = _check_values(path, values, lines)
    points = np.stack([values["x_mm"], values["y_mm"], values["z_mm"]], axis=1)
    ellipse = np.stack([values[c] for c in ELLIPSE_COLUMNS], axis=1) if has_ellipse else None
    return Centreline(ring=ring, points=points, radius_mm=values["radius_mm"], ellipse=ellipse)
