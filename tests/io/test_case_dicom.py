"""Case folders with XA DICOM views: tags, overrides, frames and the DICOM bad inputs."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.encaps import encapsulate

from angio_deploy.errors import InputError
from angio_deploy.io.case import load_case


def test_dicom_case_geometry_from_tags(dicom_case) -> None:
    case = load_case(dicom_case())
    a, b = case.views
    assert a.kind == "dicom" and b.kind == "dicom"
    assert a.geometry.primary_angle_deg == pytest.approx(30.0)
    assert b.geometry.secondary_angle_deg == pytest.approx(25.0)
    assert "(0018,1510)" in a.geometry.provenance["primary_angle_deg"]
    assert "(0018,1164)" in a.geometry.provenance["pixel_spacing_mm"]
    assert a.image.shape == (256, 256)
    assert case.warnings == ()


def test_geometry_object_overrides_tags_and_says_so(dicom_case) -> None:
    def override(doc):
        doc["views"][0]["geometry"] = {"sid_mm": 1100.0, "pixel_spacing_mm": [0.5, 0.5]}

    case = load_case(dicom_case(_o=override))
    g = case.views[0].geometry
    assert g.sid_mm == 1100.0 and g.pixel_spacing_mm == (0.5, 0.5)
    assert "overrides" in g.provenance["sid_mm"]
    assert "(0018,1111)" in g.provenance["sod_mm"]  # not overridden: still from the tag
    assert any("overrides the DICOM tags" in w for w in case.warnings)


def test_override_supplies_missing_tags(dicom_case) -> None:
    def override(doc):
        doc["views"][0]["geometry"] = {"primary_angle_deg": 30.0}

    case = load_case(dicom_case(metadata={"PositionerPrimaryAngle": None}, _o=override))
    assert case.views[0].geometry.primary_angle_deg == 30.0


def test_matrix_override_for_dicom(dicom_case) -> None:
    ref = load_case(dicom_case()).views[0].geometry

    def override(doc):
        doc["views"][0]["geometry"] = {"projection_matrix": ref.P.tolist()}

    g = load_case(dicom_case(_o=override)).views[0].geometry
    np.testing.assert_allclose(g.P, ref.P, atol=1e-12)


def test_multiframe_frame_selection(dicom_case) -> None:
    case = load_case(dicom_case(frames=3, _f=lambda d: d["views"][0].update(frame=2)))
    assert case.views[0].frame_index == 2 and case.views[0].frame_selection == "given"
    assert case.views[1].frame_count == 3 and case.views[1].frame_selection != "given"


@pytest.mark.parametrize(
    ("metadata", "needle"),
    [
        ({"PositionerPrimaryAngle": None}, "PositionerPrimaryAngle (0018,1510)"),
        ({"PositionerSecondaryAngle": None}, "PositionerSecondaryAngle (0018,1511)"),
        ({"DistanceSourceToDetector": None}, "DistanceSourceToDetector (0018,1110)"),
        ({"DistanceSourceToPatient": None}, "DistanceSourceToPatient (0018,1111)"),
    ],
)
def test_dicom_without_positioner_tags(dicom_case, metadata, needle) -> None:
    case_dir = dicom_case(metadata=metadata)
    with pytest.raises(InputError, match="missing") as info:
        load_case(case_dir)
    assert str(case_dir / "view_a.dcm") in str(info.value) and needle in str(info.value)


def test_non_dicom_file_named_dcm(dicom_case) -> None:
    case_dir = dicom_case()
    (case_dir / "view_b.dcm").write_bytes(b"\x89PNG\r\n\x1a\n not a dicom at all")
    with pytest.raises(InputError) as info:
        load_case(case_dir)
    assert str(case_dir / "view_b.dcm") in str(info.value) and "DICOM" in str(info.value)


def test_unsupported_transfer_syntax(dicom_case) -> None:
    case_dir = dicom_case()
    path = case_dir / "view_a.dcm"
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = uid.MPEG2MPML
    ds.PixelData = encapsulate([ds.PixelData])
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(InputError) as info:
        load_case(case_dir)
    assert str(path) in str(info.value) and uid.MPEG2MPML in str(info.value)


def test_frame_out_of_range(dicom_case) -> None:
    case_dir = dicom_case(frames=2, _f=lambda d: d["views"][1].update(frame=5))
    with pytest.raises(InputError, match="frame") as info:
        load_case(case_dir)
    assert str(case_dir / "view_b.dcm") in str(info.value)


def test_soi_outside_dicom_image(dicom_case) -> None:
    case_dir = dicom_case(_s=lambda d: d["views"][1]["soi"].update(end=[300.0, 20.0]))
    with pytest.raises(InputError, match=r"views\[1\]\.soi\.end.*outside the 256 x 256 image"):
        load_case(case_dir)
