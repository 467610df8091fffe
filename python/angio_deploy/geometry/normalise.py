"""The paper's normalised frame for a ring mesh: translate, rotate the start-to-end axis
onto z, scale into [0, 1]^3 (3DAngioNet section 3.1, "Pre-Processing").

One definition serves the F-paper metric (roll from the mesh's own shape) and surface
refinement (roll from view A, so that the frame is tied to the images the network sees
rather than to a principal direction that flips on nearly straight segments).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NormalisedFrame:
    """x_normalised = scale * (R @ x_world + b); x_world in mm (LPS).

    ``R`` (3, 3) has rows x', y', z' (right-handed); ``b`` (3,) mm; ``scale`` 1/mm.
    """

    R: np.ndarray
    b: np.ndarray
    scale: float

    @classmethod
    def from_ring_mesh(
        cls, vertices: np.ndarray, n_around: int = 60, roll_reference: np.ndarray | None = None
    ) -> NormalisedFrame:
        """The frame of a ring mesh (rings of ``n_around`` vertices, start to end), mm.

        - origin: the centre (vertex mean) of ring 0; z': unit vector from there to the
          centre of the last ring.
        - x': ``roll_reference`` (a world direction, e.g. view A's source-to-detector
          direction) made orthogonal to z'; without it, the first principal direction of
          the vertices projected on the plane normal to z' (sign: largest |component|
          positive). y' = z' x x'.
        - corner: the minimum of the rotated vertices, so they start at 0; scale = 1 / the
          largest extent, so they fit in [0, 1]^3 and span exactly 1 along the longest side.
        """
        v = np.asarray(vertices, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 3 or len(v) % n_around or len(v) < 2 * n_around:
            raise ValueError(f"expected a ring mesh with rings of {n_around} vertices")
        rings = v.reshape(-1, n_around, 3)
        origin = rings[0].mean(axis=0)
        axis = rings[-1].mean(axis=0) - origin
        length = np.linalg.norm(axis)
        if not length > 0:
            raise ValueError("the first and last ring centres coincide")
        z = axis / length
        x = None
        if roll_reference is not None:
            r = np.asarray(roll_reference, dtype=np.float64)
            x = r - (r @ z) * z
            if np.linalg.norm(x) < 1e-6 * max(np.linalg.norm(r), 1e-300):
                x = None  # reference along the axis: fall back to the shape's direction
        if x is None:
            flat = (v - origin) - np.outer((v - origin) @ z, z)
            w, vec = np.linalg.eigh(np.cov(flat.T))
            x = vec[:, np.argmax(w)]
            x = x - (x @ z) * z
            x *= np.sign(x[np.argmax(np.abs(x))])
        x = x / np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        rotated = (v - origin) @ R.T
        corner = rotated.min(axis=0)
        extent = float((rotated.max(axis=0) - corner).max())
        return cls(R=R, b=-R @ origin - corner, scale=1.0 / extent)

    def to_frame(self, x_world: np.ndarray) -> np.ndarray:
        """World points (N, 3) mm -> normalised coordinates (N, 3)."""
        return self.scale * (np.asarray(x_world, dtype=np.float64) @ self.R.T + self.b)

    def to_world(self, x_norm: np.ndarray) -> np.ndarray:
        """Normalised coordinates (N, 3) -> world points (N, 3) mm."""
        return (np.asarray(x_norm, dtype=np.float64) / self.scale - self.b) @ self.R

    def vectors_to_world(self, d_norm: np.ndarray) -> np.ndarray:
        """Normalised displacements (N, 3) -> world displacements (N, 3) mm."""
        return (np.asarray(d_norm, dtype=np.float64) / self.scale) @ self.R
