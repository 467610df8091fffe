"""Case folders (CASE_FORMAT.md): load and validate ``case.json`` and its two views.

Everything a user can get wrong here raises :class:`~angio_deploy.errors.InputError`
(or :class:`~angio_deploy.errors.InputNotFoundError`) with a message naming the file and
the JSON field, e.g. ``case/case.json: views[1].soi.end: ...``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from angio_deploy.errors import InputError, InputNotFoundError
from angio_deploy.geometry import ViewGeometry, check_view_pair
from angio_deploy.limits import (
    MAX_CASE_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_NUMBER_CHARS,
    MAX_STRING_CHARS,
    check_image_size,
)

from .images import read_plain_image

log = logging.getLogger(__name__)

CASE_FILE = "case.json"
FORMAT = "angio-case/1"
VIEW_NAMES = ("a", "b")
DICOM_SUFFIXES = (".dcm", ".dicom", "")
PLAIN_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
#: Start and end closer than this (pixels) cannot define a segment.
MIN_SOI_LENGTH_PX = 1.0

_TOP_KEYS = {"format", "id", "views", "side_branches"}
_VIEW_KEYS = {"image", "frame", "soi", "geometry"}
_SOI_KEYS = {"start", "end", "via"}
#: Most guide points one segment may carry (each is one more path search).
MAX_VIA_POINTS = 32
_ANGLE_KEYS = ("primary_angle_deg", "secondary_angle_deg", "sid_mm", "sod_mm", "pixel_spacing_mm")
_GEOMETRY_KEYS = {*_ANGLE_KEYS, "projection_matrix"}


@dataclass(frozen=True)
class SegmentPoints:
    """Start (proximal) and end (distal) of a segment in one view, pixels [u, v], and
    optional guide points ``via`` (N, 2) between them, in order, that the 2D path must
    pass near."""

    start: np.ndarray
    end: np.ndarray
    via: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start.tolist(), "end": self.end.tolist()}
        if len(self.via):
            out["via"] = self.via.tolist()
        return out


@dataclass(frozen=True, eq=False)
class CaseView:
    """One loaded view: image, geometry, segment of interest and where each came from."""

    name: str
    image_path: Path
    kind: str  # "dicom" or "image"
    image: np.ndarray  # (H, W) float32, 0 = black, 1 = white (MONOCHROME2 sense)
    geometry: ViewGeometry
    soi: SegmentPoints
    frame_index: int | None = None
    frame_count: int = 1
    frame_selection: str = "single-frame"
    header: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary used by ``angio-deploy info`` and the run report."""
        return {
            "name": self.name,
            "image": self.image_path.name,
            "kind": self.kind,
            "frame": self.frame_index,
            "frame_count": self.frame_count,
            "frame_selection": self.frame_selection,
            "size": [self.geometry.width, self.geometry.height],
            "geometry": self.geometry.to_dict(),
            "soi": self.soi.to_dict(),
            "header": dict(self.header),
        }


@dataclass(frozen=True, eq=False)
class Case:
    """A validated case folder: two views, optional side branches, and any warnings."""

    path: Path
    id: str | None
    views: tuple[CaseView, CaseView]
    side_branches: tuple[tuple[SegmentPoints, SegmentPoints], ...]
    separation_deg: float
    warnings: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "case": str(self.path),
            "id": self.id,
            "views": [v.describe() for v in self.views],
            "view_separation_deg": self.separation_deg,
            "side_branches": [[sb[0].to_dict(), sb[1].to_dict()] for sb in self.side_branches],
            "warnings": list(self.warnings),
        }


class _Ctx:
    """Where we are in case.json, for error messages and warnings."""

    def __init__(self, case_file: Path):
        self.file = case_file
        self.warnings: list[str] = []

    def error(self, field_name: str, message: str) -> InputError:
        return InputError(message, source=str(self.file), field=field_name)

    def warn(self, message: str) -> None:
        log.warning("%s: %s", self.file, message)
        self.warnings.append(message)

    def unknown_keys(self, obj: dict, allowed: set[str], where: str) -> None:
        for key in sorted(set(obj) - allowed):
            self.warn(f"{where}: unknown key {key!r} ignored")


def read_case_json(case_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """Read ``case.json`` from a case folder -> (path of case.json, parsed object)."""
    case_dir = Path(case_dir)
    if not case_dir.is_dir():
        raise InputNotFoundError("case folder does not exist", source=str(case_dir))
    case_file = case_dir / CASE_FILE
    if not case_file.is_file():
        raise InputNotFoundError(f"no {CASE_FILE} in the case folder", source=str(case_dir))
    _confine(case_dir, case_file, source=case_file, field=None)
    try:
        size = case_file.stat().st_size
        if size > MAX_CASE_JSON_BYTES:
            raise InputError(
                f"is {size:,} bytes; a case.json is at most {MAX_CASE_JSON_BYTES:,}",
                source=str(case_file),
            )
        raw = case_file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror}", source=str(case_file)) from None
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, as Windows editors write
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", source=str(case_file)) from None
    try:
        data = json.loads(
            text,
            parse_int=_json_number(int),
            parse_float=_json_number(float),
            parse_constant=_json_constant,
        )
    except json.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            source=str(case_file),
        ) from None
    except RecursionError:
        raise InputError(
            f"is nested too deeply (at most {MAX_JSON_DEPTH} levels)", source=str(case_file)
        ) from None
    except _JSONValueError as exc:
        raise InputError(str(exc), source=str(case_file)) from None
    if not isinstance(data, dict):
        raise InputError("must hold a JSON object", source=str(case_file))
    _check_json_tree(data, case_file)
    return case_file, data


class _JSONValueError(ValueError):
    pass


def _json_number(kind: type) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise _JSONValueError(f"a number of {len(text)} characters is not a plausible value")
        value = kind(text)
        if kind is int and abs(value) > 2**53:
            raise _JSONValueError(f"integer {text} is too large to be a value here")
        return value

    return parse


def _json_constant(name: str) -> float:
    raise _JSONValueError(f"{name} is not a valid JSON number")


def _check_json_tree(data: Any, case_file: Path) -> None:
    """Depth and string-length limits (limits.py), naming the first offending field."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        obj, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InputError(
                f"is nested too deeply (at most {MAX_JSON_DEPTH} levels)",
                source=str(case_file),
                field=where or None,
            )
        if isinstance(obj, str) and len(obj) > MAX_STRING_CHARS:
            raise InputError(
                f"a string of {len(obj)} characters (at most {MAX_STRING_CHARS})",
                source=str(case_file),
                field=where or None,
            )
        if isinstance(obj, dict):
            for k, v in obj.items():
                if len(k) > MAX_STRING_CHARS:
                    raise InputError(
                        f"a key of {len(k)} characters", source=str(case_file), field=where or None
                    )
                stack.append((v, f"{where}.{k}" if where else k, depth + 1))
        elif isinstance(obj, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj))


def _confine(case_dir: Path, path: Path, *, source: Path, field: str | None) -> Path:
    """``path`` with links resolved; it must lie inside the (resolved) case folder, so a
    symlink cannot lead the loader outside it."""
    try:
        real = path.resolve(strict=True)
        root = case_dir.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise InputError(f"cannot be resolved: {exc}", source=str(source), field=field) from None
    if real != root and root not in real.parents:
        raise InputError(
            f"{path.name!r} is a link to {real}, outside the case folder",
            source=str(source),
            field=field,
        )
    return real


def _require(ctx: _Ctx, obj: dict, key: str, where: str) -> Any:
    if key not in obj:
        raise ctx.error(f"{where}.{key}" if where else key, "required key is missing")
    return obj[key]


def _point(ctx: _Ctx, value: Any, where: str) -> np.ndarray:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
        or not all(math.isfinite(x) for x in value)
    ):
        raise ctx.error(where, f"must be two finite numbers [u, v] in pixels, got {value!r}")
    return np.array(value, dtype=np.float64)


def _segment(ctx: _Ctx, obj: Any, where: str, width: int, height: int) -> SegmentPoints:
    if not isinstance(obj, dict):
        raise ctx.error(where, "must be an object with 'start' and 'end'")
    ctx.unknown_keys(obj, _SOI_KEYS, where)
    start = _point(ctx, _require(ctx, obj, "start", where), f"{where}.start")
    end = _point(ctx, _require(ctx, obj, "end", where), f"{where}.end")
    for name, p in (("start", start), ("end", end)):
        if not (-0.5 <= p[0] <= width - 0.5 and -0.5 <= p[1] <= height - 0.5):
            raise ctx.error(
                f"{where}.{name}",
                f"point [{p[0]:g}, {p[1]:g}] lies outside the {width} x {height} image",
            )
    if float(np.hypot(*(end - start))) < MIN_SOI_LENGTH_PX:
        raise ctx.error(where, "start and end are the same point")
    via_obj = obj.get("via", [])
    if not isinstance(via_obj, list):
        raise ctx.error(f"{where}.via", "must be a list of [u, v] points")
    if len(via_obj) > MAX_VIA_POINTS:
        raise ctx.error(
            f"{where}.via", f"at most {MAX_VIA_POINTS} guide points, got {len(via_obj)}"
        )
    via = [_point(ctx, q, f"{where}.via[{i}]") for i, q in enumerate(via_obj)]
    for i, q in enumerate(via):
        if not (-0.5 <= q[0] <= width - 0.5 and -0.5 <= q[1] <= height - 0.5):
            raise ctx.error(
                f"{where}.via[{i}]",
                f"point [{q[0]:g}, {q[1]:g}] lies outside the {width} x {height} image",
            )
    return SegmentPoints(start, end, np.array(via, dtype=np.float64).reshape(-1, 2))


def _image_path(ctx: _Ctx, case_dir: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(where, "must be a file name relative to the case folder")
    for flavour in (PurePosixPath, PureWindowsPath):
        p = flavour(value)
        if p.is_absolute() or p.drive or p.root:
            raise ctx.error(
                where, f"{value!r} is an absolute path; give it relative to the case folder"
            )
        if ".." in p.parts:
            raise ctx.error(where, f"{value!r} leaves the case folder ('..' is not allowed)")
    path = case_dir / PurePosixPath(value.replace("\\", "/"))
    try:
        found = path.is_file()
    except OSError as exc:  # a name too long for the file system, ...
        raise ctx.error(where, f"{value!r} is not a usable file name ({exc.strerror})") from None
    if not found:
        raise InputNotFoundError(
            f"image file {value!r} not found", source=str(ctx.file), field=where
        )
    _confine(case_dir, path, source=ctx.file, field=where)
    return path


def _geometry_object(ctx: _Ctx, obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ctx.error(where, "must be an object")
    ctx.unknown_keys(obj, _GEOMETRY_KEYS, where)
    out: dict[str, Any] = {}
    if "projection_matrix" in obj:
        if any(k in obj for k in _ANGLE_KEYS):
            raise ctx.error(
                where, "give either projection_matrix or angles and distances, not both"
            )
        m = obj["projection_matrix"]
        try:
            arr = np.array(m, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.zeros(0)
        if arr.shape != (3, 4) or not np.all(np.isfinite(arr)):
            raise ctx.error(f"{where}.projection_matrix", "must be 3 rows of 4 finite numbers")
        out["projection_matrix"] = arr
        return out
    for key in _ANGLE_KEYS:
        if key not in obj:
            continue
        value = obj[key]
        if key == "pixel_spacing_mm":
            ok = (
                isinstance(value, (list, tuple))
                and len(value) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
                and all(math.isfinite(x) and x > 0 for x in value)
            )
            if not ok:
                raise ctx.error(f"{where}.{key}", "must be [row, column] spacing in mm, both > 0")
            out[key] = (float(value[0]), float(value[1]))
        else:
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise ctx.error(f"{where}.{key}", f"must be a finite number, got {value!r}")
            out[key] = float(value)
    return out


def _geometry_from_object(
    ctx: _Ctx, geo: dict[str, Any], where: str, width: int, height: int
) -> ViewGeometry:
    """Geometry for a plain image, entirely from the case.json ``geometry`` object."""
    try:
        if "projection_matrix" in geo:
            return ViewGeometry.from_matrix(
                geo["projection_matrix"], width, height, provenance={"matrix": "case.json"}
            )
        missing = [k for k in _ANGLE_KEYS if k not in geo]
        if missing:
            raise ctx.error(
                f"{where}.{missing[0]}",
                "required for a plain image (or give projection_matrix instead)",
            )
        return ViewGeometry.from_angles(
            geo["primary_angle_deg"],
            geo["secondary_angle_deg"],
            geo["sid_mm"],
            geo["sod_mm"],
            geo["pixel_spacing_mm"],
            width,
            height,
            provenance={k: "case.json" for k in _ANGLE_KEYS},
        )
    except InputError as exc:
        if exc.source:
            raise
        raise ctx.error(f"{where}.{exc.field}" if exc.field else where, exc.message) from None


def _frame(ctx: _Ctx, view: dict, where: str) -> int | None:
    if "frame" not in view or view["frame"] is None:
        return None
    f = view["frame"]
    if not isinstance(f, int) or isinstance(f, bool) or f < 0:
        raise ctx.error(f"{where}.frame", f"must be a zero-based frame index, got {f!r}")
    return f


def _load_view(ctx: _Ctx, case_dir: Path, view: Any, index: int) -> CaseView:
    where = f"views[{index}]"
    if not isinstance(view, dict):
        raise ctx.error(where, "must be an object")
    ctx.unknown_keys(view, _VIEW_KEYS, where)
    path = _image_path(ctx, case_dir, _require(ctx, view, "image", where), f"{where}.image")
    frame = _frame(ctx, view, where)
    geo = (
        _geometry_object(ctx, view["geometry"], f"{where}.geometry") if "geometry" in view else None
    )
    soi_obj = _require(ctx, view, "soi", where)
    name = VIEW_NAMES[index]

    if path.suffix.lower() in PLAIN_SUFFIXES:
        if geo is None:
            raise ctx.error(f"{where}.geometry", "required for a plain (non-DICOM) image")
        if frame not in (None, 0):
            raise ctx.error(f"{where}.frame", f"a plain image has one frame; got frame {frame}")
        image = read_plain_image(path)
        h, w = image.shape
        check_image_size(w, h, source=str(path))
        geometry = _geometry_from_object(ctx, geo, f"{where}.geometry", w, h)
        soi = _segment(ctx, soi_obj, f"{where}.soi", w, h)
        return CaseView(name, path, "image", image, geometry, soi)

    from .dicom.reader import read_xa

    if path.suffix.lower() not in DICOM_SUFFIXES:
        ctx.warn(f"{where}.image: {path.name!r} has no image suffix; reading it as DICOM")
    if geo is not None and "projection_matrix" in geo:
        xa = read_xa(path, frame, geometry=False)
        geometry = _geometry_from_object(ctx, geo, f"{where}.geometry", xa.width, xa.height)
    else:
        xa = read_xa(path, frame, geometry_overrides=geo)
        geometry = xa.geometry
    check_image_size(xa.width, xa.height, source=str(path), field="Columns x Rows")
    if geo:
        ctx.warn(f"{where}.geometry overrides the DICOM tags for {', '.join(sorted(geo))}")
    soi = _segment(ctx, soi_obj, f"{where}.soi", geometry.width, geometry.height)
    header = {
        "manufacturer": xa.manufacturer,
        "transfer_syntax": xa.transfer_syntax,
        "bits_stored": xa.bits_stored,
        "photometric": xa.photometric,
        "frame": xa.provenance.get("frame"),
    }
    return CaseView(
        name,
        path,
        "dicom",
        xa.image,
        geometry,
        soi,
        frame_index=xa.frame_index,
        frame_count=xa.frames_count,
        frame_selection=xa.frame_selection,
        header=header,
    )


def load_case(case_dir: str | Path) -> Case:
    """Load and validate a case folder (CASE_FORMAT.md): images, geometry, SOI points.

    Raises InputError / InputNotFoundError naming the file and field on any problem,
    including views closer together than the hard floor (see
    :data:`angio_deploy.geometry.MIN_SEPARATION_DEG`).
    """
    case_dir = Path(case_dir)
    case_file, data = read_case_json(case_dir)
    ctx = _Ctx(case_file)
    ctx.unknown_keys(data, _TOP_KEYS, "case.json")
    fmt = data.get("format")
    if fmt is None:
        ctx.warn(f"no 'format' key; assuming {FORMAT!r}")
    elif fmt != FORMAT:
        raise ctx.error("format", f"unsupported format {fmt!r}; this version reads {FORMAT!r}")
    case_id = data.get("id")
    if case_id is not None and not isinstance(case_id, str):
        raise ctx.error("id", "must be a string")

    views = _require(ctx, data, "views", "")
    if not isinstance(views, list) or len(views) != 2:
        n = len(views) if isinstance(views, list) else type(views).__name__
        raise ctx.error("views", f"exactly two views are needed, got {n}")
    loaded = tuple(_load_view(ctx, case_dir, v, i) for i, v in enumerate(views))

    branches = []
    sb_list = data.get("side_branches", [])
    if not isinstance(sb_list, list):
        raise ctx.error("side_branches", "must be a list")
    for k, sb in enumerate(sb_list):
        where = f"side_branches[{k}]"
        if not isinstance(sb, dict):
            raise ctx.error(where, "must be an object with 'views'")
        ctx.unknown_keys(sb, {"views"}, where)
        sbv = _require(ctx, sb, "views", where)
        if not isinstance(sbv, list) or len(sbv) != 2:
            raise ctx.error(f"{where}.views", "must give start and end in exactly two views")
        branches.append(
            tuple(
                _segment(ctx, p, f"{where}.views[{i}]", v.geometry.width, v.geometry.height)
                for i, (p, v) in enumerate(zip(sbv, loaded, strict=True))
            )
        )

    angle, pair_warnings = check_view_pair(
        loaded[0].geometry, loaded[1].geometry, source=str(case_file)
    )
    for w in pair_warnings:
        ctx.warnings.append(w)
    return Case(
        path=case_dir,
        id=case_id,
        views=loaded,  # type: ignore[arg-type]
        side_branches=tuple(branches),  # type: ignore[arg-type]
        separation_deg=angle,
        warnings=tuple(ctx.warnings),
    )
