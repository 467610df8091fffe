"""Case folder loading and validation (CASE_FORMAT.md), plain-image views."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from angio_deploy.errors import InputError, InputNotFoundError
from angio_deploy.geometry import ViewGeometry
from angio_deploy.io.case import load_case


def test_valid_png_case_loads(png_case) -> None:
    case = load_case(png_case())
    assert case.id == "png-case"
    assert [v.name for v in case.views] == ["a", "b"]
    a = case.views[0]
    assert a.kind == "image" and a.image.shape == (256, 256) and a.image.dtype == np.float32
    assert a.image.min() >= 0.0 and a.image.max() <= 1.0
    assert a.geometry.primary_angle_deg == 30.0
    assert a.geometry.provenance["sid_mm"] == "case.json"
    np.testing.assert_array_equal(a.soi.start, [40.0, 128.0])
    assert case.separation_deg == pytest.approx(
        np.degrees(np.arccos(case.views[0].geometry.direction @ case.views[1].geometry.direction))
    )
    assert case.warnings == ()
    desc = case.describe()
    json.dumps(desc)  # JSON-ready
    assert desc["views"][1]["geometry"]["secondary_angle_deg"] == 25.0


def test_projection_matrix_gives_the_same_geometry(png_case) -> None:
    ref = ViewGeometry.from_angles(30.0, 20.0, 1000.0, 750.0, (0.6, 0.6), 256, 256)

    def use_matrix(doc):
        doc["views"][0]["geometry"] = {"projection_matrix": (ref.P * 7.0).tolist()}

    case = load_case(png_case(_m=use_matrix))
    np.testing.assert_allclose(case.views[0].geometry.P, ref.P, atol=1e-12)


def test_unknown_keys_warn_but_load(png_case) -> None:
    def extra(doc):
        doc["views"][0]["colour"] = "blue"

    case = load_case(png_case(vendor="x", _e=extra))
    assert any("'vendor'" in w for w in case.warnings)
    assert any("views[0]" in w and "'colour'" in w for w in case.warnings)


def test_npy_view(png_case) -> None:
    def to_npy(doc):
        case_dir = Path(doc["_dir"])
        np.save(case_dir / "a.npy", np.full((256, 256), 0.5, dtype=np.float32))
        doc["views"][0]["image"] = "a.npy"
        del doc["_dir"]

    case_dir = png_case()
    doc = json.loads((case_dir / "case.json").read_text())
    doc["_dir"] = str(case_dir)
    to_npy(doc)
    (case_dir / "case.json").write_text(json.dumps(doc))
    case = load_case(case_dir)
    assert case.views[0].image.dtype == np.float32 and case.views[0].image[0, 0] == 0.5


def _edit_view(index, **changes):
    def f(doc):
        for path, value in changes.items():
            obj = doc["views"][index]
            keys = path.split("__")
            for k in keys[:-1]:
                obj = obj[k]
            if value is _DELETE:
                del obj[keys[-1]]
            else:
                obj[keys[-1]] = value

    return f


_DELETE = object()


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (_edit_view(0, soi__start=[400.0, 10.0]), "views[0].soi.start", "outside"),
        (_edit_view(1, soi__end=[-3.0, 10.0]), "views[1].soi.end", "outside"),
        (_edit_view(0, soi__end=[40.0, 128.0]), "views[0].soi", "same point"),
        (_edit_view(0, soi__start=[1.0]), "views[0].soi.start", "two finite numbers"),
        (_edit_view(1, soi=_DELETE), "views[1].soi", "missing"),
        (_edit_view(0, image=_DELETE), "views[0].image", "missing"),
        (_edit_view(0, image="/etc/passwd"), "views[0].image", "absolute"),
        (_edit_view(0, image="../case/view_a.png"), "views[0].image", r"leaves the case folder"),
        (_edit_view(0, image="sub\\..\\..\\x.png"), "views[0].image", r"leaves the case folder"),
        (_edit_view(0, geometry=_DELETE), "views[0].geometry", "required for a plain"),
        (_edit_view(0, geometry__sid_mm=_DELETE), "views[0].geometry.sid_mm", "required"),
        (_edit_view(0, geometry__sod_mm=-1.0), "views[0].geometry.sod_mm", "positive"),
        (
            _edit_view(0, geometry__pixel_spacing_mm=[0.1]),
            "views[0].geometry.pixel_spacing_mm",
            "row",
        ),
        (_edit_view(0, soi__via=[[400.0, 10.0]]), "views[0].soi.via[0]", "outside"),
        (_edit_view(1, soi__via=[10.0, 20.0]), "views[1].soi.via[0]", "two finite numbers"),
        (_edit_view(0, soi__via={"u": 1}), "views[0].soi.via", "list"),
        (_edit_view(0, soi__via=[[5.0, 5.0]] * 33), "views[0].soi.via", "at most"),
        (_edit_view(0, frame=3), "views[0].frame", "one frame"),
        (_edit_view(0, frame=-1), "views[0].frame", "zero-based"),
        (
            _edit_view(1, geometry__primary_angle_deg=25.0, geometry__secondary_angle_deg=20.0),
            "views",
            "degrees apart",
        ),
    ],
)
def test_bad_view_entries_name_the_field(png_case, edit, field, message) -> None:
    case_dir = png_case(_x=edit)
    with pytest.raises(InputError, match=message) as info:
        load_case(case_dir)
    text = str(info.value)
    assert str(case_dir / "case.json") in text
    assert field in text
    assert info.value.exit_code == 65


def test_wrong_number_of_views(png_case) -> None:
    case_dir = png_case(_v=lambda d: d["views"].pop())
    with pytest.raises(InputError, match=r"views: exactly two views are needed, got 1"):
        load_case(case_dir)


def test_missing_case_json_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="case folder does not exist") as info:
        load_case(tmp_path / "nope")
    assert info.value.exit_code == 66
    with pytest.raises(InputNotFoundError, match=r"no case\.json"):
        load_case(tmp_path)


def test_malformed_json(tmp_path: Path) -> None:
    (tmp_path / "case.json").write_text('{"views": [\n  {"image": "a.png",}\n]}', encoding="utf-8")
    with pytest.raises(InputError, match=r"case\.json: malformed JSON at line 2"):
        load_case(tmp_path)


def test_missing_image_file(png_case) -> None:
    case_dir = png_case(_x=_edit_view(1, image="missing.png"))
    with pytest.raises(
        InputNotFoundError, match=r"views\[1\]\.image: image file 'missing.png' not found"
    ):
        load_case(case_dir)


def test_unsupported_format_version(png_case) -> None:
    with pytest.raises(InputError, match=r"format: unsupported format 'angio-case/2'"):
        load_case(png_case(format="angio-case/2"))


def test_side_branch_points_are_validated(png_case) -> None:
    good = [
        {"views": [{"start": [100, 128], "end": [120, 60]}, {"start": [100, 127], "end": [90, 40]}]}
    ]
    case = load_case(png_case(side_branches=good))
    assert len(case.side_branches) == 1
    np.testing.assert_array_equal(case.side_branches[0][1].end, [90, 40])
    bad = [{"views": [{"start": [100, 128], "end": [120, 600]}, {"start": [1, 1], "end": [9, 4]}]}]
    with pytest.raises(InputError, match=r"side_branches\[0\]\.views\[0\]\.end"):
        load_case(png_case(side_branches=bad))


def test_guide_points_load_in_order_and_default_to_none(png_case) -> None:
    via = [[80.0, 128.0], [120.0, 127.0]]
    case = load_case(png_case(_x=_edit_view(0, soi__via=via)))
    np.testing.assert_array_equal(case.views[0].soi.via, via)
    assert case.views[0].soi.to_dict()["via"] == via
    assert case.views[1].soi.via.shape == (0, 2)
    assert "via" not in case.views[1].soi.to_dict()
