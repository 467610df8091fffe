"""Joining tube meshes into one watertight mesh (3DAngioNet section 2.4, "Stitching").

Each tube is closed with flat end caps and the closed tubes are united by a Boolean union
(manifold3d): the result is a 2-manifold, watertight, and free of self-intersections when
its inputs are. Where consecutive rings of a tube cross (a bend tighter than its radius,
or ring planes wobbling over steps shorter than it) the closed tube would fold through
itself and be no valid solid: its solid then skips rings until they keep clear
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


def bend(vertices: np.ndarray, n_around: int = N_AROUND) -> np.ndarray:
    """Per pair of consecutive rings (R - 1,) how close they come to crossing: the angle
    between their planes (rad) times the larger radius over the distance of their centres.
    At about 1 the rings cross, and the closed tube is no valid solid."""
    _, c, radius, n = _ring_frames(vertices, n_around)
    return np.array([_crossing(c, radius, n, i, i + 1) for i in range(len(c) - 1)])


def solid_rings(vertices: np.ndarray, n_around: int = N_AROUND) -> np.ndarray:
    """Indices of the rings that make the tube a valid closed solid: all of them, unless
    consecutive rings cross (a bend tighter than the radius, or ring planes that wobble
    over steps shorter than the radius); then, walking from the start, each next ring is
    the first one that keeps clear of the last kept ring (:func:`bend` below
    :data:`CUT_BEND`). The last ring is always kept."""
    _, c, radius, n = _ring_frames(vertices, n_around)
    last = len(c) - 1
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


def union_tubes(tubes: Sequence[np.ndarray], n_around: int = N_AROUND) -> JoinedMesh:
    """Boolean union of ring-mesh tubes (each (R * n_around, 3) mm, tube_mesh's vertex
    order), each closed first (:func:`closed_tube`). Raises :class:`StitchError` when the
    result is not a valid non-empty manifold."""
    import manifold3d as m3

    solids = []
    for v in tubes:
        pv, pf = closed_tube(v, n_around)
        solids.append(
            m3.Manifold(
                m3.Mesh(
                    vert_properties=np.ascontiguousarray(pv, dtype=np.float32),
                    tri_verts=np.ascontiguousarray(pf, dtype=np.uint32),
                )
            )
        )
    for k, s in enumerate(solids):
        if s.status() != m3.Error.NoError:
            raise StitchError(f"tube {k} is not a closed manifold: {s.status().name}")
    joined = solids[0]
    for s in solids[1:]:
        joined = joined + s
    status = joined.status()
    if status != m3.Error.NoError or joined.is_empty():
        raise StitchError(f"the Boolean union failed: {status.name}, empty={joined.is_empty()}")
    mesh = joined.to_mesh()
    return JoinedMesh(
        vertices=np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3],
        faces=np.asarray(mesh.tri_verts, dtype=np.int64),
        genus=int(joined.genus()),
        volume_mm3=float(joined.volume()),
        status=status.name,
    )
