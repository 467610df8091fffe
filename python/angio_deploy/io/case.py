"""Cases (CASE_FORMAT.md): a case folder's ``case.json`` and two views, or the same
content handed over in memory, validated by one path.

:func:`load_case` reads a folder; :func:`case_from_memory` takes :class:`MemoryView`
objects (numpy arrays, pydicom Datasets or DICOM bytes, with geometry and segment points)
from a host application. Both build the same case document (case.json's structure) and
validate it with the same functions (:func:`_build_case`), so every check and every
error is shared: only where an image comes from differs (:class:`_FolderImages`,
:class:`_MemoryImages`).

Everything a user can get wrong here raises :class:`~angio_deploy.errors.InputError`
(or :class:`~angio_deploy.errors.InputNotFoundError`) with a message naming the file and
the JSON field, e.g. ``case/case.json: views[1].soi.end: ...``; for a case in memory the
source is ``<memory:CASE_ID>`` and the fields are the same.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Protocol

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

from .images import image_from_array, read_plain_image

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
    """A validated case: two views, optional side branches, and any warnings.

    ``path`` is the case folder, or for a case built in memory a label
    (``<memory:CASE_ID>``) that messages and the report name it by; it is no file, and
    :attr:`folder` is then None."""

    path: Path
    id: str | None
    views: tuple[CaseView, CaseView]
    side_branches: tuple[tuple[SegmentPoints, SegmentPoints], ...]
    separation_deg: float
    warnings: tuple[str, ...] = ()
    in_memory: bool = False

    @property
    def folder(self) -> Path | None:
        """The case folder on disk (an output folder may not be or contain it); None for a
        case built in memory."""
        return None if self.in_memory else self.path

    @property
    def source(self) -> str:
        """What messages name the case by: the folder, or ``<memory:CASE_ID>``."""
        return str(self.path)

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
    """Where we are in the case document, for error messages and warnings: ``file`` is
    the case.json (or the in-memory label), ``origin`` what the geometry provenance
    names ("case.json" or "caller")."""

    def __init__(self, case_file: Path | str, origin: str = "case.json"):
        self.file = case_file
        self.origin = origin
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
    """Read ``case.json`` from a case folder -> (path of case.json, parsed object); its
    content is checked by :func:`_build_case` (depth and string limits included)."""
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


def _check_json_tree(data: Any, case_file: Path | str) -> None:
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


@dataclass(frozen=True, eq=False)
class _Image:
    """Where one view's pixels come from: ``path`` names it in messages (a file, or a
    ``<memory:...>`` label); ``dicom`` is what :func:`read_xa` reads (a path, a Dataset
    or bytes), or None for a plain image, which ``read_plain`` decodes."""

    path: Path
    kind: str  # "image", "array" or "dicom"
    dicom: Any = None
    read_plain: Callable[[], np.ndarray] | None = None


class _Images(Protocol):
    def open(self, ctx: _Ctx, value: Any, where: str) -> _Image: ...


class _FolderImages:
    """Images named in case.json, relative to the case folder (never outside it)."""

    def __init__(self, case_dir: Path):
        self.case_dir = case_dir

    def open(self, ctx: _Ctx, value: Any, where: str) -> _Image:
        path = _image_path(ctx, self.case_dir, value, where)
        if path.suffix.lower() in PLAIN_SUFFIXES:
            return _Image(path, "image", read_plain=lambda: read_plain_image(path))
        if path.suffix.lower() not in DICOM_SUFFIXES:
            ctx.warn(f"{where}: {path.name!r} has no image suffix; reading it as DICOM")
        return _Image(path, "dicom", dicom=path)


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
                geo["projection_matrix"], width, height, provenance={"matrix": ctx.origin}
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
            provenance={k: ctx.origin for k in _ANGLE_KEYS},
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


def _load_view(ctx: _Ctx, images: _Images, view: Any, index: int) -> CaseView:
    where = f"views[{index}]"
    if not isinstance(view, dict):
        raise ctx.error(where, "must be an object")
    ctx.unknown_keys(view, _VIEW_KEYS, where)
    src = images.open(ctx, _require(ctx, view, "image", where), f"{where}.image")
    path = src.path
    frame = _frame(ctx, view, where)
    geo = (
        _geometry_object(ctx, view["geometry"], f"{where}.geometry") if "geometry" in view else None
    )
    soi_obj = _require(ctx, view, "soi", where)
    name = VIEW_NAMES[index]

    if src.read_plain is not None:
        if geo is None:
            raise ctx.error(f"{where}.geometry", "required for a plain (non-DICOM) image")
        if frame not in (None, 0):
            raise ctx.error(f"{where}.frame", f"a plain image has one frame; got frame {frame}")
        image = src.read_plain()
        h, w = image.shape
        check_image_size(w, h, source=str(path))
        geometry = _geometry_from_object(ctx, geo, f"{where}.geometry", w, h)
        soi = _segment(ctx, soi_obj, f"{where}.soi", w, h)
        return CaseView(name, path, src.kind, image, geometry, soi)

    from .dicom.reader import read_xa

    label = str(path)
    if geo is not None and "projection_matrix" in geo:
        xa = read_xa(src.dicom, frame, geometry=False, label=label)
        geometry = _geometry_from_object(ctx, geo, f"{where}.geometry", xa.width, xa.height)
    else:
        xa = read_xa(src.dicom, frame, geometry_overrides=geo, label=label)
        geometry = xa.geometry
    check_image_size(xa.width, xa.height, source=label, field="Columns x Rows")
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


def _build_case(
    ctx: _Ctx, data: dict[str, Any], images: _Images, path: Path, *, in_memory: bool = False
) -> Case:
    """Validate a case document (case.json's structure) into a :class:`Case`: the one
    path every case goes through, from a folder or from memory."""
    _check_json_tree(data, ctx.file)
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
    loaded = tuple(_load_view(ctx, images, v, i) for i, v in enumerate(views))

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
        loaded[0].geometry, loaded[1].geometry, source=str(ctx.file)
    )
    for w in pair_warnings:
        ctx.warnings.append(w)
    return Case(
        path=path,
        id=case_id,
        views=loaded,  # type: ignore[arg-type]
        side_branches=tuple(branches),  # type: ignore[arg-type]
        separation_deg=angle,
        warnings=tuple(ctx.warnings),
        in_memory=in_memory,
    )


def load_case(case_dir: str | Path) -> Case:
    """Load and validate a case folder (CASE_FORMAT.md): images, geometry, SOI points.

    Raises InputError / InputNotFoundError naming the file and field on any problem,
    including views closer together than the hard floor (see
    :data:`angio_deploy.geometry.MIN_SEPARATION_DEG`).
    """
    case_dir = Path(case_dir)
    case_file, data = read_case_json(case_dir)
    return _build_case(_Ctx(case_file), data, _FolderImages(case_dir), case_dir)


# --------------------------------------------------------------------------- in memory

#: The source label of a case built in memory (``<memory:CASE_ID>``, ``<memory>``).
MEMORY_LABEL = "<memory{}>"
#: At most this many characters of the case id go into the label.
_LABEL_ID_CHARS = 64


@dataclass(frozen=True, eq=False)
class MemoryView:
    """One view handed over in memory (the counterpart of a case.json ``views[i]``).

    ``image``: a 2-D numpy array (integers of any width are stored values over
    ``bits_stored`` bits, default the dtype's; floats in [0, 1]; ``photometric``
    "MONOCHROME1" means white = 0, default "MONOCHROME2"), a pydicom ``Dataset`` or the
    bytes of an XA DICOM file (pixel format and photometric then come from its tags).

    ``soi``: the segment of interest, pixels [u = column, v = row]: ``{"start": [u, v],
    "end": [u, v], "via": [[u, v], ...]}`` (``via`` optional guide points) or a
    ``(start, end)`` pair. ``geometry``: a dict with case.json's keys
    (``primary_angle_deg``, ``secondary_angle_deg``, ``sid_mm``, ``sod_mm``,
    ``pixel_spacing_mm`` [row, column] mm) or a 3x4 projection matrix (world LPS mm ->
    pixels, GEOMETRY.md); required for an array, for DICOM it overrides the tags.
    ``frame``: zero-based frame of a multi-frame DICOM (None: the one with the strongest
    vessel contrast). Arrays may be any array-like numpy accepts for the points.
    """

    image: Any
    soi: Any = None
    geometry: Any = None
    frame: int | None = None
    photometric: str | None = None
    bits_stored: int | None = None


class _MemoryImages:
    """Images handed over in :class:`MemoryView` objects (the document's ``image`` value
    is the view's index)."""

    def __init__(self, views: Sequence[MemoryView], label: str):
        self.views = views
        self.label = label

    def open(self, ctx: _Ctx, value: Any, where: str) -> _Image:
        view = self.views[value]
        name = f"view_{VIEW_NAMES[value]}"
        path = Path(f"{self.label}/{name}")
        img = view.image
        from pydicom.dataset import Dataset

        if isinstance(img, (Dataset, bytes, bytearray, memoryview)):
            for key in ("photometric", "bits_stored"):
                if getattr(view, key) is not None:
                    raise ctx.error(
                        f"{where[: -len('.image')]}.{key}",
                        "comes from the DICOM tags; give it for an array only",
                    )
            return _Image(path, "dicom", dicom=img)
        if isinstance(img, np.ndarray):
            return _Image(
                path,
                "array",
                read_plain=lambda: image_from_array(
                    img,
                    photometric=view.photometric or "MONOCHROME2",
                    bits_stored=view.bits_stored,
                    source=str(ctx.file),
                    field=where,
                ),
            )
        raise ctx.error(
            where,
            "must be a 2-D numpy array, a pydicom Dataset or the bytes of a DICOM file, "
            f"got {type(img).__name__}",
        )


def _plain(value: Any) -> Any:
    """numpy arrays and scalars as the lists and numbers json.loads would give, so the
    case.json checks apply to them unchanged."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _segment_document(value: Any) -> Any:
    """A segment as case.json writes it: a ``(start, end)`` pair becomes {start, end}."""
    value = _plain(value)
    if isinstance(value, list) and len(value) == 2:
        return {"start": value[0], "end": value[1]}
    return value


def _geometry_document(value: Any) -> Any:
    if value is None or isinstance(value, Mapping):
        return _plain(value)
    return {"projection_matrix": _plain(value)}


def case_from_memory(
    views: Sequence[MemoryView],
    *,
    case_id: str | None = None,
    side_branches: Sequence[Sequence[Any]] = (),
) -> Case:
    """A validated case from data in memory: two :class:`MemoryView` (view a, view b),
    optional side branches (each a pair of segments, view a's and view b's, in
    :class:`MemoryView` ``soi``'s forms) and an id.

    The same checks and the same errors as :func:`load_case` (one validation path); they
    name the source ``<memory:CASE_ID>`` and the case.json field (``views[1].soi.end``,
    ``side_branches[0].views[1]``, ...). The case's ``path`` is that label and its
    ``folder`` None.
    """
    label = MEMORY_LABEL.format(
        f":{case_id[:_LABEL_ID_CHARS]}" if isinstance(case_id, str) and case_id else ""
    )
    ctx = _Ctx(label, origin="caller")
    views = list(views) if isinstance(views, (list, tuple)) else views
    if not isinstance(views, list) or len(views) != 2:
        n = len(views) if isinstance(views, list) else type(views).__name__
        raise ctx.error("views", f"exactly two views are needed, got {n}")
    for i, v in enumerate(views):
        if not isinstance(v, MemoryView):
            raise ctx.error(f"views[{i}]", f"must be a MemoryView, got {type(v).__name__}")
    doc: dict[str, Any] = {"format": FORMAT, "id": case_id, "views": []}
    for i, v in enumerate(views):
        view_doc: dict[str, Any] = {"image": i}
        if v.soi is not None:  # None: missing, the error a case.json without it gives
            view_doc["soi"] = _segment_document(v.soi)
        if v.geometry is not None:
            view_doc["geometry"] = _geometry_document(v.geometry)
        if v.frame is not None:
            view_doc["frame"] = _plain(v.frame)
        doc["views"].append(view_doc)
    if side_branches:
        doc["side_branches"] = [
            {"views": [_segment_document(p) for p in sb]} if isinstance(sb, (list, tuple)) else sb
            for sb in side_branches
        ]
    if doc["id"] is None:
        del doc["id"]
    return _build_case(ctx, doc, _MemoryImages(views, label), Path(label), in_memory=True)
