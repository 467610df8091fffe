"""angio-deploy: two X-ray coronary angiograms in, a 3D lumen surface mesh out.

The runtime package is torch-free. Heavy optional pieces (ONNX Runtime, manifold3d,
TensorRT) are imported where they are used, not here.

The vendor API is importable from the package root -- ``from angio_deploy import
Reconstructor`` -- but loaded on first use (PEP 562 ``__getattr__``), so ``import
angio_deploy`` stays light (no numpy-heavy pipeline, no pydicom, no ONNX Runtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    AngioDeployError,
    BackendUnavailableError,
    Cancelled,
    InputError,
    InputNotFoundError,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .api import CancelToken, Reconstruction, Reconstructor
    from .io.case import Case, MemoryView, case_from_memory, load_case
    from .result_types import ReconstructionResult

#: Public name -> module that defines it (imported on first access).
_LAZY = {
    "Reconstructor": "angio_deploy.api",
    "Reconstruction": "angio_deploy.api",
    "CancelToken": "angio_deploy.api",
    "Case": "angio_deploy.io.case",
    "MemoryView": "angio_deploy.io.case",
    "case_from_memory": "angio_deploy.io.case",
    "load_case": "angio_deploy.io.case",
    "ReconstructionResult": "angio_deploy.result_types",
}

__all__ = [
    "AngioDeployError",
    "BackendUnavailableError",
    "CancelToken",
    "Cancelled",
    "Case",
    "InputError",
    "InputNotFoundError",
    "MemoryView",
    "Reconstruction",
    "ReconstructionResult",
    "Reconstructor",
    "__version__",
    "case_from_memory",
    "load_case",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'angio_deploy' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
