"""Real vs synthetic angiogram appearance, measured the same way on both (issue 10, part 2).

    python tools/appearance_stats.py --synth /tmp/syn_app [--shared ../shared/data]
        [--json docs/results/appearance_stats.json]
        [--montage docs/figures/appearance_montage.png] [--limit N] [--workers N]

Image sets: ``real_arcade`` (200 frames, many patients, no vessel masks), ``real_clinical``
(77 JPEG cine frames of one patient, no masks), ``real_seg`` (40 frames with hand-traced
full-tree masks) and ``synthetic`` (both views of every case folder under ``--synth``, written
by ``angio-deploy synth``). For a synthetic case the folder's ``truth/`` holds only the SOI
mask, so the case is regenerated in memory from its seed (``generate_case``; its pixels must
equal the DICOM's, else the folder is from another generator and the tool stops) and the
full-tree and catheter silhouettes are projected through the true geometry.

Every image is a float array in [0, 1], MONOCHROME2 (vessels dark): 8-bit PNG/JPEG / 255,
DICOM stored value / (2**bits - 1). Lengths are pixels of the image as stored. Per frame:

* **field of view** (:func:`field_of_view`): the dark border is the pixels below
  :data:`DARK_LEVEL` (on a 5x5 median) connected to the image edge in pieces at least
  :data:`DARK_MIN_THICK_PX` thick, plus straight blade bands that display processing lifted
  above that level; the FOV is the rest, narrow notches closed. It is *circular* when the
  FOV edge away from the image border fits a circle to within 2 % of its radius and
  clearly better than a line. The border level is the median display value outside it.
* **vesselness mask** (:func:`vesselness`, :func:`vesselness_mask`): scikit-image Sato
  filter for dark ridges at sigmas :data:`SATO_SIGMAS` px on the raw [0, 1] image (so its
  response scales with vessel contrast, as a reader's eye does), thresholded at one
  absolute level for every set, components below :data:`MIN_COMPONENT_PX` dropped, 12 px
  inside the FOV. The level is calibrated on real_seg (the mean Dice against the hand
  masks is maximised, :func:`calibrate_threshold`) and the same level is applied to every
  set; on synthetic frames its agreement with the full-tree truth is reported too.
* **vessel share**: vessel pixels / FOV pixels, from the truth mask (real_seg, synthetic)
  and from the vesselness mask (all sets). A hand-traced mask holds the vessels a reader
  sees; the synthetic truth holds every lumen, also twigs lost in the noise, so synthetic
  frames also get a *visible truth* (:func:`visible_vessels`: the vessels whose median
  contrast is at least :data:`VISIBLE_SIGMAS` noise sigmas), measured the same way.
* **widths and contrast by width** (:func:`contrast_by_width`): along the mask's skeleton,
  width = 2 EDT - 1 px; contrast = local background - image at the skeleton pixel (display
  units), the background a Gaussian (sigma :data:`BG_SIGMA_PX`) average of FOV pixels more
  than 3 px from any vessel; per width bin (:data:`WIDTH_BINS`) the frame's median.
* **background** (:func:`background_stats`): on the largest square inside the FOV, vessels
  (dilated 3 px) replaced by the local background; the radially averaged power spectrum's
  log-log slope over 0.01-0.1 cycles/px (``synth.realism.spectrum_slope``), the texture sd
  (difference of Gaussians 1.6 / 16 px) and the noise (``synth.realism.noise_level``: 1.4826
  MAD of a 1.5 px high-pass residual, scaled so white noise of sd s reads s).
* **crossings and touches of a segment** (:func:`contacts`): the SOI's region is removed from
  the full-tree mask; every other-vessel piece within 2 px of the SOI region, away from its
  two ends (the vessel's own continuation), is one contact (a branch leaving, or one side of
  a vessel crossing). On real_seg the SOIs are the benchmark's tasks
  (``training.segmenter.real_tasks.make_tasks``, 8 per image, seed 0); on synthetic frames
  the case's SOI against the full-tree truth, and the same ``make_tasks`` on the full-tree
  truth for a like-for-like count. On every set, also ``make_tasks`` (4 per frame) on the
  vesselness mask, the one count the unlabelled frames allow.
* **catheter**: on synthetic frames the truth (catheter silhouette inside the FOV, >= 50 px,
  at least half filled with contrast) and its width; on real_arcade a by-eye spot check of 20 frames
  (:data:`CATHETER_VISUAL_ARCADE`). No automatic detector was reliable enough: Sato
  cannot tell a catheter from a proximal vessel or a frame edge.
* **tortuosity**: skeleton branches between junctions/ends at least 30 px long, arc length
  over chord; the frame's median.
* image size and intensity mean / p5 / p95 inside the FOV.

Summaries per set: median, p10, p90 and n of every per-frame number (contacts: all tasks
of a set pooled). Needs numpy, scipy, scikit-image and Pillow (no matplotlib); all 317 real
and 60 synthetic frames take about 10 CPU-minutes (``--workers 2``: 17 minutes wall on a
shared, loaded 2-core machine; about 1 s per 512 px frame).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the training package (real_tasks)

log = logging.getLogger("appearance_stats")

#: Display value below which an edge-connected region is dark border (collimator, frame).
DARK_LEVEL = 0.1
#: Dark edge pieces thinner than this (px) are vessels or catheters, not border.
DARK_MIN_THICK_PX = 4
#: Sato sigmas (px): vessels of about 2 to 25 px width.
SATO_SIGMAS = (1.0, 2.0, 3.0, 5.0)
#: Connected pieces of a vesselness mask smaller than this (px) are noise.
MIN_COMPONENT_PX = 40
#: The vesselness mask is kept this far inside the FOV (px): the FOV edge is a ridge too.
FOV_MARGIN_PX = 12
#: Candidate absolute Sato levels for the calibration on real_seg.
THRESHOLD_GRID = tuple(np.round(np.geomspace(0.004, 0.06, 23), 5))
#: Width bins (px) for contrast by width.
WIDTH_BINS = ((2.0, 4.0), (4.0, 7.0), (7.0, 12.0), (12.0, 25.0))
#: Gaussian sigma (px) of the local background estimate.
BG_SIGMA_PX = 10.0
#: Skeleton branches shorter than this (px) get no tortuosity.
TORTUOSITY_MIN_PX = 30.0
#: Spectrum band (cycles/px) for the slope.
SPECTRUM_BAND = (0.01, 0.1)
#: A synthetic vessel is visible when its median contrast is this many noise sigmas.
VISIBLE_SIGMAS = 2.0
#: Every n-th frame of a set is kept for the montage.
MONTAGE_STRIDE = {"real_arcade": 17, "real_clinical": 19, "real_seg": 10, "synthetic": 5}

Stats = dict[str, Any]


# -- field of view ----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldOfView:
    """The exposed field: ``mask`` (H, W) bool, ``dark_share`` (dark border / image),
    ``circular`` (circle-fit test) and the fit's relative residual (nan without a fit)."""

    mask: np.ndarray
    dark_share: float
    circular: bool
    circle_residual: float


def _blade_bands(med: np.ndarray) -> np.ndarray:
    """Straight dark bands along the image sides (collimator blades that display
    processing has lifted above :data:`DARK_LEVEL`): on each side, the outermost lines
    (rows or columns, up to 15 % of the side) whose 80th percentile is below
    min(0.35, 0.6 x the central median), followed within 6 lines by a step up of at least
    0.12 (a blade edge, not a smooth anatomical gradient)."""
    H, W = med.shape
    centre = float(np.median(med[H // 4 : 3 * H // 4, W // 4 : 3 * W // 4]))
    level = min(0.35, 0.6 * centre)
    out = np.zeros(med.shape, dtype=bool)
    sides = {
        "top": med,
        "bottom": med[::-1],
        "left": med.T,
        "right": med.T[::-1],
    }
    for name, a in sides.items():
        n, m = a.shape
        # The 80th percentile: a blade darkens (nearly) the whole line, a circular
        # collimator's dark corners only part of it.
        prof = np.percentile(a[:, m // 10 : m - m // 10], 80, axis=1)
        k = 0
        while k < int(0.15 * n) and prof[k] < level:
            k += 1
        if k < 2 or k + 6 >= n or float(prof[k : k + 6].max() - prof[:k].mean()) < 0.12:
            continue
        band = np.zeros(a.shape, dtype=bool)
        band[:k] = True
        if name == "top":
            out |= band
        elif name == "bottom":
            out |= band[::-1]
        elif name == "left":
            out |= band.T
        else:
            out |= band[::-1].T
    return out


def field_of_view(img: np.ndarray) -> FieldOfView:
    """Field of view of a [0, 1] image (module docstring)."""
    med = ndi.median_filter(img.astype(np.float32), size=5, mode="nearest")
    dark = med < DARK_LEVEL
    # Thin dark lines (vessels, catheters, markers) touching the edge are not border.
    dark = ndi.binary_opening(dark, structure=np.ones((DARK_MIN_THICK_PX, DARK_MIN_THICK_PX)))
    lab, n = ndi.label(dark)
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    border = np.isin(lab, edge[edge > 0]) if n else np.zeros_like(dark)
    border |= _blade_bands(med)
    fov = ndi.binary_fill_holes(~border)
    # Close narrow inward notches (a dark catheter reaching the edge), keep edge bands.
    # (A disk closing of radius 8 px by two distance transforms; outside the image is not FOV.)
    r = 8.0
    grown = ndi.distance_transform_edt(~np.pad(fov, 10)) <= r
    fov = (ndi.distance_transform_edt(grown) > r)[10:-10, 10:-10]
    lab, n = ndi.label(fov)
    if n > 1:
        sizes = ndi.sum(fov, lab, index=np.arange(1, n + 1))
        fov = lab == (1 + int(np.argmax(sizes)))
    if not fov.any():
        fov = np.ones_like(fov)
    residual = _circle_residual(fov)
    circular = bool(np.isfinite(residual) and residual < 0.02)
    return FieldOfView(fov, float(1.0 - fov.mean()), circular, residual)


def _circle_residual(fov: np.ndarray) -> float:
    """RMS distance of the FOV edge (away from the image border) to its least-squares
    circle, over the radius; nan when the edge is too short, the circle too large to be a
    collimator, or the edge hardly curved (it fits a line nearly as well)."""
    H, W = fov.shape
    edge = fov & ~ndi.binary_erosion(fov)
    edge[:3] = edge[-3:] = False
    edge[:, :3] = edge[:, -3:] = False
    yy, xx = np.nonzero(edge)
    if yy.size < 0.5 * (H + W) * 0.15:
        return math.nan
    pts = np.column_stack([xx, yy]).astype(np.float64)
    pts -= pts.mean(axis=0)
    line_rms = float(np.sqrt(max(np.linalg.eigvalsh(pts.T @ pts / len(pts))[0], 0.0)))
    A = np.column_stack([xx, yy, np.ones_like(xx)]).astype(np.float64)
    b = xx.astype(np.float64) ** 2 + yy.astype(np.float64) ** 2
    (cx2, cy2, c), *_ = np.linalg.lstsq(A, b, rcond=None)
    cx, cy = cx2 / 2, cy2 / 2
    r2 = c + cx * cx + cy * cy
    if r2 <= 0:
        return math.nan
    r = math.sqrt(r2)
    if r > 1.5 * max(H, W):
        return math.nan
    d = np.hypot(xx - cx, yy - cy) - r
    rms = float(np.sqrt(np.mean(d * d)))
    # A straight edge (one blade) fits some circle too: the arc must be clearly curved.
    if line_rms < max(3.0 * rms, 1.0):
        return math.nan
    return rms / r


def analysis_square(fov: np.ndarray) -> tuple[slice, slice]:
    """The largest axis-aligned square inside the FOV (chessboard distance transform)."""
    d = ndi.distance_transform_cdt(np.pad(fov, 1), metric="chessboard")[1:-1, 1:-1]
    cy, cx = np.unravel_index(int(np.argmax(d)), d.shape)
    h = max(int(d[cy, cx]) - 1, 4)
    return slice(max(cy - h, 0), cy + h + 1), slice(max(cx - h, 0), cx + h + 1)


# -- vesselness ---------------------------------------------------------------------------


def vesselness(img: np.ndarray) -> np.ndarray:
    """Sato dark-ridge response (H, W) float32 at :data:`SATO_SIGMAS` on the raw image."""
    from skimage.filters import sato

    return sato(img.astype(np.float32), sigmas=SATO_SIGMAS, black_ridges=True).astype(np.float32)


def vesselness_mask(v: np.ndarray, fov: np.ndarray, threshold: float) -> np.ndarray:
    """Vesselness above ``threshold``, inside the FOV by :data:`FOV_MARGIN_PX`, pieces of
    at least :data:`MIN_COMPONENT_PX` pixels."""
    inner = ndi.binary_erosion(fov, iterations=FOV_MARGIN_PX, border_value=0)
    m = (v > threshold) & inner
    lab, n = ndi.label(m, structure=np.ones((3, 3)))
    if n == 0:
        return m
    sizes = np.bincount(lab.ravel())
    keep = sizes >= MIN_COMPONENT_PX
    keep[0] = False
    return keep[lab]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two binary masks (1 when both are empty)."""
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * float((a & b).sum()) / s


def calibrate_threshold(
    maps: list[np.ndarray], masks: list[np.ndarray], fovs: list[np.ndarray]
) -> dict[str, Any]:
    """The absolute vesselness level of :data:`THRESHOLD_GRID` with the best mean Dice
    against ``masks``; returns it with its mean Dice and the mean share ratio
    (vesselness share / mask share) at that level."""
    best: dict[str, Any] = {}
    curve = []
    for t in THRESHOLD_GRID:
        ds, ratios = [], []
        for v, m, f in zip(maps, masks, fovs, strict=True):
            vm = vesselness_mask(v, f, float(t))
            ds.append(dice(vm, m))
            ratios.append(vm.sum() / max(int(m.sum()), 1))
        row = {
            "threshold": float(t),
            "dice_mean": float(np.mean(ds)),
            "share_ratio_median": float(np.median(ratios)),
        }
        curve.append(row)
        if not best or row["dice_mean"] > best["dice_mean"]:
            best = dict(row)
    best["curve"] = curve
    return best


# -- skeleton geometry ----------------------------------------------------------------------


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Skeleton of a binary vessel mask (scikit-image), spurs < 8 px pruned as the
    real-image benchmark does."""
    from training.segmenter.real_tasks import skeleton_of

    return skeleton_of(mask)


def widths_on_skeleton(mask: np.ndarray, skel: np.ndarray) -> np.ndarray:
    """Vessel width (px) at every skeleton pixel: 2 x (distance to the edge) - 1."""
    edt = ndi.distance_transform_edt(mask)
    return np.maximum(2.0 * edt[skel] - 1.0, 1.0)


def _branches(skel: np.ndarray) -> tuple[np.ndarray, int]:
    """Skeleton branches: the skeleton with junction pixels (3+ neighbours) and their
    8-neighbourhood removed, labelled (8-connected)."""
    nb = ndi.convolve(skel.astype(np.int32), np.ones((3, 3), dtype=np.int32), mode="constant")
    junction = skel & (nb - 1 >= 3)
    cut = skel & ~ndi.binary_dilation(junction, structure=np.ones((3, 3)))
    return ndi.label(cut, structure=np.ones((3, 3)))


def _branch_geometry(pix: np.ndarray) -> tuple[float, float, np.ndarray] | None:
    """(arc length, chord, end points (2, 2) [row, col]) of one branch's pixels (K, 2),
    or None for a loop. Arc: orthogonal links 1 px, diagonal links sqrt 2 (diagonals
    already joined orthogonally are not counted twice)."""
    s = {(int(y), int(x)) for y, x in pix}
    orth = sum(((y, x + 1) in s) + ((y + 1, x) in s) for y, x in s)
    diag = 0
    for y, x in s:
        for dx in (-1, 1):
            q = (y + 1, x + dx)
            if q in s and (y + 1, x) not in s and (y, x + dx) not in s:
                diag += 1
    ends = [
        p
        for p in s
        if sum((p[0] + dy, p[1] + dx) in s for dy in (-1, 0, 1) for dx in (-1, 0, 1)) - 1 <= 1
    ]
    if len(ends) < 2:
        return None
    e = np.array(ends[:2], dtype=np.float64)
    arc = orth + math.sqrt(2.0) * diag
    chord = float(np.hypot(*(e[0] - e[1])))
    return float(arc), chord, e


def tortuosity(skel: np.ndarray) -> float:
    """Median arc / chord of the skeleton's branches of at least
    :data:`TORTUOSITY_MIN_PX` arc length (nan when none)."""
    lab, n = _branches(skel)
    vals = []
    for sl, k in zip(ndi.find_objects(lab), range(1, n + 1), strict=True):
        pix = np.argwhere(lab[sl] == k)
        if len(pix) < TORTUOSITY_MIN_PX * 0.7:
            continue
        g = _branch_geometry(pix)
        if g is None or g[0] < TORTUOSITY_MIN_PX or g[1] <= 0:
            continue
        vals.append(g[0] / max(g[1], 1.0))
    return float(np.median(vals)) if vals else math.nan


# -- contrast and background ------------------------------------------------------------------


def local_background(img: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Gaussian-weighted mean (sigma :data:`BG_SIGMA_PX`) of ``img`` over the pixels where
    ``background`` is true (normalised convolution); nan where almost none are near."""
    b = background.astype(np.float32)
    num = ndi.gaussian_filter(img.astype(np.float32) * b, BG_SIGMA_PX, truncate=3.0)
    den = ndi.gaussian_filter(b, BG_SIGMA_PX, truncate=3.0)
    out = np.full(img.shape, np.nan, dtype=np.float32)
    ok = den > 0.05
    out[ok] = num[ok] / den[ok]
    return out


def contrast_by_width(
    img: np.ndarray, mask: np.ndarray, skel: np.ndarray, bg: np.ndarray
) -> dict[str, Any]:
    """Per width bin (:data:`WIDTH_BINS`): median contrast (background - vessel, display
    units), median relative contrast (contrast / background) and the skeleton pixel count;
    bins with fewer than 10 skeleton pixels get nan."""
    w = widths_on_skeleton(mask, skel)
    vals = bg[skel] - img[skel]
    rel = vals / np.maximum(bg[skel], 1e-3)
    ok = np.isfinite(vals)
    out: dict[str, Any] = {}
    for lo, hi in WIDTH_BINS:
        sel = ok & (w >= lo) & (w < hi)
        key = f"{lo:g}-{hi:g}"
        n = int(sel.sum())
        out[key] = {
            "contrast": float(np.median(vals[sel])) if n >= 10 else math.nan,
            "relative": float(np.median(rel[sel])) if n >= 10 else math.nan,
            "n": n,
        }
    return out


def background_stats(
    img: np.ndarray, vessels: np.ndarray, fov: np.ndarray, bg: np.ndarray
) -> dict[str, float]:
    """Spectrum slope, texture sd and noise of the non-vessel field (module docstring)."""
    from angio_deploy.synth.realism import noise_level, spectrum_slope

    sy, sx = analysis_square(fov)
    sq = img[sy, sx].astype(np.float64)
    fill = np.where(np.isfinite(bg[sy, sx]), bg[sy, sx], float(np.median(sq)))
    near = ndi.binary_dilation(vessels, iterations=3)[sy, sx]
    field = np.where(near, fill, sq)
    slope = spectrum_slope(field, band=SPECTRUM_BAND, crop=0.0)["slope"]
    dog = ndi.gaussian_filter(field, 1.6) - ndi.gaussian_filter(field, 16.0, truncate=3.0)
    m = 16 if min(field.shape) > 64 else 0
    inner = dog[m : dog.shape[0] - m, m : dog.shape[1] - m]
    return {
        "spectrum_slope": float(slope),
        "texture_sd": float(inner.std()),
        "noise": float(noise_level(sq, crop=0.0)),
        "square_px": int(sq.shape[0]),
    }


def intensity_stats(img: np.ndarray, fov: np.ndarray) -> dict[str, float]:
    """Mean, p5, p50 and p95 of the image inside the FOV (display units)."""
    v = img[fov]
    p5, p50, p95 = np.percentile(v, [5, 50, 95])
    return {"mean": float(v.mean()), "p5": float(p5), "p50": float(p50), "p95": float(p95)}


# -- segments of interest -----------------------------------------------------------------


def contacts(
    full: np.ndarray,
    soi: np.ndarray,
    start_uv: np.ndarray,
    end_uv: np.ndarray,
    gap_px: int = 2,
) -> int:
    """Other-vessel pieces touching the segment of interest (module docstring).

    ``full`` and ``soi`` (H, W) bool: the whole tree and the SOI's own pixels; start and
    end (u, v) px. A piece within ``gap_px`` of the SOI counts unless all of its touching
    pixels lie within (SOI radius at that end + 4 px) of an end.
    """
    other = full & ~soi
    near = ndi.binary_dilation(soi, iterations=gap_px) & other
    if not near.any():
        return 0
    lab, _ = ndi.label(other, structure=np.ones((3, 3)))
    edt = ndi.distance_transform_edt(soi)
    H, W = soi.shape
    ends = []
    for u, v in (start_uv, end_uv):
        iy, ix = int(np.clip(round(v), 0, H - 1)), int(np.clip(round(u), 0, W - 1))
        win = edt[max(iy - 3, 0) : iy + 4, max(ix - 3, 0) : ix + 4]
        ends.append((iy, ix, float(win.max()) + 4.0 if win.size else 4.0))
    count = 0
    for k in np.unique(lab[near]):
        yy, xx = np.nonzero(near & (lab == k))
        away = np.ones(len(yy), dtype=bool)
        for iy, ix, r in ends:
            away &= np.hypot(yy - iy, xx - ix) > r
        count += bool(away.any())
    return count


def task_contacts(full: np.ndarray, image_id: str, n_tasks: int = 8) -> list[dict[str, float]]:
    """``make_tasks`` on a full-tree mask (seed 0), with each task's contacts and length."""
    from training.segmenter.real_tasks import make_tasks

    out = []
    for t in make_tasks(full, image_id, n_tasks=n_tasks, seed=0):
        c = contacts(full, t.truth, t.start, t.end)
        out.append({"contacts": c, "length_px": t.length_px})
    return out


# -- catheter -----------------------------------------------------------------------------------

#: Catheter visible (a contrast-filled tube reaching the ostium) in a spot check of real_arcade
#: frames 1, 11, ..., 191 at 300 px, by eye (2026-12-02, issue 10): no automatic detector
#: told catheters from proximal vessels and frame edges reliably enough to publish.
CATHETER_VISUAL_ARCADE = {
    **dict.fromkeys((1, 11, 21, 31, 51, 81, 91, 101, 111, 131, 141, 151, 161, 171, 181), True),
    **dict.fromkeys((41, 61, 71, 121, 191), False),
}


# -- one frame ----------------------------------------------------------------------------------


def mask_stats(
    img: np.ndarray, mask: np.ndarray, fov: FieldOfView, bg: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    """Share, widths, contrast by width and tortuosity of one vessel mask, and its
    skeleton."""
    skel = skeleton(mask) if mask.any() else np.zeros_like(mask)
    w = widths_on_skeleton(mask, skel) if skel.any() else np.zeros(0)
    out: dict[str, Any] = {
        "share": float(mask[fov.mask].mean()),
        "width_p10": float(np.percentile(w, 10)) if w.size else math.nan,
        "width_median": float(np.median(w)) if w.size else math.nan,
        "width_p90": float(np.percentile(w, 90)) if w.size else math.nan,
        "width_max": float(w.max()) if w.size else math.nan,
        "skeleton_px": int(skel.sum()),
        "tortuosity": tortuosity(skel) if skel.any() else math.nan,
        "contrast": contrast_by_width(img, mask, skel, bg),
    }
    return out, skel


def visible_vessels(
    img: np.ndarray, parts: list[np.ndarray], bg: np.ndarray, noise: float
) -> np.ndarray:
    """Union (H, W) bool of the vessels that stand out of the noise: a vessel (flat pixel
    indices of its silhouette) is visible when the median of background - image over its
    pixels is at least :data:`VISIBLE_SIGMAS` noise sigmas (a hand tracer's tree; the
    synthetic truth also holds twigs that no reader could see)."""
    out = np.zeros(img.size, dtype=bool)
    c = (bg - img).ravel()
    for idx in parts:
        vals = c[idx]
        vals = vals[np.isfinite(vals)]
        if vals.size and float(np.median(vals)) >= VISIBLE_SIGMAS * noise:
            out[idx] = True
    return out.reshape(img.shape)


def frame_stats(
    img: np.ndarray,
    threshold: float,
    truth: np.ndarray | None = None,
    v: np.ndarray | None = None,
    parts: list[np.ndarray] | None = None,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """All per-frame statistics of a [0, 1] image (module docstring); ``truth`` is a
    full-tree vessel mask when one exists, ``v`` a precomputed vesselness map, ``parts``
    the flat pixel indices of each vessel of the truth (synthetic). Returns the row and
    the visible part of the truth (None without ``parts``)."""
    img = np.asarray(img, dtype=np.float32)
    fov = field_of_view(img)
    v = vesselness(img) if v is None else v
    vm = vesselness_mask(v, fov.mask, threshold)
    any_vessel = vm if truth is None else (vm | truth)
    bg = local_background(img, fov.mask & ~ndi.binary_dilation(any_vessel, iterations=3))
    row: dict[str, Any] = {
        "height": int(img.shape[0]),
        "width": int(img.shape[1]),
        "fov": {
            "dark_share": fov.dark_share,
            "border_level": float(np.median(img[~fov.mask])) if (~fov.mask).any() else None,
            "circular": fov.circular,
            "circle_residual": fov.circle_residual,
        },
        "intensity": intensity_stats(img, fov.mask),
        "background": background_stats(img, any_vessel, fov.mask, bg),
    }
    noise = row["background"]["noise"]
    row["vesselness"], _ = mask_stats(img, vm, fov, bg)
    row["_vesselness_mask"] = vm
    visible = None
    if truth is not None:
        row["truth"], tskel = mask_stats(img, truth, fov, bg)
        row["vesselness"]["dice_vs_truth"] = dice(vm, truth)
        # How much of the traced / true tree stands out of the noise at all.
        c = bg[tskel] - img[tskel]
        c = c[np.isfinite(c)]
        row["truth"]["visible_share"] = float(np.mean(c > 3.0 * noise)) if c.size else math.nan
    if truth is not None and parts is not None:
        visible = visible_vessels(img, parts, bg, noise) & truth
        row["truth_visible"], _ = mask_stats(img, visible, fov, bg)
        n_vis = sum(bool(visible.ravel()[idx].any()) for idx in parts)
        row["truth_visible"]["vessels"] = int(n_vis)
        row["truth_visible"]["vessel_share"] = n_vis / max(len(parts), 1)
    return row, visible


def measure(frame: Frame, threshold: float, v: np.ndarray | None = None) -> dict[str, Any]:
    """One frame's row: :func:`frame_stats`, SOI contacts (tasks on a full-tree mask; a
    synthetic case's own SOI) and, for synthetic frames, the catheter truth."""
    ex = frame.extra or {}
    row, visible = frame_stats(frame.image, threshold, frame.truth, v, ex.get("parts"))
    row["id"] = frame.frame_id
    # The same task construction on the vesselness mask: the only contact count that can
    # be made on unlabelled frames, and it is made the same way on every set.
    vm = row.pop("_vesselness_mask")
    row["tasks_vesselness"] = task_contacts(vm, f"{frame.set_name}:{frame.frame_id}:v", 4)
    if frame.truth is not None:
        row["tasks"] = task_contacts(frame.truth, f"{frame.set_name}:{frame.frame_id}")
    if visible is not None:
        row["tasks_visible"] = task_contacts(visible, f"{frame.set_name}:{frame.frame_id}")
    if frame.set_name == "synthetic":
        row["soi"] = soi_record(frame, frame.truth)
        if visible is not None:
            row["soi_visible"] = soi_record(frame, visible | ex["soi"])
        cm = ex["catheter"] & field_of_view(frame.image).mask
        # An unfilled catheter (generator version 2: blood or saline in it) is a faint
        # wall only; it counts as seen when at least half filled with contrast.
        filled = float(ex.get("catheter_fill", 1.0)) >= 0.5
        row["catheter_truth"] = bool(cm.sum() >= 50 and filled)
        if cm.any():
            row["catheter_width_px"] = float(2 * ndi.distance_transform_edt(cm).max() - 1)
        row["overlap_fraction"] = ex.get("overlap_fraction")
    return row


# -- image sets ------------------------------------------------------------------------------


def load_gray(path: Path) -> np.ndarray:
    """An 8-bit image file as float32 [0, 1] (grey)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def _int_stem(p: Path) -> int:
    return int(p.stem) if p.stem.isdigit() else 10**9


@dataclass
class Frame:
    """One image of a set: id, [0, 1] image, optional full-tree mask and extras."""

    set_name: str
    frame_id: str
    image: np.ndarray
    truth: np.ndarray | None = None
    extra: dict[str, Any] | None = None


def real_frames(shared: Path, limit: int | None = None) -> Iterator[Frame]:
    """real_arcade, real_clinical and real_seg frames (sorted by name)."""
    arcade = sorted((shared / "real_arcade" / "images").glob("*.png"), key=_int_stem)
    for p in arcade[:limit]:
        yield Frame("real_arcade", p.stem, load_gray(p))
    clinical = sorted((shared / "real_clinical").glob("projection_*/*.jpg"))
    for p in clinical[:limit]:
        yield Frame("real_clinical", f"{p.parent.name}/{p.stem}", load_gray(p))
    seg = sorted((shared / "real_seg" / "images").glob("*.png"), key=_int_stem)
    for p in seg[:limit]:
        m = load_gray(shared / "real_seg" / "masks" / p.name) > 0.5
        yield Frame("real_seg", p.stem, load_gray(p), m)


def synthetic_frames(folder: Path, limit: int | None = None) -> Iterator[Frame]:
    """Both views of every case folder under ``folder``, with the full-tree truth, the
    case's SOI region and end points, and the catheter silhouette (module docstring)."""
    from angio_deploy.errors import InputError
    from angio_deploy.io.dicom_xa import read_xa_frames
    from angio_deploy.synth.engine import generate_case
    from angio_deploy.synth.truth import lumen_mask, segment_slice

    cases = sorted(p for p in folder.glob("case_*") if (p / "truth" / "meta.json").is_file())
    if not cases:
        raise InputError("no synthetic case folders (case_*/truth/meta.json)", source=str(folder))
    for case_dir in cases[:limit]:
        meta = json.loads((case_dir / "truth" / "meta.json").read_text(encoding="utf-8"))
        first = case_dir / "view_a.dcm"
        stored_a = read_xa_frames(first, stored=True)[0]
        version = str(meta.get("generator_version", "1"))
        case = generate_case(int(meta["seed"]), version=version)
        if case.stored[0].shape != stored_a.shape or not np.array_equal(case.stored[0], stored_a):
            # Written with --size: the size was not drawn, so the random stream differs.
            case = generate_case(int(meta["seed"]), size=int(stored_a.shape[1]), version=version)
        a = case.anatomy
        arteries = [segment_slice(v, 0.0, v.length_mm) for v in a.vessels if v.kind != "catheter"]
        cath = [segment_slice(v, 0.0, v.length_mm) for v in a.vessels if v.kind == "catheter"]
        soi_piece = segment_slice(a.vessels[a.soi.vessel], a.soi.s_start_mm, a.soi.s_end_mm)
        for k, spec in enumerate(case.views):
            path = case_dir / f"view_{spec.name}.dcm"
            stored = read_xa_frames(path, stored=True)[0]
            if stored.shape != case.stored[k].shape or not np.array_equal(stored, case.stored[k]):
                raise InputError(
                    f"pixels differ from generate_case({meta['seed']}): written by another "
                    "generator version; regenerate the folder",
                    source=str(path),
                )
            img = stored.astype(np.float32) / float((1 << case.bits_stored[k]) - 1)
            g = spec.true
            masks = [lumen_mask(g, [piece]).astype(bool) for piece in arteries]
            full = np.logical_or.reduce(masks) if masks else np.zeros(stored.shape, dtype=bool)
            parts = [np.flatnonzero(m) for m in masks if m.any()]
            soi = lumen_mask(g, [soi_piece]).astype(bool)
            cmask = lumen_mask(g, cath).astype(bool) if cath else np.zeros_like(full)
            uv = g.project(soi_piece["centres"])
            yield Frame(
                "synthetic",
                f"{case_dir.name}/{spec.name}",
                img,
                full,
                {
                    "soi": soi,
                    "parts": parts,
                    "soi_uv": uv,
                    "catheter": cmask,
                    "overlap_fraction": meta["views"][k].get("overlap_fraction"),
                    "catheter_fill": meta["views"][k]["imaging"]["fill_catheter"],
                },
            )


# -- the whole run ---------------------------------------------------------------------------


def summarise(values: list[float]) -> dict[str, float]:
    """Median, p10, p90 and n of the finite values."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"median": math.nan, "p10": math.nan, "p90": math.nan, "n": 0}
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    return {"median": float(p50), "p10": float(p10), "p90": float(p90), "n": int(v.size)}


def _get(row: dict[str, Any], path: str) -> Any:
    cur: Any = row
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


#: Per-frame quantities summarised per set: (key in the JSON, row path in a frame record).
SUMMARY_KEYS: tuple[str, ...] = (
    "height",
    "fov.dark_share",
    "fov.circular",
    "intensity.mean",
    "intensity.p5",
    "intensity.p95",
    "background.spectrum_slope",
    "background.texture_sd",
    "background.noise",
    "truth.share",
    "truth.width_median",
    "truth.width_p90",
    "truth.width_max",
    "truth.tortuosity",
    *(f"truth.contrast.{lo:g}-{hi:g}.contrast" for lo, hi in WIDTH_BINS),
    "vesselness.share",
    "vesselness.dice_vs_truth",
    "vesselness.width_median",
    "vesselness.width_p90",
    "vesselness.tortuosity",
    *(f"vesselness.contrast.{lo:g}-{hi:g}.contrast" for lo, hi in WIDTH_BINS),
    "truth.visible_share",
    "catheter_truth",
    "catheter_width_px",
    "fov.border_level",
    "truth_visible.share",
    "truth_visible.width_median",
    "truth_visible.width_p90",
    "truth_visible.tortuosity",
    *(f"truth_visible.contrast.{lo:g}-{hi:g}.contrast" for lo, hi in WIDTH_BINS),
    "truth_visible.vessels",
    "truth_visible.vessel_share",
    "overlap_fraction",
)


def _task_summary(tasks: list[dict[str, float]]) -> dict[str, Any]:
    c = np.array([t["contacts"] for t in tasks], dtype=np.float64)
    length = np.array([t["length_px"] for t in tasks], dtype=np.float64)
    return {
        "n": len(tasks),
        "share_with_contact": float(np.mean(c > 0)),
        "contacts": summarise(c.tolist()),
        "contacts_per_100px": summarise((100.0 * c / np.maximum(length, 1.0)).tolist()),
        "length_px": summarise(length.tolist()),
    }


def summarise_set(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-set summaries of :data:`SUMMARY_KEYS`, the SOI contact statistics of the
    make_tasks tasks (all of a set's frames pooled) and of synthetic cases' own SOIs."""
    out: dict[str, Any] = {"frames": len(rows)}
    for key in SUMMARY_KEYS:
        vals = [_get(r, key) for r in rows]
        vals = [float(x) for x in vals if x is not None]
        if vals:
            out[key] = summarise(vals)
            if key in ("fov.circular", "catheter_truth"):
                out[key]["share"] = float(np.mean(vals))
    for key in ("tasks", "tasks_visible", "tasks_vesselness"):
        pooled = [t for r in rows for t in r.get(key, [])]
        if pooled:
            out[key] = _task_summary(pooled)
    for key in ("soi", "soi_visible"):
        recs = [r[key] for r in rows if key in r]
        if recs:
            out[key] = _task_summary(recs)
    return out


def soi_record(frame: Frame, tree: np.ndarray) -> dict[str, float]:
    """Contacts of a synthetic case's own SOI with the rest of ``tree`` (a full-tree mask)."""
    ex = frame.extra or {}
    uv = np.asarray(ex["soi_uv"])
    length = float(np.linalg.norm(np.diff(uv, axis=0), axis=1).sum())
    c = contacts(tree, ex["soi"], uv[0], uv[-1])
    return {"contacts": c, "length_px": length, "contacts_per_100px": 100.0 * c / max(length, 1.0)}


def run(
    shared: Path,
    synth: Path,
    limit: int | None = None,
    progress: Callable[[str, int], None] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Calibrate the vesselness level on real_seg, then measure every set (module
    docstring). Returns the JSON document: calibration, per-frame rows, per-set summaries
    and a few frames kept for the montage (under "_montage", not serialised). ``workers``
    > 1 measures frames in that many processes (same results)."""
    t0 = time.time()
    seg = [f for f in real_frames(shared, limit) if f.set_name == "real_seg"]
    seg_maps = [vesselness(f.image) for f in seg]
    seg_fovs = [field_of_view(f.image).mask for f in seg]
    calib = calibrate_threshold(seg_maps, [f.truth for f in seg], seg_fovs)
    thr = float(calib["threshold"])
    log.info("vesselness level %.4g (real_seg mean Dice %.3f)", thr, calib["dice_mean"])

    rows: dict[str, list[dict[str, Any]]] = {}
    montage: dict[str, list[tuple[str, np.ndarray]]] = {}
    seg_v = {f.frame_id: v for f, v in zip(seg, seg_maps, strict=True)}

    def frames() -> Iterator[Frame]:
        for f in real_frames(shared, limit):
            if f.set_name != "real_seg":
                yield f
        yield from seg
        yield from synthetic_frames(synth, limit)

    def done(f: Frame, row: dict[str, Any]) -> None:
        rows.setdefault(f.set_name, []).append(row)
        # Keep a spread of frames for the montage, not all of them (memory).
        if (len(rows[f.set_name]) - 1) % MONTAGE_STRIDE.get(f.set_name, 10) == 0:
            montage.setdefault(f.set_name, []).append((f.frame_id, f.image))
        if progress:
            progress(f.set_name, len(rows[f.set_name]))

    if workers <= 1:
        for f in frames():
            done(f, measure(f, thr, seg_v.get(f.frame_id) if f.set_name == "real_seg" else None))
    else:
        from collections import deque
        from concurrent.futures import ProcessPoolExecutor

        # A bounded queue of frames in flight, results taken in submission order.
        with ProcessPoolExecutor(max_workers=workers) as pool:
            queue: deque = deque()
            for f in frames():
                queue.append((f, pool.submit(measure, f, thr)))
                if len(queue) >= 2 * workers:
                    g, fut = queue.popleft()
                    done(g, fut.result())
            while queue:
                g, fut = queue.popleft()
                done(g, fut.result())

    summary = {name: summarise_set(r) for name, r in rows.items()}
    if "real_arcade" in summary:
        seen = list(CATHETER_VISUAL_ARCADE.values())
        summary["real_arcade"]["catheter_visual"] = {
            "frames": sorted(CATHETER_VISUAL_ARCADE),
            "share": float(np.mean(seen)),
            "n": len(seen),
        }
    return {
        "tool": "tools/appearance_stats.py",
        "seconds": round(time.time() - t0, 1),
        "parameters": {
            "dark_level": DARK_LEVEL,
            "sato_sigmas_px": list(SATO_SIGMAS),
            "min_component_px": MIN_COMPONENT_PX,
            "fov_margin_px": FOV_MARGIN_PX,
            "width_bins_px": [list(b) for b in WIDTH_BINS],
            "background_sigma_px": BG_SIGMA_PX,
            "spectrum_band_cycles_per_px": list(SPECTRUM_BAND),
        },
        "calibration": calib,
        "summary": summary,
        "frames": rows,
        "_montage": montage,
    }


# -- outputs -----------------------------------------------------------------------------------


def _fmt(s: dict[str, float] | None, digits: int = 3, pct: bool = False) -> str:
    if not s or not s.get("n"):
        return "-"
    if pct:
        m, lo, hi = (100 * s[k] for k in ("median", "p10", "p90"))
        return f"{m:.2g} [{lo:.2g}, {hi:.2g}] %"
    return f"{s['median']:.{digits}g} [{s['p10']:.{digits}g}, {s['p90']:.{digits}g}]"


SETS = ("real_arcade", "real_clinical", "real_seg", "synthetic")


def markdown_table(doc: dict[str, Any]) -> str:
    """The side-by-side table (median [p10, p90]) for docs/DATASET.md."""
    s = doc["summary"]
    sets = [k for k in SETS if k in s]
    lines = [
        "| statistic | " + " | ".join(f"{k} (n={s[k]['frames']})" for k in sets) + " |",
        "|---|" + "---|" * len(sets),
    ]

    def cells(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(s[k]) for k in sets) + " |")

    def row(label: str, key: str, **kw: Any) -> None:
        cells(label, lambda d: _fmt(d.get(key), **kw))

    def share(label: str, key: str) -> None:
        cells(label, lambda d: f"{100 * d[key]['share']:.0f} %" if key in d else "-")

    def touched(label: str, key: str, unit: str) -> None:
        def cell(d: dict[str, Any]) -> str:
            t = d.get(key)
            if not t:
                return "-"
            per = t["contacts_per_100px"]["median"]
            return f"{100 * t['share_with_contact']:.0f} % of {t['n']} {unit}; {per:.2g} / 100 px"

        cells(label, cell)

    row("image side (px)", "height", digits=4)
    row("dark border, share of the image", "fov.dark_share", pct=True)
    row("dark border level (display units)", "fov.border_level", digits=2)
    share("circular field of view", "fov.circular")
    row("intensity mean in FOV", "intensity.mean")
    row("intensity p5 in FOV", "intensity.p5")
    row("intensity p95 in FOV", "intensity.p95")
    row("noise sigma (display units)", "background.noise")
    row("background texture sd (DoG 1.6-16 px)", "background.texture_sd")
    row("background spectrum slope (0.01-0.1 c/px)", "background.spectrum_slope")
    row("vessel share of FOV: truth mask", "truth.share", pct=True)
    row("vessel share of FOV: visible truth vessels", "truth_visible.share", pct=True)
    row("vessel share of FOV: vesselness", "vesselness.share", pct=True)
    row("vesselness Dice vs truth", "vesselness.dice_vs_truth")
    row("truth skeleton > 3 noise sigma", "truth.visible_share", pct=True)
    row("visible vessels (count)", "truth_visible.vessels", digits=2)
    row("visible vessels / all vessels", "truth_visible.vessel_share", pct=True)
    for src, name in (("truth", "truth"), ("truth_visible", "visible truth")):
        row(f"vessel width median (px): {name}", f"{src}.width_median")
        row(f"vessel width p90 (px): {name}", f"{src}.width_p90")
    row("vessel width max (px): truth", "truth.width_max")
    row("vessel width median (px): vesselness", "vesselness.width_median")
    row("vessel width p90 (px): vesselness", "vesselness.width_p90")
    for src, name in (
        ("truth", "truth"),
        ("truth_visible", "visible truth"),
        ("vesselness", "vesselness (detected only)"),
    ):
        for lo, hi in WIDTH_BINS:
            row(
                f"contrast, {lo:g}-{hi:g} px wide: {name}", f"{src}.contrast.{lo:g}-{hi:g}.contrast"
            )
    row("tortuosity (arc/chord, >= 30 px): truth", "truth.tortuosity")
    row("tortuosity: visible truth", "truth_visible.tortuosity")
    row("tortuosity: vesselness", "vesselness.tortuosity")
    touched("SOI touched/crossed: make_tasks on truth", "tasks", "tasks")
    touched("SOI touched/crossed: make_tasks on visible truth", "tasks_visible", "tasks")
    touched("SOI touched/crossed: make_tasks on vesselness", "tasks_vesselness", "tasks")
    touched("the case's own SOI touched/crossed: truth", "soi", "views")
    touched("the case's own SOI touched/crossed: visible truth", "soi_visible", "views")

    def catheter(d: dict[str, Any]) -> str:
        if "catheter_visual" in d:
            v = d["catheter_visual"]
            return f"{100 * v['share']:.0f} % of {v['n']} frames, by eye"
        if "catheter_truth" in d:
            return f"{100 * d['catheter_truth']['share']:.0f} % (truth)"
        return "not measured"

    cells("catheter visible", catheter)
    row("catheter width (px): synthetic truth", "catheter_width_px")
    return "\n".join(lines)


def write_montage(montage: dict[str, list[tuple[str, np.ndarray]]], out: Path) -> None:
    """4 real_arcade, 2 real_clinical and 6 synthetic frames, 256 px tiles, one display
    scaling ([0, 1] -> 0-255, no per-image stretch), each labelled."""
    from PIL import Image, ImageDraw

    picks: list[tuple[str, str, np.ndarray]] = []
    for name, n in (("real_arcade", 4), ("real_clinical", 2), ("synthetic", 6)):
        items = montage.get(name, [])
        if not items:
            continue
        idx = np.linspace(0, len(items) - 1, n).round().astype(int)
        for i in dict.fromkeys(idx.tolist()):
            picks.append((name, *items[i]))
    tile = 256
    cols = 4
    rows = math.ceil(len(picks) / cols)
    sheet = Image.new("L", (cols * tile, rows * tile), 0)
    draw = ImageDraw.Draw(sheet)
    for k, (name, fid, img) in enumerate(picks):
        im = Image.fromarray(np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8))
        im = im.resize((tile, tile), Image.Resampling.BILINEAR)
        x, y = (k % cols) * tile, (k // cols) * tile
        sheet.paste(im, (x, y))
        label = f"{name} {fid} ({img.shape[1]} px)"
        draw.rectangle([x, y, x + 7 * len(label) + 4, y + 13], fill=0)
        draw.text((x + 2, y + 1), label, fill=255)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


def _jsonable(obj: Any) -> Any:
    """The document without "_" keys, nan as null (strict JSON)."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float | np.floating) and not math.isfinite(float(obj)):
        return None
    return obj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--synth", type=Path, required=True, help="folder of synthetic case folders")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--json", type=Path, default=REPO / "docs/results/appearance_stats.json")
    ap.add_argument("--montage", type=Path, default=REPO / "docs/figures/appearance_montage.png")
    ap.add_argument("--limit", type=int, default=None, help="at most N frames per set (quick look)")
    ap.add_argument("--workers", type=int, default=1, help="processes measuring frames")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def progress(name: str, n: int) -> None:
        if n % 25 == 0:
            print(f"{name}: {n} frames", file=sys.stderr, flush=True)

    doc = run(args.shared, args.synth, args.limit, progress, args.workers)
    from angio_deploy.io.jsonio import dumps

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(dumps(_jsonable(doc)), encoding="utf-8")
    write_montage(doc["_montage"], args.montage)
    c = doc["calibration"]
    print(
        f"vesselness level {c['threshold']:.4g}: real_seg mean Dice {c['dice_mean']:.3f}, "
        f"share ratio {c['share_ratio_median']:.2f}; {doc['seconds']} s\n"
    )
    print(markdown_table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
