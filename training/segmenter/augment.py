"""SOI crops for training, and their augmentation (numpy only).

The crop is the runtime's :class:`angio_deploy.pipeline.crop.SoiCrop` with the same
parameters, so the network trains on exactly what it will see. :func:`warp_region` gives
the same result as ``SoiCrop.warp`` on the full image but only reads and filters the part
of the image the crop covers (the image stays memory-mapped).

Augmentation per training sample (validation uses none, with the case's own clicks):

* click jitter: start and end each move by N(0, ``jitter_px``) pixels, clipped at
  ``jitter_max_px`` -- clinicians' clicks vary; this also varies the crop's angle and scale;
* image and mask are warped with the jittered crop (image linear; mask linear, then > 0.5);
* intensity: gamma, contrast about the mean, Gaussian noise relative to the crop's
  standard deviation, and sometimes a slight blur (no inversion: MONOCHROME2 is fixed by the
  reader, vessels are always dark);
* vertical flip (start stays left, end right);
* then :func:`angio_deploy.pipeline.crop.normalise_crop`, as at runtime.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from angio_deploy.pipeline.crop import (
    DEFAULT_HEIGHT,
    DEFAULT_MARGIN_PX,
    DEFAULT_MAX_SCALE,
    DEFAULT_WIDTH,
    PREFILTER_BELOW_SCALE,
    PREFILTER_SIGMA,
    SoiCrop,
    normalise_crop,
)

_GAUSS_TRUNCATE = 4.0  # scipy's default


@dataclass(frozen=True)
class CropParams:
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    margin_px: int = DEFAULT_MARGIN_PX
    max_scale: float = DEFAULT_MAX_SCALE

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def make(self, start: np.ndarray, end: np.ndarray) -> SoiCrop:
        return SoiCrop.from_points(
            start,
            end,
            width=self.width,
            height=self.height,
            margin_px=self.margin_px,
            max_scale=self.max_scale,
        )


@dataclass(frozen=True)
class AugmentParams:
    jitter_px: float = 1.5
    jitter_max_px: float = 4.0
    gamma: tuple[float, float] = (0.7, 1.4)
    contrast: tuple[float, float] = (0.75, 1.3)
    noise_sd: tuple[float, float] = (0.0, 0.12)  # times the crop's standard deviation
    blur_prob: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.0)  # crop pixels
    vflip_prob: float = 0.5
    #: Real systems image at 300-1024 px: sometimes resample the crop down by a factor in
    #: ``lowres_factor`` and back up (lost resolution, not lost size).
    lowres_prob: float = 0.0
    lowres_factor: tuple[float, float] = (0.4, 0.9)
    #: Plain images carry no photometric tag: a host may send a MONOCHROME1-like image
    #: (vessels bright). Invert the crop this often so such input still segments.
    invert_prob: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def jitter_points(
    start: np.ndarray, end: np.ndarray, rng: np.random.Generator, p: AugmentParams
) -> tuple[np.ndarray, np.ndarray]:
    d = np.clip(rng.normal(0.0, p.jitter_px, (2, 2)), -p.jitter_max_px, p.jitter_max_px)
    s, e = np.asarray(start, float) + d[0], np.asarray(end, float) + d[1]
    if np.hypot(*(e - s)) < 2.0:  # never collapse a segment
        return np.asarray(start, float), np.asarray(end, float)
    return s, e


def warp_region(crop: SoiCrop, image: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``crop.warp(image * scale)`` reading only the crop's footprint (plus the filter's
    reach) of ``image`` (any 2-D array, e.g. a memmap of stored values)."""
    H, W = image.shape
    pad = 2
    if crop.scale < PREFILTER_BELOW_SCALE:
        pad += int(_GAUSS_TRUNCATE * (PREFILTER_SIGMA / crop.scale) + 0.5) + 1
    corners = crop.to_image(
        np.array(
            [
                [-0.5, -0.5],
                [crop.width - 0.5, -0.5],
                [-0.5, crop.height - 0.5],
                [crop.width - 0.5, crop.height - 0.5],
            ]
        )
    )
    u0 = max(math.floor(corners[:, 0].min()) - pad, 0)
    v0 = max(math.floor(corners[:, 1].min()) - pad, 0)
    u1 = min(math.ceil(corners[:, 0].max()) + pad, W - 1)
    v1 = min(math.ceil(corners[:, 1].max()) + pad, H - 1)
    if u1 < u0 or v1 < v0:
        return np.zeros((crop.height, crop.width), np.float32)
    sub = np.asarray(image[v0 : v1 + 1, u0 : u1 + 1], dtype=np.float32)
    if scale != 1.0:
        sub = sub * np.float32(scale)
    shifted = dataclasses.replace(crop, b=crop.b - np.array([u0, v0], dtype=np.float64))
    return shifted.warp(sub)


def intensity_augment(x: np.ndarray, rng: np.random.Generator, p: AugmentParams) -> np.ndarray:
    """Gamma, contrast, noise and blur on a crop in [0, 1] (float32 out)."""
    x = np.clip(x, 0.0, 1.0)
    x = np.power(x, rng.uniform(*p.gamma)).astype(np.float32)
    m = float(x.mean())
    x = m + (x - m) * np.float32(rng.uniform(*p.contrast))
    sd = float(x.std())
    noise = rng.uniform(*p.noise_sd) * sd
    if noise > 0:
        x = x + rng.normal(0.0, noise, x.shape).astype(np.float32)
    if rng.random() < p.blur_prob:
        x = ndimage.gaussian_filter(x, rng.uniform(*p.blur_sigma))
    # Drawn only when enabled, so runs with the earlier defaults keep their random stream.
    if p.lowres_prob > 0 and rng.random() < p.lowres_prob:
        f = rng.uniform(*p.lowres_factor)
        small = ndimage.zoom(ndimage.gaussian_filter(x, 0.5 / f), f, order=1)
        x = ndimage.zoom(small, np.array(x.shape) / np.array(small.shape), order=1)
    if p.invert_prob > 0 and rng.random() < p.invert_prob:
        x = 1.0 - x
    return x.astype(np.float32)


def make_sample(
    stored: np.ndarray,
    bits: int,
    mask: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    crop_params: CropParams,
    rng: np.random.Generator | None = None,
    aug: AugmentParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(network input (height, width) float32, mask (height, width) uint8) of one sample;
    augmented when both ``rng`` and ``aug`` are given."""
    augment = rng is not None and aug is not None
    if augment:
        start, end = jitter_points(start, end, rng, aug)
    crop = crop_params.make(start, end)
    x = warp_region(crop, stored, 1.0 / ((1 << int(bits)) - 1))
    y = (warp_region(crop, mask) > 0.5).astype(np.uint8)
    if augment:
        x = intensity_augment(x, rng, aug)
        if rng.random() < aug.vflip_prob:
            x, y = x[::-1], y[::-1]
    return normalise_crop(np.ascontiguousarray(x)), np.ascontiguousarray(y)
