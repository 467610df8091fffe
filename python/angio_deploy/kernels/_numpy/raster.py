"""Binary silhouette rasterisation of a triangle mesh into one view.

A pixel (column px, row py) is inside a triangle when its centre lies inside or on the
edges of the projected triangle (edge functions >= 0 after orienting it counter-clockwise
in pixel coordinates). Triangles with a vertex at or behind the source, non-finite, or of
zero projected area are skipped.
"""

from __future__ import annotations

import math

import numpy as np

from .projection import project_one


def rasterise_silhouette(
    P: np.ndarray, vertices: np.ndarray, faces: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Fill the projected mesh: vertices (N, 3) mm, faces (F, 3) -> mask (height, width) uint8."""
    mask = np.zeros((height, width), dtype=np.uint8)
    pu, pv, w = project_one(P, vertices[:, 0], vertices[:, 1], vertices[:, 2])
    ok = (w > 0.0) & np.isfinite(pu) & np.isfinite(pv)
    pu = pu.tolist()
    pv = pv.tolist()
    ok = ok.tolist()
    for f0, f1, f2 in faces.tolist():
        if not (ok[f0] and ok[f1] and ok[f2]):
            continue
        x0, y0 = pu[f0], pv[f0]
        x1, y1 = pu[f1], pv[f1]
        x2, y2 = pu[f2], pv[f2]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if area == 0.0:
            continue
        if area < 0.0:
            x1, y1, x2, y2 = x2, y2, x1, y1
        xmin = max(0, math.ceil(min(x0, x1, x2)))
        xmax = min(width - 1, math.floor(max(x0, x1, x2)))
        ymin = max(0, math.ceil(min(y0, y1, y2)))
        ymax = min(height - 1, math.floor(max(y0, y1, y2)))
        if xmin > xmax or ymin > ymax:
            continue
        px = np.arange(xmin, xmax + 1, dtype=np.float64)[None, :]
        py = np.arange(ymin, ymax + 1, dtype=np.float64)[:, None]
        e0 = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)
        e1 = (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)
        e2 = (x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)
        inside = (e0 >= 0.0) & (e1 >= 0.0) & (e2 >= 0.0)
        mask[ymin : ymax + 1, xmin : xmax + 1] |= inside.astype(np.uint8)
    return mask
