"""Mesh files: PLY (read/write), binary STL (read/write), OBJ and VTK XML PolyData (write).

All coordinates are world millimetres in the DICOM patient frame (LPS) unless a caller
says otherwise; the writers do not transform anything. Faces are triangles given as
``(F, 3)`` vertex indices, counter-clockwise seen from outside (right-hand rule gives the
outward normal). Every writer builds the whole file in memory and writes it with
:func:`~angio_deploy.io.atomic.atomic_write_bytes`, so a reader never sees half a file.

Formats:

- PLY: ``binary_little_endian 1.0``, vertex ``x y z`` as ``double`` (truth meshes
  round-trip bit-exactly, vertex order kept), optional extra per-vertex scalar properties,
  faces as ``list uchar int vertex_indices``. :func:`read_ply` also reads ASCII and
  big-endian files with float/double vertices and any integer list type, as other tools
  write them; polygons are fan-triangulated.
- STL: binary, float32, facet normals computed from the float64 vertices, an 80-byte
  header naming angio-deploy (never starting with ``solid``).
- OBJ: text, ``v x y z`` with shortest round-trip float text, ``f i j k`` 1-based.
- VTP: VTK XML PolyData 1.0 (``byte_order="LittleEndian"``, ``header_type="UInt64"``)
  with Points, Polys, optional Lines (polylines) and PointData/FieldData arrays, either
  ``ascii`` or appended ``base64`` (each array one base64 stream of an UInt64 byte count
  followed by the data, as VTK writes uncompressed data; ``offset`` counts base64
  characters after the ``_``). ParaView and VTK read both.
"""

from __future__ import annotations

import base64
import logging
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from angio_deploy._version import __version__
from angio_deploy.errors import InputError, InputNotFoundError

from .atomic import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = [
    "STL_DTYPE",
    "facet_normals",
    "ply_bytes",
    "read_ply",
    "read_stl",
    "stl_bytes",
    "write_centreline_vtp",
    "write_obj",
    "write_ply",
    "write_stl",
    "write_vtp",
]

#: One binary STL facet record (50 bytes).
STL_DTYPE = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
STL_HEADER = f"angio-deploy {__version__} binary STL; units mm; frame world LPS".encode("ascii")

# --------------------------------------------------------------------------- helpers


def _as_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to ``(N, 3) float64`` vertices and ``(F, 3) int64`` triangles."""
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must have shape (N, 3), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("vertices contain NaN or infinite values")
    f = np.asarray(faces)
    if f.size == 0:
        f = f.reshape(0, 3)
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {f.shape}")
    if f.dtype.kind not in "iu":
        raise ValueError(f"faces must be integer indices, got {f.dtype}")
    f = f.astype(np.int64)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"face indices must lie in [0, {len(v)}), got {f.min()}..{f.max()}")
    return v, f


def facet_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals ``(F, 3)`` of triangles by the right-hand rule; zero for degenerate ones."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def _float_text(values: np.ndarray) -> list[str]:
    """Shortest text that reads back to the same float64 (Python ``repr``)."""
    return [repr(x) for x in np.asarray(values, dtype=np.float64).ravel().tolist()]


def _read_input(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputNotFoundError("file not found", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", source=str(path)) from None


# --------------------------------------------------------------------------- STL


def stl_bytes(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    """The bytes of a binary STL (float32, computed facet normals), ``84 + 50 * F`` long;
    vertices in world mm (LPS). :func:`write_stl` writes exactly these."""
    v, f = _as_mesh(vertices, faces)
    rec = np.zeros(len(f), dtype=STL_DTYPE)
    rec["normal"] = facet_normals(v, f)
    rec["vertices"] = v[f]
    header = STL_HEADER[:80].ljust(80, b" ")
    return header + struct.pack("<I", len(f)) + rec.tobytes()


def write_stl(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write a binary STL (:func:`stl_bytes`); vertices in world mm (LPS). Returns the path."""
    return atomic_write_bytes(path, stl_bytes(vertices, faces))


def read_stl(path: str | Path, *, merge: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read a binary (or ASCII) STL -> ``(vertices (N, 3) float64, faces (F, 3) int64)``.

    With ``merge`` (default) bit-identical corner positions are welded into one vertex,
    numbered in order of first appearance; otherwise every facet has its own 3 vertices.
    Stored normals are ignored (use :func:`facet_normals`). Raises InputError naming the
    file if it is not an STL.
    """
    path = Path(path)
    data = _read_input(path)
    if len(data) >= 84:
        (n,) = struct.unpack_from("<I", data, 80)
        if len(data) == 84 + 50 * n:
            rec = np.frombuffer(data, dtype=STL_DTYPE, count=n, offset=84)
            corners = rec["vertices"].reshape(-1, 3)
            return _stl_mesh(path, corners, merge)
    if data.lstrip()[:5].lower() == b"solid":
        return _stl_mesh(path, _ascii_stl_corners(path, data), merge)
    raise InputError(
        f"not an STL file: {len(data)} bytes do not match a binary STL header and the "
        "file does not start with 'solid'",
        source=str(path),
    )


_STL_VERTEX = re.compile(rb"\bvertex\s+(\S+)\s+(\S+)\s+(\S+)")


def _ascii_stl_corners(path: Path, data: bytes) -> np.ndarray:
    rows = _STL_VERTEX.findall(data)
    if len(rows) % 3:
        raise InputError(f"ASCII STL has {len(rows)} vertices, not 3 per facet", source=str(path))
    try:
        return np.array(rows, dtype="S").astype(np.float64).reshape(-1, 3)
    except ValueError as exc:
        raise InputError(f"ASCII STL has a bad number ({exc})", source=str(path)) from None


def _stl_mesh(path: Path, corners: np.ndarray, merge: bool) -> tuple[np.ndarray, np.ndarray]:
    corners = np.asarray(corners, dtype=np.float64)
    if not np.all(np.isfinite(corners)):
        raise InputError("STL has NaN or infinite coordinates", source=str(path))
    if not merge:
        return corners, np.arange(len(corners), dtype=np.int64).reshape(-1, 3)
    corners = corners + 0.0  # -0.0 -> 0.0 so both weld
    uniq, first, inverse = np.unique(corners, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    faces = rank[inverse.ravel()].reshape(-1, 3).astype(np.int64)
    return uniq[order], faces


# --------------------------------------------------------------------------- PLY writing

_NUMPY_TO_PLY = {
    "i1": "char",
    "u1": "uchar",
    "i2": "short",
    "u2": "ushort",
    "i4": "int",
    "u4": "uint",
    "f4": "float",
    "f8": "double",
}
_PLY_TO_NUMPY = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _ply_property_array(name: str, values: np.ndarray, n: int) -> np.ndarray:
    """A per-vertex array in a PLY-representable dtype (64-bit ints narrowed if they fit)."""
    if not _NAME.match(name) or name in ("x", "y", "z"):
        raise ValueError(f"bad PLY vertex property name {name!r}")
    a = np.asarray(values)
    if a.shape != (n,):
        raise ValueError(f"vertex_data[{name!r}] must have shape ({n},), got {a.shape}")
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if a.dtype.kind in "iu" and a.dtype.itemsize == 8:
        target = np.int32 if a.dtype.kind == "i" else np.uint32
        info = np.iinfo(target)
        if a.size and (a.min() < info.min or a.max() > info.max):
            raise ValueError(f"vertex_data[{name!r}] does not fit in 32 bits")
        return a.astype(target)
    if a.dtype.kind not in "iuf" or a.dtype.newbyteorder("<").str[1:] not in _NUMPY_TO_PLY:
        raise ValueError(f"vertex_data[{name!r}] has unsupported dtype {a.dtype}")
    return a


def write_ply(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    vertex_data: Mapping[str, np.ndarray] | None = None,
    comments: Iterable[str] = (),
) -> Path:
    """Write a binary little-endian PLY (:func:`ply_bytes`); vertices (world mm, LPS) as
    double, order kept. Returns the path."""
    return atomic_write_bytes(
        path, ply_bytes(vertices, faces, vertex_data=vertex_data, comments=comments)
    )


def ply_bytes(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    vertex_data: Mapping[str, np.ndarray] | None = None,
    comments: Iterable[str] = (),
) -> bytes:
    """The bytes of a binary little-endian PLY; vertices (world mm, LPS) as double, order
    kept. :func:`write_ply` writes exactly these.

    ``vertex_data`` adds per-vertex scalar properties after ``x y z`` (e.g. ``ring``
    int, ``radius_mm`` double); bool becomes uchar, 64-bit ints are narrowed to 32 bits
    when they fit. ``comments`` are extra single-line header comments.
    """
    v, f = _as_mesh(vertices, faces)
    extra = {k: _ply_property_array(k, a, len(v)) for k, a in (vertex_data or {}).items()}
    lines = ["ply", "format binary_little_endian 1.0", f"comment angio-deploy {__version__}"]
    lines.append("comment units mm; frame world LPS")
    for c in comments:
        if "\n" in c or "\r" in c:
            raise ValueError(f"PLY comment must be one line: {c!r}")
        lines.append(f"comment {c}".rstrip())
    lines += [f"element vertex {len(v)}", *(f"property double {c}" for c in "xyz")]
    fields = [(c, "<f8") for c in "xyz"]
    for name, a in extra.items():
        code = a.dtype.newbyteorder("<").str[1:]
        lines.append(f"property {_NUMPY_TO_PLY[code]} {name}")
        fields.append((name, "<" + code))
    lines += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]

    vrec = np.empty(len(v), dtype=np.dtype(fields))
    for i, c in enumerate("xyz"):
        vrec[c] = v[:, i]
    for name, a in extra.items():
        vrec[name] = a
    frec = np.empty(len(f), dtype=np.dtype([("n", "u1"), ("i", "<i4", (3,))]))
    frec["n"] = 3
    frec["i"] = f
    header = ("\n".join(lines) + "\n").encode("ascii")
    return header + vrec.tobytes() + frec.tobytes()


# --------------------------------------------------------------------------- PLY reading


@dataclass(frozen=True)
class _PlyProperty:
    name: str
    code: str  # numpy type code without byte order, e.g. "f8"
    count_code: str | None = None  # set for list properties


@dataclass(frozen=True)
class _PlyElement:
    name: str
    count: int
    props: tuple[_PlyProperty, ...]


class _PlyError(Exception):
    """Internal: a PLY problem, turned into InputError with the file name."""


def _split_header(data: bytes) -> tuple[list[str], int]:
    """Header lines (without ``ply``/``end_header``) and the offset of the body."""
    m = re.search(rb"^end_header[ \t]*\r?\n", data[: 1 << 20], flags=re.MULTILINE)
    if not data.startswith(b"ply") or m is None:
        raise _PlyError("not a PLY file (no 'ply' magic or no 'end_header' line)")
    try:
        text = data[: m.start()].decode("ascii")
    except UnicodeDecodeError:
        raise _PlyError("header is not ASCII text") from None
    lines = text.splitlines()
    if lines[0].strip() != "ply":
        raise _PlyError("first line must be 'ply'")
    return lines[1:], m.end()


def _ply_type(word: str, line: str) -> str:
    if word not in _PLY_TO_NUMPY:
        raise _PlyError(f"unknown PLY type {word!r} in header line {line!r}")
    return _PLY_TO_NUMPY[word]


def _parse_header(lines: list[str]) -> tuple[str, list[_PlyElement]]:
    fmt = None
    elements: list[tuple[str, int, list[_PlyProperty]]] = []
    for line in lines:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        key = words[0]
        if key == "format" and len(words) == 3:
            if words[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise _PlyError(f"unknown format {words[1]!r}")
            fmt = words[1]
        elif key == "element" and len(words) == 3:
            try:
                count = int(words[2])
            except ValueError:
                count = -1
            if count < 0:
                raise _PlyError(f"bad element count in header line {line!r}")
            elements.append((words[1], count, []))
        elif key == "property" and elements and len(words) == 3:
            elements[-1][2].append(_PlyProperty(words[2], _ply_type(words[1], line)))
        elif key == "property" and elements and len(words) == 5 and words[1] == "list":
            ctype, itype = _ply_type(words[2], line), _ply_type(words[3], line)
            if ctype[0] not in "iu" or itype[0] not in "iu":
                raise _PlyError(f"list count and index types must be integers: {line!r}")
            elements[-1][2].append(_PlyProperty(words[4], itype, ctype))
        else:
            raise _PlyError(f"cannot parse header line {line!r}")
    if fmt is None:
        raise _PlyError("header has no 'format' line")
    for name, _, props in elements:
        names = [p.name for p in props]
        if len(set(names)) != len(names):
            raise _PlyError(f"element {name!r} declares a property twice")
    return fmt, [_PlyElement(n, c, tuple(p)) for n, c, p in elements]


def _list_len(value: float, element: str) -> int:
    if value < 0 or value != int(value):
        raise _PlyError(f"bad list length {value} in element {element!r}")
    return int(value)


class _BinaryBody:
    """Reads elements from a binary PLY body in order."""

    def __init__(self, data: bytes, offset: int, endian: str):
        self.data, self.offset, self.endian = data, offset, endian

    def _take(self, code: str, count: int, what: str) -> np.ndarray:
        dt = np.dtype(self.endian + code)
        end = self.offset + dt.itemsize * count
        if end > len(self.data):
            raise _PlyError(f"file ends early while reading {what}")
        a = np.frombuffer(self.data, dtype=dt, count=count, offset=self.offset)
        self.offset = end
        return a

    def element(self, el: _PlyElement) -> dict[str, object]:
        if el.count == 0:
            return {p.name: np.zeros((0, 3) if p.count_code else 0, p.code) for p in el.props}
        fields = []
        start = self.offset
        for p in el.props:  # layout of the first row, assuming constant list lengths
            if p.count_code is None:
                fields.append((p.name, self.endian + p.code))
                self.offset += np.dtype(p.code).itemsize
            else:
                k = _list_len(self._take(p.count_code, 1, f"element {el.name!r}")[0], el.name)
                fields += [("#" + p.name, self.endian + p.count_code)]
                fields += [(p.name, self.endian + p.code, (k,))]
                self.offset += np.dtype(p.code).itemsize * k
        self.offset = start
        dt = np.dtype(fields)
        end = start + dt.itemsize * el.count
        if end <= len(self.data):
            rec = np.frombuffer(self.data, dtype=dt, count=el.count, offset=start)
            lists = [p for p in el.props if p.count_code]
            first = rec[0]
            if all(np.all(rec["#" + p.name] == first["#" + p.name]) for p in lists):
                self.offset = end
                return {p.name: rec[p.name] for p in el.props}
        return self._element_rows(el)

    def _element_rows(self, el: _PlyElement) -> dict[str, object]:
        out: dict[str, list] = {p.name: [] for p in el.props}
        what = f"element {el.name!r}"
        for _ in range(el.count):
            for p in el.props:
                if p.count_code is None:
                    out[p.name].append(self._take(p.code, 1, what)[0])
                else:
                    k = _list_len(self._take(p.count_code, 1, what)[0], el.name)
                    out[p.name].append(self._take(p.code, k, what))
        return {
            p.name: np.array(out[p.name]) if p.count_code is None else out[p.name] for p in el.props
        }


class _AsciiBody:
    """Reads elements from an ASCII PLY body (whitespace-separated tokens) in order."""

    def __init__(self, data: bytes, offset: int):
        self.tokens = data[offset:].split()
        self.pos = 0

    def _numbers(self, count: int, what: str) -> np.ndarray:
        end = self.pos + count
        if end > len(self.tokens):
            raise _PlyError(f"file ends early while reading {what}")
        try:
            a = np.array(self.tokens[self.pos : end], dtype="S").astype(np.float64)
        except ValueError:
            raise _PlyError(f"bad number in {what}") from None
        self.pos = end
        return a

    def element(self, el: _PlyElement) -> dict[str, object]:
        what = f"element {el.name!r}"
        if el.count == 0:
            return {p.name: np.zeros((0, 3) if p.count_code else 0, p.code) for p in el.props}
        start, widths = self.pos, []
        for p in el.props:  # layout of the first row, assuming constant list lengths
            if p.count_code is None:
                widths.append(1)
                self.pos += 1
            else:
                k = _list_len(self._numbers(1, what)[0], el.name)
                widths.append(1 + k)
                self.pos += k
        self.pos = start
        row = sum(widths)
        if start + row * el.count <= len(self.tokens):
            table = self._numbers(row * el.count, what).reshape(el.count, row)
            cols = np.cumsum([0, *widths])
            out: dict[str, object] = {}
            for p, c0, w in zip(el.props, cols[:-1], widths, strict=True):
                if p.count_code is None:
                    out[p.name] = _cast(table[:, c0], p.code, what)
                elif np.all(table[:, c0] == w - 1):
                    out[p.name] = _cast(table[:, c0 + 1 : c0 + w], p.code, what)
                else:
                    break
            else:
                return out
            self.pos = start
        return self._element_rows(el)

    def _element_rows(self, el: _PlyElement) -> dict[str, object]:
        what = f"element {el.name!r}"
        out: dict[str, list] = {p.name: [] for p in el.props}
        for _ in range(el.count):
            for p in el.props:
                if p.count_code is None:
                    out[p.name].append(self._numbers(1, what)[0])
                else:
                    k = _list_len(self._numbers(1, what)[0], el.name)
                    out[p.name].append(_cast(self._numbers(k, what), p.code, what))
        return {
            p.name: _cast(np.array(out[p.name]), p.code, what)
            if p.count_code is None
            else out[p.name]
            for p in el.props
        }


def _cast(a: np.ndarray, code: str, what: str) -> np.ndarray:
    """ASCII numbers (float64) -> the declared PLY type, checking integers and range."""
    if code[0] in "iu":
        info = np.iinfo(code)
        if not np.all(a == np.round(a)) or (a.size and (a.min() < info.min or a.max() > info.max)):
            raise _PlyError(f"value is not a valid {np.dtype(code).name} in {what}")
    return a.astype(code)


def _triangles(indices: object, n_vertices: int) -> np.ndarray:
    """Face index lists -> (F, 3) int64 triangles; polygons are fan-triangulated."""
    if isinstance(indices, np.ndarray) and indices.ndim == 2:
        polys = [indices.astype(np.int64)]
    else:
        rows = [np.asarray(r, dtype=np.int64) for r in indices]  # type: ignore[union-attr]
        polys = [r.reshape(1, -1) for r in rows]
    tris = []
    for p in polys:
        k = p.shape[1]
        if k < 3:
            raise _PlyError(f"a face has {k} vertices; at least 3 are needed")
        if k > 3:
            log.debug("fan-triangulating %d-gons", k)
        for j in range(1, k - 1):
            tris.append(np.stack([p[:, 0], p[:, j], p[:, j + 1]], axis=1))
    f = np.concatenate(tris) if tris else np.zeros((0, 3), np.int64)
    if f.size and (f.min() < 0 or f.max() >= n_vertices):
        raise _PlyError(f"face index out of range [0, {n_vertices}): {f.min()}..{f.max()}")
    return f


def _decode_ply(data: bytes) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    lines, body_start = _split_header(data)
    fmt, elements = _parse_header(lines)
    if fmt == "ascii":
        body: _AsciiBody | _BinaryBody = _AsciiBody(data, body_start)
    else:
        body = _BinaryBody(data, body_start, "<" if fmt == "binary_little_endian" else ">")
    parsed = {el.name: body.element(el) for el in elements}
    if "vertex" not in parsed:
        raise _PlyError("no 'vertex' element")
    vert = parsed["vertex"]
    missing = [c for c in "xyz" if c not in vert]
    if missing:
        raise _PlyError(f"vertex element has no {missing[0]!r} property")
    props = {p.name: p for el in elements if el.name == "vertex" for p in el.props}
    if any(props[c].count_code for c in "xyz"):
        raise _PlyError("vertex x/y/z must be scalar properties")
    v = np.stack([np.asarray(vert[c], dtype=np.float64) for c in "xyz"], axis=1)
    if not np.all(np.isfinite(v)):
        raise _PlyError("vertex coordinates contain NaN or infinite values")
    extra = {
        name: np.asarray(a).astype(np.asarray(a).dtype.newbyteorder("="))
        for name, a in vert.items()
        if name not in ("x", "y", "z") and props[name].count_code is None
    }
    face = parsed.get("face", {})
    key = next((k for k in ("vertex_indices", "vertex_index") if k in face), None)
    if face and key is None:
        raise _PlyError("face element has no 'vertex_indices' list")
    f = _triangles(face[key], len(v)) if key else np.zeros((0, 3), np.int64)
    return v, f, extra


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Read a PLY mesh -> ``(vertices (N, 3) float64, faces (F, 3) int64, vertex_data)``.

    Reads ``ascii``, ``binary_little_endian`` and ``binary_big_endian`` files with any
    scalar vertex types and integer face lists (``vertex_indices`` or ``vertex_index``);
    polygons are fan-triangulated, other elements are skipped. ``vertex_data`` holds the
    extra scalar vertex properties by name, in native byte order. Raises
    InputNotFoundError / InputError naming the file and what is wrong.
    """
    path = Path(path)
    data = _read_input(path)
    try:
        return _decode_ply(data)
    except _PlyError as exc:
        raise InputError(str(exc), source=str(path)) from None


# --------------------------------------------------------------------------- OBJ


def write_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write a Wavefront OBJ: ``v`` lines in world mm (LPS), exact float text; 1-based ``f``."""
    v, f = _as_mesh(vertices, faces)
    out = [f"# angio-deploy {__version__}; units mm; frame world LPS", "o lumen"]
    coords = _float_text(v)
    out += [f"v {coords[3 * i]} {coords[3 * i + 1]} {coords[3 * i + 2]}" for i in range(len(v))]
    out += [f"f {a} {b} {c}" for a, b, c in (f + 1).tolist()]
    return atomic_write_bytes(path, ("\n".join(out) + "\n").encode("ascii"))


# --------------------------------------------------------------------------- VTP

_VTK_TYPES = {
    "i1": "Int8",
    "u1": "UInt8",
    "i2": "Int16",
    "u2": "UInt16",
    "i4": "Int32",
    "u4": "UInt32",
    "i8": "Int64",
    "u8": "UInt64",
    "f4": "Float32",
    "f8": "Float64",
}


class _VtpArrays:
    """Formats DataArray elements; collects appended base64 blocks when binary."""

    def __init__(self, encoding: str):
        if encoding not in ("ascii", "base64"):
            raise ValueError(f"encoding must be 'ascii' or 'base64', got {encoding!r}")
        self.encoding = encoding
        self.blocks: list[str] = []
        self.offset = 0

    def element(self, name: str, values: np.ndarray, *, tuples: bool = False) -> str:
        a = np.asarray(values)
        if a.dtype == np.bool_:
            a = a.astype(np.uint8)
        code = a.dtype.newbyteorder("<").str[1:]
        if code not in _VTK_TYPES:
            raise ValueError(f"array {name!r} has unsupported dtype {a.dtype}")
        ncomp = 1 if a.ndim <= 1 else int(np.prod(a.shape[1:]))
        attrs = f'type="{_VTK_TYPES[code]}" Name={quoteattr(name)}'
        if ncomp > 1:
            attrs += f' NumberOfComponents="{ncomp}"'
        if tuples:
            attrs += f' NumberOfTuples="{a.shape[0] if a.ndim else 1}"'
        if self.encoding == "ascii":
            text = " ".join(_float_text(a) if code[0] == "f" else map(str, a.ravel().tolist()))
            return f'<DataArray {attrs} format="ascii">{text}</DataArray>'
        raw = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
        block = base64.b64encode(struct.pack("<Q", len(raw)) + raw).decode("ascii")
        element = f'<DataArray {attrs} format="appended" offset="{self.offset}"/>'
        self.blocks.append(block)
        self.offset += len(block)
        return element


def _cells(cells: Sequence[Sequence[int]] | np.ndarray, n_points: int, what: str):
    """Cell lists -> (connectivity int64, offsets int64) with range checks."""
    if isinstance(cells, np.ndarray) and cells.ndim == 2:
        conn = cells.astype(np.int64).ravel()
        offsets = np.arange(1, len(cells) + 1, dtype=np.int64) * cells.shape[1]
    else:
        seqs = [np.asarray(c, dtype=np.int64).ravel() for c in cells]
        conn = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
        offsets = np.cumsum([len(s) for s in seqs], dtype=np.int64)
    if conn.size and (conn.min() < 0 or conn.max() >= n_points):
        raise ValueError(f"{what} indices must lie in [0, {n_points})")
    return conn, offsets


def _point_data_arrays(point_data: Mapping[str, np.ndarray] | None, n: int) -> dict:
    out = {}
    for name, a in (point_data or {}).items():
        arr = np.asarray(a)
        if arr.ndim == 0 or arr.shape[0] != n:
            raise ValueError(f"point_data[{name!r}] must have {n} rows, got shape {arr.shape}")
        out[name] = arr
    return out


def write_vtp(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray | None,
    *,
    point_data: Mapping[str, np.ndarray] | None = None,
    lines: Sequence[Sequence[int]] | np.ndarray | None = None,
    field_data: Mapping[str, float | Sequence[float] | np.ndarray] | None = None,
    encoding: str = "base64",
) -> Path:
    """Write VTK XML PolyData (.vtp): points (world mm, LPS), triangles, polylines, arrays.

    ``faces`` (F, 3) become Polys (``None`` or empty for none); ``lines`` is a list of
    polylines, each a sequence of point indices; ``point_data`` maps names (e.g.
    ``radius_mm``, ``ring``) to arrays of N rows (1-D scalars or (N, k) vectors);
    ``field_data`` holds numeric whole-dataset values. ``encoding`` is ``"base64"``
    (appended, exact) or ``"ascii"`` (shortest exact float text). Returns the path.
    """
    v, f = _as_mesh(vertices, np.zeros((0, 3), np.int64) if faces is None else faces)
    pdata = _point_data_arrays(point_data, len(v))
    arrays = _VtpArrays(encoding)
    line_conn, line_off = _cells([] if lines is None else lines, len(v), "lines")
    poly_conn, poly_off = _cells(f, len(v), "faces")
    body = []
    if field_data:
        body.append("<FieldData>")
        for name, val in field_data.items():
            arr = np.atleast_1d(np.asarray(val))
            if arr.dtype.kind not in "biuf":
                raise ValueError(f"field_data[{name!r}] must be numeric")
            body.append(arrays.element(name, arr, tuples=True))
        body.append("</FieldData>")
    body.append(
        f'<Piece NumberOfPoints="{len(v)}" NumberOfVerts="0" NumberOfLines="{len(line_off)}"'
        f' NumberOfStrips="0" NumberOfPolys="{len(poly_off)}">'
    )
    if pdata:
        scalars = next((k for k, a in pdata.items() if a.ndim == 1), None)
        body.append(f"<PointData Scalars={quoteattr(scalars)}>" if scalars else "<PointData>")
        body += [arrays.element(k, a) for k, a in pdata.items()]
        body.append("</PointData>")
    body += ["<Points>", arrays.element("Points", v), "</Points>"]
    for tag, conn, off in (("Lines", line_conn, line_off), ("Polys", poly_conn, poly_off)):
        if len(off):
            body += [f"<{tag}>", arrays.element("connectivity", conn)]
            body += [arrays.element("offsets", off), f"</{tag}>"]
    body.append("</Piece>")
    xml = [
        '<?xml version="1.0"?>',
        '<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">',
        "<PolyData>",
        *body,
        "</PolyData>",
    ]
    if arrays.blocks:
        xml.append('<AppendedData encoding="base64">_' + "".join(arrays.blocks) + "</AppendedData>")
    xml.append("</VTKFile>")
    return atomic_write_bytes(path, ("\n".join(xml) + "\n").encode("utf-8"))


def write_centreline_vtp(
    path: str | Path,
    points: np.ndarray,
    radius_mm: np.ndarray,
    *,
    extra: Mapping[str, np.ndarray] | None = None,
    encoding: str = "base64",
) -> Path:
    """Write a centreline as one VTK polyline with point data ``ring`` and ``radius_mm``.

    ``points`` (N, 3) world mm (LPS) from proximal (ring 0) to distal; ``radius_mm`` (N,);
    ``extra`` adds more per-point arrays (e.g. ellipse axes). In ParaView, a Tube filter
    with "Vary Radius: By Absolute Scalar" on ``radius_mm`` shows the lumen.
    """
    p = np.asarray(points, dtype=np.float64)
    r = np.asarray(radius_mm, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or r.shape != (len(p),):
        raise ValueError(f"points must be (N, 3) and radius_mm (N,), got {p.shape}, {r.shape}")
    data = {"radius_mm": r, "ring": np.arange(len(p), dtype=np.int32), **(extra or {})}
    lines = [np.arange(len(p))] if len(p) >= 2 else None
    return write_vtp(path, p, None, point_data=data, lines=lines, encoding=encoding)
