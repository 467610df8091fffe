"""angio-deploy: two X-ray coronary angiograms in, a 3D lumen surface mesh out.

The runtime package is torch-free. Heavy optional pieces (ONNX Runtime, manifold3d,
TensorRT) are imported where they are used, not here.
"""

from ._version import __version__
from .errors import AngioDeployError, BackendUnavailableError, InputError, InputNotFoundError

__all__ = [
    "AngioDeployError",
    "BackendUnavailableError",
    "InputError",
    "InputNotFoundError",
    "__version__",
]
