"""Typed stub of the private native core (csrc/, pybind11).

Call it through :mod:`angio_deploy.kernels`, which validates and converts arguments:
every array here is C-contiguous, float64 unless stated. World frame: LPS mm;
pixels: u = column, v = row, centres at integers (GEOMETRY.md).
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__version__: str

F64 = npt.NDArray[np.float64]

def project(P: F64, X: F64) -> F64:
    """Points X (N, 3) mm, matrices P (V, 3, 4) -> pixels (V, N, 2); NaN where w <= 0."""

def backproject(P: F64, uv: F64) -> tuple[F64, F64]:
    """Pixels uv (N, 2) -> ray origins (N, 3) mm at the source, unit directions (N, 3)."""

def triangulate(P1: F64, P2: F64, uv1: F64, uv2: F64, iterations: int) -> tuple[F64, F64]:
    """Corresponding pixels (N, 2) -> points (N, 3) mm, RMS reprojection error (N,) px."""

def correspond_centrelines(
    P1: F64, P2: F64, line1: F64, line2: F64, n_out: int, iterations: int
) -> tuple[F64, F64]:
    """2D centrelines (M1, 2), (M2, 2) px -> 3D centreline (n_out, 3) mm, partners (M1, 2)."""

def tube_mesh(
    centres: F64, axes: F64, n_around: int, caps: bool, reference: F64
) -> tuple[F64, npt.NDArray[np.int64]]:
    """Centres (N, 3) mm, ellipses (N, 3) (a mm, b mm, theta rad), reference (3,)
    (zeros: least-aligned world axis) -> vertices, faces int64."""

def sample_bilinear(
    maps: Sequence[npt.NDArray[np.float32]] | Sequence[F64],
    uv: F64,
    width: int,
    height: int,
    threads: int = 0,
) -> npt.NDArray[np.float32] | F64:
    """Maps [(Hk, Wk, Ck)] sampled at image pixels uv (N, 2) -> (N, sum Ck), maps' dtype.

    At most ``threads`` worker threads (<= 0: the process's CPU affinity count; never more
    than 8); the values do not depend on it."""

def rasterise_silhouette(
    P: F64, vertices: F64, faces: npt.NDArray[np.int64], width: int, height: int
) -> npt.NDArray[np.uint8]:
    """Silhouette (height, width) uint8 of triangles faces (F, 3) over vertices (N, 3) mm."""

def tube_path_lengths(
    P: F64,
    centres: F64,
    semi_axes: F64,
    major_dir: F64,
    width: int,
    height: int,
    supersample: int,
    threads: int = 0,
) -> F64:
    """Path length (mm) of each pixel's ray inside a tube -> (height, width); unit major_dir.

    ``threads`` as for :func:`sample_bilinear`."""
