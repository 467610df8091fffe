"""Projection geometry of one XA frame from its tags: C-arm angles, distances, pixel spacing.

Every value carries its provenance (the tag, functional group or rule it came from).

* Pixel spacing fallback (GEOMETRY.md): ImagerPixelSpacing (0018,1164); then
  FieldOfViewDimensions (0018,1149) / (Rows, Columns); then PixelSpacing (0028,0030) x
  SID / SOD; then the caller's ``pixel_spacing_mm``; otherwise an :class:`InputError`.
  FieldOfViewDimensions is read like PixelSpacing: first value the row (vertical,
  between-rows) extent, divided by Rows; second the column (horizontal) extent, divided by
  Columns. One value (or FieldOfViewShape ROUND / HEXAGONAL: a diameter) spans the shorter
  image side, giving square pixels.
* Rotational runs: when PositionerPrimaryAngleIncrement (0018,1520) /
  PositionerSecondaryAngleIncrement (0018,1521) hold one value per frame, frame k's angle
  is the base angle plus the cumulative sum of increments 0..k ("incremental change ... for
  each frame", PS3.3 C.8.7.5). A geometry tag missing at the top level is looked up in the
  selected frame's PerFrameFunctionalGroupsSequence item, then the shared one (Enhanced
  XA); SOD falls back to DistanceSourceToIsocenter (0018,9402) there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from angio_deploy.errors import InputError
from angio_deploy.geometry.view import ViewGeometry

from .elements import PixelFormat, tag_label

logger = logging.getLogger(__name__)

OVERRIDE_SOURCE = "case.json geometry (overrides the tags)"
"""Provenance of a value that a case.json ``geometry`` object supplied."""


def _nested_items(ds: Dataset, frame_index: int) -> list[tuple[Dataset, str]]:
    """(dataset, description) pairs to search: top level, per-frame group, shared group."""
    places: list[tuple[Dataset, str]] = [(ds, "")]
    for seq_kw, pick in (
        ("PerFrameFunctionalGroupsSequence", frame_index),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        seq = ds.get(seq_kw)
        if not seq or pick >= len(seq):
            continue
        group = seq[pick]
        for elem in group:
            if elem.VR == "SQ" and elem.value:
                places.append((elem.value[0], f"{seq_kw}[{pick}] > {elem.keyword} > "))
    return places


def _find(ds: Dataset, keyword: str, frame_index: int) -> tuple[Any, str] | None:
    """A non-empty value of keyword (top level first, then functional groups) and its place."""
    for item, where in _nested_items(ds, frame_index):
        value = item.get(keyword)
        if (
            value is not None
            and value != ""
            and not (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 0)
        ):
            return value, where + tag_label(keyword)
    return None


def _as_floats(value: Any, label: str, path: Path) -> list[float]:
    values = (
        list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    )
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InputError(f"is not a number: {value!r}", source=str(path), field=label) from exc
    if not all(math.isfinite(v) for v in out):
        raise InputError(f"is not finite: {value!r}", source=str(path), field=label)
    return out


def _required_number(
    ds: Dataset, keywords: Sequence[str], frame_index: int, path: Path, *, positive: bool
) -> tuple[float, str]:
    """First value found among keywords (mm or degrees) and where it came from."""
    for kw in keywords:
        hit = _find(ds, kw, frame_index)
        if hit is None:
            continue
        value, where = hit
        v = _as_floats(value, where, path)[0]
        if positive and not v > 0:
            raise InputError(f"must be positive, got {v}", source=str(path), field=where)
        return v, where
    names = " or ".join(tag_label(k) for k in keywords)
    raise InputError(
        "is missing (needed for the projection geometry)", source=str(path), field=names
    )


def _angle(
    ds: Dataset, keyword: str, inc_keyword: str, frame_index: int, frames: int, path: Path
) -> tuple[float, str]:
    """Positioner angle (degrees) of the selected frame, with per-frame increments if given."""
    base, where = _required_number(ds, [keyword], frame_index, path, positive=False)
    inc = ds.get(inc_keyword)
    if inc is None or inc == "" or frames == 1:
        return base, where
    incs = _as_floats(inc, tag_label(inc_keyword), path)
    if len(incs) != frames:
        logger.warning(
            "%s: %s has %d values for %d frames; ignored",
            path,
            tag_label(inc_keyword),
            len(incs),
            frames,
        )
        return base, f"{where} ({tag_label(inc_keyword)} ignored: {len(incs)} values)"
    delta = float(np.sum(incs[: frame_index + 1]))
    return base + delta, (
        f"{where} + cumulative {tag_label(inc_keyword)} to frame {frame_index} ({delta:+g} deg)"
    )


def _fov_spacing(
    value: Any, shape: str, rows: int, cols: int, label: str, path: Path
) -> tuple[float, float]:
    """Row/column spacing (mm) from FieldOfViewDimensions (mm), see module docstring."""
    dims = _as_floats(value, label, path)
    if not dims or min(dims) <= 0:
        raise InputError(f"must be positive, got {value!r}", source=str(path), field=label)
    if len(dims) >= 2 and shape not in ("ROUND", "HEXAGONAL"):
        return dims[0] / rows, dims[1] / cols
    s = dims[0] / min(rows, cols)
    return s, s


def _pixel_spacing(
    ds: Dataset,
    frame_index: int,
    path: Path,
    rows: int,
    cols: int,
    sid: float,
    sod: float,
    caller: tuple[float, float] | None,
) -> tuple[tuple[float, float], str]:
    """Detector-plane pixel spacing (row, column) in mm and its source, GEOMETRY.md order."""
    hit = _find(ds, "ImagerPixelSpacing", frame_index)
    if hit is not None:
        vals = _as_floats(hit[0], hit[1], path)
        if len(vals) == 2 and min(vals) > 0:
            return (vals[0], vals[1]), hit[1]
        raise InputError(
            f"must be two positive numbers, got {hit[0]!r}", source=str(path), field=hit[1]
        )
    hit = _find(ds, "FieldOfViewDimensions", frame_index)
    if hit is not None:
        shape = str(ds.get("FieldOfViewShape", "") or "").strip().upper()
        ps = _fov_spacing(hit[0], shape, rows, cols, hit[1], path)
        how = f"{hit[1]} / (Rows, Columns) (fallback 2; FieldOfViewShape {shape or 'absent'})"
        logger.warning("%s: ImagerPixelSpacing missing; pixel spacing %s mm from %s", path, ps, how)
        return ps, how
    hit = _find(ds, "PixelSpacing", frame_index)
    if hit is not None:
        vals = _as_floats(hit[0], hit[1], path)
        if len(vals) != 2 or min(vals) <= 0:
            raise InputError(
                f"must be two positive numbers, got {hit[0]!r}", source=str(path), field=hit[1]
            )
        ps = (vals[0] * sid / sod, vals[1] * sid / sod)
        how = f"{hit[1]} x SID/SOD (fallback 3, isocenter calibration)"
        logger.warning("%s: pixel spacing %s mm from %s", path, ps, how)
        return ps, how
    if caller is not None:
        ps = (float(caller[0]), float(caller[1]))
        if not (min(ps) > 0 and all(math.isfinite(v) for v in ps)):
            raise InputError(
                f"must be two positive numbers, got {caller!r}", field="pixel_spacing_mm"
            )
        logger.warning("%s: no pixel spacing tags; using caller's %s mm", path, ps)
        return ps, "caller-supplied pixel_spacing_mm (fallback 4)"
    names = ", ".join(
        tag_label(k) for k in ("ImagerPixelSpacing", "FieldOfViewDimensions", "PixelSpacing")
    )
    raise InputError(
        "no pixel spacing: none of the tags is present and no pixel_spacing_mm was given",
        source=str(path),
        field=names,
    )


def view_geometry(
    ds: Dataset,
    path: Path,
    fmt: PixelFormat,
    frame_index: int,
    pixel_spacing_mm: tuple[float, float] | None,
    overrides: dict[str, Any] | None = None,
) -> ViewGeometry:
    """ViewGeometry of the selected frame from the XA Positioner / Acquisition tags.

    Angles in degrees, distances in mm, ``pixel_spacing_mm`` (row, column; mm at the
    detector) used only when no spacing tag is present. ``overrides`` (keys
    primary_angle_deg, secondary_angle_deg, sid_mm, sod_mm, pixel_spacing_mm) replace the
    corresponding tags; provenance says so.
    """
    ov = overrides or {}
    prov: dict[str, str] = {}

    def value(key: str, read: Any) -> Any:
        if key in ov:
            prov[key] = OVERRIDE_SOURCE
            return ov[key]
        v, prov[key] = read()
        return v

    a = value(
        "primary_angle_deg",
        lambda: _angle(
            ds,
            "PositionerPrimaryAngle",
            "PositionerPrimaryAngleIncrement",
            frame_index,
            fmt.frames,
            path,
        ),
    )
    b = value(
        "secondary_angle_deg",
        lambda: _angle(
            ds,
            "PositionerSecondaryAngle",
            "PositionerSecondaryAngleIncrement",
            frame_index,
            fmt.frames,
            path,
        ),
    )
    sid = value(
        "sid_mm",
        lambda: _required_number(
            ds, ["DistanceSourceToDetector"], frame_index, path, positive=True
        ),
    )
    sod = value(
        "sod_mm",
        lambda: _required_number(
            ds,
            ["DistanceSourceToPatient", "DistanceSourceToIsocenter"],
            frame_index,
            path,
            positive=True,
        ),
    )
    if not sod < sid:
        raise InputError(
            f"source-to-isocenter distance {sod} mm ({prov['sod_mm']}) must be less than "
            f"source-to-detector distance {sid} mm",
            source=str(path),
            field=prov["sod_mm"],
        )
    ps = value(
        "pixel_spacing_mm",
        lambda: _pixel_spacing(
            ds, frame_index, path, fmt.rows, fmt.columns, sid, sod, pixel_spacing_mm
        ),
    )
    prov["size"] = f"{tag_label('Columns')} x {tag_label('Rows')}"
    try:
        return ViewGeometry.from_angles(a, b, sid, sod, ps, fmt.columns, fmt.rows, provenance=prov)
    except InputError as exc:  # a range check: name the tag (or override) it came from
        if exc.source:
            raise
        field = prov.get(exc.field or "", exc.field)
        raise InputError(exc.message, source=str(path), field=field) from None
