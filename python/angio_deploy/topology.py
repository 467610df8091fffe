"""The ring-mesh topology every tube of the product shares (CASE_FORMAT.md "Output").

A segment's mesh is ``N_RINGS`` rings of ``N_AROUND`` vertices, ring 0 at the start;
vertex ``ring * N_AROUND + j`` is vertex j of ring ``ring`` (the native core's
``tube_mesh`` order). The reconstruction, the synthetic truth, surface refinement and its
training all use these numbers and these triangles; this is their one home.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from angio_deploy import kernels

N_RINGS = 100
N_AROUND = 60


@lru_cache(maxsize=8)
def ring_faces(n_rings: int = N_RINGS, n_around: int = N_AROUND, caps: bool = False) -> np.ndarray:
    """Triangles (F, 3) of an ``n_rings`` x ``n_around`` ring mesh in tube_mesh's vertex
    order; ``caps`` adds the flat end caps (no extra vertices). They depend on the counts
    only, so every mesh of the product shares them (read-only)."""
    c = np.zeros((n_rings, 3))
    c[:, 2] = np.arange(n_rings, dtype=np.float64)
    _, faces = kernels.tube_mesh(c, np.ones(n_rings), n_around=n_around, caps=caps)
    faces.setflags(write=False)
    return faces
