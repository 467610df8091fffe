"""Torch-free inference: ONNX Runtime sessions and (on NVIDIA machines) TensorRT engines.

    from angio_deploy.backends import get_session
    seg = get_session("segmenter.onnx")            # provider "auto": TensorRT > CUDA > CPU
    logits = seg(crops)                            # (N, 1, 160, 256) float32, validated
    report["models"].append(seg.report())          # provider actually used, sha256, threads

- :mod:`.providers`: provider choice by what the machine has; an explicit request for a
  missing provider raises :class:`~angio_deploy.errors.BackendUnavailableError` (exit 69).
- :mod:`.session`: :class:`SessionConfig`, :class:`ModelSession`, the session cache.
- :mod:`.tensorrt_engine`: build/run serialized TensorRT engines (TensorRT 10 API).
- :mod:`.prepare`: ``angio-deploy build-engines``: verify and run every shipped model
  once at the pipeline's shapes (on NVIDIA machines this builds and caches the TensorRT
  execution provider's engines ahead of the first case).

Nothing here imports torch, and onnxruntime / tensorrt / cuda-python are imported only
when a session or engine is created, so ``import angio_deploy.backends`` stays light.
"""

from __future__ import annotations

from .providers import (
    PREFERENCE,
    available_providers,
    canonical_name,
    default_request,
    resolve_providers,
)
from .session import (
    ModelInputError,
    ModelSession,
    SessionConfig,
    TensorSpec,
    available_cpu_count,
    cached_sessions,
    clear_session_cache,
    get_session,
)

__all__ = [
    "PREFERENCE",
    "ModelInputError",
    "ModelSession",
    "SessionConfig",
    "TensorSpec",
    "available_cpu_count",
    "available_providers",
    "cached_sessions",
    "canonical_name",
    "clear_session_cache",
    "default_request",
    "get_session",
    "resolve_providers",
]
