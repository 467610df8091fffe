"""Issue 2 section 7: every bad input gives one clear line on stderr and its exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
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
]


@pytest.mark.parametrize(("make", "code", "needles"), CASES, ids=[c[0].__name__[1:] for c in CASES])
def test_bad_input_exit_code_and_one_line(capsys, dicom_case, tmp_path, make, code, needles):
    case = make(dicom_case, tmp_path)
    rc = main(["info", str(case)])
    out, err = capsys.readouterr()
    assert rc == code
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("angio-deploy: error: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
