"""The bad-input catalogue (issues 2 and 11): every bad input gives one clear line on
stderr naming the file, tag or field, its documented exit code (never 70, "internal
error"), and writes nothing -- through `info` and through `run`."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom import uid
from pydicom.encaps import encapsulate

from angio_deploy.cli import main


def _edit_json(case: Path, fn) -> Path:
    doc = json.loads((case / "case.json").read_text())
    fn(doc)
    (case / "case.json").write_text(json.dumps(doc))
    return case


def _missing_case_json(mk, tmp):
    case = mk()
    (case / "case.json").unlink()
    return case


def _malformed_json(mk, tmp):
    case = mk()
    (case / "case.json").write_text('{"views": [}', encoding="utf-8")
    return case


def _three_views(mk, tmp):
    return _edit_json(mk(), lambda d: d["views"].append(d["views"][0]))


def _absolute_path(mk, tmp):
    return _edit_json(mk(), lambda d: d["views"][0].update(image=str(tmp / "x.dcm")))


def _escaping_path(mk, tmp):
    return _edit_json(mk(), lambda d: d["views"][1].update(image="../elsewhere/view_b.dcm"))


def _missing_image(mk, tmp):
    case = mk()
    (case / "view_b.dcm").unlink()
    return case


def _not_dicom(mk, tmp):
    case = mk()
    (case / "view_a.dcm").write_text("hello, I am a text file\n")
    return case


def _no_angles(mk, tmp):
    return mk(metadata={"PositionerPrimaryAngle": None, "PositionerSecondaryAngle": None})


def _no_distances(mk, tmp):
    return mk(metadata={"DistanceSourceToDetector": None})


def _unsupported_syntax(mk, tmp):
    case = mk()
    ds = pydicom.dcmread(case / "view_a.dcm")
    ds.file_meta.TransferSyntaxUID = uid.MPEG4HP41
    ds.PixelData = encapsulate([ds.PixelData])
    ds.save_as(case / "view_a.dcm", enforce_file_format=True)
    return case


def _frame_out_of_range(mk, tmp):
    return _edit_json(mk(frames=2), lambda d: d["views"][0].update(frame=2))


def _soi_outside(mk, tmp):
    return _edit_json(mk(), lambda d: d["views"][0]["soi"].update(start=[-20.0, 10.0]))


def _start_equals_end(mk, tmp):
    return _edit_json(mk(), lambda d: d["views"][1]["soi"].update(end=[40.0, 128.0]))


def _views_too_close(mk, tmp):
    return mk(metadata={"PositionerPrimaryAngle": "-25", "PositionerSecondaryAngle": "25"})


def _patch_bytes(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) == 1, old
    path.write_bytes(data.replace(old, new))


def _unknown_vr(mk, tmp):
    case = mk(metadata={"StudyDescription": "ABCD"})
    _patch_bytes(case / "view_a.dcm", b"\x08\x00\x30\x10LO", b"\x08\x00\x30\x10ZZ")
    return case


def _wrong_value_length(mk, tmp):
    case = mk()
    # Rows (0028,0010) US with 3 bytes instead of 2.
    old = b"\x28\x00\x10\x00US\x02\x00" + struct.pack("<H", 256)
    _patch_bytes(case / "view_a.dcm", old, b"\x28\x00\x10\x00US\x03\x00\x00\x01\x00")
    # The next element now starts one byte later; append nothing else: parse must fail.
    return case


def _frames_not_a_number(mk, tmp):
    case = mk(frames=2)
    _patch_bytes(
        case / "view_a.dcm", b"\x28\x00\x08\x00IS\x02\x002 ", b"\x28\x00\x08\x00IS\x02\x00x1"
    )
    return case


def _multivalued_transfer_syntax(mk, tmp):
    case = mk()
    ts = uid.ExplicitVRLittleEndian.encode() + b"\x00"  # 20 bytes, padded
    _patch_bytes(case / "view_a.dcm", ts, b"1.2.840.10008.1.2\\12")
    return case


def _pixel_data_too_long(mk, tmp):
    case = mk()
    ds = pydicom.dcmread(case / "view_a.dcm")
    ds.PixelData = ds.PixelData + bytes(4 * 256)
    ds.save_as(case / "view_a.dcm")
    return case


def _huge_declared_size(mk, tmp):
    case = mk()
    ds = pydicom.dcmread(case / "view_a.dcm")
    ds.Rows, ds.Columns = 16384, 16384
    ds.save_as(case / "view_a.dcm")
    return case


def _dicom_angle_1e300(mk, tmp):
    return mk(metadata={"PositionerPrimaryAngle": "1e300"})


def _json_angle_1e300(mk, tmp):
    return _edit_json(mk(), lambda d: d["views"][0]["geometry"].update(primary_angle_deg=1e300))


def _json_sid_implausible(mk, tmp):
    return _edit_json(mk(), lambda d: d["views"][1]["geometry"].update(sid_mm=20.0, sod_mm=10.0))


def _int_too_large_for_float(mk, tmp):
    case = mk()
    text = (case / "case.json").read_text().replace('"sid_mm": 1000.0', '"sid_mm": 1' + "0" * 400)
    (case / "case.json").write_text(text)
    return case


def _int_of_5000_digits(mk, tmp):
    case = mk()
    text = (case / "case.json").read_text().replace('"sod_mm": 750.0', '"sod_mm": ' + "7" * 5000)
    (case / "case.json").write_text(text)
    return case


def _deep_nesting(mk, tmp):
    case = mk()
    doc = (case / "case.json").read_text()
    (case / "case.json").write_text(doc[:-1] + ', "x": ' + "[" * 200_000 + "]" * 200_000 + "}")
    return case


def _long_image_name(mk, tmp):
    return _edit_json(mk(), lambda d: d["views"][0].update(image="v" * 5000 + ".png"))


def _tiny_image(mk, tmp):
    case = mk()
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(case / "view_a.png")
    return case


def _png_bomb(mk, tmp):
    case = mk()

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
    (case / "view_a.png").write_bytes(png + chunk(b"IEND", b""))
    return case


def _large_png(mk, tmp):
    case = mk()
    Image.new("L", (9000, 70)).save(case / "view_b.png")
    return case


def _float_tiff(mk, tmp):
    case = mk()
    Image.fromarray(np.full((256, 256), np.nan, np.float32)).save(case / "view_a.tif")
    return _edit_json(case, lambda d: d["views"][0].update(image="view_a.tif"))


def _symlink_outside(mk, tmp):
    case = mk()
    outside = tmp / "outside.png"
    os.replace(case / "view_b.png", outside)
    os.symlink(outside, case / "view_b.png")
    return case


def _bom_is_fine(mk, tmp):
    case = mk()
    (case / "case.json").write_bytes(b"\xef\xbb\xbf" + (case / "case.json").read_bytes())
    return case


CASES = [
    (_missing_case_json, 66, ["no case.json"]),
    (_malformed_json, 65, ["case.json", "malformed JSON", "line 1"]),
    (_three_views, 65, ["case.json", "views", "got 3"]),
    (_absolute_path, 65, ["views[0].image", "absolute"]),
    (_escaping_path, 65, ["views[1].image", "'..'"]),
    (_missing_image, 66, ["views[1].image", "view_b.dcm", "not found"]),
    (_not_dicom, 65, ["view_a.dcm", "DICOM"]),
    (_no_angles, 65, ["view_a.dcm", "PositionerPrimaryAngle (0018,1510)"]),
    (_no_distances, 65, ["view_a.dcm", "DistanceSourceToDetector (0018,1110)"]),
    (_unsupported_syntax, 65, ["view_a.dcm", uid.MPEG4HP41]),
    (_frame_out_of_range, 65, ["view_a.dcm", "frame", "2 frame"]),
    (_soi_outside, 65, ["views[0].soi.start", "outside"]),
    (_start_equals_end, 65, ["views[1].soi", "same point"]),
    (_views_too_close, 65, ["views", "degrees apart"]),
    (_unknown_vr, 65, ["view_a.dcm", "(0008,1030) StudyDescription"]),
    (_wrong_value_length, 65, ["view_a.dcm"]),
    (_frames_not_a_number, 65, ["view_a.dcm", "NumberOfFrames"]),
    (_multivalued_transfer_syntax, 65, ["view_a.dcm"]),
    (_pixel_data_too_long, 65, ["view_a.dcm", "PixelData"]),
    (_huge_declared_size, 65, ["view_a.dcm", "16384 x 16384", "Rows"]),
    (_dicom_angle_1e300, 65, ["view_a.dcm", "PositionerPrimaryAngle", "+/-180"]),
]

#: Plain-image (PNG / case.json geometry) inputs: (make, exit code, needles).
PNG_CASES = [
    (_json_angle_1e300, 65, ["views[0].geometry.primary_angle_deg", "+/-180"]),
    (_json_sid_implausible, 65, ["views[1].geometry.sid_mm", "plausible"]),
    (_int_too_large_for_float, 65, ["case.json", "401 characters"]),
    (_int_of_5000_digits, 65, ["case.json", "5000 characters"]),
    (_deep_nesting, 65, ["case.json", "nested too deeply"]),
    (_long_image_name, 65, ["views[0].image", "5004 characters"]),
    (_tiny_image, 65, ["view_a.png", "1 x 1 px"]),
    (_png_bomb, 65, ["view_a.png"]),
    (_large_png, 65, ["view_b.png", "9000 x 70 px"]),
    (_float_tiff, 65, ["view_a.tif", "float"]),
    (_symlink_outside, 65, ["views[1].image", "outside the case folder"]),
]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): (b"link" if p.is_symlink() else p.read_bytes())
        for p in root.rglob("*")
        if p.is_file() or p.is_symlink()
    }


def _check(capsys, case: Path, code: int, needles: list[str]) -> None:
    before = _tree(case.parent)
    for argv in (["info", str(case)], ["run", str(case), "--segmenter", "frangi"]):
        rc = main(argv)
        out, err = capsys.readouterr()
        assert rc != 70, err  # "internal error" is a bug by definition
        assert rc == code, (argv[0], err)
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("angio-deploy: error: ")
        for needle in needles:
            assert needle in lines[0], (needle, lines[0])
        assert _tree(case.parent) == before  # nothing written, nothing lost


def _ids(cases):
    return [c[0].__name__[1:] for c in cases]


@pytest.mark.parametrize(("make", "code", "needles"), CASES, ids=_ids(CASES))
def test_bad_input_exit_code_and_one_line(capsys, dicom_case, tmp_path, make, code, needles):
    _check(capsys, make(dicom_case, tmp_path), code, needles)


@pytest.mark.parametrize(("make", "code", "needles"), PNG_CASES, ids=_ids(PNG_CASES))
def test_bad_plain_input_exit_code_and_one_line(capsys, png_case, tmp_path, make, code, needles):
    _check(capsys, make(png_case, tmp_path), code, needles)


def test_utf8_byte_order_mark_is_accepted(capsys, png_case, tmp_path) -> None:
    case = _bom_is_fine(png_case, tmp_path)
    assert main(["info", str(case)]) == 0, capsys.readouterr().err
