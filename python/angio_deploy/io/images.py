"""Plain (non-DICOM) view images: PNG/TIFF 8/16-bit grayscale, float32 .npy, and arrays
handed over in memory (:func:`image_from_array`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from angio_deploy.errors import InputError
from angio_deploy.limits import check_image_size

log = logging.getLogger(__name__)


def read_plain_image(path: str | Path) -> np.ndarray:
    """Read a grayscale view image -> (H, W) float32 in [0, 1] (0 = black).

    PNG/TIFF: 8-bit values are divided by 255, 16-bit by 65535; colour images are
    converted to luminance with a warning. ``.npy``: a 2-D float array in [0, 1] taken as
    is. The size (limits.py) is checked from the header before any pixel is decoded.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return _read_npy(path)

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            check_image_size(*im.size, source=str(path), min_side=1)
            if im.mode == "F":
                raise InputError(
                    "32-bit float images are not a view format (CASE_FORMAT.md: 8/16-bit "
                    "PNG or TIFF; give a float array as .npy)",
                    source=str(path),
                )
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                arr = np.asarray(im, dtype=np.uint16).astype(np.float32) / 65535.0
            elif mode == "I":
                a = np.asarray(im)
                arr = a.astype(np.float32) / (65535.0 if a.max() > 255 else 255.0)
            elif mode == "L":
                arr = np.asarray(im, dtype=np.uint8).astype(np.float32) / 255.0
            elif mode in ("RGB", "RGBA", "P", "LA"):
                log.warning("%s: colour image converted to grayscale", path)
                arr = np.asarray(im.convert("L"), dtype=np.uint8).astype(np.float32) / 255.0
            else:
                raise InputError(f"unsupported image mode {mode}", source=str(path))
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InputError(f"not a readable image ({exc})", source=str(path)) from None
    except (ValueError, SyntaxError, EOFError) as exc:  # Pillow's plugins on broken headers
        raise InputError(f"not a readable image ({exc})", source=str(path)) from None
    return np.ascontiguousarray(arr)


def _read_npy(path: Path) -> np.ndarray:
    try:
        # Memory-mapped first: the header gives shape and dtype before anything is read.
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy array ({exc})", source=str(path)) from None
    if arr.ndim != 2 or arr.dtype.kind != "f":
        raise InputError(
            f"must be a 2-D float array, got {arr.dtype} of shape {arr.shape}", source=str(path)
        )
    check_image_size(arr.shape[1], arr.shape[0], source=str(path), min_side=1)
    return _unit_float(np.array(arr, dtype=np.float32), str(path), None)


def _unit_float(arr: np.ndarray, source: str, field: str | None) -> np.ndarray:
    """A float32 image whose values must be finite and in [0, 1] (the .npy rule)."""
    if not np.all(np.isfinite(arr)):
        raise InputError("contains NaN or infinite values", source=source, field=field)
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise InputError(
            f"values must lie in [0, 1], got {arr.min():g} to {arr.max():g}",
            source=source,
            field=field,
        )
    return arr


PHOTOMETRIC = ("MONOCHROME2", "MONOCHROME1")


def image_from_array(
    array: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    source: str,
    field: str | None = None,
) -> np.ndarray:
    """A grayscale view image handed over in memory -> (H, W) float32 in [0, 1], 0 = black.

    Integer arrays (any signed or unsigned width) are stored values, mapped over the full
    range of ``bits_stored`` bits (default: the dtype's width) exactly as DICOM pixels are
    (:func:`angio_deploy.io.dicom.pixels.stored_to_image`; signed values offset by half the
    range), so pixels read from a DICOM file give the same image as the file itself; a
    value outside that range is an error. Float arrays must lie in [0, 1] (the ``.npy``
    rule). ``photometric`` "MONOCHROME1" (white = 0) is inverted. Errors name ``source``
    and ``field``.
    """
    from .dicom.pixels import stored_to_image

    arr = np.asarray(array)
    if photometric not in PHOTOMETRIC:
        raise InputError(
            f"photometric must be one of {PHOTOMETRIC}, got {photometric!r}",
            source=source,
            field=field,
        )
    if arr.ndim != 2:
        raise InputError(
            f"must be a 2-D (rows, columns) grayscale array, got shape {arr.shape}",
            source=source,
            field=field,
        )
    check_image_size(arr.shape[1], arr.shape[0], source=source, field=field, min_side=1)
    if arr.dtype.kind in "iu":
        width = arr.dtype.itemsize * 8
        bits = width if bits_stored is None else bits_stored
        if (
            isinstance(bits, bool)
            or not isinstance(bits, (int, np.integer))
            or not (1 <= bits <= width)
        ):
            raise InputError(
                f"bits_stored must be an integer from 1 to {width} for {arr.dtype} pixels, "
                f"got {bits!r}",
                source=source,
                field=field,
            )
        bits = int(bits)
        signed = arr.dtype.kind == "i"
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
            raise InputError(
                f"values {int(arr.min())} to {int(arr.max())} do not fit in {bits} bits "
                f"({lo} to {hi}); give bits_stored",
                source=source,
                field=field,
            )
        return np.ascontiguousarray(stored_to_image(arr, bits, photometric))
    if arr.dtype.kind != "f":
        raise InputError(
            f"must hold integer or float pixels, got {arr.dtype}", source=source, field=field
        )
    if bits_stored is not None:
        raise InputError(
            "bits_stored applies to integer pixels; float pixels lie in [0, 1]",
            source=source,
            field=field,
        )
    x = _unit_float(np.array(arr, dtype=np.float32), source, field)
    if photometric == "MONOCHROME1":
        x = np.float32(1.0) - x
    return np.ascontiguousarray(x)
