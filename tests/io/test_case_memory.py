"""Cases built in memory (case_from_memory): the same checks and errors as a case folder,
images of any numeric dtype, pydicom Datasets and DICOM bytes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image

from angio_deploy.errors import InputError
from angio_deploy.io.case import MemoryView, case_from_memory, load_case

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "example_case"


def memory_views(case_dir: Path, doc: dict[str, Any]) -> list[MemoryView]:
    """The views of a PNG case document as MemoryView objects (images as uint8 arrays)."""
    out = []
    for v in doc["views"]:
        img = np.asarray(Image.open(case_dir / v["image"]))
        out.append(
            MemoryView(img, soi=v.get("soi"), geometry=v.get("geometry"), frame=v.get("frame"))
        )
    return out


def test_memory_case_equals_the_folder(png_case) -> None:
    case_dir = png_case()
    doc = json.loads((case_dir / "case.json").read_text())
    folder = load_case(case_dir)
    mem = case_from_memory(memory_views(case_dir, doc), case_id=doc["id"])
    assert mem.id == "png-case" and mem.in_memory and mem.folder is None
    assert str(mem.path) == mem.source == "<memory:png-case>"
    assert folder.folder == case_dir and not folder.in_memory
    for a, b in zip(folder.views, mem.views, strict=True):
        assert np.array_equal(a.image, b.image) and a.image.dtype == b.image.dtype
        assert np.array_equal(a.geometry.P, b.geometry.P)
        assert np.array_equal(a.soi.start, b.soi.start) and np.array_equal(a.soi.end, b.soi.end)
        assert b.kind == "array" and b.geometry.provenance["sid_mm"] == "caller"
    assert mem.separation_deg == folder.separation_deg
    assert mem.warnings == folder.warnings == ()
    json.dumps(mem.describe())


# (where, value): view k's soi/geometry/frame edits, as tests/io/test_case.py makes them.
EDITS = [
    (0, "soi", {"start": [400.0, 10.0], "end": [210.0, 126.5]}),
    (1, "soi", {"start": [40.0, 128.0], "end": [-3.0, 10.0]}),
    (0, "soi", {"start": [40.0, 128.0], "end": [40.0, 128.0]}),
    (0, "soi", {"start": [1.0], "end": [210.0, 126.5]}),
    (1, "soi", None),
    (0, "soi", {"start": [40.0, 128.0], "end": [210.0, 126.5], "via": [[400.0, 10.0]]}),
    (1, "soi", {"start": [40.0, 128.0], "end": [210.0, 126.5], "via": [10.0, 20.0]}),
    (0, "soi", {"start": [40.0, 128.0], "end": [210.0, 126.5], "via": [[5.0, 5.0]] * 33}),
    (0, "geometry", None),
    (0, "geometry", {"sid_mm": 1000.0}),
    (0, "geometry", {"projection_matrix": [[1.0, 2.0]]}),
    (0, "frame", 3),
    (0, "frame", -1),
]


@pytest.mark.parametrize(("k", "key", "value"), EDITS)
def test_same_errors_as_a_case_folder(png_case, k, key, value) -> None:
    case_dir = png_case()
    doc = json.loads((case_dir / "case.json").read_text())
    bad = copy.deepcopy(doc)
    if value is None:
        bad["views"][k].pop(key, None)
    else:
        bad["views"][k][key] = value
    (case_dir / "case.json").write_text(json.dumps(bad))
    with pytest.raises(InputError) as from_folder:
        load_case(case_dir)
    with pytest.raises(InputError) as from_memory:
        case_from_memory(memory_views(case_dir, bad), case_id="bad")
    f, m = from_folder.value, from_memory.value
    assert (m.field, m.message) == (f.field, f.message)
    assert m.source == "<memory:bad>" and m.exit_code == f.exit_code == 65


def test_views_too_close_and_side_branches_same_errors(png_case) -> None:
    case_dir = png_case()
    doc = json.loads((case_dir / "case.json").read_text())
    views = memory_views(case_dir, doc)
    close = dict(doc["views"][1]["geometry"], primary_angle_deg=25.0, secondary_angle_deg=20.0)
    with pytest.raises(InputError, match="degrees apart") as err:
        case_from_memory([views[0], MemoryView(views[1].image, views[1].soi, geometry=close)])
    assert err.value.field == "views" and err.value.source == "<memory>"
    good = {"start": [40.0, 128.0], "end": [100.0, 60.0]}
    with pytest.raises(InputError, match="outside") as err:
        case_from_memory(views, side_branches=[(good, {"start": [40.0, 128.0], "end": [999, 1]})])
    assert err.value.field == "side_branches[0].views[1].end"
    with pytest.raises(InputError, match="exactly two views") as err:
        case_from_memory(views, side_branches=[(good,)])
    assert err.value.field == "side_branches[0].views"
    with pytest.raises(InputError, match="exactly two views are needed, got 1"):
        case_from_memory(views[:1])
    with pytest.raises(InputError, match="must be a string"):
        case_from_memory(views, case_id=7)  # type: ignore[arg-type]


def test_points_as_arrays_pairs_and_via(png_case) -> None:
    case_dir = png_case()
    doc = json.loads((case_dir / "case.json").read_text())
    v = memory_views(case_dir, doc)
    start, end = np.float32([40.0, 128.0]), np.array([210.0, 126.5])
    branch = (
        {"start": np.array([60.0, 128.0]), "end": [90.0, 60.0], "via": np.array([[70.0, 100.0]])},
        ([60.0, 128.0], [90.0, 70.0]),
    )
    case = case_from_memory(
        [MemoryView(v[0].image, (start, end), geometry=v[0].geometry), v[1]],
        side_branches=[branch],
    )
    np.testing.assert_array_equal(case.views[0].soi.start, [40.0, 128.0])
    assert case.views[0].soi.via.shape == (0, 2)
    (ba, bb) = case.side_branches[0]
    np.testing.assert_array_equal(ba.via, [[70.0, 100.0]])
    np.testing.assert_array_equal(bb.end, [90.0, 70.0])


def test_geometry_as_a_projection_matrix(png_case) -> None:
    case_dir = png_case()
    doc = json.loads((case_dir / "case.json").read_text())
    folder = load_case(case_dir)
    v = memory_views(case_dir, doc)
    mats = [
        MemoryView(x.image, x.soi, geometry=c.geometry.P)
        for x, c in zip(v, folder.views, strict=True)
    ]
    case = case_from_memory(mats)
    for a, b in zip(folder.views, case.views, strict=True):
        np.testing.assert_allclose(
            b.geometry.P / b.geometry.P[2, 3], a.geometry.P / a.geometry.P[2, 3]
        )
        assert b.geometry.provenance["matrix"] == "caller"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint64])
def test_integer_dtypes_map_like_dicom_pixels(png_case, dtype) -> None:
    case_dir = png_case()
    doc = json.loads((case_dir / "case.json").read_text())
    v = memory_views(case_dir, doc)
    info = np.iinfo(dtype)
    bits = 12 if info.bits >= 16 else 8
    lo = -(1 << (bits - 1)) if info.min < 0 else 0
    raw = (lo + v[0].image.astype(np.int64) * ((1 << bits) - 1) // 255).astype(dtype)
    case = case_from_memory([MemoryView(raw, v[0].soi, v[0].geometry, bits_stored=bits), v[1]])
    img = case.views[0].image
    assert img.dtype == np.float32 and img.shape == raw.shape
    expected = (raw.astype(np.float64) - lo) / ((1 << bits) - 1)
    np.testing.assert_allclose(img, expected, atol=1e-6)
    mono1 = case_from_memory(
        [
            MemoryView(raw, v[0].soi, v[0].geometry, bits_stored=bits, photometric="MONOCHROME1"),
            v[1],
        ]
    )
    np.testing.assert_allclose(mono1.views[0].image, 1.0 - img, atol=1e-6)


def test_float_images_and_bad_images(png_case) -> None:
    case_dir = png_case()
    doc = json.loads((case_dir / "case.json").read_text())
    v = memory_views(case_dir, doc)
    f = v[0].image.astype(np.float64) / 255.0
    case = case_from_memory([MemoryView(f, v[0].soi, v[0].geometry), v[1]])
    np.testing.assert_allclose(case.views[0].image, f, atol=1e-7)

    def err(image, field="views[0].image", **kw) -> InputError:
        with pytest.raises(InputError) as e:
            case_from_memory([MemoryView(image, v[0].soi, v[0].geometry, **kw), v[1]])
        assert e.value.field == field
        return e.value

    assert "[0, 1]" in str(err(f * 2.0))
    assert "NaN" in str(err(np.full_like(f, np.nan)))
    assert "2-D" in str(err(np.stack([f, f], axis=-1)))
    assert "integer or float" in str(err(f > 0.5))
    assert "do not fit in 8 bits" in str(err(np.full((256, 256), 300, np.uint16), bits_stored=8))
    assert "bits_stored" in str(err(v[0].image, bits_stored=9))
    assert "photometric" in str(err(v[0].image, photometric="RGB"))
    assert "numpy array" in str(err("view_a.png"))
    # The size check is the one a folder's image gets, naming the image.
    small = err(np.zeros((4, 4), np.uint8), field=None)
    assert "outside the supported" in str(small) and small.source == "<memory>/view_a"
    nan = {"start": [float("nan"), 1.0], "end": [210.0, 126.5]}
    with pytest.raises(InputError, match="two finite numbers") as e:
        case_from_memory([MemoryView(v[0].image, nan, v[0].geometry), v[1]])
    assert e.value.field == "views[0].soi.start"


def example_views(source: str) -> tuple[list[MemoryView], dict[str, Any]]:
    doc = json.loads((EXAMPLE / "case.json").read_text())
    views = []
    for k, v in zip("ab", doc["views"], strict=True):
        path = EXAMPLE / f"view_{k}.dcm"
        data = pydicom.dcmread(path) if source == "dataset" else path.read_bytes()
        views.append(MemoryView(data, v["soi"]))
    return views, doc


@pytest.mark.parametrize("source", ["dataset", "bytes"])
def test_dicom_datasets_and_bytes_equal_the_files(source) -> None:
    folder = load_case(EXAMPLE)
    views, doc = example_views(source)
    before = [copy.deepcopy(v.image) for v in views] if source == "dataset" else None
    case = case_from_memory(views, case_id=doc["id"])
    for a, b in zip(folder.views, case.views, strict=True):
        assert b.kind == "dicom" and np.array_equal(a.image, b.image)
        assert np.array_equal(a.geometry.P, b.geometry.P)
        assert a.header == b.header and a.frame_index == b.frame_index
    assert case.warnings == folder.warnings
    if before is not None:  # the caller's Dataset is left as it was
        assert [len(d) for d in before] == [len(v.image) for v in views]
    with pytest.raises(InputError, match="comes from the DICOM tags") as e:
        case_from_memory(
            [MemoryView(views[0].image, views[0].soi, photometric="MONOCHROME1"), views[1]]
        )
    assert e.value.field == "views[0].photometric"


def test_broken_dicom_bytes_name_the_view() -> None:
    views, _ = example_views("bytes")
    bad = [MemoryView(views[0].image[:500], views[0].soi), views[1]]
    with pytest.raises(InputError) as e:
        case_from_memory(bad, case_id="c1")
    assert str(e.value).startswith("<memory:c1>/view_a:")
    ds = pydicom.dcmread(EXAMPLE / "view_b.dcm")
    del ds.Rows
    with pytest.raises(InputError, match=r"Rows \(0028,0010\)") as e:
        case_from_memory([views[0], MemoryView(ds, views[1].soi)], case_id="c1")
    assert e.value.source == "<memory:c1>/view_b"
