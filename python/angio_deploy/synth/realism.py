"""Image statistics to compare synthetic angiograms with real ones (docs/DATASET.md).

All functions take a 2D image with values in [0, 1] (stored value / maximum, MONOCHROME2:
vessels dark) and work on its central region (1/16 of each side cropped by default),
which drops collimator blades and the dark frame of clinical exports. Results are in
display units of that [0, 1] scale unless stated otherwise; frequencies in cycles/pixel.

* :func:`noise_level`: robust noise sigma from the median absolute value of a
  high-pass residual (image minus a Gaussian of 1.5 px), so anatomy and edges barely
  bias it.
* :func:`vessel_cnr`: (mean of a background ring - mean in the vessel mask) / noise.
* :func:`dark_line_contrast`: without a mask (real frames), a black top-hat finds thin
  dark structures; its 99th percentile over its median, divided by the noise, is a
  mask-free vessel CNR estimate.
* :func:`power_spectrum`: radially averaged power spectrum of the background (Hann
  window) and its log-log slope over a frequency band (1/f^beta textures give -beta).
* :func:`histogram`: 64-bin normalised intensity histogram and percentiles.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage as ndi

#: Percentiles reported for the intensity histogram.
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)


def central(image: np.ndarray, crop: float = 1.0 / 16.0) -> np.ndarray:
    """The central part of an image, ``crop`` of each side removed."""
    H, W = image.shape
    dy, dx = round(H * crop), round(W * crop)
    return image[dy : H - dy, dx : W - dx]


def _highpass_gain(sigma_px: float) -> float:
    """Standard deviation of (identity - Gaussian(sigma)) applied to unit white noise."""
    k = _gauss1d(sigma_px)
    g2 = np.outer(k, k)
    c = g2.shape[0] // 2
    g2 = -g2
    g2[c, c] += 1.0
    return float(np.sqrt((g2**2).sum()))


def _gauss1d(sigma_px: float) -> np.ndarray:
    r = max(1, math.ceil(4.0 * sigma_px))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma_px) ** 2)
    return k / k.sum()


def noise_level(image01: np.ndarray, crop: float = 1.0 / 16.0, sigma_px: float = 1.5) -> float:
    """Robust noise sigma (display units): 1.4826 MAD of a high-pass residual.

    The residual is image - Gaussian(``sigma_px``), so noise at 1-4 pixel scales counts
    (it survives JPEG export and mild detector blur, unlike a pure pixel-to-pixel
    difference, whose median collapses to the quantisation step on 8-bit JPEG frames); it
    is scaled by the residual filter's gain so that white Gaussian noise of sd s reads s.
    The median ignores edges and vessels. Pixels clipped to 0 or 1 are ignored.
    """
    img = central(np.asarray(image01, dtype=np.float64), crop)
    k = _gauss1d(sigma_px)
    smooth = ndi.correlate1d(ndi.correlate1d(img, k, axis=0, mode="reflect"), k, axis=1)
    r = img - smooth
    ok = (img > 0.002) & (img < 0.998)
    vals = np.abs(r[ok]) if ok.sum() > 100 else np.abs(r).ravel()
    return float(1.4826 * np.median(vals) / _highpass_gain(sigma_px))


def vessel_cnr(
    image01: np.ndarray, mask: np.ndarray, ring: tuple[int, int] = (3, 8)
) -> dict[str, float]:
    """Vessel contrast, noise and CNR given a vessel mask (H, W) bool.

    Background is the ring between ``ring[0]`` and ``ring[1]`` pixels from the mask (other
    vessels inside it are not excluded; use a mask of all vessels to avoid that).
    """
    img = np.asarray(image01, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise ValueError("vessel mask is empty")
    near = ndi.binary_dilation(m, iterations=ring[0])
    far = ndi.binary_dilation(m, iterations=ring[1])
    bg = far & ~near
    if not bg.any():
        raise ValueError("no background ring around the vessel mask")
    contrast = float(img[bg].mean() - img[m].mean())
    sigma = noise_level(img, crop=0.0)
    return {
        "contrast": contrast,
        "noise": sigma,
        "cnr": contrast / sigma if sigma > 0 else math.inf,
    }


def dark_line_contrast(
    image01: np.ndarray, size_px: int | None = None, crop: float = 1.0 / 16.0
) -> dict[str, float]:
    """Mask-free vessel contrast from a black top-hat (closing - image).

    ``size_px`` (default 3 % of the image width, ~15 px at 512) is wider than a vessel, so
    the top-hat responds to dark lines and not to the smooth background. Returns the 99th
    and 50th percentiles of the response, the contrast p99 - p50 and its ratio to the noise.
    """
    img = central(np.asarray(image01, dtype=np.float32), crop)
    size = size_px or max(5, round(0.03 * image01.shape[1]) | 1)
    th = ndi.grey_closing(img, size=(size, size)) - img
    p50, p99 = (float(x) for x in np.percentile(th, [50, 99]))
    sigma = noise_level(image01, crop)
    return {
        "tophat_p50": p50,
        "tophat_p99": p99,
        "contrast": p99 - p50,
        "cnr": (p99 - p50) / sigma if sigma > 0 else math.inf,
    }


def radial_power_spectrum(image: np.ndarray, n_bins: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum: (frequencies, power); see :func:`_radial_spectrum`."""
    f, p, _ = _radial_spectrum(image, n_bins)
    return f, p


def _radial_spectrum(
    image: np.ndarray, n_bins: int = 48
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a (Hann-windowed, mean-removed) image.

    Returns bin-centre frequencies (cycles/pixel, log-spaced 3/N .. 0.5, N the shorter
    side: below 3/N a bin holds too few frequencies to average), mean power and the number
    of frequencies averaged per bin.
    """
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    # Remove the window-weighted mean so that the window's main lobe (+-2 bins) does not
    # carry a DC notch into the lowest frequencies.
    img = img - float((img * win).sum() / win.sum())
    F = np.fft.rfft2(img * win)
    p = (F.real**2 + F.imag**2) / float((win**2).sum())
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    edges = np.geomspace(3.0 / min(h, w), 0.5, n_bins + 1)
    idx = np.digitize(f.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < n_bins)
    sums = np.bincount(idx[ok], weights=p.ravel()[ok], minlength=n_bins)
    cnt = np.bincount(idx[ok], minlength=n_bins)
    centres = np.sqrt(edges[:-1] * edges[1:])
    keep = cnt > 0
    return centres[keep], sums[keep] / cnt[keep], cnt[keep]


def spectrum_slope(
    image01: np.ndarray, band: tuple[float, float] = (0.01, 0.1), crop: float = 1.0 / 16.0
) -> dict[str, Any]:
    """Log-log slope of the radial power spectrum over ``band`` (cycles/pixel).

    The default band (10 to 100 pixel periods) covers the anatomical background and stays
    below the frequencies where noise and blur dominate. White noise gives ~0, a 1/f^beta
    texture ~ -beta.
    """
    f, p, n = _radial_spectrum(central(np.asarray(image01, dtype=np.float64), crop))
    sel = (f >= band[0]) & (f <= band[1]) & (p > 0)
    if sel.sum() < 3:
        return {"slope": math.nan, "band": list(band)}
    # Weighted least squares: the log of a mean of n periodogram values has sd ~ 1/sqrt(n).
    slope, _icpt = np.polyfit(np.log(f[sel]), np.log(p[sel]), 1, w=np.sqrt(n[sel]))
    return {
        "slope": float(slope),
        "band": list(band),
        "freq": f.tolist(),
        "power": p.tolist(),
    }


def histogram(image01: np.ndarray, bins: int = 64, crop: float = 1.0 / 16.0) -> dict[str, Any]:
    """Normalised intensity histogram (``bins`` over [0, 1], sums to 1) and percentiles."""
    img = central(np.asarray(image01, dtype=np.float64), crop)
    hist, _ = np.histogram(img, bins=bins, range=(0.0, 1.0))
    hist = hist / max(hist.sum(), 1)
    pct = np.percentile(img, PERCENTILES)
    return {
        "hist": hist.tolist(),
        "percentiles": {str(p): float(v) for p, v in zip(PERCENTILES, pct, strict=True)},
        "spread_p5_p95": float(pct[PERCENTILES.index(95)] - pct[PERCENTILES.index(5)]),
        "median": float(pct[PERCENTILES.index(50)]),
    }


def image_statistics(image01: np.ndarray, vessel_mask: np.ndarray | None = None) -> dict[str, Any]:
    """All statistics of one [0, 1] image; the vessel CNR from the mask when given,
    otherwise estimated from the dark-line (top-hat) filter. JSON-ready."""
    img = np.asarray(image01, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be 2D, got shape {img.shape}")
    out: dict[str, Any] = {"noise": noise_level(img)}
    out["dark_line"] = dark_line_contrast(img)
    if vessel_mask is not None:
        out["vessel"] = vessel_cnr(img, vessel_mask)
        out["cnr"] = out["vessel"]["cnr"]
    else:
        out["cnr"] = out["dark_line"]["cnr"]
    spec = spectrum_slope(img)
    out["spectrum_slope"] = spec["slope"]
    out["spectrum"] = {"freq": spec.get("freq", []), "power": spec.get("power", [])}
    out["histogram"] = histogram(img)
    return out


def compare(stats_a: dict[str, Any], stats_b: dict[str, Any]) -> dict[str, float]:
    """Differences between two :func:`image_statistics` results (a relative to b).

    ``noise_ratio`` and ``cnr_ratio`` are a / b; ``slope_diff`` a - b; ``median_diff`` and
    ``spread_ratio`` from the histogram percentiles; ``hist_emd`` the earth mover's
    distance between the two histograms (display units, 0 = identical, 1 = all mass moved
    across the whole range); ``hist_intersection`` in [0, 1] (1 = identical).
    """
    ha = np.asarray(stats_a["histogram"]["hist"], dtype=np.float64)
    hb = np.asarray(stats_b["histogram"]["hist"], dtype=np.float64)
    emd = float(np.abs(np.cumsum(ha) - np.cumsum(hb)).sum() / ha.size)

    def ratio(x: float, y: float) -> float:
        return float(x / y) if y else math.inf

    return {
        "noise_ratio": ratio(stats_a["noise"], stats_b["noise"]),
        "cnr_ratio": ratio(stats_a["cnr"], stats_b["cnr"]),
        "slope_diff": float(stats_a["spectrum_slope"] - stats_b["spectrum_slope"]),
        "median_diff": float(stats_a["histogram"]["median"] - stats_b["histogram"]["median"]),
        "spread_ratio": ratio(
            stats_a["histogram"]["spread_p5_p95"], stats_b["histogram"]["spread_p5_p95"]
        ),
        "hist_emd": emd,
        "hist_intersection": float(np.minimum(ha, hb).sum()),
    }
