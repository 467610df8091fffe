"""X-ray detector and display chain of a synthetic angiogram.

Units: images are (H, W) arrays on the detector pixel grid (u = column, v = row);
lengths in pixels unless named ``_mm``; intensities in detected quanta (counts) per pixel
until :func:`display_transform`, which maps log counts to [0, 1] display values
(MONOCHROME2: fewer counts, i.e. more attenuation, is darker).

Order of the physical chain (see :func:`angio_deploy.synth.xray.render_view`):
expected counts -> Poisson quanta -> detector PSF (scintillator light spread blurs each
quantum, so the noise is blurred too) -> electronic noise -> log -> display processing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

from angio_deploy.synth.background import upsample

# -- point spread functions ---------------------------------------------------------------


def gaussian_kernel1d(sigma_px: float) -> np.ndarray:
    """Normalised 1D Gaussian (sum 1), radius ceil(3.5 sigma); [1.] for sigma <= 0."""
    if sigma_px <= 1e-6:
        return np.ones(1, dtype=np.float32)
    r = max(1, math.ceil(3.5 * sigma_px))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma_px) ** 2)
    return (k / k.sum()).astype(np.float32)


def laplace_kernel1d(scale_px: float) -> np.ndarray:
    """Normalised 1D exponential kernel exp(-|x| / scale) (sum 1), radius ceil(5 scale)."""
    if scale_px <= 1e-6:
        return np.ones(1, dtype=np.float32)
    r = max(1, math.ceil(5.0 * scale_px))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-np.abs(x) / scale_px)
    return (k / k.sum()).astype(np.float32)


def psf_kernel1d(kind: str, width_px: float) -> np.ndarray:
    """Separable detector PSF factor: "gaussian" (sigma) or "exponential" (scale), pixels.

    The exponential PSF (the long tails of CsI light spread) is applied as a product of
    two 1D Laplace kernels: not exactly radially symmetric, but separable and cheap.
    """
    if kind == "gaussian":
        return gaussian_kernel1d(width_px)
    if kind == "exponential":
        return laplace_kernel1d(width_px)
    raise ValueError(f"unknown PSF kind {kind!r}; use 'gaussian' or 'exponential'")


def blur(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable convolution with the symmetric 1D kernel ``k`` along both axes.

    Mode "reflect" keeps the image integral for content away from the border (the kernel
    sums to 1), so blur moves signal without creating or destroying it.
    """
    if k.size == 1:
        return img
    out = ndi.correlate1d(img, k, axis=0, mode="reflect")
    return ndi.correlate1d(out, k, axis=1, mode="reflect")


def gaussian_blur_fft(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur (sigma in pixels) by FFT, edges reflected over 3 sigma: its cost does
    not grow with sigma, unlike a direct convolution (used for wide display kernels)."""
    r = max(1, math.ceil(3.0 * sigma_px))
    pad = np.pad(img.astype(np.float32), r, mode="reflect")
    h, w = pad.shape
    shape = (sfft.next_fast_len(h, real=True), sfft.next_fast_len(w, real=True))
    F = sfft.rfft2(pad, s=shape)
    fy = sfft.fftfreq(shape[0])[:, None]
    fx = sfft.rfftfreq(shape[1])[None, :]
    F *= np.exp(-2.0 * (math.pi * sigma_px) ** 2 * (fx * fx + fy * fy)).astype(np.float32)
    out = sfft.irfft2(F, s=shape)[:h, :w]
    return out[r : r + img.shape[0], r : r + img.shape[1]].astype(np.float32)


def noise_power_factor(k: np.ndarray) -> float:
    """Variance reduction of white noise by the separable 2D PSF k x k: (sum k^2)^2."""
    return float(np.sum(k.astype(np.float64) ** 2)) ** 2


def lowpass(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Wide Gaussian low-pass (sigma >= ~8 px) computed on a 4x-decimated grid, same shape.

    Used for scatter and dynamic-range compression, whose kernels are tens of pixels wide;
    decimating by 4 first costs nothing visible and makes it ~16x cheaper.
    """
    H, W = img.shape
    f = 4
    h, w = (H + f - 1) // f, (W + f - 1) // f
    pad = np.pad(img, ((0, h * f - H), (0, w * f - W)), mode="edge")
    small = pad.reshape(h, f, w, f).mean(axis=(1, 3))
    small = ndi.gaussian_filter(small, sigma_px / f, mode="nearest")
    # Block means sit at block centres; shift by half a block when upsampling.
    out = upsample(small.astype(np.float32), h * f, w * f)
    sh = f // 2 - 1 if f > 1 else 0
    out = np.pad(out, ((sh, 0), (sh, 0)), mode="edge")[:H, :W]
    return out


# -- field non-uniformity and collimation -------------------------------------------------


def vignetting(H: int, W: int, strength: float, heel: float, heel_angle_rad: float) -> np.ndarray:
    """Relative exposure (H, W) float32: radial falloff and anode heel effect.

    ``strength`` is the fractional loss at the image corner (image-intensifier / flat-panel
    vignetting, cos^4-like, modelled as 1 - strength r^2 with r = 1 at the corner); ``heel``
    the fractional half-range of a linear gradient along direction ``heel_angle_rad``.
    """
    y = (np.arange(H, dtype=np.float32) - (H - 1) / 2) / ((H - 1) / 2 if H > 1 else 1)
    x = (np.arange(W, dtype=np.float32) - (W - 1) / 2) / ((W - 1) / 2 if W > 1 else 1)
    r2 = (x[None, :] ** 2 + y[:, None] ** 2) / 2.0
    lin = math.cos(heel_angle_rad) * x[None, :] + math.sin(heel_angle_rad) * y[:, None]
    return ((1.0 - strength * r2) * (1.0 + heel * lin)).astype(np.float32)


@dataclass(frozen=True)
class Collimation:
    """Shutter blades: blocked width (fraction of the image side) at left, right, top,
    bottom; corner chamfer (fraction; octagonal fields as on GE systems), edge softness
    (pixels, Gaussian sigma of the blade penumbra) and blade transmission (fraction).
    ``circle`` > 0 adds a circular field (an iris, or an image intensifier's round input
    screen) centred on the image, of radius ``circle`` times half the image's shorter
    side (above 1 the circle is cut by the image edges)."""

    left: float = 0.0
    right: float = 0.0
    top: float = 0.0
    bottom: float = 0.0
    chamfer: float = 0.0
    softness_px: float = 1.5
    transmission: float = 0.02
    circle: float = 0.0

    @property
    def active(self) -> bool:
        return max(self.left, self.right, self.top, self.bottom, self.chamfer, self.circle) > 0

    def circle_radius_px(self, H: int, W: int) -> float:
        """Radius (px) of the circular field in an H x W image (0: none)."""
        return self.circle * 0.5 * min(H, W)

    def to_dict(self) -> dict[str, float]:
        d = {
            "left": self.left,
            "right": self.right,
            "top": self.top,
            "bottom": self.bottom,
            "chamfer": self.chamfer,
            "softness_px": self.softness_px,
            "transmission": self.transmission,
        }
        if self.circle > 0:
            # Only when set: meta.json of generator version 1 stays as it was.
            d["circle"] = self.circle
        return d


def _soft_step(d: np.ndarray, softness: float) -> np.ndarray:
    """Smooth 0 -> 1 step of signed distance d (px), error-function-like of width softness."""
    s = max(softness, 1e-3)
    return (0.5 * (1.0 + np.tanh(d / (s * 1.2)))).astype(np.float32)


def collimation_mask(H: int, W: int, c: Collimation) -> np.ndarray:
    """Transmission (H, W) float32 of the shutter blades: 1 in the field, c.transmission
    behind a blade, with a soft edge (the blades sit near the focal spot, so their shadow
    has a wide penumbra)."""
    if not c.active:
        return np.ones((H, W), dtype=np.float32)
    v = np.arange(H, dtype=np.float32)[:, None]
    u = np.arange(W, dtype=np.float32)[None, :]
    d = np.minimum(
        np.minimum(u - c.left * W, (W - 1 - u) - c.right * W),
        np.minimum(v - c.top * H, (H - 1 - v) - c.bottom * H),
    )
    if c.chamfer > 0:
        # Corners cut at 45 degrees: distance to the four diagonal lines.
        k = c.chamfer * (W + H) / 2
        diag = np.minimum(
            np.minimum(u + v - k, (W - 1 - u) + v - k),
            np.minimum(u + (H - 1 - v) - k, (W - 1 - u) + (H - 1 - v) - k),
        ) / math.sqrt(2.0)
        d = np.minimum(d, diag)
    if c.circle > 0:
        r = np.hypot(u - (W - 1) / 2, v - (H - 1) / 2)
        d = np.minimum(d, c.circle_radius_px(H, W) - r)
    step = _soft_step(d, c.softness_px)
    return (c.transmission + (1.0 - c.transmission) * step).astype(np.float32)


# -- noise ----------------------------------------------------------------------------------


def poisson_counts(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Quantum noise: Poisson counts (float32) for expected counts (H, W).

    Exact ``rng.poisson`` where the expectation is below 400 counts; above it the Gaussian
    N(lambda, lambda) that Poisson converges to (relative skewness 1/sqrt(lambda) < 5 %),
    which is several times faster and statistically indistinguishable here.
    """
    lam = np.maximum(expected, 0.0).astype(np.float32)
    out = lam + np.sqrt(lam) * rng.standard_normal(lam.shape, dtype=np.float32)
    low = lam < 400.0
    if low.any():
        out[low] = rng.poisson(lam[low].astype(np.float64)).astype(np.float32)
    return out


# -- display --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Display:
    """Display processing of the log image, as clinical XA systems apply before storage.

    ``drc``: dynamic-range compression, fraction (0-1) of the low-pass (sigma ``drc_sigma_px``)
    log image removed (flattens lung vs heart vs diaphragm); ``window_lo_q``/``window_hi_q``:
    quantiles of the in-field log image mapped to 0 and 1 (automatic window/level) widened
    by ``window_margin`` (fraction of the width) each side; ``window_level``, when set,
    places the in-field median at that display value instead (clinical auto-windowing
    keeps the background mid-grey), keeping the width; ``gamma``; unsharp-mask edge
    enhancement ``unsharp_amount`` with Gaussian radius ``unsharp_sigma_px``.
    ``shutter_level``, when set, is the display value behind the collimator
    (:func:`black_shutter`: systems blank the shutter area, which compression would
    otherwise lift to a grey); None leaves it as the chain makes it.
    """

    drc: float = 0.0
    drc_sigma_px: float = 40.0
    window_lo_q: float = 0.0
    window_hi_q: float = 1.0
    window_margin: float = 0.0
    window_level: float | None = None
    gamma: float = 1.0
    unsharp_amount: float = 0.0
    unsharp_sigma_px: float = 4.0
    shutter_level: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready dict; ``shutter_level`` only when set (meta.json of generator
        version 1 stays as it was)."""
        d = asdict(self)
        if self.shutter_level is None:
            d.pop("shutter_level")
        return d


def display_transform(
    log_img: np.ndarray, field: np.ndarray, disp: Display
) -> tuple[np.ndarray, tuple[float, float]]:
    """Log counts (H, W) -> display values in [0, 1] (float32) and the window (lo, hi).

    ``field`` (H, W) bool marks the collimated field used to set the automatic window.
    Without drc, gamma and unsharp masking the map is linear: x = (log - lo) / (hi - lo),
    so a test can invert it.
    """
    img = log_img.astype(np.float32)
    if disp.drc > 0:
        lp = lowpass(img, disp.drc_sigma_px)
        sub = field[::4, ::4]
        ref = float(np.median(lp[::4, ::4][sub])) if sub.any() else float(np.median(lp))
        img = img - disp.drc * (lp - ref)
    sample = img[::2, ::2][field[::2, ::2]]
    if sample.size == 0:
        sample = img[::2, ::2].ravel()
    lo, hi = np.quantile(sample, [disp.window_lo_q, disp.window_hi_q])
    width = max(float(hi - lo), 1e-6)
    lo = float(lo) - disp.window_margin * width
    hi = float(hi) + disp.window_margin * width
    if disp.window_level is not None:
        med = float(np.median(sample))
        full = hi - lo
        lo = med - disp.window_level * full
        hi = lo + full
    x = (img - lo) / (hi - lo)
    if disp.gamma != 1.0:
        x = np.clip(x, 0.0, 1.0) ** disp.gamma
    if disp.unsharp_amount > 0:
        smooth = (
            gaussian_blur_fft(x, disp.unsharp_sigma_px)
            if disp.unsharp_sigma_px > 2.0
            else blur(x, gaussian_kernel1d(disp.unsharp_sigma_px))
        )
        x = x + disp.unsharp_amount * (x - smooth)
    return np.clip(x, 0.0, 1.0).astype(np.float32), (lo, hi)


def black_shutter(
    x01: np.ndarray, transmission_map: np.ndarray, c: Collimation, level: float
) -> np.ndarray:
    """Blank the collimator's shadow of a display image (H, W) in [0, 1]: behind the
    blades (``transmission_map`` from :func:`collimation_mask`) the image is scaled so
    its median reads ``level`` (its noise scaled alike; never brightened: where the
    chain already left it darker, it stays), blended over the blade penumbra; the field
    is unchanged."""
    t = c.transmission
    w = np.clip((transmission_map - t) / max(1.0 - t, 1e-6), 0.0, 1.0)
    behind = w < 0.5
    if not behind.any():
        return x01
    ref = max(float(np.median(x01[behind])), 1e-3)
    dark = x01 * min(1.0, level / ref)
    return np.clip(w * x01 + (1.0 - w) * dark, 0.0, 1.0).astype(np.float32)


def quantise(x01: np.ndarray, bits_stored: int) -> np.ndarray:
    """[0, 1] display values -> stored integers in [0, 2**bits - 1] (uint8 or uint16)."""
    if bits_stored not in (8, 10, 12, 16):
        raise ValueError(f"bits_stored must be 8, 10, 12 or 16, got {bits_stored}")
    top = (1 << bits_stored) - 1
    dtype = np.uint8 if bits_stored == 8 else np.uint16
    return np.rint(np.clip(x01, 0.0, 1.0) * top).astype(dtype)
