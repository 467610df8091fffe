"""Joining tube meshes into one watertight mesh (3DAngioNet section 2.4, "Stitching").

Each tube is closed with flat end caps and the closed tubes are united by a Boolean union
(manifold3d): the result is a 2-manifold, watertight, and free of self-intersections when
its inputs are. The union is computed where the tubes meet: each tube's stretch near the
others is cut out, closed, united, and the rest of each tube is joined back on ring for
ring (:func:`near_ranges`; the same surface as uniting the whole tubes, in about a third of
manifold3d's time, and checked to join exactly, else the whole tubes are united). Where
consecutive rings of a tube cross (a bend tighter than its radius, or ring planes wobbling
over steps shorter than it) the closed tube would fold through itself and be no valid
solid: its solid then skips rings until they keep clear
(:func:`solid_rings`), which changes the surface only where it folded. The synthetic
engine's joined truth and the product's ``mesh_joined`` both come from
:func:`union_tubes`.

manifold3d is imported when a union is made, not with this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from angio_deploy.errors import AngioDeployError
from angio_deploy.topology import N_AROUND, ring_faces

log = logging.getLogger(__name__)

#: Rings closer than this to crossing (:func:`bend`; they cross at about 1) are skipped
#: in the closed solid, with a margin for the ring polygons' corners.
CUT_BEND = 0.7
#: Extra distance (mm) within which rings of two tubes count as near (:func:`near_ranges`).
NEAR_MARGIN_MM = 0.25
#: Rings added on each side of a tube's near stretch before the union cuts it out.
CUT_PAD_RINGS = 2


class StitchError(AngioDeployError, RuntimeError):
    """The Boolean union did not give a valid watertight mesh (manifold3d's status says
    why). Reconstructed tubes that cannot be joined are a bug or degenerate input."""


@dataclass(frozen=True, eq=False)
class JoinedMesh:
    """A watertight mesh: vertices (V, 3) mm (the tubes' frame), faces (F, 3) int64."""

    vertices: np.ndarray
    faces: np.ndarray
    genus: int
    volume_mm3: float
    status: str = "NoError"

    def to_dict(self) -> dict[str, object]:
        return {
            "vertices": len(self.vertices),
            "triangles": len(self.faces),
            "genus": self.genus,
            "volume_mm3": self.volume_mm3,
            "manifold_status": self.status,
        }


def _ring_frames(vertices: np.ndarray, n_around: int):
    rings = np.asarray(vertices, dtype=np.float64).reshape(-1, n_around, 3)
    c = rings.mean(axis=1)
    d = rings - c[:, None]
    radius = np.linalg.norm(d, axis=2).max(axis=1)
    # The ring's plane normal is its (vector) area: robust to where vertex 0 sits.
    n = np.cross(d, np.roll(d, -1, axis=1)).sum(axis=1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return rings, c, radius, n


def _crossing(c, radius, n, i: int, j: int) -> float:
    angle = float(np.arccos(np.clip(np.dot(n[i], n[j]), -1.0, 1.0)))
    gap = float(np.linalg.norm(c[j] - c[i]))
    return angle * max(radius[i], radius[j]) / max(gap, 1e-12)


def _bends(c: np.ndarray, radius: np.ndarray, n: np.ndarray) -> np.ndarray:
    # _crossing of every consecutive pair at once.
    angle = np.arccos(np.clip(np.einsum("ij,ij->i", n[:-1], n[1:]), -1.0, 1.0))
    gap = np.maximum(np.linalg.norm(np.diff(c, axis=0), axis=1), 1e-12)
    return angle * np.maximum(radius[:-1], radius[1:]) / gap


def bend(vertices: np.ndarray, n_around: int = N_AROUND) -> np.ndarray:
    """Per pair of consecutive rings (R - 1,) how close they come to crossing: the angle
    between their planes (rad) times the larger radius over the distance of their centres.
    At about 1 the rings cross, and the closed tube is no valid solid."""
    _, c, radius, n = _ring_frames(vertices, n_around)
    return _bends(c, radius, n)


def solid_rings(vertices: np.ndarray, n_around: int = N_AROUND) -> np.ndarray:
    """Indices of the rings that make the tube a valid closed solid: all of them, unless
    consecutive rings cross (a bend tighter than the radius, or ring planes that wobble
    over steps shorter than the radius); then, walking from the start, each next ring is
    the first one that keeps clear of the last kept ring (:func:`bend` below
    :data:`CUT_BEND`). The last ring is always kept."""
    _, c, radius, n = _ring_frames(vertices, n_around)
    last = len(c) - 1
    if last < 1 or _bends(c, radius, n).max() < CUT_BEND:
        return np.arange(len(c), dtype=np.int64)  # no consecutive rings come near crossing
    keep = [0]
    j = 1
    while j < last:
        if _crossing(c, radius, n, keep[-1], j) < CUT_BEND:
            keep.append(j)
        j += 1
    # The last ring is the tube's end: drop kept rings that it would cross.
    while len(keep) > 1 and _crossing(c, radius, n, keep[-1], last) >= CUT_BEND:
        keep.pop()
    keep.append(last)
    return np.asarray(keep, dtype=np.int64)


def closed_tube(vertices: np.ndarray, n_around: int = N_AROUND) -> tuple[np.ndarray, np.ndarray]:
    """The tube as a closed solid: the rings of :func:`solid_rings` with flat end caps;
    vertices (K * n_around, 3) mm, faces (F, 3)."""
    rings = np.asarray(vertices, dtype=np.float64).reshape(-1, n_around, 3)
    idx = solid_rings(vertices, n_around)
    if len(idx) < len(rings):
        log.debug("closed tube: %d of %d rings keep it a valid solid", len(idx), len(rings))
    v = rings[idx].reshape(-1, 3)
    return v, ring_faces(len(idx), n_around, caps=True)


def _union(solid_meshes: Sequence[tuple[np.ndarray, np.ndarray]]):
    """manifold3d's union of closed meshes (vertices float32-exact, faces): the Manifold."""
    import manifold3d as m3

    solids = []
    for k, (pv, pf) in enumerate(solid_meshes):
        s = m3.Manifold(
            m3.Mesh(
                vert_properties=np.ascontiguousarray(pv, dtype=np.float32),
                tri_verts=np.ascontiguousarray(pf, dtype=np.uint32),
            )
        )
        if s.status() != m3.Error.NoError:
            raise StitchError(f"tube {k} is not a closed manifold: {s.status().name}")
        solids.append(s)
    joined = solids[0]
    for s in solids[1:]:
        joined = joined + s
    status = joined.status()
    if status != m3.Error.NoError or joined.is_empty():
        raise StitchError(f"the Boolean union failed: {status.name}, empty={joined.is_empty()}")
    return joined


def near_ranges(
    ring_sets: Sequence[np.ndarray], margin_mm: float = NEAR_MARGIN_MM
) -> list[tuple[int, int]] | None:
    """Per tube (rings (K, n_around, 3) mm), the first and last ring that may touch
    another tube, widened by :data:`CUT_PAD_RINGS`; None when some tube touches no other
    (then there is nothing local about the union). Conservative: two rings count as near
    when their centres are closer than both radii (each the largest of the ring and its
    neighbours), both tubes' largest ring spacings and ``margin_mm`` together: a tube's
    surface between two rings lies within its radius and one spacing of either ring's
    centre, so every triangle a Boolean could cut lies inside the ranges."""
    frames = []
    for rings in ring_sets:
        c = rings.mean(axis=1)
        r = np.linalg.norm(rings - c[:, None], axis=2).max(axis=1)
        radius = np.maximum(r, np.maximum(np.r_[r[:1], r[:-1]], np.r_[r[1:], r[-1:]]))
        step = float(np.linalg.norm(np.diff(c, axis=0), axis=1).max()) if len(c) > 1 else 0.0
        frames.append((c, radius, step))
    out = []
    for k, (ck, rk, sk) in enumerate(frames):
        near = np.zeros(len(ck), dtype=bool)
        for j, (cj, rj, sj) in enumerate(frames):
            if j == k:
                continue
            d2 = ((ck[:, None] - cj[None]) ** 2).sum(axis=2)
            near |= (d2 < (rk[:, None] + rj[None] + sk + sj + margin_mm) ** 2).any(axis=1)
        if not near.any():
            return None
        idx = np.flatnonzero(near)
        lo = max(0, int(idx[0]) - CUT_PAD_RINGS)
        hi = min(len(ck) - 1, int(idx[-1]) + CUT_PAD_RINGS)
        out.append((lo, hi))
    return out


def _row_keys(v32: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(v32, dtype=np.float32).view(np.dtype((np.void, 12))).ravel()


def _local_union(ring_sets: list[np.ndarray], n_around: int) -> JoinedMesh | None:
    """The union computed on the stretches of the tubes that come near each other, the
    rest of each tube joined on unchanged; None when the pieces do not join exactly (the
    caller then unites the whole tubes)."""
    ranges = near_ranges(ring_sets)
    if ranges is None or all(
        hi - lo + 1 == len(r) for r, (lo, hi) in zip(ring_sets, ranges, strict=True)
    ):
        return None
    if any(hi - lo < 2 for lo, hi in ranges):
        return None  # a stretch too short to close
    local, cuts, parts = [], [], []
    for rings, (lo, hi) in zip(ring_sets, ranges, strict=True):
        last = len(rings) - 1
        local.append((rings[lo : hi + 1].reshape(-1, 3), ring_faces(hi - lo + 1, n_around, True)))
        # The flat caps put on at a cut are taken off again below; the pieces beyond a cut
        # keep the tube's own end cap and are open at the cut ring.
        for a, b, cut in ((0, lo, lo), (hi, last, hi)):
            if b == a or (cut == lo and lo == 0) or (cut == hi and hi == last):
                continue
            m = b - a + 1
            faces = ring_faces(m, n_around, True)
            at = (0 if cut == a else m - 1) * n_around
            on_cut = ((faces >= at) & (faces < at + n_around)).all(axis=1)
            parts.append((rings[a : b + 1].reshape(-1, 3), faces[~on_cut], at))
            # The local piece's own cap at the cut: a start cap at lo, an end cap at hi.
            cuts.append((rings[cut], cut == lo))
    try:
        joined = _union(local)
    except StitchError:
        return None  # let the whole tubes say what is wrong with them
    mesh = joined.to_mesh()
    uv = np.asarray(mesh.vert_properties, dtype=np.float32)[:, :3]
    uf = np.asarray(mesh.tri_verts, dtype=np.int64)
    keys = _row_keys(uv)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    ring_of = np.full(len(uv), -1, dtype=np.int64)
    matched = []
    for k, (ring, _) in enumerate(cuts):
        rk = _row_keys(ring)
        pos = np.minimum(np.searchsorted(sorted_keys, rk), len(keys) - 1)
        if not np.array_equal(sorted_keys[pos], rk):
            return None  # the Boolean moved a cut ring: not local after all
        ids = order[pos]
        ring_of[ids] = k
        matched.append(ids)
    rf = ring_of[uf]
    cap = (rf[:, 0] >= 0) & (rf[:, 0] == rf[:, 1]) & (rf[:, 1] == rf[:, 2])
    if int(cap.sum()) != len(cuts) * (n_around - 2):
        return None
    for k, ((_, start), ids) in enumerate(zip(cuts, matched, strict=True)):
        if not _is_ring_disk(uf[cap & (rf[:, 0] == k)], ids if start else ids[::-1]):
            return None
    vertices = [uv.astype(np.float64)]
    faces = [uf[~cap]]
    n_v = len(uv)
    for (pv, pf, at), ids in zip(parts, matched, strict=True):
        # The piece's cut ring is the union's; its other vertices are new.
        remap = np.arange(len(pv), dtype=np.int64) + n_v
        remap[at : at + n_around] = ids
        keep = np.ones(len(pv), dtype=bool)
        keep[at : at + n_around] = False
        remap[keep] = n_v + np.arange(int(keep.sum()))
        vertices.append(pv[keep].astype(np.float32).astype(np.float64))
        faces.append(remap[pf])
        n_v += int(keep.sum())
    v = np.concatenate(vertices)
    f = np.concatenate(faces)
    return JoinedMesh(
        vertices=v,
        faces=f,
        # Swapping a flat cap for the rest of its tube is a disk for a disk: the topology
        # is the local union's.
        genus=int(joined.genus()),
        volume_mm3=mesh_volume(v, f),
        status="NoError",
    )


def _is_ring_disk(cap: np.ndarray, ring_ids: np.ndarray) -> bool:
    """Whether triangles ``cap`` (on one cut ring's vertices ``ring_ids``) form a disk
    bounded by the ring polygon as a start cap is: its boundary edges, each used once, are
    exactly the polygon's edges run backwards (an end cap: pass the ring reversed). Then
    taking it off leaves
    the union open exactly where the piece beyond the cut (a closed ring mesh without its
    cap there) is open the other way round, and the two close each other."""
    a = cap.ravel()
    b = cap[:, [1, 2, 0]].ravel()
    n = int(max(a.max(initial=0), ring_ids.max()) + 1)
    fwd = a * n + b
    inner = np.isin(fwd, b * n + a)  # edges whose reverse is in the cap: interior
    boundary = np.sort(fwd[~inner])
    want = np.sort(np.roll(ring_ids, -1) * n + ring_ids)
    return bool(np.array_equal(boundary, want))


def mesh_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume (mm3) of a closed, outward-oriented triangle mesh."""
    x, y, z = (np.ascontiguousarray(vertices[:, k])[faces] for k in range(3))
    det = (
        x[:, 0] * (y[:, 1] * z[:, 2] - z[:, 1] * y[:, 2])
        - y[:, 0] * (x[:, 1] * z[:, 2] - z[:, 1] * x[:, 2])
        + z[:, 0] * (x[:, 1] * y[:, 2] - y[:, 1] * x[:, 2])
    )
    return float(det.sum() / 6.0)


def union_tubes(
    tubes: Sequence[np.ndarray], n_around: int = N_AROUND, *, local: bool = True
) -> JoinedMesh:
    """Boolean union of ring-mesh tubes (each (R * n_around, 3) mm, tube_mesh's vertex
    order), each closed first (:func:`closed_tube`). Raises :class:`StitchError` when the
    result is not a valid non-empty manifold.

    ``local`` (the default) unites only the stretches of the tubes that come near each
    other (:func:`near_ranges`) and joins the rest on ring for ring: the same surface in
    about a third of the time, since manifold3d's cost grows with every triangle it is
    given. The pieces are checked to join exactly (cut rings unmoved, watertight,
    oriented); where they do not, the whole tubes are united as with ``local=False``."""
    ring_sets = []
    for v in tubes:
        rings = np.asarray(v, dtype=np.float64).reshape(-1, n_around, 3)
        ring_sets.append(rings[solid_rings(v, n_around)])
    if local and len(ring_sets) > 1:
        out = _local_union(ring_sets, n_around)
        if out is not None:
            return out
        log.debug("local union did not join exactly: uniting the whole tubes")
    joined = _union(
        [(r.reshape(-1, 3), ring_faces(len(r), n_around, caps=True)) for r in ring_sets]
    )
    mesh = joined.to_mesh()
    return JoinedMesh(
        vertices=np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3],
        faces=np.asarray(mesh.tri_verts, dtype=np.int64),
        genus=int(joined.genus()),
        volume_mm3=float(joined.volume()),
        status=joined.status().name,
    )
