"""Tube meshing with rotation-minimising frames (double reflection, Wang et al. 2008;
the frames themselves are :func:`angio_deploy.curves.tube_frames`).

Ring i, vertex j sits on the ray at angle phi_j = 2 pi j / n_around in the frame
(r_i, s_i = t_i x r_i) from the centre c_i, at the distance of the ring's ellipse in that
direction (its polar radius); the ellipse has semi-axes (a, b), its a-axis turned by theta
from r_i. So vertex j of every ring points the same way relative to the frame whatever the
lumen's shape, and vertex-wise comparison of two meshes measures radial differences. The
first normal r_0 is a reference direction (e.g. view A's viewing direction) made
orthogonal to the first tangent, when given; the frames then follow by rotation-minimising
propagation. Vertex index is i * n_around + j. Faces wind so their normals point
outward (right-hand rule). Optional caps close both ends with a fan from vertex j = 0
of the end ring (no extra vertices, so the 100 x 60 vertex order is kept), making the
mesh watertight.
"""

from __future__ import annotations

import math

import numpy as np

from angio_deploy.curves import tube_frames


def tube_faces(n_rings: int, n_around: int, caps: bool) -> np.ndarray:
    """Triangle indices (F, 3) int64 of the ring topology, outward winding."""
    i = np.arange(n_rings - 1)[:, None]
    j = np.arange(n_around)[None, :]
    a = i * n_around + j
    b = i * n_around + (j + 1) % n_around
    c = (i + 1) * n_around + j
    d = (i + 1) * n_around + (j + 1) % n_around
    quads = np.stack([np.stack([a, b, c], -1), np.stack([b, d, c], -1)], axis=2)
    faces = [quads.reshape(-1, 3)]
    if caps:
        jj = np.arange(1, n_around - 1)
        zero = np.zeros_like(jj)
        faces.append(np.stack([zero, jj + 1, jj], axis=1))
        e = (n_rings - 1) * n_around
        faces.append(np.stack([zero + e, e + jj, e + jj + 1], axis=1))
    return np.concatenate(faces).astype(np.int64)


def tube_mesh(
    centres: np.ndarray, axes: np.ndarray, n_around: int, caps: bool, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Centres (N, 3) mm and ring ellipses (N, 3) = (a mm, b mm, theta rad) -> mesh.

    Returns vertices (N * n_around, 3) float64 and faces (F, 3) int64.
    """
    _, R, S = tube_frames(centres, reference)
    N = centres.shape[0]
    V = np.empty((N * n_around, 3))
    cph = [math.cos(2.0 * math.pi * j / n_around) for j in range(n_around)]
    sph = [math.sin(2.0 * math.pi * j / n_around) for j in range(n_around)]
    for i in range(N):
        a, b, th = float(axes[i, 0]), float(axes[i, 1]), float(axes[i, 2])
        ct, st = math.cos(th), math.sin(th)
        cx, cy, cz = (float(v) for v in centres[i])
        r, s = R[i], S[i]
        for j in range(n_around):
            # Vertex j lies on the ray at angle phi_j, at the ellipse's polar radius.
            cd = cph[j] * ct + sph[j] * st
            sd = sph[j] * ct - cph[j] * st
            bc = b * cd
            as_ = a * sd
            rho = a * b / math.sqrt(bc * bc + as_ * as_)
            x = rho * cph[j]
            y = rho * sph[j]
            V[i * n_around + j] = (
                cx + x * r[0] + y * s[0],
                cy + x * r[1] + y * s[1],
                cz + x * r[2] + y * s[2],
            )
    return V, tube_faces(N, n_around, caps)
