"""Plain-numpy reference implementations of the native core (the "numpy twins").

Each function here has the same signature, arguments already validated and converted
by :mod:`angio_deploy.kernels`, and the same arithmetic, operation for operation, as
its C++ counterpart in ``csrc/``: tests require the two to agree to 1e-9 relative in
float64. Keep the order of floating-point operations identical when changing either.
"""

from .correspondence import correspond_centrelines
from .pathlength import tube_path_lengths
from .projection import backproject, project
from .raster import rasterise_silhouette
from .sampling import sample_bilinear
from .triangulation import triangulate
from .tube import tube_mesh

__all__ = [
    "backproject",
    "correspond_centrelines",
    "project",
    "rasterise_silhouette",
    "sample_bilinear",
    "triangulate",
    "tube_mesh",
    "tube_path_lengths",
]
