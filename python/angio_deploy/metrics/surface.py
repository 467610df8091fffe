"""Surface metrics on triangle meshes (METRICS.md): sampling, MAE, ASSD, HD, HD95, F-scores.

All coordinates are world millimetres (DICOM patient frame, LPS) unless a function says
otherwise. Meshes are ``vertices (N, 3)`` float and ``faces (F, 3)`` integer triangles.

Definitions chosen where METRICS.md leaves room (every function states its own):

- Samples: :data:`N_SAMPLES` = 10,000 area-weighted uniform points per surface drawn with
  ``numpy.random.default_rng(SAMPLE_SEED)``, ``SAMPLE_SEED = 0``. Triangles are chosen by
  inverse-CDF lookup of the cumulative area, so two meshes with the same topology (the
  product's 100 x 60 ring meshes) get samples with the same triangle and barycentric
  coordinates wherever their area distributions agree: sample i of the prediction then sits
  where sample i of the truth sits on the truth.
- ASSD, HD, HD95 use the exact point-to-surface distance from each sample set to the
  *other mesh* (closest point on its triangles), the "nearest-surface distance" of
  METRICS.md; so they need no correspondence and do not depend on the sample spacing.
- HD95 is the larger of the two directed 95th percentiles (``numpy.percentile``, linear
  interpolation), as MONAI's ``compute_hausdorff_distance(percentile=95)`` computes it.
  (medpy's ``hd95`` pools both directions before taking the percentile instead.)
- F@tau is Pixel2Mesh style on the samples themselves: precision = share of predicted
  samples whose nearest *true sample* is within tau (inclusive), recall the reverse,
  F = 2PR / (P + R) in percent (0 when P = R = 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from angio_deploy.geometry.normalise import NormalisedFrame

__all__ = [
    "F_PAPER_TAU",
    "F_TAUS_MM",
    "N_SAMPLES",
    "SAMPLE_SEED",
    "closest_points",
    "f_paper",
    "f_score",
    "paper_normalisation",
    "point_mesh_distance",
    "sample_surface",
    "surface_distances",
    "vertex_mae",
]

#: Points sampled on each surface (METRICS.md).
N_SAMPLES = 10_000
#: Seed of ``numpy.random.default_rng`` for the surface samples (METRICS.md: fixed seed).
SAMPLE_SEED = 0
#: F-score thresholds (mm) reported by METRICS.md.
F_TAUS_MM = (0.1, 0.25, 0.5)
#: The paper's F-score threshold on *squared* distances in its normalised frame.
F_PAPER_TAU = 0.0005
#: Candidate triangles per point in the first nearest-triangle query.
_FIRST_K = 32
_CHUNK = 4096

Mesh = tuple[np.ndarray, np.ndarray]


def _mesh(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0:
        raise ValueError(f"faces must be a non-empty (F, 3) array, got {f.shape}")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError("faces index vertices out of range")
    if not np.isfinite(v).all():
        raise ValueError("vertices must be finite")
    return v, f


def _triangle_areas(tri: np.ndarray) -> np.ndarray:
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def sample_surface(vertices, faces, n: int = N_SAMPLES, seed: int = SAMPLE_SEED) -> np.ndarray:
    """``n`` points (n, 3) mm uniformly distributed over the surface area of a mesh.

    Deterministic: ``numpy.random.default_rng(seed)`` draws an (n, 3) uniform array ``u``;
    ``u[:, 0]`` picks the triangle by inverse CDF of the cumulative triangle area and
    ``u[:, 1:]`` the point in it (``sqrt`` warping: p = (1 - sqrt(u1)) a +
    sqrt(u1) (1 - u2) b + sqrt(u1) u2 c, uniform on the triangle). Default seed
    :data:`SAMPLE_SEED` = 0, default n :data:`N_SAMPLES` = 10,000.
    """
    v, f = _mesh(vertices, faces)
    if n < 1:
        raise ValueError("n must be >= 1")
    tri = v[f]
    cdf = np.cumsum(_triangle_areas(tri))
    if not cdf[-1] > 0:
        raise ValueError("the mesh has zero surface area")
    u = np.random.default_rng(seed).random((n, 3))
    idx = np.minimum(np.searchsorted(cdf, u[:, 0] * cdf[-1], side="right"), len(f) - 1)
    s = np.sqrt(u[:, 1:2])
    t = u[:, 2:3]
    a, b, c = tri[idx, 0], tri[idx, 1], tri[idx, 2]
    return (1.0 - s) * a + s * (1.0 - t) * b + s * t * c


def vertex_mae(pred_v, true_v) -> float:
    """Mean Euclidean distance (mm) between corresponding vertices (METRICS.md MAE).

    Both meshes must have the same vertex count and order (100 rings x 60 vertices = 6000
    for the product, vertex ``ring * 60 + j``); anything else is a ValueError.
    """
    p = np.asarray(pred_v, dtype=np.float64)
    t = np.asarray(true_v, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or t.ndim != 2 or t.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3) arrays, got {p.shape} and {t.shape}")
    if p.shape != t.shape:
        raise ValueError(
            f"vertex MAE needs corresponding vertices: the prediction has {len(p)} vertices, "
            f"the truth {len(t)} (expected the same ring topology, e.g. 100 x 60 = 6000)"
        )
    return float(np.linalg.norm(p - t, axis=1).mean())


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", x, y)


def _closest_on_triangles(p, a, b, c) -> np.ndarray:
    """Closest points on triangles (a, b, c) to points p, all (..., 3) (Ericson 5.1.5)."""
    ab, ac = b - a, c - a
    ap, bp, cp = p - a, p - b, p - c
    d1, d2 = _dot(ab, ap), _dot(ac, ap)
    d3, d4 = _dot(ab, bp), _dot(ac, bp)
    d5, d6 = _dot(ab, cp), _dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den != 0)

    den = va + vb + vc
    out = a + ab * ratio(vb, den)[..., None] + ac * ratio(vc, den)[..., None]
    # Regions from lowest to highest priority, so later ones override earlier ones.
    e43, e56 = d4 - d3, d5 - d6
    regions = [
        (
            (va <= 0) & (e43 >= 0) & (e56 >= 0),
            lambda: b + (c - b) * ratio(e43, e43 + e56)[..., None],
        ),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), lambda: a + ac * ratio(d2, d2 - d6)[..., None]),
        ((d6 >= 0) & (d5 <= d6), lambda: c),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), lambda: a + ab * ratio(d1, d1 - d3)[..., None]),
        ((d3 >= 0) & (d4 <= d3), lambda: b),
        ((d1 <= 0) & (d2 <= 0), lambda: a),
    ]
    for mask, point in regions:
        out = np.where(mask[..., None], point(), out)
    return out


def _closest_of_candidates(points, tri, cand) -> tuple[np.ndarray, np.ndarray]:
    t = tri[cand]  # (n, k, 3, 3)
    q = _closest_on_triangles(points[:, None, :], t[..., 0, :], t[..., 1, :], t[..., 2, :])
    d = np.linalg.norm(q - points[:, None, :], axis=-1)
    best = d.argmin(axis=1)
    rows = np.arange(len(points))
    return d[rows, best], q[rows, best]


def point_mesh_distance(points, vertices, faces) -> np.ndarray:
    """Exact distance (mm) from each point (n, 3) to the nearest point of a triangle mesh."""
    return closest_points(points, vertices, faces)[0]


def closest_points(points, vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    """Exact nearest points of a triangle mesh: distances (n,) mm and the points (n, 3).

    Candidate triangles come from a cKDTree on triangle centroids; a point's answer is
    accepted once the farthest queried centroid is at least (best distance + largest
    centroid-to-vertex radius) away, which proves no unqueried triangle is closer, and
    the query widens (x4) for the points where it is not yet.
    """
    v, f = _mesh(vertices, faces)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    tri = _bounded_triangles(v[f])
    centroids = tri.mean(axis=1)
    reach = float(np.linalg.norm(tri - centroids[:, None, :], axis=2).max())
    tree = cKDTree(centroids)
    out = np.empty(len(pts))
    near = np.empty((len(pts), 3))
    todo = np.arange(len(pts))
    k = min(_FIRST_K, len(tri))
    while todo.size:
        still = []
        # Fewer points per chunk as the candidate lists grow: memory stays bounded.
        chunk = max(64, _CHUNK * _FIRST_K // k)
        for start in range(0, todo.size, chunk):
            sel = todo[start : start + chunk]
            dc, ic = tree.query(pts[sel], k=k)
            dc, ic = dc.reshape(len(sel), -1), ic.reshape(len(sel), -1)
            d, q = _closest_of_candidates(pts[sel], tri, ic)
            out[sel], near[sel] = d, q
            if k < len(tri):
                still.append(sel[dc[:, -1] < d + reach])
        todo = np.concatenate(still) if still else np.empty(0, dtype=np.int64)
        k = min(4 * k, len(tri))
    return out, near


#: Triangles reaching farther than this multiple of the median reach (centroid to farthest
#: corner) are split for the nearest-point search.
_REACH_RATIO = 1.5


def _bounded_triangles(tri: np.ndarray) -> np.ndarray:
    """The same surface as triangles (T, 3, 3) whose reach is at most a few times the
    median: long ones (flat end caps, the slivers a Boolean union leaves) are bisected at
    their longest edge until they are not. The search's proof of exactness uses the
    largest reach, so one long triangle would otherwise widen every point's query to the
    whole mesh (minutes and gigabytes on a joined mesh)."""

    def reach(t: np.ndarray) -> np.ndarray:
        return np.linalg.norm(t - t.mean(axis=1, keepdims=True), axis=2).max(axis=1)

    limit = _REACH_RATIO * float(np.median(reach(tri))) if len(tri) else 0.0
    done = []
    for _ in range(32):
        long = reach(tri) > limit
        if not long.any():
            break
        done.append(tri[~long])
        t = tri[long]
        edges = np.stack(
            [
                np.linalg.norm(t[:, 1] - t[:, 0], axis=1),
                np.linalg.norm(t[:, 2] - t[:, 1], axis=1),
                np.linalg.norm(t[:, 0] - t[:, 2], axis=1),
            ],
            axis=1,
        )
        e = edges.argmax(axis=1)
        # Rotate each triangle so its longest edge is (0, 1), then split that edge.
        idx = np.stack([e, (e + 1) % 3, (e + 2) % 3], axis=1)
        t = np.take_along_axis(t, idx[:, :, None], axis=1)
        m = 0.5 * (t[:, 0] + t[:, 1])
        tri = np.concatenate(
            [np.stack([t[:, 0], m, t[:, 2]], 1), np.stack([m, t[:, 1], t[:, 2]], 1)]
        )
    done.append(tri)
    return np.concatenate(done)


def f_score(d_pred_to_true: np.ndarray, d_true_to_pred: np.ndarray, tau: float) -> float:
    """Pixel2Mesh F-score in percent from directed nearest-neighbour distances.

    precision = share of predicted samples with ``d_pred_to_true <= tau``, recall = share
    of true samples with ``d_true_to_pred <= tau``, F = 2PR / (P + R) x 100 (0 if both 0).
    """
    p = float(np.mean(d_pred_to_true <= tau))
    r = float(np.mean(d_true_to_pred <= tau))
    return 0.0 if p + r == 0 else 100.0 * 2.0 * p * r / (p + r)


def _nn_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-sample distances a -> b and b -> a."""
    return cKDTree(b).query(a)[0], cKDTree(a).query(b)[0]


def surface_distances(
    pred_mesh: Mesh,
    true_mesh: Mesh,
    *,
    taus: Sequence[float] = F_TAUS_MM,
    n: int = N_SAMPLES,
    seed: int = SAMPLE_SEED,
) -> dict[str, float]:
    """ASSD, HD, HD95 (mm) and F@tau (percent) between two meshes ``(vertices, faces)``.

    Both surfaces get ``n`` samples (:func:`sample_surface`, same ``seed``).

    - ``ASSD``: mean of the pooled 2n distances from each surface's samples to the other
      *surface* (:func:`point_mesh_distance`), i.e. (sum d(pred->true) + sum
      d(true->pred)) / 2n.
    - ``HD``: the largest of those distances (symmetric Hausdorff on the samples).
    - ``HD95``: max(95th percentile of d(pred->true), 95th percentile of d(true->pred)),
      MONAI's definition (not medpy's pooled percentile).
    - ``F@{tau}`` for each tau (mm): :func:`f_score` of the sample-to-nearest-*sample*
      distances (Pixel2Mesh style, as METRICS.md words it).
    """
    pv, pf = _mesh(*pred_mesh)
    tv, tf = _mesh(*true_mesh)
    ps = sample_surface(pv, pf, n, seed)
    ts = sample_surface(tv, tf, n, seed)
    d_pt = point_mesh_distance(ps, tv, tf)
    d_tp = point_mesh_distance(ts, pv, pf)
    both = np.concatenate([d_pt, d_tp])
    out = {
        "ASSD": float(both.mean()),
        "HD": float(both.max()),
        "HD95": float(max(np.percentile(d_pt, 95), np.percentile(d_tp, 95))),
    }
    nn_pt, nn_tp = _nn_distances(ps, ts)
    for tau in taus:
        out[f"F@{tau:g}"] = f_score(nn_pt, nn_tp, tau)
    return out


def paper_normalisation(true_v, n_around: int = 60) -> tuple[np.ndarray, np.ndarray, float]:
    """The truth's normalisation of the paper: x -> scale * (R x + b).

    :meth:`angio_deploy.geometry.NormalisedFrame.from_ring_mesh` with the roll from the
    truth's own shape (first principal direction normal to the start-to-end axis): it
    depends only on the truth's shape, so it moves with the mesh and the scale is
    invariant to rigid motions. Returns ``(R, b, scale)``.
    """
    f = NormalisedFrame.from_ring_mesh(true_v, n_around)
    return f.R, f.b, f.scale


def f_paper(
    pred_v, pred_f, true_v, true_f, *, n: int = N_SAMPLES, seed: int = SAMPLE_SEED
) -> float:
    """The paper's F-score (percent), for comparison with its Table 1 only.

    Both meshes are mapped by the *truth's* :func:`paper_normalisation` (translate, rotate
    the start-to-end axis onto z, scale the truth into [0, 1]^3); the same samples as
    :func:`surface_distances` (n per surface, ``seed``) are taken in that frame; a sample
    counts when its *squared* distance to the nearest sample of the other mesh is
    <= :data:`F_PAPER_TAU` = 0.0005; F = 2PR / (P + R) x 100. In world terms the threshold
    is sqrt(0.0005) / scale mm, about 0.89 mm for a truth 40 mm long.
    """
    A, b, scale = paper_normalisation(true_v)
    pv, pf = _mesh(pred_v, pred_f)
    tv, tf = _mesh(true_v, true_f)
    ps = scale * (sample_surface(pv, pf, n, seed) @ A.T + b)
    ts = scale * (sample_surface(tv, tf, n, seed) @ A.T + b)
    nn_pt, nn_tp = _nn_distances(ps, ts)
    return f_score(nn_pt**2, nn_tp**2, F_PAPER_TAU)


def vertex_mae_shape(pred_v, true_v) -> float:
    """MAE (mm) after the rigid motion that best aligns the prediction's vertices to the
    truth's (least squares over corresponding vertices, Kabsch, no scaling; METRICS.md
    MAE_shape): the shape error without the placement error."""
    vertex_mae(pred_v, true_v)  # the same checks, the same errors
    p = np.asarray(pred_v, dtype=np.float64)
    t = np.asarray(true_v, dtype=np.float64)
    pc, tc = p.mean(axis=0), t.mean(axis=0)
    U, _, Vt = np.linalg.svd((p - pc).T @ (t - tc))
    d = np.sign(np.linalg.det(U @ Vt))  # a rotation, never a reflection
    R = U @ np.diag([1.0, 1.0, d]) @ Vt
    return float(np.linalg.norm((p - pc) @ R + tc - t, axis=1).mean())
