"""Lumen radius and percent diameter stenosis errors (METRICS.md Radius error, %DS error).

Radii are equivalent circular radii in mm, one per ring (ring 0 proximal). Ring meshes have
``n_around`` vertices per ring, vertex ``ring * n_around + j``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "lesion_window",
    "percent_ds",
    "percent_ds_error",
    "radius_errors",
    "ring_radii",
]


def _radii(x, name: str) -> np.ndarray:
    r = np.asarray(x, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of per-ring radii (mm)")
    return r


def radius_errors(pred_radius, true_radius) -> dict[str, float]:
    """Per-ring radius error pred - true (mm) summarised over rings (100 for the product).

    Returns ``{"radius_mae": mean |pred - true|, "radius_bias": mean (pred - true)}`` in mm;
    a positive bias means the prediction is too wide. The ring counts must match.
    """
    p = _radii(pred_radius, "pred_radius")
    t = _radii(true_radius, "true_radius")
    if p.shape != t.shape:
        raise ValueError(f"radius arrays differ in ring count: {p.size} vs {t.size}")
    e = p - t
    return {"radius_mae": float(np.abs(e).mean()), "radius_bias": float(e.mean())}


def ring_radii(vertices, n_around: int = 60) -> np.ndarray:
    """Equivalent radius (N,) mm of each ring polygon of a ring mesh, from its area.

    The radius of the circle whose inscribed regular ``n_around``-gon has the ring
    polygon's area (the polygon's vector area about the ring's vertex mean), exactly as the
    synthetic truth measures %DS (:func:`angio_deploy.synth.truth.mesh_percent_ds`); a
    circular ring of radius r gives r.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) % n_around:
        raise ValueError(f"vertices must be (N * {n_around}, 3), got {v.shape}")
    rings = v.reshape(-1, n_around, 3)
    a = rings - rings.mean(axis=1, keepdims=True)
    area = 0.5 * np.linalg.norm(np.cross(a, np.roll(a, -1, axis=1)).sum(axis=1), axis=1)
    return np.sqrt(area / (0.5 * n_around * np.sin(2.0 * np.pi / n_around)))


def percent_ds(radius, reference_radius) -> np.ndarray:
    """Percent diameter stenosis per ring: 100 (1 - r / r_ref); negative where wider."""
    r = _radii(radius, "radius")
    ref = np.broadcast_to(np.asarray(reference_radius, dtype=np.float64), r.shape)
    return 100.0 * (1.0 - r / ref)


def lesion_window(
    n_rings: int, segment_length_mm: float, position_mm: float, length_mm: float
) -> np.ndarray:
    """Boolean (n_rings,) mask of the rings inside a lesion.

    Ring k sits at arc length k L / (n_rings - 1) from the start (rings evenly spaced over
    the segment length L mm); the lesion covers ``position_mm +- length_mm / 2``. If no
    ring falls inside (a lesion shorter than the ring spacing), the ring nearest to
    ``position_mm`` is used.
    """
    s = np.linspace(0.0, segment_length_mm, n_rings)
    inside = np.abs(s - position_mm) <= 0.5 * length_mm
    if not inside.any():
        inside[int(np.argmin(np.abs(s - position_mm)))] = True
    return inside


def percent_ds_error(
    pred_radius, true_radius, reference_radius, window: np.ndarray | None = None
) -> dict[str, float]:
    """%DS of prediction and truth at one lesion and their difference (percentage points).

    Both are measured the same way: the largest per-ring :func:`percent_ds` (the smallest
    equivalent diameter) over the rings in ``window`` (default all rings), each against
    the *truth's* reference radius ``reference_radius`` (per ring, mm; meta.json
    ``reference_radius_mm``), so only the lumen measurement differs. Returns
    ``{"DS_pred", "DS_true", "DS_error" = DS_pred - DS_true}``.
    """
    p = _radii(pred_radius, "pred_radius")
    t = _radii(true_radius, "true_radius")
    if p.shape != t.shape:
        raise ValueError(f"radius arrays differ in ring count: {p.size} vs {t.size}")
    w = np.ones(p.shape, dtype=bool) if window is None else np.asarray(window, dtype=bool)
    if w.shape != p.shape or not w.any():
        raise ValueError("window must be a non-empty boolean mask with one entry per ring")
    ds_p = float(percent_ds(p, reference_radius)[w].max())
    ds_t = float(percent_ds(t, reference_radius)[w].max())
    return {"DS_pred": ds_p, "DS_true": ds_t, "DS_error": ds_p - ds_t}
