"""Write X-Ray Angiographic Image Storage files that read back unchanged.

The synthetic data engine uses :func:`write_xa`. Transfer syntaxes written: explicit /
implicit / deflated little endian, RLE Lossless, JPEG-LS Lossless, JPEG 2000 Lossless
(OpenJPEG needs >= 32 px a side).

MONOCHROME2 is what the XA Image module (PS3.3 C.8.7.3) allows; MONOCHROME1 is supported
for testing readers and is non-conformant. PixelSpacing (0028,0030) is not written: it is
not part of the XA Image IOD's acquisition modules and would state an isocenter
calibration we do not have; ImagerPixelSpacing is the detector-plane value GEOMETRY.md
uses. FieldOfViewDimensions (IS, whole mm) is written only when the field of view is a
whole number of mm, so it never contradicts ImagerPixelSpacing.
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import uid as dcm_uid
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.valuerep import format_number_as_ds

from angio_deploy.geometry.view import ViewGeometry
from angio_deploy.io.atomic import atomic_write_bytes

from .elements import transfer_syntax_text

logger = logging.getLogger(__name__)

XA_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.12.1"
"""X-Ray Angiographic Image Storage."""

_NATIVE_WRITE = (
    dcm_uid.ExplicitVRLittleEndian,
    dcm_uid.ImplicitVRLittleEndian,
    dcm_uid.DeflatedExplicitVRLittleEndian,
)
_COMPRESSED_WRITE = {
    dcm_uid.RLELossless: "pydicom",
    dcm_uid.JPEGLSLossless: "pyjpegls",
    dcm_uid.JPEG2000Lossless: "pylibjpeg",
}
WRITABLE_TRANSFER_SYNTAXES: frozenset[str] = frozenset((*_NATIVE_WRITE, *_COMPRESSED_WRITE))
"""Transfer syntaxes :func:`write_xa` writes (all lossless)."""

_FIXED_DATE, _FIXED_TIME = "20000101", "000000"
_J2K_MIN_SIDE_PX = 32


def _ds_number(x: float) -> str:
    """Decimal string (<= 16 chars) that round-trips x exactly when possible."""
    s = repr(float(x))
    if s.endswith(".0"):
        s = s[:-2]
    if len(s) <= 16 and float(s) == float(x):
        return s
    logger.warning("value %r does not fit a 16-character DS exactly; rounded", x)
    return format_number_as_ds(float(x))


def _frames_to_stored(
    frames: np.ndarray, bits_stored: int | None, photometric: str
) -> tuple[np.ndarray, int]:
    """(F, H, W) stored values (uint8 / uint16) and bits stored, from int or float frames."""
    arr = np.asarray(frames)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise ValueError(f"frames must be (H, W) or (F, H, W), got shape {arr.shape}")
    is_float = np.issubdtype(arr.dtype, np.floating)
    if bits_stored is None:
        bits_stored = 8 if (is_float or arr.dtype == np.uint8) else 16
    if not 8 <= int(bits_stored) <= 16:
        raise ValueError(f"bits_stored must be 8 to 16, got {bits_stored}")
    bits = int(bits_stored)
    top = (1 << bits) - 1
    if is_float:
        if not (np.all(np.isfinite(arr)) and arr.min() >= 0.0 and arr.max() <= 1.0):
            raise ValueError("float frames must be finite and in [0, 1]")
        x = arr if photometric == "MONOCHROME2" else 1.0 - arr
        vals = np.rint(x * top)
    elif np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
        if arr.min() < 0 or arr.max() > top:
            raise ValueError(f"integer frames must lie in 0..{top} for {bits} bits stored")
        vals = arr
    else:
        raise ValueError(f"frames must be integer or float, got {arr.dtype}")
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.ascontiguousarray(vals.astype(dtype)), bits


def _uids(uid_seed: str | None) -> dict[str, str]:
    roles = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    if uid_seed is None:
        return {r: str(dcm_uid.generate_uid()) for r in roles}
    return {r: str(dcm_uid.generate_uid(entropy_srcs=[str(uid_seed), r])) for r in roles}


def _check_geometry(geometry: ViewGeometry, width: int, height: int) -> None:
    if geometry.primary_angle_deg is None or geometry.pixel_spacing_mm is None:
        raise ValueError("geometry must come from angles (ViewGeometry.from_angles)")
    if (geometry.width, geometry.height) != (width, height):
        raise ValueError(
            f"geometry is {geometry.width} x {geometry.height} px but frames are {width} x {height}"
        )
    ref = ViewGeometry.from_angles(
        geometry.primary_angle_deg,
        geometry.secondary_angle_deg,
        geometry.sid_mm,
        geometry.sod_mm,
        geometry.pixel_spacing_mm,
        width,
        height,
    )
    if not np.allclose(ref.matrix, geometry.matrix, rtol=1e-12, atol=1e-9):
        raise ValueError("geometry has an isocenter offset, which XA tags cannot hold")


def _base_dataset(uids: dict[str, str], fixed: bool) -> Dataset:
    """Patient, General Study/Series/Equipment, SOP Common (Type 1 and 2 attributes)."""
    now = _dt.datetime.now()
    date = _FIXED_DATE if fixed else now.strftime("%Y%m%d")
    time = _FIXED_TIME if fixed else now.strftime("%H%M%S")
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "PRIMARY", "SINGLE PLANE"]
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SOPClassUID = XA_SOP_CLASS_UID
    ds.SOPInstanceUID = uids["SOPInstanceUID"]
    ds.StudyDate, ds.SeriesDate, ds.ContentDate = date, date, date
    ds.StudyTime, ds.SeriesTime, ds.ContentTime = time, time, time
    ds.AccessionNumber = ""
    ds.Modality = "XA"
    ds.Manufacturer = "angio-deploy"
    ds.ReferringPhysicianName = ""
    ds.ManufacturerModelName = "synthetic"
    ds.PatientName = "SYNTHETIC^PHANTOM"
    ds.PatientID = "SYNTH"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = uids["StudyInstanceUID"]
    ds.SeriesInstanceUID = uids["SeriesInstanceUID"]
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    return ds


def _add_acquisition(ds: Dataset, geometry: ViewGeometry, rows: int, cols: int) -> None:
    """X-Ray Acquisition and XA Positioner modules (angles deg, distances mm)."""
    ds.ContrastBolusAgent = ""
    ds.KVP = ""
    ds.RadiationSetting = "GR"
    ds.XRayTubeCurrent = ""
    ds.ExposureTime = ""
    ps_r, ps_c = geometry.pixel_spacing_mm
    ds.DistanceSourceToDetector = _ds_number(geometry.sid_mm)
    ds.DistanceSourceToPatient = _ds_number(geometry.sod_mm)
    ds.EstimatedRadiographicMagnificationFactor = format_number_as_ds(
        geometry.sid_mm / geometry.sod_mm
    )
    ds.ImagerPixelSpacing = [_ds_number(ps_r), _ds_number(ps_c)]
    fov = (rows * ps_r, cols * ps_c)
    if all(abs(v - round(v)) < 1e-9 for v in fov):
        ds.FieldOfViewShape = "RECTANGLE"
        ds.FieldOfViewDimensions = [round(v) for v in fov]
    ds.PositionerPrimaryAngle = _ds_number(geometry.primary_angle_deg)
    ds.PositionerSecondaryAngle = _ds_number(geometry.secondary_angle_deg)


def _add_image_pixel(
    ds: Dataset, stored: np.ndarray, bits: int, photometric: str, frame_time_ms: float
) -> None:
    """General Image, Image Pixel, XA Image and (multi-frame) Multi-frame / Cine modules."""
    f, h, w = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = h, w
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelIntensityRelationship = "LIN"
    ds.LossyImageCompression = "00"
    if f > 1:
        if not (math.isfinite(frame_time_ms) and frame_time_ms > 0):
            raise ValueError(f"frame_time_ms must be positive, got {frame_time_ms}")
        ds.NumberOfFrames = f
        ds.FrameIncrementPointer = tag_for_keyword("FrameTime")
        ds.FrameTime = _ds_number(frame_time_ms)
        ds.CineRate = round(1000.0 / frame_time_ms)
        ds.PositionerMotion = "STATIC"
    vr = "OB" if ds.BitsAllocated == 8 else "OW"
    ds.add_new(
        tag_for_keyword("PixelData"), vr, stored.astype(f"<u{ds.BitsAllocated // 8}").tobytes()
    )


def _apply_metadata(ds: Dataset, metadata: dict[str, Any]) -> None:
    """Set (or, with None, delete) attributes by keyword."""
    for kw, value in metadata.items():
        if tag_for_keyword(kw) is None:
            raise ValueError(f"metadata key {kw!r} is not a DICOM keyword")
        if value is None:
            if kw in ds:
                delattr(ds, kw)
        else:
            setattr(ds, kw, value)


def _atomic_save(ds: Dataset, path: Path) -> None:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    atomic_write_bytes(path, buf.getvalue())


def write_xa(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    geometry: ViewGeometry,
    *,
    bits_stored: int | None = None,
    photometric: str = "MONOCHROME2",
    transfer_syntax: str = dcm_uid.ExplicitVRLittleEndian,
    frame_time_ms: float = 66.7,
    uid_seed: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write an X-Ray Angiographic Image Storage file; return its path.

    ``frames`` (H, W) or (F, H, W): integers are stored as given (0 .. 2**bits_stored - 1);
    floats in [0, 1] are MONOCHROME2-sense images, scaled to the full range (and inverted
    for MONOCHROME1). ``bits_stored`` defaults to 8 for uint8 or float input, else 16.
    ``geometry`` must come from ViewGeometry.from_angles without isocenter offset; angles
    (deg), SID/SOD (mm) and ImagerPixelSpacing (mm) are written so they read back exactly.
    ``uid_seed`` makes UIDs, dates and times (and so the bytes) deterministic.
    ``metadata`` sets extra attributes by keyword, overriding defaults; None deletes one.
    The file is written atomically (temporary file, then rename).
    """
    photometric = photometric.upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric must be MONOCHROME1 or MONOCHROME2, got {photometric}")
    ts = dcm_uid.UID(str(transfer_syntax))
    if ts not in WRITABLE_TRANSFER_SYNTAXES:
        raise ValueError(
            f"cannot write transfer syntax {transfer_syntax_text(ts)}; supported: "
            + ", ".join(sorted(dcm_uid.UID(u).name for u in WRITABLE_TRANSFER_SYNTAXES))
        )
    stored, bits = _frames_to_stored(frames, bits_stored, photometric)
    f, h, w = stored.shape
    if ts == dcm_uid.JPEG2000Lossless and min(h, w) < _J2K_MIN_SIDE_PX:
        raise ValueError(
            f"JPEG 2000 needs images at least {_J2K_MIN_SIDE_PX} px on each side "
            f"(OpenJPEG's 6 resolution levels), got {w} x {h}"
        )
    _check_geometry(geometry, w, h)
    uids = _uids(uid_seed)
    ds = _base_dataset(uids, fixed=uid_seed is not None)
    _add_acquisition(ds, geometry, h, w)
    _add_image_pixel(ds, stored, bits, photometric, frame_time_ms)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = XA_SOP_CLASS_UID
    meta.MediaStorageSOPInstanceUID = uids["SOPInstanceUID"]
    meta.TransferSyntaxUID = ts if ts in _NATIVE_WRITE else dcm_uid.ExplicitVRLittleEndian
    ds.file_meta = meta
    if ts in _COMPRESSED_WRITE:
        ds.compress(
            ts,
            stored if f > 1 else stored[0],
            encoding_plugin=_COMPRESSED_WRITE[ts],
            generate_instance_uid=False,
        )
    if metadata:
        _apply_metadata(ds, metadata)
    p = Path(path)
    _atomic_save(ds, p)
    logger.info("wrote %s: %d frame(s) %d x %d, %d bits, %s", p, f, w, h, bits, ts.name)
    return p
