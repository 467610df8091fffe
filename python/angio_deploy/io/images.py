"""Plain (non-DICOM) view images: PNG/TIFF 8/16-bit grayscale and float32 .npy."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from angio_deploy.errors import InputError

log = logging.getLogger(__name__)


def read_plain_image(path: str | Path) -> np.ndarray:
    """Read a grayscale view image -> (H, W) float32 in [0, 1] (0 = black).

    PNG/TIFF: 8-bit values are divided by 255, 16-bit by 65535; colour images are
    converted to luminance with a warning. ``.npy``: a 2-D float array taken as is.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(f"not a readable .npy array ({exc})", source=str(path)) from None
        if arr.ndim != 2 or arr.dtype.kind != "f":
            raise InputError(
                f"must be a 2-D float array, got {arr.dtype} of shape {arr.shape}", source=str(path)
            )
        if not np.all(np.isfinite(arr)):
            raise InputError("contains NaN or infinite values", source=str(path))
        return np.ascontiguousarray(arr, dtype=np.float32)

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
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
            elif mode == "F":
                arr = np.asarray(im, dtype=np.float32)
            else:
                raise InputError(f"unsupported image mode {mode}", source=str(path))
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"not a readable image ({exc})", source=str(path)) from None
    return np.ascontiguousarray(arr)
