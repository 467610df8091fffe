"""Plain (non-DICOM) view images: PNG/TIFF 8/16-bit grayscale and float32 .npy."""

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
    arr = np.array(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise InputError("contains NaN or infinite values", source=str(path))
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise InputError(
            f"values must lie in [0, 1], got {arr.min():g} to {arr.max():g}", source=str(path)
        )
    return arr
