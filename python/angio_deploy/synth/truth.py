"""Ground truth of a synthetic case: ring meshes, centrelines, masks (CASE_FORMAT.md).

The truth mesh of a segment has the 100 x 60 ring topology of the product's output: ring 0
at the true 3D start point, rings evenly spaced in arc length along the vessel centreline,
each ring the true elliptical lumen cross-section (centred on the lumen centre, which an
eccentric lesion moves off the centreline). Masks are the exact silhouettes of the lumen
of the segment(s) of interest: a pixel is in the mask when the ray through its centre
passes through the lumen (path length > 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from angio_deploy import kernels
from angio_deploy.curves import tube_frames
from angio_deploy.geometry import ViewGeometry
from angio_deploy.topology import N_AROUND, N_RINGS

from .model import SegmentOfInterest, Vessel


@dataclass(frozen=True, eq=False)
class Rings:
    """Cross-sections of a segment: centres (N, 3) mm, semi-axes (N, 2) mm, major axis
    directions (N, 3), arc length of each ring from the vessel's start (N,) mm, and the
    lesion-free reference radius (N,) mm."""

    centres: np.ndarray
    semi_axes: np.ndarray
    major_dir: np.ndarray
    s_mm: np.ndarray
    reference_radius: np.ndarray

    @property
    def radius(self) -> np.ndarray:
        """Equivalent radius sqrt(a b) (N,) mm."""
        return np.sqrt(self.semi_axes[:, 0] * self.semi_axes[:, 1])

    def ellipses(self, reference: np.ndarray | None = None) -> np.ndarray:
        """(N, 3) = (a, b, angle of a from the tube mesher's frame normal, radians), for
        frames started from ``reference`` (see :func:`ring_mesh`)."""
        ref = np.zeros(3) if reference is None else np.asarray(reference, dtype=np.float64)
        _, R, S = tube_frames(self.centres, ref)
        R = np.asarray(R)
        S = np.asarray(S)
        theta = np.arctan2(
            np.einsum("ij,ij->i", self.major_dir, S), np.einsum("ij,ij->i", self.major_dir, R)
        )
        return np.column_stack([self.semi_axes, theta])


def _interp_rows(s_new: np.ndarray, s: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(s_new, s, values[:, k]) for k in range(values.shape[1])], axis=1)


def segment_slice(vessel: Vessel, s0: float, s1: float) -> dict[str, np.ndarray]:
    """Dense lumen description between arc lengths s0 and s1 (mm): centres (lumen),
    semi_axes, major_dir; the end points are interpolated exactly at s0 and s1."""
    s = vessel.arc_lengths
    inner = (s > s0) & (s < s1)
    s_new = np.concatenate([[s0], s[inner], [s1]])
    centres = _interp_rows(s_new, s, vessel.lumen_centres)
    axes = _interp_rows(s_new, s, vessel.semi_axes)
    major = _interp_rows(s_new, s, vessel.major_dir)
    major /= np.linalg.norm(major, axis=1, keepdims=True)
    return {"s": s_new, "centres": centres, "semi_axes": axes, "major_dir": major}


def segment_rings(vessel: Vessel, soi: SegmentOfInterest, n_rings: int = N_RINGS) -> Rings:
    """Rings evenly spaced in arc length from soi.s_start_mm to soi.s_end_mm."""
    s = vessel.arc_lengths
    s_new = np.linspace(soi.s_start_mm, soi.s_end_mm, n_rings)
    centres = _interp_rows(s_new, s, vessel.lumen_centres)
    axes = _interp_rows(s_new, s, vessel.semi_axes)
    major = _interp_rows(s_new, s, vessel.major_dir)
    ref = np.interp(s_new, s, vessel.reference_radius)
    # The major axis must be perpendicular to the local tangent of the ring centres.
    t = np.gradient(centres, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    major = major - np.einsum("ij,ij->i", major, t)[:, None] * t
    major /= np.linalg.norm(major, axis=1, keepdims=True)
    return Rings(centres, axes, major, s_new, ref)


def ring_mesh(
    rings: Rings, *, caps: bool = False, reference: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The 100 x 60 tube mesh of the rings: vertices (6000, 3) mm, faces int64.

    ``reference`` fixes where vertex 0 of ring 0 points (the direction made orthogonal to
    the first tangent); the pipeline and the engine both use view A's viewing direction,
    so predicted and true vertex j sit at the same angle and vertex-wise errors are radial.
    """
    return kernels.tube_mesh(
        rings.centres,
        ellipses=rings.ellipses(reference),
        n_around=N_AROUND,
        caps=caps,
        reference=reference,
    )


def lumen_mask(geometry: ViewGeometry, pieces: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Binary mask (H, W) uint8: pixels whose central ray passes through any lumen piece."""
    total = np.zeros((geometry.height, geometry.width))
    for piece in pieces:
        total += kernels.tube_path_lengths(
            geometry.P,
            piece["centres"],
            piece["semi_axes"],
            piece["major_dir"],
            geometry.width,
            geometry.height,
        )
    return (total > 0).astype(np.uint8)


def mesh_percent_ds(vertices: np.ndarray, reference_radius: np.ndarray, n_around: int = N_AROUND):
    """Percent diameter stenosis per ring (N,) measured on a ring mesh: equivalent diameter
    from the ring polygon's area, against the reference radius (mm)."""
    rings = vertices.reshape(-1, n_around, 3)
    c = rings.mean(axis=1, keepdims=True)
    a = rings - c
    b = np.roll(a, -1, axis=1)
    area = 0.5 * np.linalg.norm(np.cross(a, b).sum(axis=1), axis=1)
    # A regular 60-gon inscribed in a circle of radius r has area (n/2) r^2 sin(2 pi / n).
    r_eq = np.sqrt(area / (0.5 * n_around * np.sin(2 * np.pi / n_around)))
    return 100.0 * (1.0 - r_eq / reference_radius)
