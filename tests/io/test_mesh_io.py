"""Mesh files: PLY/STL/OBJ/VTP writers and the PLY/STL readers (angio_deploy.io.mesh_io)."""

from __future__ import annotations

import base64
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from angio_deploy.errors import InputError, InputNotFoundError
from angio_deploy.io.mesh_io import (
    STL_DTYPE,
    facet_normals,
    read_ply,
    read_stl,
    write_centreline_vtp,
    write_obj,
    write_ply,
    write_stl,
    write_vtp,
)


def capped_tube(rings: int = 6, per_ring: int = 10, radius: float = 1.5, length: float = 10.0):
    """Closed tube along +z: ``rings * per_ring`` wall vertices then two cap centres.

    Faces are counter-clockwise seen from outside, so normals point outward.
    """
    theta = 2 * np.pi * np.arange(per_ring) / per_ring
    z = np.linspace(0.0, length, rings)
    ring_xy = radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    wall = np.concatenate([np.column_stack([ring_xy, np.full(per_ring, zi)]) for zi in z])
    v = np.vstack([wall, [0.0, 0.0, 0.0], [0.0, 0.0, length]])
    idx = np.arange(rings * per_ring).reshape(rings, per_ring)
    faces = []
    for i in range(rings - 1):
        for j in range(per_ring):
            a, b = idx[i, j], idx[i, (j + 1) % per_ring]
            c, d = idx[i + 1, j], idx[i + 1, (j + 1) % per_ring]
            faces += [(a, b, d), (a, d, c)]
    start, end = len(wall), len(wall) + 1
    for j in range(per_ring):
        faces.append((start, idx[0, (j + 1) % per_ring], idx[0, j]))
        faces.append((end, idx[-1, j], idx[-1, (j + 1) % per_ring]))
    return v, np.array(faces, dtype=np.int64)


def signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    t = v[f]
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def assert_manifold(v: np.ndarray, f: np.ndarray) -> None:
    manifold3d = pytest.importorskip("manifold3d")
    mesh = manifold3d.Mesh(
        vert_properties=np.ascontiguousarray(v, dtype=np.float32),
        tri_verts=np.ascontiguousarray(f, dtype=np.uint32),
    )
    assert manifold3d.Manifold(mesh).status() == manifold3d.Error.NoError


@pytest.fixture
def tube() -> tuple[np.ndarray, np.ndarray]:
    v, f = capped_tube()
    # Shift to world-like coordinates with values that are not short decimals.
    rng = np.random.default_rng(7)
    v = v + np.array([-31.7, 112.3, -845.1]) + rng.normal(scale=1e-3, size=v.shape)
    return v, f


def test_test_tube_is_closed_and_outward() -> None:
    v, f = capped_tube()
    assert signed_volume(v, f) > 0
    assert_manifold(v, f)


# --------------------------------------------------------------------------- PLY


def test_ply_round_trip_is_exact_and_keeps_order(tmp_path: Path, tube) -> None:
    v, f = tube
    ring = np.repeat(np.arange(6), 10)
    ring = np.concatenate([ring, [-1, -1]]).astype(np.int64)
    radius = np.linspace(1.0, 2.0, len(v))
    path = write_ply(
        tmp_path / "mesh.ply", v, f, vertex_data={"ring": ring, "radius_mm": radius}, comments=["x"]
    )
    v2, f2, extra = read_ply(path)
    assert v2.dtype == np.float64 and f2.dtype == np.int64
    np.testing.assert_array_equal(v2, v)  # bit-exact, same order
    np.testing.assert_array_equal(f2, f)
    assert list(extra) == ["ring", "radius_mm"]
    assert extra["ring"].dtype == np.int32
    np.testing.assert_array_equal(extra["ring"], ring)
    np.testing.assert_array_equal(extra["radius_mm"], radius)
    data = path.read_bytes()
    header, _, _ = data.partition(b"end_header\n")
    assert b"format binary_little_endian 1.0\n" in header
    assert b"property double x\nproperty double y\nproperty double z\n" in header
    assert b"property int ring\nproperty double radius_mm\n" in header
    assert b"property list uchar int vertex_indices\n" in header
    assert b"comment x\n" in header
    body = len(data) - len(header) - len(b"end_header\n")
    assert body == len(v) * (3 * 8 + 4 + 8) + len(f) * (1 + 3 * 4)
    assert_manifold(v2, f2)


def test_ply_without_extras(tmp_path: Path, tube) -> None:
    v, f = tube
    v2, f2, extra = read_ply(write_ply(tmp_path / "m.ply", v, f))
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(f2, f)
    assert extra == {}


def test_ply_writer_rejects_bad_input(tmp_path: Path, tube) -> None:
    v, f = tube
    with pytest.raises(ValueError, match="face indices"):
        write_ply(tmp_path / "m.ply", v, f + len(v))
    with pytest.raises(ValueError, match="NaN"):
        write_ply(tmp_path / "m.ply", np.full_like(v, np.nan), f)
    with pytest.raises(ValueError, match="shape"):
        write_ply(tmp_path / "m.ply", v, f, vertex_data={"r": np.ones(3)})
    with pytest.raises(ValueError, match="one line"):
        write_ply(tmp_path / "m.ply", v, f, comments=["a\nb"])
    assert not (tmp_path / "m.ply").exists()


ASCII_PLY = """ply\r
format ascii 1.0\r
comment written by hand\r
element vertex 5\r
property float x\r
property float y\r
property float z\r
property uchar label\r
element face 2\r
property list uchar int vertex_indices\r
end_header\r
0 0 0 1\r
1 0 0 2\r
1 1 0 3\r
0 1 0.1 4\r
0.5 0.5 2.5 5\r
4 0 1 2 3\r
3 0 1 4\r
"""


def test_ascii_ply_with_quad_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "hand.ply"
    path.write_bytes(ASCII_PLY.encode("ascii"))
    v, f, extra = read_ply(path)
    assert v.shape == (5, 3)
    np.testing.assert_array_equal(v[3], [0, 1, np.float32(0.1)])
    np.testing.assert_array_equal(v[4], [0.5, 0.5, 2.5])
    # The quad is fan-triangulated, then the triangle follows.
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [0, 1, 4]])
    np.testing.assert_array_equal(extra["label"], [1, 2, 3, 4, 5])
    assert extra["label"].dtype == np.uint8


def test_ascii_ply_with_double_and_int_list(tmp_path: Path) -> None:
    text = (
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty double x\nproperty double y\n"
        "property double z\nelement face 1\nproperty list int int vertex_index\nend_header\n"
        "0.1 -2.5e-3 123.456789012345678\n1 0 0\n0 1 0\n3 0 1 2\n"
    )
    path = tmp_path / "d.ply"
    path.write_text(text)
    v, f, _ = read_ply(path)
    assert v[0].tolist() == [0.1, -2.5e-3, 123.456789012345678]
    np.testing.assert_array_equal(f, [[0, 1, 2]])


def _big_endian_ply() -> tuple[bytes, np.ndarray]:
    verts = np.array([[0, 0, 0], [2, 0, 0], [2, 2, 0], [0, 2, 0], [1, 1, 3]], dtype=">f4")
    header = (
        b"ply\nformat binary_big_endian 1.0\ncomment other tool\n"
        b"element vertex 5\nproperty float x\nproperty float y\nproperty float z\n"
        b"property short id\n"
        b"element face 3\nproperty list uchar int vertex_indices\nproperty uchar flag\n"
        b"element edge 1\nproperty int vertex1\nproperty int vertex2\n"
        b"end_header\n"
    )
    body = b"".join(struct.pack(">3fh", *row, 100 + i) for i, row in enumerate(verts.tolist()))
    body += struct.pack(">B4iB", 4, 0, 3, 2, 1, 7)  # a quad (ragged lists -> row parser)
    body += struct.pack(">B3iB", 3, 0, 1, 4, 7)
    body += struct.pack(">B3iB", 3, 1, 2, 4, 7)
    body += struct.pack(">2i", 0, 1)
    return header + body, verts.astype(np.float64)


def test_big_endian_ply_with_ragged_faces_and_extra_element(tmp_path: Path) -> None:
    data, verts = _big_endian_ply()
    path = tmp_path / "be.ply"
    path.write_bytes(data)
    v, f, extra = read_ply(path)
    np.testing.assert_array_equal(v, verts)
    np.testing.assert_array_equal(f, [[0, 3, 2], [0, 2, 1], [0, 1, 4], [1, 2, 4]])
    np.testing.assert_array_equal(extra["id"], [100, 101, 102, 103, 104])
    assert extra["id"].dtype.isnative


def test_big_endian_ply_with_uniform_triangles(tmp_path: Path) -> None:
    v0, f0 = capped_tube(3, 5)
    header = (
        f"ply\nformat binary_big_endian 1.0\nelement vertex {len(v0)}\n"
        "property double x\nproperty double y\nproperty double z\n"
        f"element face {len(f0)}\nproperty list uchar uint vertex_indices\nend_header\n"
    ).encode()
    frec = np.empty(len(f0), dtype=[("n", "u1"), ("i", ">u4", (3,))])
    frec["n"], frec["i"] = 3, f0
    path = tmp_path / "be2.ply"
    path.write_bytes(header + v0.astype(">f8").tobytes() + frec.tobytes())
    v, f, _ = read_ply(path)
    np.testing.assert_array_equal(v, v0)
    np.testing.assert_array_equal(f, f0)


_GOOD_HEADER = (
    "ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n"
    "property float y\nproperty float z\nelement face 1\n"
    "property list uchar int vertex_indices\nend_header\n"
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"solid not a ply\n", "not a PLY file"),
        (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n", "end_header"),
        (_GOOD_HEADER.encode() + b"\0" * 20, "ends early"),
        (
            _GOOD_HEADER.encode() + np.zeros(9, "<f4").tobytes() + struct.pack("<B3i", 3, 0, 1, 9),
            "out of range",
        ),
        (_GOOD_HEADER.replace("float x", "quad x").encode(), "unknown PLY type"),
        (
            _GOOD_HEADER.replace("list uchar", "list char").encode()
            + np.zeros(9, "<f4").tobytes()
            + struct.pack("<b3i", -1, 0, 1, 2),
            "bad list length",
        ),
        (_GOOD_HEADER.replace("float x", "float w").encode() + b"\0" * 60, "no 'x'"),
        (_GOOD_HEADER.replace("binary_little_endian", "binary_middle").encode(), "format"),
        (b"ply\nelement vertex 0\nend_header\n", "no 'format'"),
        (
            b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
            b"property float z\nend_header\n1 2 banana\n",
            "bad number",
        ),
        (
            b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
            b"property float z\nelement face 1\nproperty list uchar int vertex_indices\n"
            b"end_header\n0 0 0 1 0 0 0 1 0\n2 0 1\n",
            "at least 3",
        ),
        (
            b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
            b"property float z\nend_header\n1 2 nan\n",
            "NaN",
        ),
    ],
)
def test_malformed_ply_names_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.ply"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_ply(path)
    assert str(path) in str(info.value)
    assert info.value.source == str(path)


def test_missing_ply_is_input_not_found(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"nothere\.ply"):
        read_ply(tmp_path / "nothere.ply")


# --------------------------------------------------------------------------- STL


def test_stl_binary_layout_and_outward_normals(tmp_path: Path, tube) -> None:
    v, f = tube
    path = write_stl(tmp_path / "mesh.stl", v, f)
    data = path.read_bytes()
    assert len(data) == 84 + 50 * len(f)
    assert data[:12] == b"angio-deploy" and not data.startswith(b"solid")
    assert struct.unpack_from("<I", data, 80)[0] == len(f)
    rec = np.frombuffer(data, dtype=STL_DTYPE, offset=84)
    np.testing.assert_allclose(np.linalg.norm(rec["normal"], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(rec["vertices"], v[f].astype(np.float32))
    # Outward: wall normals point away from the tube axis, cap normals along -z / +z.
    centroid = v[f].mean(axis=1)
    axis_pt = np.array([-31.7, 112.3, 0.0])
    n = rec["normal"].astype(np.float64)
    wall = np.abs(n[:, 2]) < 0.5
    radial = centroid[wall] - axis_pt
    radial[:, 2] = 0
    assert np.all(np.einsum("ij,ij->i", n[wall], radial) > 0)
    caps = ~wall
    assert np.all(np.sign(n[caps, 2]) == np.where(centroid[caps, 2] < v[:, 2].mean(), -1, 1))
    np.testing.assert_allclose(n, facet_normals(v, f), atol=1e-6)


def test_stl_read_back_welds_to_closed_manifold(tmp_path: Path, tube) -> None:
    v, f = tube
    v2, f2 = read_stl(write_stl(tmp_path / "mesh.stl", v, f))
    assert v2.shape == v.shape and f2.shape == f.shape
    # Welding numbers vertices by first appearance; map back and compare.
    np.testing.assert_array_equal(v2[f2], v[f].astype(np.float32).astype(np.float64))
    assert signed_volume(v2, f2) > 0
    assert_manifold(v2, f2)
    corners, soup = read_stl(tmp_path / "mesh.stl", merge=False)
    assert corners.shape == (3 * len(f), 3)
    np.testing.assert_array_equal(soup, np.arange(3 * len(f)).reshape(-1, 3))


def test_ascii_stl_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a.stl"
    path.write_text(
        "solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\n"
        "endloop\nendfacet\nendsolid t\n"
    )
    v, f = read_stl(path)
    np.testing.assert_array_equal(v, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(f, [[0, 1, 2]])


def test_bad_stl_names_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.stl"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(InputError, match="not an STL") as info:
        read_stl(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- OBJ


def test_obj_parses_back(tmp_path: Path, tube) -> None:
    v, f = tube
    path = write_obj(tmp_path / "mesh.obj", v, f)
    verts, faces = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:]])
        elif line.startswith("f "):
            faces.append([int(x) for x in line.split()[1:]])
    np.testing.assert_array_equal(np.array(verts), v)  # exact float text
    np.testing.assert_array_equal(np.array(faces) - 1, f)
    assert min(min(r) for r in faces) == 1


# --------------------------------------------------------------------------- VTP


def _vtp_arrays(path: Path) -> tuple[ET.Element, dict[str, np.ndarray]]:
    """Parse a .vtp and decode every DataArray (ascii or appended base64) by a path key."""
    text = path.read_text(encoding="utf-8")
    root = ET.fromstring(text)
    assert root.tag == "VTKFile" and root.get("type") == "PolyData"
    assert root.get("byte_order") == "LittleEndian"
    appended = root.find("AppendedData")
    raw = ""
    if appended is not None:
        assert appended.get("encoding") == "base64"
        assert root.get("header_type") == "UInt64"
        raw = appended.text.strip()
        assert raw[0] == "_"
        raw = raw[1:]
    types = {"Float64": "<f8", "Float32": "<f4", "Int64": "<i8", "Int32": "<i4", "UInt8": "u1"}
    out = {}
    for parent in root.iter():
        for da in parent.findall("DataArray"):
            dt = np.dtype(types[da.get("type")])
            if da.get("format") == "ascii":
                values = np.array(da.text.split(), dtype=np.float64).astype(dt)
            else:
                assert da.get("format") == "appended"
                start = int(da.get("offset"))
                head = base64.b64decode(raw[start : start + 12])
                nbytes = struct.unpack("<Q", head[:8])[0]
                nchars = 4 * ((8 + nbytes + 2) // 3)
                block = base64.b64decode(raw[start : start + nchars])
                assert len(block) == 8 + nbytes
                values = np.frombuffer(block[8:], dtype=dt)
            ncomp = int(da.get("NumberOfComponents", "1"))
            if ncomp > 1:
                values = values.reshape(-1, ncomp)
            out[f"{parent.tag}/{da.get('Name')}"] = values
    return root, out


@pytest.mark.parametrize("encoding", ["base64", "ascii"])
def test_vtp_mesh_round_trip(tmp_path: Path, tube, encoding: str) -> None:
    v, f = tube
    radius = np.linspace(0.5, 2.5, len(v))
    ring = np.arange(len(v), dtype=np.int32) // 10
    path = write_vtp(
        tmp_path / "mesh.vtp",
        v,
        f,
        point_data={
            "radius_mm": radius,
            "ring": ring,
            "normal": np.tile([0.0, 0.0, 1.0], (len(v), 1)),
        },
        field_data={"mean_radius_mm": 1.5},
        encoding=encoding,
    )
    root, arrays = _vtp_arrays(path)
    piece = root.find("PolyData/Piece")
    assert piece is not None
    assert int(piece.get("NumberOfPoints")) == len(v)
    assert int(piece.get("NumberOfPolys")) == len(f)
    assert int(piece.get("NumberOfLines")) == 0
    assert root.find("PolyData/Piece/PointData").get("Scalars") == "radius_mm"
    np.testing.assert_array_equal(arrays["Points/Points"], v)
    np.testing.assert_array_equal(arrays["Polys/connectivity"], f.ravel())
    np.testing.assert_array_equal(arrays["Polys/offsets"], 3 * np.arange(1, len(f) + 1))
    np.testing.assert_array_equal(arrays["PointData/radius_mm"], radius)
    np.testing.assert_array_equal(arrays["PointData/ring"], ring)
    assert arrays["PointData/normal"].shape == (len(v), 3)
    np.testing.assert_array_equal(arrays["FieldData/mean_radius_mm"], [1.5])
    fd = root.find("PolyData/FieldData/DataArray")
    assert fd.get("NumberOfTuples") == "1"


def test_centreline_vtp_is_one_polyline(tmp_path: Path) -> None:
    t = np.linspace(0, 1, 100)
    pts = np.column_stack([10 * t, np.sin(3 * t), -200 + t])
    radius = 1.5 - 0.5 * t
    path = write_centreline_vtp(tmp_path / "cl.vtp", pts, radius, extra={"a_mm": radius + 0.1})
    root, arrays = _vtp_arrays(path)
    piece = root.find("PolyData/Piece")
    assert piece.get("NumberOfPoints") == "100"
    assert piece.get("NumberOfLines") == "1" and piece.get("NumberOfPolys") == "0"
    np.testing.assert_array_equal(arrays["Lines/connectivity"], np.arange(100))
    np.testing.assert_array_equal(arrays["Lines/offsets"], [100])
    np.testing.assert_array_equal(arrays["Points/Points"], pts)
    np.testing.assert_array_equal(arrays["PointData/radius_mm"], radius)
    np.testing.assert_array_equal(arrays["PointData/ring"], np.arange(100))
    np.testing.assert_array_equal(arrays["PointData/a_mm"], radius + 0.1)


def test_vtp_rejects_bad_point_data(tmp_path: Path, tube) -> None:
    v, f = tube
    with pytest.raises(ValueError, match="rows"):
        write_vtp(tmp_path / "m.vtp", v, f, point_data={"r": np.ones(3)})
    with pytest.raises(ValueError, match="encoding"):
        write_vtp(tmp_path / "m.vtp", v, f, encoding="raw")
