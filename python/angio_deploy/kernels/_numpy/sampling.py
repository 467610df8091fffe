"""Bilinear sampling of multi-resolution feature maps at image pixel positions.

Convention (the same as torch.nn.functional.grid_sample with align_corners=False and
padding_mode="border", so training and runtime agree): an image of width W maps onto a
feature map of width Wk by x = (u + 0.5) * Wk / W - 0.5; positions are clamped to the
map (border replication). Non-finite positions give zeros. Maps are channel-last
(H, W, C); weights are computed in float64 and cast to the maps' dtype.
"""

from __future__ import annotations

import numpy as np


def sample_bilinear(
    maps: list[np.ndarray], uv: np.ndarray, width: int, height: int, threads: int = 0
) -> np.ndarray:
    """Sample maps [(Hk, Wk, Ck)] at pixels uv (N, 2) of a (height, width) image -> (N, sum Ck).

    ``threads`` is the native core's worker limit; this twin runs in the calling thread
    (numpy's own vectorisation), so it accepts and ignores it."""
    dtype = maps[0].dtype
    N = uv.shape[0]
    finite = np.isfinite(uv[:, 0]) & np.isfinite(uv[:, 1])
    u = np.where(finite, uv[:, 0], 0.0)
    v = np.where(finite, uv[:, 1], 0.0)
    out = []
    for fmap in maps:
        Hk, Wk, _ = fmap.shape
        x = (u + 0.5) * Wk / width - 0.5
        y = (v + 0.5) * Hk / height - 0.5
        x = np.minimum(np.maximum(x, 0.0), float(Wk - 1))
        y = np.minimum(np.maximum(y, 0.0), float(Hk - 1))
        x0 = np.floor(x).astype(np.int64)
        y0 = np.floor(y).astype(np.int64)
        x1 = np.minimum(x0 + 1, Wk - 1)
        y1 = np.minimum(y0 + 1, Hk - 1)
        fx = x - x0
        fy = y - y0
        gx = 1.0 - fx
        gy = 1.0 - fy
        w00 = (gy * gx).astype(dtype)[:, None]
        w01 = (gy * fx).astype(dtype)[:, None]
        w10 = (fy * gx).astype(dtype)[:, None]
        w11 = (fy * fx).astype(dtype)[:, None]
        s = w00 * fmap[y0, x0] + w01 * fmap[y0, x1] + w10 * fmap[y1, x0] + w11 * fmap[y1, x1]
        s[~finite] = 0
        out.append(s)
    res = np.concatenate(out, axis=1) if out else np.zeros((N, 0), dtype=dtype)
    return np.ascontiguousarray(res, dtype=dtype)
