"""Decode XA frames and map stored values onto [0, 1].

Pixel values: stored values are masked to Bits Stored (unsigned: uint8 / uint16; signed
data, PixelRepresentation 1: int8 / int16, sign-extended from Bits Stored).
:func:`stored_to_image` maps the full Bits Stored range linearly onto [0, 1] in
MONOCHROME2 sense (0 = black, contrast-filled vessels dark); MONOCHROME1 is inverted. No
windowing and no Modality LUT are applied (XA files rarely carry one; a linear rescale
would not change vessel appearance after normalisation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array as _pixel_array

from angio_deploy.errors import InputError

from .elements import PixelFormat, tag_label, transfer_syntax_text


def decode_error(path: Path, ts: str, exc: Exception) -> InputError:
    """The InputError for pixel data that the decoder of ``ts`` refused."""
    return InputError(
        f"pixel data could not be decoded ({transfer_syntax_text(ts)}): {exc}",
        source=str(path),
        field=tag_label("PixelData"),
    )


def decode(ds: Dataset, path: Path, ts: str, index: int | None) -> np.ndarray:
    """Decode one frame (index) or all frames (None) as pydicom returns them."""
    try:
        return _pixel_array(ds, index=index, raw=True)
    except Exception as exc:  # decoders raise RuntimeError, ValueError, ... on bad data
        raise decode_error(path, ts, exc) from exc


def to_stored(arr: np.ndarray, fmt: PixelFormat) -> np.ndarray:
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


def frame_shaped(stored: np.ndarray, fmt: PixelFormat, path: Path) -> np.ndarray:
    """One decoded frame as (Rows, Columns); a decoder that returned another size (pixel
    data longer or shorter than the header says) refuses the file."""
    if stored.size != fmt.rows * fmt.columns:
        raise InputError(
            f"decoded {stored.size} pixels, but Rows x Columns is {fmt.rows} x {fmt.columns}",
            source=str(path),
            field=tag_label("PixelData"),
        )
    return stored.reshape(fmt.rows, fmt.columns)
