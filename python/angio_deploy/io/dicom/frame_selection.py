"""Which frame of an XA run to use: the given one, the only one, or the strongest contrast.

With ``frame=None`` a multi-frame file's frame is the one with the strongest vessel
contrast: each frame is 2x2 block-averaged and log-transformed (log(I + 0.02),
Beer-Lambert, exposure-independent), a black top-hat (grey closing minus image, 7x7 px at
half resolution, about 14 px full size) enhances thin dark structures, and the score is
its 99th percentile inside the central region (1/16 of each side cropped, which drops
collimator and shutter edges). Highest score wins; ties go to the earliest frame.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import iter_pixels as _iter_pixels
from scipy import ndimage

from angio_deploy.errors import InputError

from .elements import PixelFormat
from .pixels import decode, decode_error, frame_shaped, stored_to_image, to_stored

logger = logging.getLogger(__name__)

SELECTION_GIVEN = "given"
SELECTION_SINGLE = "single-frame"
SELECTION_CONTRAST = "strongest vessel contrast"

_TOPHAT_SIZE_PX = 7  # structuring element at half resolution (pixels)
_SCORE_PERCENTILE = 99.0
_LOG_EPS = 0.02  # keeps log finite in black pixels (fraction of full scale)


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


def strongest_frame(
    ds: Dataset, path: Path, ts: str, fmt: PixelFormat
) -> tuple[int, np.ndarray, list[float]]:
    """Decode frames one at a time; keep the best-scoring one (memory: one frame)."""
    best, best_frame, scores = -1, np.empty(0), []
    try:
        for raw in _iter_pixels(ds, raw=True):
            stored = frame_shaped(to_stored(raw, fmt), fmt, path)
            scores.append(
                vessel_contrast_score(stored_to_image(stored, fmt.bits_stored, fmt.photometric))
            )
            if best < 0 or scores[-1] > scores[best]:
                best, best_frame = len(scores) - 1, stored
    except InputError:
        raise
    except Exception as exc:  # decoders raise RuntimeError, ValueError, ... on bad data
        raise decode_error(path, ts, exc) from exc
    return best, best_frame, scores


def select_frame(
    ds: Dataset, path: Path, ts: str, fmt: PixelFormat, frame: int | None
) -> tuple[int, str, np.ndarray, tuple[float, ...] | None, str]:
    """(index, selection, stored frame, scores, provenance text) for the requested frame.

    ``frame`` is zero-based; None picks the only frame, or the strongest-contrast one.
    """
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
        raw = decode(ds, path, ts, idx if fmt.frames > 1 else None)
        stored = frame_shaped(to_stored(raw, fmt), fmt, path)
        return idx, SELECTION_GIVEN, stored, None, f"frame {idx} given by caller"
    if fmt.frames == 1:
        raw = decode(ds, path, ts, None)
        stored = frame_shaped(to_stored(raw, fmt), fmt, path)
        return 0, SELECTION_SINGLE, stored, None, "single-frame file"
    idx, stored, scores = strongest_frame(ds, path, ts, fmt)
    why = (
        f"frame {idx} of {fmt.frames}: strongest vessel contrast (99th percentile of a 7x7 "
        f"black top-hat of log intensity on the 2x-downsampled frame = {scores[idx]:.4f}; "
        f"range {min(scores):.4f} to {max(scores):.4f})"
    )
    logger.info("%s: %s", path, why)
    return idx, SELECTION_CONTRAST, stored, tuple(scores), why
