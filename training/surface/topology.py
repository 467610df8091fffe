"""The fixed 100 x 60 ring-mesh topology shared by every SR mesh.

Vertex ``ring * n_around + j`` is vertex j of ring ``ring`` (angio_deploy.kernels.tube_mesh
and synth.truth.ring_mesh order). The graph is the quad grid of the paper: edges around
each ring (wrapping) and between neighbouring rings, 100 * 60 + 99 * 60 = 11,940 edges.
The triangles are tube_mesh's (two per quad, 11,880; plus 116 cap triangles when capped,
for silhouettes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from angio_deploy.topology import N_AROUND, N_RINGS, ring_faces


@dataclass(frozen=True)
class RingTopology:
    n_rings: int
    n_around: int
    edges: np.ndarray  # (E, 2) int64, i < j not required; each undirected edge once
    faces: np.ndarray  # (F, 3) int64 open tube
    faces_capped: np.ndarray  # (F + caps, 3) int64 closed tube

    @property
    def n_vertices(self) -> int:
        return self.n_rings * self.n_around

    def neighbour_table(self) -> tuple[np.ndarray, np.ndarray]:
        """GCN propagation D^-1/2 (A + I) D^-1/2 as a gather table.

        Returns ``(index (N, K) int64, weight (N, K) float64)``: row i of the normalised
        adjacency has non-zeros ``weight[i, k]`` at columns ``index[i, k]`` (self first;
        rows with fewer neighbours are padded with index i and weight 0). K = 5 here.
        """
        n = self.n_vertices
        nbrs: list[list[int]] = [[i] for i in range(n)]
        for a, b in self.edges.tolist():
            nbrs[a].append(b)
            nbrs[b].append(a)
        deg = np.array([len(x) for x in nbrs], dtype=np.float64)
        K = int(deg.max())
        index = np.tile(np.arange(n, dtype=np.int64)[:, None], (1, K))
        weight = np.zeros((n, K))
        for i, row in enumerate(nbrs):
            index[i, : len(row)] = row
            weight[i, : len(row)] = 1.0 / np.sqrt(deg[i] * deg[row])
        return index, weight


@lru_cache(maxsize=4)
def ring_topology(n_rings: int = N_RINGS, n_around: int = N_AROUND) -> RingTopology:
    """The topology of an ``n_rings`` x ``n_around`` tube (cached)."""
    idx = np.arange(n_rings * n_around).reshape(n_rings, n_around)
    around = np.stack([idx.ravel(), np.roll(idx, -1, axis=1).ravel()], axis=1)
    along = np.stack([idx[:-1].ravel(), idx[1:].ravel()], axis=1)
    edges = np.concatenate([around, along]).astype(np.int64)
    return RingTopology(
        n_rings,
        n_around,
        edges,
        ring_faces(n_rings, n_around).astype(np.int64),
        ring_faces(n_rings, n_around, caps=True).astype(np.int64),
    )
