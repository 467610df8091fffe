"""Read and write X-ray angiography (XA) DICOM files.

Reading (:func:`read_xa`) returns one frame of a single- or multi-frame XA file, its
projection geometry (GEOMETRY.md) and where every geometry value came from. Writing
(:func:`write_xa`) produces an X-Ray Angiographic Image Storage file that reads back
unchanged; the synthetic data engine uses it.

Conventions and decisions (documented here once):

* Pixel values. ``XAImage.stored`` holds the stored values of the selected frame, masked to
  Bits Stored (unsigned: uint8 / uint16; signed data, PixelRepresentation 1: int8 / int16,
  sign-extended from Bits Stored). ``XAImage.image`` maps the full Bits Stored range
  linearly onto [0, 1] in MONOCHROME2 sense (0 = black, contrast-filled vessels dark);
  MONOCHROME1 is inverted. No windowing and no Modality LUT are applied (XA files rarely
  carry one; a linear rescale would not change vessel appearance after normalisation).
* Pixel spacing fallback (GEOMETRY.md): ImagerPixelSpacing (0018,1164); then
  FieldOfViewDimensions (0018,1149) / (Rows, Columns); then PixelSpacing (0028,0030) x
  SID / SOD; then the caller's ``pixel_spacing_mm``; otherwise an :class:`InputError`.
  FieldOfViewDimensions is read like PixelSpacing: first value the row (vertical,
  between-rows) extent, divided by Rows; second the column (horizontal) extent, divided by
  Columns. One value (or FieldOfViewShape ROUND / HEXAGONAL: a diameter) spans the shorter
  image side, giving square pixels.
* Frame selection. With ``frame=None`` a multi-frame file's frame is the one with the
  strongest vessel contrast: each frame is 2x2 block-averaged and log-transformed
  (log(I + 0.02), Beer-Lambert, exposure-independent), a black top-hat (grey closing minus
  image, 7x7 px at half resolution, about 14 px full size) enhances thin dark structures,
  and the score is its 99th percentile inside the central region (1/16 of
  each side cropped, which drops collimator and shutter edges). Highest score wins; ties go
  to the earliest frame.
* Rotational runs: when PositionerPrimaryAngleIncrement (0018,1520) /
  PositionerSecondaryAngleIncrement (0018,1521) hold one value per frame, frame k's angle
  is the base angle plus the cumulative sum of increments 0..k ("incremental change ... for
  each frame", PS3.3 C.8.7.5). A geometry tag missing at the top level is looked up in the
  selected frame's PerFrameFunctionalGroupsSequence item, then the shared one (Enhanced
  XA); SOD falls back to DistanceSourceToIsocenter (0018,9402) there.
* Transfer syntaxes read: see READABLE_TRANSFER_SYNTAXES (uncompressed implicit/explicit
  little endian, deflated, retired explicit big endian, JPEG Baseline / Extended / Lossless
  (any predictor and SV1), JPEG-LS lossless / near-lossless, JPEG 2000 lossless / lossy, RLE
  Lossless). Written: explicit/implicit/deflated little endian, RLE Lossless, JPEG-LS
  Lossless, JPEG 2000 Lossless (OpenJPEG needs >= 32 px a side).
* Writer: MONOCHROME2 is what the XA Image module (PS3.3 C.8.7.3) allows; MONOCHROME1 is
  supported for testing readers and is non-conformant. PixelSpacing (0028,0030) is not
  written: it is not part of the XA Image IOD's acquisition modules and would state an
  isocenter calibration we do not have; ImagerPixelSpacing is the detector-plane value
  GEOMETRY.md uses. FieldOfViewDimensions (IS, whole mm) is written only when the field of
  view is a whole number of mm, so it never contradicts ImagerPixelSpacing.
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.datadict
from pydicom import uid as dcm_uid
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import iter_pixels as _iter_pixels
from pydicom.pixels import pixel_array as _pixel_array
from pydicom.valuerep import format_number_as_ds
from scipy import ndimage

from angio_deploy.errors import InputError, InputNotFoundError
from angio_deploy.geometry.view import ViewGeometry
from angio_deploy.io.atomic import atomic_write_bytes
from angio_deploy.limits import MAX_TOTAL_PIXELS, check_image_size

__all__ = [
    "READABLE_TRANSFER_SYNTAXES",
    "SELECTION_CONTRAST",
    "SELECTION_GIVEN",
    "SELECTION_SINGLE",
    "WRITABLE_TRANSFER_SYNTAXES",
    "XA_SOP_CLASS_UID",
    "XAImage",
    "read_xa",
    "read_xa_frames",
    "stored_to_image",
    "tag_label",
    "vessel_contrast_score",
    "vessel_contrast_scores",
    "write_xa",
]

logger = logging.getLogger(__name__)

XA_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.12.1"
"""X-Ray Angiographic Image Storage."""

READABLE_TRANSFER_SYNTAXES: frozenset[str] = frozenset(
    {
        dcm_uid.ImplicitVRLittleEndian,
        dcm_uid.ExplicitVRLittleEndian,
        dcm_uid.DeflatedExplicitVRLittleEndian,
        dcm_uid.ExplicitVRBigEndian,
        dcm_uid.JPEGBaseline8Bit,
        dcm_uid.JPEGExtended12Bit,
        dcm_uid.JPEGLossless,
        dcm_uid.JPEGLosslessSV1,
        dcm_uid.JPEGLSLossless,
        dcm_uid.JPEGLSNearLossless,
        dcm_uid.JPEG2000Lossless,
        dcm_uid.JPEG2000,
        dcm_uid.RLELossless,
    }
)
"""Transfer syntaxes :func:`read_xa` decodes (others raise :class:`InputError`)."""

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

SELECTION_GIVEN = "given"
SELECTION_SINGLE = "single-frame"
SELECTION_CONTRAST = "strongest vessel contrast"

_TOPHAT_SIZE_PX = 7  # structuring element at half resolution (pixels)
_SCORE_PERCENTILE = 99.0
_LOG_EPS = 0.02  # keeps log finite in black pixels (fraction of full scale)
_FIXED_DATE, _FIXED_TIME = "20000101", "000000"
_J2K_MIN_SIDE_PX = 32


@dataclass(frozen=True, eq=False)
class XAImage:
    """One frame of an XA file, its geometry and where the values came from.

    ``stored`` is the raw stored frame (H, W); ``image`` is float32 (H, W) in [0, 1],
    MONOCHROME2 sense. ``geometry`` is None when the caller asked for none.
    ``frame_scores`` holds the per-frame vessel-contrast scores when the frame was chosen
    automatically. ``provenance`` maps each value (frame, angles, distances, pixel
    spacing) to the tag or rule it came from.
    """

    path: Path
    frames_count: int
    frame_index: int
    frame_selection: str
    stored: np.ndarray
    image: np.ndarray
    geometry: ViewGeometry | None
    provenance: dict[str, str]
    manufacturer: str
    transfer_syntax_uid: str
    transfer_syntax: str
    bits_stored: int
    pixel_representation: int
    photometric: str
    frame_scores: tuple[float, ...] | None = field(default=None)

    @property
    def height(self) -> int:
        """Rows (pixels)."""
        return int(self.stored.shape[0])

    @property
    def width(self) -> int:
        """Columns (pixels)."""
        return int(self.stored.shape[1])


@dataclass(frozen=True)
class _PixelFormat:
    rows: int
    columns: int
    frames: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str


# -- small helpers ----------------------------------------------------------------------
def tag_label(keyword: str) -> str:
    """'Keyword (gggg,eeee)' for a DICOM keyword, as error messages and provenance name it."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return keyword
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _ts_text(ts: str) -> str:
    name = dcm_uid.UID(ts).name
    return f"{ts} ({name})" if name and name != ts else ts


# -- opening ----------------------------------------------------------------------------
def _open(path: Path) -> Dataset:
    """dcmread with every failure turned into one clear InputError."""
    if not path.exists():
        raise InputNotFoundError("file not found", source=str(path))
    if not path.is_file():
        raise InputError("is not a file", source=str(path))
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise InputError(
            "is not a DICOM file (no 'DICM' prefix after the 128-byte preamble)",
            source=str(path),
        ) from exc
    except Exception as exc:  # truncated or corrupt files raise many different types
        raise InputError(f"cannot be parsed as DICOM: {exc}", source=str(path)) from exc
    if getattr(ds, "file_meta", None) is not None:
        _parse_elements(ds.file_meta, path)
    _parse_elements(ds, path)
    return ds


def _element_label(tag: Any) -> str:
    keyword = pydicom.datadict.keyword_for_tag(tag)
    return f"({tag.group:04X},{tag.element:04X})" + (f" {keyword}" if keyword else "")


def _parse_elements(ds: Dataset, path: Path, depth: int = 0) -> None:
    """Convert every element now, so that a broken value fails here with its tag named.

    pydicom parses values lazily, on first access, and a bad one (an unknown VR, a value
    of the wrong length, a sequence that does not parse) would otherwise raise deep in
    the reader. A broken private element is dropped with a warning (nothing here reads
    private tags); a broken standard one refuses the file.
    """
    if depth > 16:
        raise InputError("sequences are nested too deeply", source=str(path))
    for tag in list(ds.keys()):
        try:
            elem = ds[tag]
            value = elem.value
            if elem.VR == "SQ":
                for item in value:
                    _parse_elements(item, path, depth + 1)
        except InputError:
            raise
        except Exception as exc:  # pydicom's converters raise many types on bad bytes
            if tag.is_private:
                logger.warning("%s: dropped unreadable private element %s: %s", path, tag, exc)
                del ds[tag]
                continue
            raise InputError(
                # pydicom's messages run to several sentences: the first says it.
                f"value cannot be parsed ({type(exc).__name__}: {str(exc).split('. ')[0]})",
                source=str(path),
                field=_element_label(tag),
            ) from None


def _transfer_syntax(ds: Dataset, path: Path) -> str:
    meta = getattr(ds, "file_meta", None)
    ts = None if meta is None else meta.get("TransferSyntaxUID")
    if ts is not None and not isinstance(ts, str):
        raise InputError(
            f"must be one UID, got {ts!r}",
            source=str(path),
            field=tag_label("TransferSyntaxUID"),
        )
    if not ts:
        raise InputError(
            "has no transfer syntax in its file meta",
            source=str(path),
            field=tag_label("TransferSyntaxUID"),
        )
    if ts not in READABLE_TRANSFER_SYNTAXES:
        raise InputError(
            f"transfer syntax {_ts_text(ts)} is not supported; supported: JPEG Baseline, "
            "JPEG Extended, JPEG Lossless, JPEG-LS, JPEG 2000, RLE Lossless and uncompressed",
            source=str(path),
            field=tag_label("TransferSyntaxUID"),
        )
    return str(ts)


def _required_int(ds: Dataset, keyword: str, path: Path) -> int:
    value = _optional_int(ds, keyword, path, None)
    if value is None:
        raise InputError("is missing", source=str(path), field=tag_label(keyword))
    return value


def _optional_int(ds: Dataset, keyword: str, path: Path, default: int | None) -> int | None:
    """An integer tag (IS or US), or ``default`` when it is absent or empty."""
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, (list, tuple, MultiValue, bytes, float)):
            raise TypeError("one integer expected")
        return int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(
            f"is not an integer: {value!r}", source=str(path), field=tag_label(keyword)
        ) from exc


def _pixel_format(ds: Dataset, path: Path) -> _PixelFormat:
    """Check the Image Pixel module; raise InputError for non-images and unusable formats."""
    if "PixelData" not in ds:
        raise InputError(
            "has no pixel data; it is not an image", source=str(path), field=tag_label("PixelData")
        )
    rows, cols = _required_int(ds, "Rows", path), _required_int(ds, "Columns", path)
    bits_alloc = _required_int(ds, "BitsAllocated", path)
    bits_stored = _required_int(ds, "BitsStored", path)
    pixrep = _optional_int(ds, "PixelRepresentation", path, 0) or 0
    samples = _optional_int(ds, "SamplesPerPixel", path, 1) or 1
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    frames = _optional_int(ds, "NumberOfFrames", path, 1) or 1
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise InputError(
            f"is {photometric or 'missing'} with {samples} sample(s) per pixel; an XA image "
            "must be MONOCHROME1 or MONOCHROME2 grayscale",
            source=str(path),
            field=tag_label("PhotometricInterpretation"),
        )
    if not 8 <= bits_stored <= 16 or bits_alloc not in (8, 16) or bits_stored > bits_alloc:
        raise InputError(
            f"BitsStored {bits_stored} / BitsAllocated {bits_alloc} is not supported "
            "(8 to 16 bits stored in 8 or 16 bits allocated)",
            source=str(path),
            field=tag_label("BitsStored"),
        )
    if rows < 1 or cols < 1 or frames < 1:
        raise InputError(
            f"image size {cols} x {rows} x {frames} frames is empty",
            source=str(path),
            field=tag_label("Rows"),
        )
    if pixrep not in (0, 1):
        raise InputError(
            f"must be 0 or 1, got {pixrep}",
            source=str(path),
            field=tag_label("PixelRepresentation"),
        )
    # Checked from the header, before a single pixel is decoded (limits.py).
    check_image_size(cols, rows, source=str(path), field=tag_label("Rows"), min_side=1)
    if rows * cols * frames > MAX_TOTAL_PIXELS:
        raise InputError(
            f"{frames} frames of {cols} x {rows} px exceed the {MAX_TOTAL_PIXELS:,}-pixel limit",
            source=str(path),
            field=tag_label("NumberOfFrames"),
        )
    _check_native_length(ds, path, rows * cols * frames * bits_alloc // 8)
    return _PixelFormat(rows, cols, frames, bits_alloc, bits_stored, pixrep, photometric)


def _check_native_length(ds: Dataset, path: Path, expected: int) -> None:
    """Uncompressed pixel data must be exactly what the header describes (one pad byte
    allowed): otherwise Rows, Columns or NumberOfFrames is wrong and the image garbage."""
    ts = ds.file_meta.get("TransferSyntaxUID") if getattr(ds, "file_meta", None) else None
    if ts is None or dcm_uid.UID(ts).is_compressed:
        return
    actual = len(ds.PixelData)
    if actual not in (expected, expected + 1):
        raise InputError(
            f"holds {actual:,} bytes, but Rows x Columns x frames x BitsAllocated need "
            f"{expected:,}",
            source=str(path),
            field=tag_label("PixelData"),
        )


# -- pixels -----------------------------------------------------------------------------
def _decode_error(path: Path, ts: str, exc: Exception) -> InputError:
    return InputError(
        f"pixel data could not be decoded ({_ts_text(ts)}): {exc}",
        source=str(path),
        field=tag_label("PixelData"),
    )


def _decode(ds: Dataset, path: Path, ts: str, index: int | None) -> np.ndarray:
    """Decode one frame (index) or all frames (None) as pydicom returns them."""
    try:
        return _pixel_array(ds, index=index, raw=True)
    except Exception as exc:  # decoders raise RuntimeError, ValueError, ... on bad data
        raise _decode_error(path, ts, exc) from exc


def _to_stored(arr: np.ndarray, fmt: _PixelFormat) -> np.ndarray:
    """Mask to BitsStored and apply PixelRepresentation (sign extension)."""
    bits = fmt.bits_stored
    utype = np.uint8 if fmt.bits_allocated == 8 else np.uint16
    u = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("="), copy=False)
    u = u.view(np.dtype(f"u{u.dtype.itemsize}")).astype(utype, copy=False)
    u = u & utype((1 << bits) - 1)
    if fmt.pixel_representation == 0:
        return u
    stype = np.int8 if fmt.bits_allocated == 8 else np.int16
    s = u.astype(np.int32)
    s = np.where(s >= (1 << (bits - 1)), s - (1 << bits), s)
    return s.astype(stype)


def stored_to_image(stored: np.ndarray, bits_stored: int, photometric: str) -> np.ndarray:
    """Stored values -> float32 in [0, 1], MONOCHROME2 sense, over the full BitsStored range."""
    x = stored.astype(np.float32)
    if np.issubdtype(stored.dtype, np.signedinteger):
        x += np.float32(1 << (bits_stored - 1))
    x /= np.float32((1 << bits_stored) - 1)
    if photometric == "MONOCHROME1":
        x = np.float32(1.0) - x
    return np.clip(x, 0.0, 1.0, out=x)


def vessel_contrast_score(image: np.ndarray) -> float:
    """Vessel-contrast score of one image (H, W) in [0, 1], MONOCHROME2 (dimensionless).

    The image is 2x2 block-averaged and log-transformed (Beer-Lambert: log intensity is
    linear in contrast-agent path length, and the log makes the score independent of
    exposure); a 7x7 black top-hat (closing minus image) isolates thin dark structures.
    The score is the 99th percentile of the top-hat in the central region (1/16 of each
    side cropped, dropping collimator and shutter edges).
    """
    h, w = image.shape
    h2, w2 = max(h // 2, 1), max(w // 2, 1)
    x = np.asarray(image, dtype=np.float32)
    if h >= 2 and w >= 2:
        x = x[: 2 * h2, : 2 * w2].reshape(h2, 2, w2, 2).mean(axis=(1, 3))
    x = np.log(x + np.float32(_LOG_EPS))
    tophat = ndimage.grey_closing(x, size=(_TOPHAT_SIZE_PX, _TOPHAT_SIZE_PX)) - x
    mh, mw = x.shape[0] // 16, x.shape[1] // 16
    core = tophat[mh : x.shape[0] - mh, mw : x.shape[1] - mw]
    return float(np.percentile(core, _SCORE_PERCENTILE))


def vessel_contrast_scores(images: np.ndarray) -> np.ndarray:
    """Per-frame :func:`vessel_contrast_score` (F,) of images (F, H, W)."""
    return np.array([vessel_contrast_score(im) for im in images], dtype=np.float64)


def _strongest_frame(
    ds: Dataset, path: Path, ts: str, fmt: _PixelFormat
) -> tuple[int, np.ndarray, list[float]]:
    """Decode frames one at a time; keep the best-scoring one (memory: one frame)."""
    best, best_frame, scores = -1, np.empty(0), []
    try:
        for raw in _iter_pixels(ds, raw=True):
            stored = _frame_shaped(_to_stored(raw, fmt), fmt, path)
            scores.append(
                vessel_contrast_score(stored_to_image(stored, fmt.bits_stored, fmt.photometric))
            )
            if best < 0 or scores[-1] > scores[best]:
                best, best_frame = len(scores) - 1, stored
    except InputError:
        raise
    except Exception as exc:  # decoders raise RuntimeError, ValueError, ... on bad data
        raise _decode_error(path, ts, exc) from exc
    return best, best_frame, scores


def _frame_shaped(stored: np.ndarray, fmt: _PixelFormat, path: Path) -> np.ndarray:
    """One decoded frame as (Rows, Columns); a decoder that returned another size (pixel
    data longer or shorter than the header says) refuses the file."""
    if stored.size != fmt.rows * fmt.columns:
        raise InputError(
            f"decoded {stored.size} pixels, but Rows x Columns is {fmt.rows} x {fmt.columns}",
            source=str(path),
            field=tag_label("PixelData"),
        )
    return stored.reshape(fmt.rows, fmt.columns)


def _select_frame(
    ds: Dataset, path: Path, ts: str, fmt: _PixelFormat, frame: int | None
) -> tuple[int, str, np.ndarray, tuple[float, ...] | None, str]:
    """(index, selection, stored frame, scores, provenance text) for the requested frame."""
    if frame is not None:
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise InputError(
                f"frame must be an integer, got {frame!r}", source=str(path), field="frame"
            )
        if not 0 <= int(frame) < fmt.frames:
            raise InputError(
                f"frame {frame} is out of range: the file has {fmt.frames} frame(s) "
                f"(valid 0 to {fmt.frames - 1})",
                source=str(path),
                field="frame",
            )
        idx = int(frame)
        raw = _decode(ds, path, ts, idx if fmt.frames > 1 else None)
        stored = _frame_shaped(_to_stored(raw, fmt), fmt, path)
        return idx, SELECTION_GIVEN, stored, None, f"frame {idx} given by caller"
    if fmt.frames == 1:
        raw = _decode(ds, path, ts, None)
        stored = _frame_shaped(_to_stored(raw, fmt), fmt, path)
        return 0, SELECTION_SINGLE, stored, None, "single-frame file"
    idx, stored, scores = _strongest_frame(ds, path, ts, fmt)
    why = (
        f"frame {idx} of {fmt.frames}: strongest vessel contrast (99th percentile of a 7x7 "
        f"black top-hat of log intensity on the 2x-downsampled frame = {scores[idx]:.4f}; "
        f"range {min(scores):.4f} to {max(scores):.4f})"
    )
    logger.info("%s: %s", path, why)
    return idx, SELECTION_CONTRAST, stored, tuple(scores), why


def read_xa_frames(path: str | os.PathLike[str], *, stored: bool = False) -> np.ndarray:
    """All frames (F, H, W): float32 images in [0, 1] (MONOCHROME2 sense), or stored values."""
    p = Path(path)
    ds = _open(p)
    ts = _transfer_syntax(ds, p)
    fmt = _pixel_format(ds, p)
    arr = _to_stored(_decode(ds, p, ts, None), fmt)
    if arr.size != fmt.frames * fmt.rows * fmt.columns:
        raise InputError(
            f"decoded {arr.size} pixels, but the header says {fmt.frames} frames of "
            f"{fmt.columns} x {fmt.rows}",
            source=str(p),
            field=tag_label("PixelData"),
        )
    arr = arr.reshape(fmt.frames, fmt.rows, fmt.columns)
    return arr if stored else stored_to_image(arr, fmt.bits_stored, fmt.photometric)


# -- geometry ---------------------------------------------------------------------------
def _nested_items(ds: Dataset, frame_index: int) -> list[tuple[Dataset, str]]:
    """(dataset, description) pairs to search: top level, per-frame group, shared group."""
    places: list[tuple[Dataset, str]] = [(ds, "")]
    for seq_kw, pick in (
        ("PerFrameFunctionalGroupsSequence", frame_index),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        seq = ds.get(seq_kw)
        if not seq or pick >= len(seq):
            continue
        group = seq[pick]
        for elem in group:
            if elem.VR == "SQ" and elem.value:
                places.append((elem.value[0], f"{seq_kw}[{pick}] > {elem.keyword} > "))
    return places


def _find(ds: Dataset, keyword: str, frame_index: int) -> tuple[Any, str] | None:
    """A non-empty value of keyword (top level first, then functional groups) and its place."""
    for item, where in _nested_items(ds, frame_index):
        value = item.get(keyword)
        if (
            value is not None
            and value != ""
            and not (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 0)
        ):
            return value, where + tag_label(keyword)
    return None


def _as_floats(value: Any, label: str, path: Path) -> list[float]:
    values = (
        list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    )
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InputError(f"is not a number: {value!r}", source=str(path), field=label) from exc
    if not all(math.isfinite(v) for v in out):
        raise InputError(f"is not finite: {value!r}", source=str(path), field=label)
    return out


def _required_number(
    ds: Dataset, keywords: Sequence[str], frame_index: int, path: Path, *, positive: bool
) -> tuple[float, str]:
    """First value found among keywords (mm or degrees) and where it came from."""
    for kw in keywords:
        hit = _find(ds, kw, frame_index)
        if hit is None:
            continue
        value, where = hit
        v = _as_floats(value, where, path)[0]
        if positive and not v > 0:
            raise InputError(f"must be positive, got {v}", source=str(path), field=where)
        return v, where
    names = " or ".join(tag_label(k) for k in keywords)
    raise InputError(
        "is missing (needed for the projection geometry)", source=str(path), field=names
    )


def _angle(
    ds: Dataset, keyword: str, inc_keyword: str, frame_index: int, frames: int, path: Path
) -> tuple[float, str]:
    """Positioner angle (degrees) of the selected frame, with per-frame increments if given."""
    base, where = _required_number(ds, [keyword], frame_index, path, positive=False)
    inc = ds.get(inc_keyword)
    if inc is None or inc == "" or frames == 1:
        return base, where
    incs = _as_floats(inc, tag_label(inc_keyword), path)
    if len(incs) != frames:
        logger.warning(
            "%s: %s has %d values for %d frames; ignored",
            path,
            tag_label(inc_keyword),
            len(incs),
            frames,
        )
        return base, f"{where} ({tag_label(inc_keyword)} ignored: {len(incs)} values)"
    delta = float(np.sum(incs[: frame_index + 1]))
    return base + delta, (
        f"{where} + cumulative {tag_label(inc_keyword)} to frame {frame_index} ({delta:+g} deg)"
    )


def _fov_spacing(
    value: Any, shape: str, rows: int, cols: int, label: str, path: Path
) -> tuple[float, float]:
    """Row/column spacing (mm) from FieldOfViewDimensions (mm), see module docstring."""
    dims = _as_floats(value, label, path)
    if not dims or min(dims) <= 0:
        raise InputError(f"must be positive, got {value!r}", source=str(path), field=label)
    if len(dims) >= 2 and shape not in ("ROUND", "HEXAGONAL"):
        return dims[0] / rows, dims[1] / cols
    s = dims[0] / min(rows, cols)
    return s, s


def _pixel_spacing(
    ds: Dataset,
    frame_index: int,
    path: Path,
    rows: int,
    cols: int,
    sid: float,
    sod: float,
    caller: tuple[float, float] | None,
) -> tuple[tuple[float, float], str]:
    """Detector-plane pixel spacing (row, column) in mm and its source, GEOMETRY.md order."""
    hit = _find(ds, "ImagerPixelSpacing", frame_index)
    if hit is not None:
        vals = _as_floats(hit[0], hit[1], path)
        if len(vals) == 2 and min(vals) > 0:
            return (vals[0], vals[1]), hit[1]
        raise InputError(
            f"must be two positive numbers, got {hit[0]!r}", source=str(path), field=hit[1]
        )
    hit = _find(ds, "FieldOfViewDimensions", frame_index)
    if hit is not None:
        shape = str(ds.get("FieldOfViewShape", "") or "").strip().upper()
        ps = _fov_spacing(hit[0], shape, rows, cols, hit[1], path)
        how = f"{hit[1]} / (Rows, Columns) (fallback 2; FieldOfViewShape {shape or 'absent'})"
        logger.warning("%s: ImagerPixelSpacing missing; pixel spacing %s mm from %s", path, ps, how)
        return ps, how
    hit = _find(ds, "PixelSpacing", frame_index)
    if hit is not None:
        vals = _as_floats(hit[0], hit[1], path)
        if len(vals) != 2 or min(vals) <= 0:
            raise InputError(
                f"must be two positive numbers, got {hit[0]!r}", source=str(path), field=hit[1]
            )
        ps = (vals[0] * sid / sod, vals[1] * sid / sod)
        how = f"{hit[1]} x SID/SOD (fallback 3, isocenter calibration)"
        logger.warning("%s: pixel spacing %s mm from %s", path, ps, how)
        return ps, how
    if caller is not None:
        ps = (float(caller[0]), float(caller[1]))
        if not (min(ps) > 0 and all(math.isfinite(v) for v in ps)):
            raise InputError(
                f"must be two positive numbers, got {caller!r}", field="pixel_spacing_mm"
            )
        logger.warning("%s: no pixel spacing tags; using caller's %s mm", path, ps)
        return ps, "caller-supplied pixel_spacing_mm (fallback 4)"
    names = ", ".join(
        tag_label(k) for k in ("ImagerPixelSpacing", "FieldOfViewDimensions", "PixelSpacing")
    )
    raise InputError(
        "no pixel spacing: none of the tags is present and no pixel_spacing_mm was given",
        source=str(path),
        field=names,
    )


OVERRIDE_SOURCE = "case.json geometry (overrides the tags)"


def _geometry(
    ds: Dataset,
    path: Path,
    fmt: _PixelFormat,
    frame_index: int,
    pixel_spacing_mm: tuple[float, float] | None,
    overrides: dict[str, Any] | None = None,
) -> ViewGeometry:
    """ViewGeometry of the selected frame from the XA Positioner / Acquisition tags.

    ``overrides`` (keys primary_angle_deg, secondary_angle_deg, sid_mm, sod_mm,
    pixel_spacing_mm) replace the corresponding tags; provenance says so.
    """
    ov = overrides or {}
    prov: dict[str, str] = {}

    def value(key: str, read: Any) -> Any:
        if key in ov:
            prov[key] = OVERRIDE_SOURCE
            return ov[key]
        v, prov[key] = read()
        return v

    a = value(
        "primary_angle_deg",
        lambda: _angle(
            ds,
            "PositionerPrimaryAngle",
            "PositionerPrimaryAngleIncrement",
            frame_index,
            fmt.frames,
            path,
        ),
    )
    b = value(
        "secondary_angle_deg",
        lambda: _angle(
            ds,
            "PositionerSecondaryAngle",
            "PositionerSecondaryAngleIncrement",
            frame_index,
            fmt.frames,
            path,
        ),
    )
    sid = value(
        "sid_mm",
        lambda: _required_number(
            ds, ["DistanceSourceToDetector"], frame_index, path, positive=True
        ),
    )
    sod = value(
        "sod_mm",
        lambda: _required_number(
            ds,
            ["DistanceSourceToPatient", "DistanceSourceToIsocenter"],
            frame_index,
            path,
            positive=True,
        ),
    )
    if not sod < sid:
        raise InputError(
            f"source-to-isocenter distance {sod} mm ({prov['sod_mm']}) must be less than "
            f"source-to-detector distance {sid} mm",
            source=str(path),
            field=prov["sod_mm"],
        )
    ps = value(
        "pixel_spacing_mm",
        lambda: _pixel_spacing(
            ds, frame_index, path, fmt.rows, fmt.columns, sid, sod, pixel_spacing_mm
        ),
    )
    prov["size"] = f"{tag_label('Columns')} x {tag_label('Rows')}"
    try:
        return ViewGeometry.from_angles(a, b, sid, sod, ps, fmt.columns, fmt.rows, provenance=prov)
    except InputError as exc:  # a range check: name the tag (or override) it came from
        if exc.source:
            raise
        field = prov.get(exc.field or "", exc.field)
        raise InputError(exc.message, source=str(path), field=field) from None


# -- public reader ----------------------------------------------------------------------
def read_xa(
    path: str | os.PathLike[str],
    frame: int | None = None,
    *,
    pixel_spacing_mm: tuple[float, float] | None = None,
    geometry: bool = True,
    geometry_overrides: dict[str, Any] | None = None,
) -> XAImage:
    """Read one frame of an XA DICOM file and its projection geometry.

    ``frame`` is zero-based; None picks the only frame, or for multi-frame files the frame
    with the strongest vessel contrast. ``pixel_spacing_mm`` (row, column; mm at the
    detector) is used only when no spacing tag is present. ``geometry=False`` skips the
    geometry tags (``XAImage.geometry`` is then None). ``geometry_overrides`` gives values
    (keys primary_angle_deg, secondary_angle_deg, sid_mm, sod_mm, pixel_spacing_mm) that
    replace the tags, as a case.json ``geometry`` object does. Raises InputNotFoundError for a
    missing file and InputError for anything unreadable, naming the file and tag.
    """
    p = Path(path)
    ds = _open(p)
    ts = _transfer_syntax(ds, p)
    fmt = _pixel_format(ds, p)
    idx, selection, stored, scores, why = _select_frame(ds, p, ts, fmt, frame)
    geom = _geometry(ds, p, fmt, idx, pixel_spacing_mm, geometry_overrides) if geometry else None
    prov = {"frame": why, **({} if geom is None else geom.provenance)}
    return XAImage(
        path=p,
        frames_count=fmt.frames,
        frame_index=idx,
        frame_selection=selection,
        stored=stored,
        image=stored_to_image(stored, fmt.bits_stored, fmt.photometric),
        geometry=geom,
        provenance=prov,
        manufacturer=str(ds.get("Manufacturer", "") or ""),
        transfer_syntax_uid=ts,
        transfer_syntax=dcm_uid.UID(ts).name,
        bits_stored=fmt.bits_stored,
        pixel_representation=fmt.pixel_representation,
        photometric=fmt.photometric,
        frame_scores=scores,
    )


# -- writer -----------------------------------------------------------------------------
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
            f"cannot write transfer syntax {_ts_text(ts)}; supported: "
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
