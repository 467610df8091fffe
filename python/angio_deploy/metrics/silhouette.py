"""Silhouette overlap (METRICS.md Dice, Jaccard): a mesh rendered into a view vs a mask.

Pixels are the image's own (full resolution, ``mask.shape == (height, width)``), pixel
centres at integer ``[u, v]`` = ``[column, row]``. The mesh (world mm, LPS) is rendered as
a filled silhouette with :func:`angio_deploy.kernels.rasterise_silhouette` and the view's
3x4 projection matrix ``P`` (world mm -> pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from angio_deploy import kernels

__all__ = ["dice_jaccard", "mean_overlap", "silhouette_overlap"]


def dice_jaccard(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Dice 2|A n B| / (|A| + |B|) and Jaccard |A n B| / |A u B| of two binary images.

    Non-zero pixels are foreground. Both NaN when both images are empty (undefined).
    """
    a = np.asarray(pred) != 0
    b = np.asarray(truth) != 0
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    inter = int(np.count_nonzero(a & b))
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return float("nan"), float("nan")
    return 2.0 * inter / total, inter / (total - inter)


def silhouette_overlap(vertices, faces, P, mask: np.ndarray) -> tuple[float, float]:
    """(Dice, Jaccard) of the mesh's filled silhouette in one view against ``mask``.

    ``vertices`` (N, 3) world mm, ``faces`` (F, 3); ``P`` the view's 3x4 projection
    matrix (world mm -> pixels); ``mask`` (height, width), non-zero = vessel. The
    silhouette is rendered at the mask's full resolution.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be a 2-D (height, width) image, got shape {m.shape}")
    height, width = m.shape
    sil = kernels.rasterise_silhouette(P, vertices, faces, width, height)
    return dice_jaccard(sil, m)


def mean_overlap(vertices, faces, views: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Dice and Jaccard per view and their mean over views (METRICS.md: two views).

    ``views`` is a sequence of ``(P, mask)`` pairs. Returns ``{"dice": [..], "jaccard":
    [..], "Dice": mean, "Jaccard": mean}`` (per-view lists in view order).
    """
    if not views:
        raise ValueError("at least one view is needed")
    pairs = [silhouette_overlap(vertices, faces, P, mask) for P, mask in views]
    dice = [d for d, _ in pairs]
    jac = [j for _, j in pairs]
    return {
        "dice": dice,
        "jaccard": jac,
        "Dice": float(np.mean(dice)),
        "Jaccard": float(np.mean(jac)),
    }
