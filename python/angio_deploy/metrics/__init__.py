"""Evaluation metrics of METRICS.md (numpy/scipy only, no torch).

- :mod:`.surface`: :func:`sample_surface`, :func:`vertex_mae`, :func:`surface_distances`
  (ASSD, HD, HD95, F@tau), :func:`f_paper` (the paper's normalised F-score).
- :mod:`.silhouette`: :func:`silhouette_overlap` (Dice, Jaccard of a rendered mesh vs a
  mask), :func:`mean_overlap`.
- :mod:`.radius`: :func:`radius_errors`, :func:`ring_radii`, :func:`percent_ds`,
  :func:`percent_ds_error`, :func:`lesion_window`.
- :mod:`.case`: :func:`evaluate_case` (one case folder's row), :func:`summarise`.

Distances are world millimetres (DICOM patient frame, LPS), images full-resolution pixels.
"""

from __future__ import annotations

from .case import ViewTruth, evaluate_case, load_truth_views, summarise
from .radius import lesion_window, percent_ds, percent_ds_error, radius_errors, ring_radii
from .silhouette import dice_jaccard, mean_overlap, silhouette_overlap
from .surface import (
    F_PAPER_TAU,
    F_TAUS_MM,
    N_SAMPLES,
    SAMPLE_SEED,
    closest_points,
    f_paper,
    f_score,
    paper_normalisation,
    point_mesh_distance,
    sample_surface,
    surface_distances,
    vertex_mae,
)

__all__ = [
    "F_PAPER_TAU",
    "F_TAUS_MM",
    "N_SAMPLES",
    "SAMPLE_SEED",
    "ViewTruth",
    "closest_points",
    "dice_jaccard",
    "evaluate_case",
    "f_paper",
    "f_score",
    "lesion_window",
    "load_truth_views",
    "mean_overlap",
    "paper_normalisation",
    "percent_ds",
    "percent_ds_error",
    "point_mesh_distance",
    "radius_errors",
    "ring_radii",
    "sample_surface",
    "silhouette_overlap",
    "summarise",
    "surface_distances",
    "vertex_mae",
]
