"""Differentiable soft silhouettes of triangle meshes (Soft Rasterizer formulation), in torch.

pytorch3d cannot be installed here, so this is our own. For pixel p and triangle j, with
d_j(p) the distance (px) from p to the triangle and delta_j(p) = +1 inside, -1 outside:

    D_j(p) = sigmoid(delta_j(p) d_j(p)^2 / sigma)
    I(p)   = 1 - prod_j (1 - D_j(p)) = 1 - exp(-sum_j softplus(delta_j d_j^2 / sigma))

(log(1 - sigmoid(x)) = -softplus(x) keeps the product stable for thousands of triangles.)

:func:`soft_silhouette` culls by bounding box: a pixel farther than
``sqrt(sigma ln(1/eps))`` outside a triangle changes I by less than ``eps``, so each
triangle only touches the pixels of its bounding box grown by that margin. Triangles are
grouped by window size (powers of two) and processed in chunks of at most ``max_pairs``
pixel-triangle pairs, whose contributions are scatter-added into the image: memory
scales with the mesh's projected area, not with pixels x triangles, so 12k-triangle
meshes at 512 x 512 fit easily. :func:`soft_silhouette_dense` is the naive all-pairs
version the tests compare it with (values and gradients).

Pixel convention (GEOMETRY.md): pixel (row i, column j) has its centre at uv = (j, i).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Default blur (px^2) and culling tolerance.
SIGMA_PX2 = 0.5
CULL_EPS = 1e-6


def project(P: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """World points (N, 3) mm -> pixels (N, 2) with a 3x4 projection matrix (differentiable)."""
    h = X @ P[:, :3].T + P[:, 3]
    return h[:, :2] / h[:, 2:3]


def one_side(uv: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """The faces whose projection winds counter-clockwise (positive signed area, pixels).

    For a closed, consistently oriented mesh these are exactly the faces turned towards
    the source, or exactly those turned away; either set alone covers the whole silhouette.
    Rendering one side halves the pixel-triangle pairs (the silhouette term's cost) and
    removes no pixel from the hard silhouette; the soft rim is a little sharper, so the
    target and the prediction must be rendered alike (training does both this way).
    """
    with torch.no_grad():
        a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
        ab, ac = b - a, c - a
        area2 = ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0]
    return faces[area2 > 0]


def _pair_terms(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, sigma: float):
    """softplus(delta d^2 / sigma) for points p and triangles (a, b, c), all (..., 2)."""

    def seg_d2(p, a, b):
        ab = b - a
        t = ((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)
        q = a + t.clamp(0.0, 1.0).unsqueeze(-1) * ab
        return ((p - q) ** 2).sum(-1)

    def cross(u, v):
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    d2 = torch.minimum(torch.minimum(seg_d2(p, a, b), seg_d2(p, b, c)), seg_d2(p, c, a))
    s1, s2, s3 = cross(b - a, p - a), cross(c - b, p - b), cross(a - c, p - c)
    inside = ((s1 >= 0) & (s2 >= 0) & (s3 >= 0)) | ((s1 <= 0) & (s2 <= 0) & (s3 <= 0))
    inside = inside & (cross(b - a, c - a).abs() > 1e-12)
    sign = torch.where(inside, 1.0, -1.0).to(d2.dtype)
    return F.softplus(sign * d2 / sigma)


def soft_silhouette_dense(
    uv: torch.Tensor, faces: torch.Tensor, height: int, width: int, sigma: float = SIGMA_PX2
) -> torch.Tensor:
    """Reference: every pixel against every triangle (small meshes and images only)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=uv.dtype), torch.arange(width, dtype=uv.dtype), indexing="ij"
    )
    p = torch.stack([xs, ys], -1).reshape(-1, 1, 2)
    a, b, c = (uv[faces[:, k]].unsqueeze(0) for k in range(3))
    s = _pair_terms(p, a, b, c, sigma).sum(1)
    return (1.0 - torch.exp(-s)).reshape(height, width)


def soft_silhouette(
    uv: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    sigma: float = SIGMA_PX2,
    eps: float = CULL_EPS,
    max_pairs: int = 2_000_000,
) -> torch.Tensor:
    """Soft silhouette (height, width) in [0, 1] of triangles ``faces`` (F, 3) over
    projected vertices ``uv`` (N, 2) px; differentiable with respect to ``uv``."""
    margin = math.sqrt(sigma * math.log(1.0 / eps))
    tri = uv[faces]  # (F, 3, 2)
    with torch.no_grad():
        lo = torch.floor(tri.min(1).values - margin).long()
        hi = torch.ceil(tri.max(1).values + margin).long()
        lo[:, 0].clamp_(0, width)
        lo[:, 1].clamp_(0, height)
        hi[:, 0].clamp_(-1, width - 1)
        hi[:, 1].clamp_(-1, height - 1)
        size = (hi - lo + 1).clamp_min(0)
        visible = (size > 0).all(1)
        extent = size.max(1).values.clamp_min(1)
        bucket = torch.ceil(torch.log2(extent.double())).long()
    acc = uv.new_zeros(height * width)
    for k_exp in torch.unique(bucket[visible]).tolist():
        k = 1 << int(k_exp)
        idx = torch.nonzero(visible & (bucket == k_exp)).squeeze(1)
        off = torch.arange(k)
        chunk = max(1, max_pairs // (k * k))
        for s in range(0, len(idx), chunk):
            f = idx[s : s + chunk]
            with torch.no_grad():
                px = lo[f, 0, None, None] + off[None, None, :]  # (n, 1, k)
                py = lo[f, 1, None, None] + off[None, :, None]  # (n, k, 1)
                px, py = (
                    torch.broadcast_to(px, (len(f), k, k)),
                    torch.broadcast_to(py, (len(f), k, k)),
                )
                ok = (px <= hi[f, 0, None, None]) & (py <= hi[f, 1, None, None])
                n_i, _, _ = torch.nonzero(ok, as_tuple=True)
                pxv, pyv = px[ok], py[ok]
            p = torch.stack([pxv, pyv], -1).to(uv.dtype)
            t = tri[f][n_i]
            terms = _pair_terms(p, t[:, 0], t[:, 1], t[:, 2], sigma)
            acc = acc.index_add(0, pyv * width + pxv, terms)
    return (1.0 - torch.exp(-acc)).reshape(height, width)
