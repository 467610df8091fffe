"""Open an XA DICOM file and check its header, every failure an InputError naming the tag.

pydicom parses values lazily, on first access; :func:`open_dataset` converts every element
at once, so a broken value (an unknown VR, a wrong length, a sequence that does not parse)
fails here with its tag named rather than deep in the reader. :func:`read_transfer_syntax`
and :func:`pixel_format` check what the pixel decoder will rely on, from the header alone,
before a single pixel is decoded.

Transfer syntaxes read: see :data:`READABLE_TRANSFER_SYNTAXES` (uncompressed implicit /
explicit little endian, deflated, retired explicit big endian, JPEG Baseline / Extended /
Lossless (any predictor and SV1), JPEG-LS lossless / near-lossless, JPEG 2000 lossless /
lossy, RLE Lossless).
"""

from __future__ import annotations

import copy
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pydicom.datadict
from pydicom import uid as dcm_uid
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from angio_deploy.errors import InputError, InputNotFoundError
from angio_deploy.limits import MAX_TOTAL_PIXELS, check_image_size

logger = logging.getLogger(__name__)

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
"""Transfer syntaxes :func:`~angio_deploy.io.dicom.reader.read_xa` decodes (others raise
:class:`InputError`)."""


@dataclass(frozen=True)
class PixelFormat:
    """The Image Pixel module as checked by :func:`pixel_format` (sizes in pixels)."""

    rows: int
    columns: int
    frames: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str


def tag_label(keyword: str) -> str:
    """'Keyword (gggg,eeee)' for a DICOM keyword, as error messages and provenance name it."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return keyword
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def transfer_syntax_text(ts: str) -> str:
    """'UID (name)' of a transfer syntax UID, or the UID alone when it has no name."""
    name = dcm_uid.UID(ts).name
    return f"{ts} ({name})" if name and name != ts else ts


def open_dataset(path: Path) -> Dataset:
    """dcmread with every failure turned into one clear InputError; all elements parsed."""
    if not path.exists():
        raise InputNotFoundError("file not found", source=str(path))
    if not path.is_file():
        raise InputError("is not a file", source=str(path))
    return _parsed(_read(path, path), path)


#: What :func:`open_source` reads: a file path, a pydicom Dataset, or the bytes of a file.
DicomSource = str | os.PathLike[str] | Dataset | bytes | bytearray | memoryview


def open_source(source: DicomSource, label: str | None = None) -> tuple[Dataset, Path]:
    """A checked Dataset (as :func:`open_dataset`) from a path, a Dataset or file bytes,
    and the name messages give it: the path, or ``label`` (default ``<memory:dataset>`` /
    ``<memory:bytes>``) for data in memory.

    A Dataset is deep-copied first (pixel bytes are shared, not copied), so a broken
    private element dropped here is dropped from the copy, never from the caller's object.
    """
    if isinstance(source, Dataset):
        name = Path(label or "<memory:dataset>")
        ds = copy.deepcopy(source)
        return _parsed(ds, name), name
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = Path(label or "<memory:bytes>")
        return _parsed(_read(io.BytesIO(bytes(source)), name), name), name
    path = Path(source)
    return open_dataset(path), path


def _read(src: Any, path: Path) -> Dataset:
    try:
        return pydicom.dcmread(src)
    except InvalidDicomError as exc:
        raise InputError(
            "is not a DICOM file (no 'DICM' prefix after the 128-byte preamble)",
            source=str(path),
        ) from exc
    except Exception as exc:  # truncated or corrupt files raise many different types
        raise InputError(f"cannot be parsed as DICOM: {exc}", source=str(path)) from exc


def _parsed(ds: Dataset, path: Path) -> Dataset:
    if getattr(ds, "file_meta", None) is not None:
        parse_elements(ds.file_meta, path)
    parse_elements(ds, path)
    return ds


def _element_label(tag: Any) -> str:
    keyword = pydicom.datadict.keyword_for_tag(tag)
    return f"({tag.group:04X},{tag.element:04X})" + (f" {keyword}" if keyword else "")


def parse_elements(ds: Dataset, path: Path, depth: int = 0) -> None:
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
                    parse_elements(item, path, depth + 1)
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


def read_transfer_syntax(ds: Dataset, path: Path) -> str:
    """The file meta's TransferSyntaxUID; InputError unless one readable UID."""
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
            f"transfer syntax {transfer_syntax_text(ts)} is not supported; supported: JPEG "
            "Baseline, JPEG Extended, JPEG Lossless, JPEG-LS, JPEG 2000, RLE Lossless and "
            "uncompressed",
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


def pixel_format(ds: Dataset, path: Path) -> PixelFormat:
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
    return PixelFormat(rows, cols, frames, bits_alloc, bits_stored, pixrep, photometric)


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
