"""Rotate and crop a view around its segment of interest (3DAngioNet section 2.2).

The segmenter sees each view rotated so that the SOI start and end lie on the crop's
horizontal mid-line (start left, end right), cropped around the SOI: a vessel is segmented
only when it runs horizontally, which removes most of the distracting vessels. The crop is
``width`` x ``height`` pixels (wider than tall: the SOI runs along x); the SOI spans
``width - 2 * margin_px`` crop pixels unless that would magnify the image more than
``max_scale`` (short SOIs), so long SOIs fit and short ones keep context.

Coordinates: image pixels (u, v) = (column, row), crop pixels (x, y) = (column, row),
both with pixel centres at integers. The same :class:`SoiCrop` maps points both ways and
resamples images both ways, for training (torch side) and runtime alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from angio_deploy.errors import InputError

DEFAULT_WIDTH = 256
DEFAULT_HEIGHT = 160
DEFAULT_MARGIN_PX = 24
DEFAULT_MAX_SCALE = 2.0
#: Downscaling crops (scale below this) pre-smooth the image with a Gaussian of
#: PREFILTER_SIGMA / scale image pixels against aliasing; training uses the same values.
PREFILTER_BELOW_SCALE = 0.8
PREFILTER_SIGMA = 0.45


@dataclass(frozen=True)
class SoiCrop:
    """Similarity transform between a view and its SOI crop.

    ``A`` (2, 2) and ``b`` (2,) map crop to image: uv = A @ xy + b. ``scale`` is crop
    pixels per image pixel; ``angle_rad`` the image-frame angle of the start-to-end line.
    """

    width: int
    height: int
    A: np.ndarray
    b: np.ndarray
    scale: float
    angle_rad: float

    @classmethod
    def from_points(
        cls,
        start: np.ndarray,
        end: np.ndarray,
        *,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        margin_px: int = DEFAULT_MARGIN_PX,
        max_scale: float = DEFAULT_MAX_SCALE,
    ) -> SoiCrop:
        """Crop of ``width`` x ``height`` pixels with the SOI on its horizontal mid-line."""
        s = np.asarray(start, dtype=np.float64)
        e = np.asarray(end, dtype=np.float64)
        d = e - s
        length = float(np.hypot(*d))
        if not length > 0:
            raise InputError("start and end are the same point", field="soi")
        scale = min(max_scale, (width - 2 * margin_px) / length)
        angle = float(np.arctan2(d[1], d[0]))
        c, si = np.cos(angle), np.sin(angle)
        R = np.array([[c, -si], [si, c]])
        A = R / scale
        mid_crop = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
        b = 0.5 * (s + e) - A @ mid_crop
        return cls(width=width, height=height, A=A, b=b, scale=scale, angle_rad=angle)

    @classmethod
    def from_config(cls, start: np.ndarray, end: np.ndarray, cfg: dict) -> SoiCrop:
        """:meth:`from_points` with a model's crop settings (``width``, ``height``,
        ``margin_px``, ``max_scale``, as a segmenter's ``crop`` and the manifest hold)."""
        return cls.from_points(
            start,
            end,
            width=int(cfg["width"]),
            height=int(cfg["height"]),
            margin_px=int(cfg["margin_px"]),
            max_scale=float(cfg["max_scale"]),
        )

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Crop pixels (N, 2) -> image pixels (N, 2)."""
        return np.asarray(xy, dtype=np.float64) @ self.A.T + self.b

    def to_crop(self, uv: np.ndarray) -> np.ndarray:
        """Image pixels (N, 2) -> crop pixels (N, 2)."""
        Ainv = np.linalg.inv(self.A)
        return (np.asarray(uv, dtype=np.float64) - self.b) @ Ainv.T

    def projection(self, P: np.ndarray) -> np.ndarray:
        """The 3x4 matrix projecting world points (mm) straight to crop pixels, given the
        view's 3x4 projection matrix ``P`` (world mm -> image pixels)."""
        Ainv = np.linalg.inv(self.A)
        M = np.eye(3)
        M[:2, :2] = Ainv
        M[:2, 2] = -Ainv @ self.b
        return M @ np.asarray(P, dtype=np.float64)

    def warp(self, image: np.ndarray, *, order: int = 1, cval: float = 0.0) -> np.ndarray:
        """Resample an image (H, W) into the crop (height, width), float32.

        Linear interpolation by default; pixels outside the image take ``cval``. For
        downscaling (scale < 1) the image is pre-smoothed to avoid aliasing.
        """
        img = np.asarray(image, dtype=np.float32)
        if self.scale < PREFILTER_BELOW_SCALE:
            img = ndimage.gaussian_filter(img, sigma=PREFILTER_SIGMA / self.scale)
        yy, xx = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64)
        uv = self.to_image(np.stack([xx.ravel(), yy.ravel()], axis=1))
        coords = np.stack([uv[:, 1], uv[:, 0]])  # (row, col)
        out = ndimage.map_coordinates(img, coords, order=order, mode="constant", cval=cval)
        return out.reshape(self.height, self.width).astype(np.float32)

    def unwarp(self, crop: np.ndarray, shape: tuple[int, int], *, order: int = 1) -> np.ndarray:
        """Resample a crop-space map (height, width) back to an image-space map ``shape``;
        pixels outside the crop are 0. Only the crop's bounding box is evaluated."""
        H, W = shape
        corners = self.to_image(
            np.array(
                [
                    [-0.5, -0.5],
                    [self.width - 0.5, -0.5],
                    [-0.5, self.height - 0.5],
                    [self.width - 0.5, self.height - 0.5],
                ]
            )
        )
        lo = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
        hi = np.minimum(np.ceil(corners.max(axis=0)).astype(int), [W - 1, H - 1])
        out = np.zeros((H, W), dtype=np.float32)
        if np.any(hi < lo):
            return out
        vv, uu = np.mgrid[lo[1] : hi[1] + 1, lo[0] : hi[0] + 1].astype(np.float64)
        xy = self.to_crop(np.stack([uu.ravel(), vv.ravel()], axis=1))
        coords = np.stack([xy[:, 1], xy[:, 0]])
        vals = ndimage.map_coordinates(
            np.asarray(crop, dtype=np.float32), coords, order=order, mode="constant", cval=0.0
        )
        out[lo[1] : hi[1] + 1, lo[0] : hi[0] + 1] = vals.reshape(uu.shape)
        return out


def normalise_crop(crop: np.ndarray) -> np.ndarray:
    """Network input from a crop: zero mean, unit standard deviation (float32).

    Per-crop standardisation makes the segmenter indifferent to each system's display
    window and bit depth; a flat crop gives zeros.
    """
    c = np.asarray(crop, dtype=np.float32)
    sd = float(c.std())
    return ((c - float(c.mean())) / sd if sd > 1e-6 else np.zeros_like(c)).astype(np.float32)
