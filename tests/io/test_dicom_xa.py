"""XA DICOM reader and writer: real GE files, writer round trips, every error message."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom import uid
from pydicom.encaps import encapsulate

from angio_deploy.errors import InputError, InputNotFoundError
from angio_deploy.geometry.view import ViewGeometry
from angio_deploy.io.dicom_xa import (
    SELECTION_CONTRAST,
    SELECTION_GIVEN,
    SELECTION_SINGLE,
    WRITABLE_TRANSFER_SYNTAXES,
    XA_SOP_CLASS_UID,
    read_xa,
    read_xa_frames,
    write_xa,
)

REAL_XA = (Path(__file__).resolve().parents[2] / "../shared/data/real_xa").resolve()
LAO = REAL_XA / "phantom_lao31.dcm"
RAO = REAL_XA / "phantom_rao26_cau33.dcm"

needs_real = pytest.mark.skipif(
    not (LAO.is_file() and RAO.is_file()), reason="real XA files not present"
)

H, W = 32, 40  # small frames; JPEG 2000 needs >= 32 px a side
ANGLES = (31.3, -12.5)
SID, SOD = 1000.0, 750.0
SPACING = (0.390625, 0.390625)


def geom(h: int = H, w: int = W, spacing: tuple[float, float] = SPACING) -> ViewGeometry:
    return ViewGeometry.from_angles(*ANGLES, SID, SOD, spacing, w, h)


def random_frames(bits: int, n: int, seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if bits == 8 else np.uint16
    return rng.integers(0, 1 << bits, size=(n, h, w)).astype(dtype)


def write(
    tmp_path: Path, name: str = "x.dcm", frames: np.ndarray | None = None, **kwargs: Any
) -> Path:
    frames = random_frames(8, 2) if frames is None else frames
    g = kwargs.pop("geometry", None) or geom(frames.shape[-2], frames.shape[-1])
    return write_xa(tmp_path / name, frames, g, **kwargs)


def resave(src: Path, dst: Path, **changes: Any) -> Path:
    """Copy a DICOM file, setting (value) or deleting (None) attributes by keyword."""
    ds = pydicom.dcmread(src)
    for kw, value in changes.items():
        if kw == "TransferSyntaxUID":
            ds.file_meta.TransferSyntaxUID = value
        elif value is None:
            delattr(ds, kw)
        else:
            setattr(ds, kw, value)
    ds.save_as(dst)
    return dst


# -- real GE files --------------------------------------------------------------------
REAL = [
    # file, frames, primary, secondary, SID, SOD, spacing source
    ("phantom_lao31.dcm", 14, 31.3, 0.1, 860.0, 720.0, "FieldOfViewDimensions (0018,1149)"),
    ("phantom_rao26_cau33.dcm", 16, -26.5, -32.7, 931.0, 720.0, "ImagerPixelSpacing (0018,1164)"),
]


@needs_real
@pytest.mark.parametrize(("name", "frames", "a", "b", "sid", "sod", "ps_src"), REAL)
def test_real_file_header_and_geometry(
    name: str, frames: int, a: float, b: float, sid: float, sod: float, ps_src: str
) -> None:
    x = read_xa(REAL_XA / name)
    assert x.frames_count == frames
    assert x.stored.shape == (512, 512) and x.image.shape == (512, 512)
    assert x.stored.dtype == np.uint8 and x.image.dtype == np.float32
    assert x.image.min() >= 0.0 and x.image.max() <= 1.0
    g = x.geometry
    assert g is not None
    assert g.primary_angle_deg == pytest.approx(a)
    assert g.secondary_angle_deg == pytest.approx(b)
    assert (g.sid_mm, g.sod_mm) == (sid, sod)
    assert g.pixel_spacing_mm == pytest.approx((0.390625, 0.390625))
    assert x.provenance["pixel_spacing_mm"].startswith(ps_src)
    assert x.provenance["primary_angle_deg"] == "PositionerPrimaryAngle (0018,1510)"
    assert x.manufacturer == "GE MEDICAL SYSTEMS"
    assert x.transfer_syntax_uid == uid.JPEGLosslessSV1
    assert (x.bits_stored, x.photometric) == (8, "MONOCHROME2")
    # default frame: a valid index, chosen by vessel contrast and recorded
    assert 0 <= x.frame_index < frames
    assert x.frame_selection == SELECTION_CONTRAST
    assert x.frame_scores is not None and len(x.frame_scores) == frames
    assert x.frame_scores[x.frame_index] == max(x.frame_scores)
    assert "vessel contrast" in x.provenance["frame"]


@needs_real
def test_real_file_explicit_frame_and_fov_fallback_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="angio_deploy.io.dicom_xa"):
        x = read_xa(LAO, frame=5)
    assert (x.frame_index, x.frame_selection) == (5, SELECTION_GIVEN)
    assert "FieldOfViewDimensions" in caplog.text
    all_frames = read_xa_frames(LAO, stored=True)
    assert all_frames.shape == (14, 512, 512)
    np.testing.assert_array_equal(x.stored, all_frames[5])
    np.testing.assert_array_equal(x.image, read_xa_frames(LAO)[5])


@needs_real
@pytest.mark.parametrize("frame", [14, -1, 100])
def test_real_file_frame_out_of_range(frame: int) -> None:
    with pytest.raises(InputError, match=r"has 14 frame") as err:
        read_xa(LAO, frame=frame)
    assert err.value.field == "frame"
    assert str(LAO) in str(err.value)


@needs_real
def test_jpeg_lossless_process14_any_predictor(tmp_path: Path) -> None:
    """A first-order-prediction stream is valid under the general Process 14 syntax."""
    dst = resave(RAO, tmp_path / "p14.dcm", TransferSyntaxUID=uid.JPEGLossless)
    x = read_xa(dst, frame=3)
    assert x.transfer_syntax_uid == uid.JPEGLossless
    np.testing.assert_array_equal(x.stored, read_xa(RAO, frame=3).stored)


# -- writer round trips ---------------------------------------------------------------
@pytest.mark.parametrize("ts", sorted(WRITABLE_TRANSFER_SYNTAXES))
@pytest.mark.parametrize("bits", [8, 10, 12, 16])
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("n", [1, 3])
def test_writer_round_trip(tmp_path: Path, ts: str, bits: int, photometric: str, n: int) -> None:
    frames = random_frames(bits, n, seed=bits + n)
    g = geom()
    p = write_xa(
        tmp_path / "rt.dcm",
        frames if n > 1 else frames[0],
        g,
        bits_stored=bits,
        photometric=photometric,
        transfer_syntax=ts,
        uid_seed="rt",
    )
    ds = pydicom.dcmread(p)
    assert ds.file_meta.TransferSyntaxUID == ts
    assert ds.SOPClassUID == XA_SOP_CLASS_UID and ds.Modality == "XA"
    assert (ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (bits, bits - 1, 0)
    np.testing.assert_array_equal(ds.pixel_array.reshape(frames.shape), frames)
    assert int(ds.get("NumberOfFrames", 1)) == n
    for k in range(n):
        x = read_xa(p, frame=k)
        np.testing.assert_array_equal(x.stored, frames[k])
        assert x.stored.dtype == frames.dtype
        assert (x.photometric, x.bits_stored, x.frames_count) == (photometric, bits, n)
        expected = frames[k] / ((1 << bits) - 1)
        if photometric == "MONOCHROME1":
            expected = 1.0 - expected
        np.testing.assert_allclose(x.image, expected, atol=1e-6)
        np.testing.assert_allclose(x.geometry.matrix, g.matrix, rtol=0, atol=1e-12)


def test_written_geometry_equals_from_angles(tmp_path: Path) -> None:
    g = ViewGeometry.from_angles(-26.5, -32.7, 931.0, 720.0, (0.3, 0.25), W, H)
    x = read_xa(write(tmp_path, frames=random_frames(8, 1), geometry=g))
    ref = ViewGeometry.from_angles(-26.5, -32.7, 931.0, 720.0, (0.3, 0.25), W, H)
    np.testing.assert_allclose(x.geometry.matrix, ref.matrix, rtol=0, atol=1e-12)
    assert x.geometry.pixel_spacing_mm == (0.3, 0.25)
    assert x.frame_selection == SELECTION_SINGLE and x.frame_index == 0
    ds = pydicom.dcmread(x.path)
    assert [float(v) for v in ds.ImagerPixelSpacing] == [0.3, 0.25]
    assert "PixelSpacing" not in ds
    assert "FieldOfViewDimensions" not in ds  # 32 * 0.3 mm is not whole mm


def test_float_frames_round_trip_within_quantisation(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    img = rng.random((2, H, W))
    for pm in ("MONOCHROME2", "MONOCHROME1"):
        p = write(tmp_path, f"f_{pm}.dcm", frames=img, bits_stored=12, photometric=pm)
        x = read_xa(p, frame=1)
        np.testing.assert_allclose(x.image, img[1], atol=0.5 / 4095 + 1e-6)


@pytest.mark.parametrize("ts", sorted(WRITABLE_TRANSFER_SYNTAXES))
def test_uid_seed_gives_identical_bytes(tmp_path: Path, ts: str) -> None:
    frames = random_frames(12, 2)
    a = write(tmp_path, "a.dcm", frames=frames, transfer_syntax=ts, uid_seed="42")
    b = write(tmp_path, "b.dcm", frames=frames, transfer_syntax=ts, uid_seed="42")
    c = write(tmp_path, "c.dcm", frames=frames, transfer_syntax=ts, uid_seed="43")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    da, dc = pydicom.dcmread(a), pydicom.dcmread(c)
    assert da.StudyDate == "20000101"
    assert da.SOPInstanceUID != dc.SOPInstanceUID
    assert da.file_meta.MediaStorageSOPInstanceUID == da.SOPInstanceUID


def test_uids_without_seed_are_unique_and_valid(tmp_path: Path) -> None:
    a = pydicom.dcmread(write(tmp_path, "a.dcm"))
    b = pydicom.dcmread(write(tmp_path, "b.dcm"))
    assert a.SOPInstanceUID != b.SOPInstanceUID
    for ds in (a, b):
        for kw in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            assert uid.UID(ds[kw].value).is_valid


def test_writer_required_attributes(tmp_path: Path) -> None:
    frames = random_frames(8, 3, h=64, w=64)  # 64 * 0.390625 mm = 25 mm: FOV is whole mm
    ds = pydicom.dcmread(write(tmp_path, frames=frames, frame_time_ms=50.0))
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
        "SeriesNumber",
        "Manufacturer",
        "InstanceNumber",
        "PatientOrientation",
        "KVP",
        "PositionerMotion",
    ):
        assert kw in ds, kw
    assert list(ds.ImageType)[2] == "SINGLE PLANE"
    assert ds.FrameIncrementPointer == 0x00181063
    assert float(ds.FrameTime) == 50.0 and ds.NumberOfFrames == 3
    assert list(ds.FieldOfViewDimensions) == [25, 25]
    assert float(ds.PositionerPrimaryAngle) == ANGLES[0]


def test_writer_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"0\.\.255"):
        write(tmp_path, frames=np.full((H, W), 300, np.uint16), bits_stored=8)
    with pytest.raises(ValueError, match="transfer syntax"):
        write(tmp_path, transfer_syntax=uid.JPEGBaseline8Bit)
    with pytest.raises(ValueError, match="geometry is"):
        write(tmp_path, geometry=geom(h=H + 1))
    with pytest.raises(ValueError, match="at least 32 px"):
        write(
            tmp_path, frames=random_frames(8, 1, h=16, w=16), transfer_syntax=uid.JPEG2000Lossless
        )
    assert not list(tmp_path.iterdir())  # nothing half-written


# -- other readable encodings ----------------------------------------------------------
def _jpeg(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame, mode="L").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.mark.parametrize("ts", [uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit])
def test_jpeg_baseline_reads_within_jpeg_loss(tmp_path: Path, ts: str) -> None:
    yy, xx = np.mgrid[0:48, 0:64]
    frames = np.stack(
        [
            (120 + 60 * np.sin(xx / 9.0 + k) + 40 * np.cos(yy / 7.0)).astype(np.uint8)
            for k in range(3)
        ]
    )
    src = write(tmp_path, "u.dcm", frames=frames)
    ds = pydicom.dcmread(src)
    ds.PixelData = encapsulate([_jpeg(f) for f in frames])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = ts
    ds.LossyImageCompression = "01"
    ds.save_as(tmp_path / "j.dcm", enforce_file_format=True)
    for k in range(3):
        x = read_xa(tmp_path / "j.dcm", frame=k)
        err = np.abs(x.stored.astype(int) - frames[k])
        assert err.max() <= 4 and err.mean() < 1.0
        assert x.transfer_syntax_uid == ts


def test_big_endian_masked_and_signed_pixels(tmp_path: Path) -> None:
    frames = random_frames(12, 2)
    src = write(tmp_path, "u.dcm", frames=frames, bits_stored=12)
    ds = pydicom.dcmread(src)
    ds.PixelData = frames.astype(">u2").tobytes()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRBigEndian
    pydicom.dcmwrite(
        tmp_path / "be.dcm", ds, little_endian=False, implicit_vr=False, force_encoding=True
    )
    np.testing.assert_array_equal(read_xa(tmp_path / "be.dcm", frame=1).stored, frames[1])
    # garbage above BitsStored is masked off
    ds = pydicom.dcmread(src)
    ds.PixelData = (frames | 0xF000).astype("<u2").tobytes()
    ds.save_as(tmp_path / "hb.dcm")
    np.testing.assert_array_equal(read_xa(tmp_path / "hb.dcm", frame=1).stored, frames[1])
    # PixelRepresentation 1: two's complement within 12 bits
    ds.PixelRepresentation = 1
    ds.save_as(tmp_path / "sg.dcm")
    x = read_xa(tmp_path / "sg.dcm", frame=0)
    expected = np.where(frames[0] >= 2048, frames[0].astype(np.int32) - 4096, frames[0])
    assert x.stored.dtype == np.int16
    np.testing.assert_array_equal(x.stored, expected)
    np.testing.assert_allclose(x.image, (expected + 2048) / 4095, atol=1e-6)


# -- frame selection and per-frame geometry ---------------------------------------------
def test_default_frame_is_strongest_vessel_contrast(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    frames = np.clip(0.6 + 0.01 * rng.standard_normal((5, 64, 64)), 0, 1)
    frames[3, 20:44, 30:33] *= 0.5  # a contrast-filled vessel appears in frame 3
    frames[3, 31:34, 10:54] *= 0.5
    frames[1, 30:33, 20:40] *= 0.8  # a fainter one in frame 1
    x = read_xa(write(tmp_path, frames=frames, bits_stored=10))
    assert (x.frame_index, x.frame_selection) == (3, SELECTION_CONTRAST)
    assert x.frame_scores[3] > x.frame_scores[1] > x.frame_scores[0]
    assert "frame 3 of 5" in x.provenance["frame"]


def test_positioner_angle_increments(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        frames=random_frames(8, 3),
        metadata={
            "PositionerMotion": "DYNAMIC",
            "PositionerPrimaryAngleIncrement": [0.0, 1.5, 2.0],
            "PositionerSecondaryAngleIncrement": [0.0, -1.0, -1.0],
        },
    )
    x = read_xa(p, frame=2)
    assert x.geometry.primary_angle_deg == pytest.approx(ANGLES[0] + 3.5)
    assert x.geometry.secondary_angle_deg == pytest.approx(ANGLES[1] - 2.0)
    assert "PositionerPrimaryAngleIncrement (0018,1520)" in x.provenance["primary_angle_deg"]
    assert read_xa(p, frame=0).geometry.primary_angle_deg == pytest.approx(ANGLES[0])


# -- pixel spacing fallbacks --------------------------------------------------------------
def test_fov_fallback_uses_rows_then_columns(tmp_path: Path) -> None:
    frames = random_frames(8, 1, h=64, w=32)
    g = ViewGeometry.from_angles(*ANGLES, SID, SOD, (0.5, 0.25), 32, 64)
    p = write(tmp_path, frames=frames, geometry=g, metadata={"ImagerPixelSpacing": None})
    assert list(pydicom.dcmread(p).FieldOfViewDimensions) == [32, 8]
    x = read_xa(p)
    assert x.geometry.pixel_spacing_mm == (0.5, 0.25)
    assert x.provenance["pixel_spacing_mm"].startswith("FieldOfViewDimensions (0018,1149)")


def test_round_fov_is_a_diameter_over_the_short_side(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        metadata={
            "ImagerPixelSpacing": None,
            "FieldOfViewShape": "ROUND",
            "FieldOfViewDimensions": 16,
        },
    )
    assert read_xa(p).geometry.pixel_spacing_mm == (0.5, 0.5)


def test_pixel_spacing_fallback_scales_by_magnification(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        metadata={
            "ImagerPixelSpacing": None,
            "FieldOfViewDimensions": None,
            "PixelSpacing": [0.3, 0.3],
        },
    )
    x = read_xa(p)
    assert x.geometry.pixel_spacing_mm == pytest.approx((0.3 * SID / SOD, 0.3 * SID / SOD))
    assert x.provenance["pixel_spacing_mm"].startswith("PixelSpacing (0028,0030) x SID/SOD")


def test_no_spacing_tags_error_then_caller_spacing(tmp_path: Path) -> None:
    p = write(tmp_path, metadata={"ImagerPixelSpacing": None, "FieldOfViewDimensions": None})
    with pytest.raises(InputError) as err:
        read_xa(p)
    msg = str(err.value)
    assert str(p) in msg
    for tag in (
        "ImagerPixelSpacing (0018,1164)",
        "FieldOfViewDimensions (0018,1149)",
        "PixelSpacing (0028,0030)",
    ):
        assert tag in msg
    x = read_xa(p, pixel_spacing_mm=(0.2, 0.2))
    assert x.geometry.pixel_spacing_mm == (0.2, 0.2)
    assert "caller" in x.provenance["pixel_spacing_mm"]
    assert read_xa(p, geometry=False).geometry is None


# -- error cases ----------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "absent.dcm"
    with pytest.raises(InputNotFoundError, match="not found") as err:
        read_xa(p)
    assert str(p) in str(err.value) and isinstance(err.value, FileNotFoundError)


def test_non_dicom_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.dcm"
    p.write_text("this is not DICOM\n" * 20)
    with pytest.raises(InputError, match="not a DICOM file") as err:
        read_xa(p)
    assert str(p) in str(err.value)


@pytest.mark.parametrize(
    ("keyword", "label"),
    [
        ("PositionerPrimaryAngle", "PositionerPrimaryAngle (0018,1510)"),
        ("PositionerSecondaryAngle", "PositionerSecondaryAngle (0018,1511)"),
        ("DistanceSourceToDetector", "DistanceSourceToDetector (0018,1110)"),
        ("DistanceSourceToPatient", "DistanceSourceToPatient (0018,1111)"),
    ],
)
def test_missing_geometry_tag(tmp_path: Path, keyword: str, label: str) -> None:
    p = write(tmp_path, metadata={keyword: None})
    with pytest.raises(InputError, match="is missing") as err:
        read_xa(p)
    assert str(p) in str(err.value)
    assert label in err.value.field and label in str(err.value)


def test_sod_not_less_than_sid(tmp_path: Path) -> None:
    p = write(tmp_path, metadata={"DistanceSourceToPatient": "1200"})
    with pytest.raises(InputError, match="must be less than") as err:
        read_xa(p)
    assert "DistanceSourceToPatient (0018,1111)" in str(err.value)


def test_unsupported_transfer_syntax(tmp_path: Path) -> None:
    src = write(tmp_path, "src.dcm", transfer_syntax=uid.RLELossless)
    p = resave(src, tmp_path / "mpeg.dcm", TransferSyntaxUID=uid.MPEG2MPML)
    with pytest.raises(InputError, match="not supported") as err:
        read_xa(p)
    msg = str(err.value)
    assert str(p) in msg and uid.MPEG2MPML in msg and "MPEG2" in msg
    assert "TransferSyntaxUID (0002,0010)" in msg


def test_not_an_image(tmp_path: Path) -> None:
    p = resave(write(tmp_path, "src.dcm"), tmp_path / "noimg.dcm", PixelData=None)
    with pytest.raises(InputError, match="no pixel data") as err:
        read_xa(p)
    assert str(p) in str(err.value) and "PixelData (7FE0,0010)" in str(err.value)


def test_corrupt_compressed_data(tmp_path: Path) -> None:
    src = write(tmp_path, "src.dcm", transfer_syntax=uid.JPEGLSLossless)
    ds = pydicom.dcmread(src)
    ds.PixelData = encapsulate([b"\xff\xd8" + b"\x00" * 64, b"\xff\xd8" + b"\x00" * 64])
    ds["PixelData"].is_undefined_length = True
    ds.save_as(tmp_path / "bad.dcm")
    with pytest.raises(InputError, match="could not be decoded") as err:
        read_xa(tmp_path / "bad.dcm", frame=0)
    msg = str(err.value)
    assert str(tmp_path / "bad.dcm") in msg and uid.JPEGLSLossless in msg and "JPEG-LS" in msg


def test_single_frame_rejects_frame_1(tmp_path: Path) -> None:
    p = write(tmp_path, frames=random_frames(8, 1))
    assert read_xa(p, frame=0).frame_selection == SELECTION_GIVEN
    with pytest.raises(InputError, match="has 1 frame") as err:
        read_xa(p, frame=1)
    assert err.value.field == "frame" and str(p) in str(err.value)


@pytest.mark.parametrize(
    ("ts", "options", "tolerance"),
    [
        (uid.JPEGLSNearLossless, {"jls_error": 2}, 2),
        (uid.JPEG2000, {"j2k_cr": [4]}, 400),
    ],
)
def test_lossy_jpeg_ls_and_jpeg_2000(
    tmp_path: Path, ts: str, options: dict[str, Any], tolerance: int
) -> None:
    yy, xx = np.mgrid[0:48, 0:64]
    frames = np.stack(
        [
            (2000 + 900 * np.sin(xx / 9.0 + k) + 600 * np.cos(yy / 7.0)).astype(np.uint16)
            for k in range(2)
        ]
    )
    ds = pydicom.dcmread(write(tmp_path, "u.dcm", frames=frames, bits_stored=12))
    ds.compress(ts, frames, generate_instance_uid=False, **options)
    ds.LossyImageCompression = "01"
    ds.save_as(tmp_path / "lossy.dcm")
    x = read_xa(tmp_path / "lossy.dcm", frame=1)
    assert x.transfer_syntax_uid == ts
    assert np.abs(x.stored.astype(int) - frames[1]).max() <= tolerance


def test_enhanced_style_per_frame_positioner(tmp_path: Path) -> None:
    """Angles inside PerFrameFunctionalGroupsSequence > PositionerPositionSequence."""
    src = write(tmp_path, "src.dcm", frames=random_frames(8, 2))
    ds = pydicom.dcmread(src)
    del ds.PositionerPrimaryAngle, ds.PositionerSecondaryAngle
    groups = []
    for k in range(2):
        pos = pydicom.Dataset()
        pos.PositionerPrimaryAngle = str(10.0 + k)
        pos.PositionerSecondaryAngle = "-5"
        group = pydicom.Dataset()
        group.PositionerPositionSequence = [pos]
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = groups
    ds.save_as(tmp_path / "enh.dcm")
    x = read_xa(tmp_path / "enh.dcm", frame=1)
    assert (x.geometry.primary_angle_deg, x.geometry.secondary_angle_deg) == (11.0, -5.0)
    assert x.provenance["primary_angle_deg"] == (
        "PerFrameFunctionalGroupsSequence[1] > PositionerPositionSequence > "
        "PositionerPrimaryAngle (0018,1510)"
    )
