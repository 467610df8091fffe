"""Torch-free inference: ONNX Runtime sessions, on NVIDIA machines through TensorRT.

    from angio_deploy.backends import get_session
    seg = get_session("segmenter.onnx")            # provider "auto": TensorRT > CUDA > CPU
    logits = seg(crops)                            # (N, 1, 160, 256) float32, validated
    report["models"].append(seg.report())          # provider actually used, sha256, threads

- :mod:`.providers`: provider choice by what the machine has; an explicit request for a
  missing provider raises :class:`~angio_deploy.errors.BackendUnavailableError` (exit 69).
- :mod:`.session`: :class:`SessionConfig`, :class:`ModelSession`, the session cache.

TensorRT has one path: ONNX Runtime's TensorRT execution provider, behind the same
:class:`ModelSession` as the CPU and CUDA providers. It builds an engine per input shape
on first use and caches it (``SessionConfig.trt_cache_dir``);
:func:`angio_deploy.models.prepare.prepare_models` (``angio-deploy build-engines``) runs
every shipped model once at the pipeline's shapes with the same settings, so the engines
the pipeline needs are built and cached before the first case. **Not yet run on a GPU**
(the development machines have none; tests fake the provider).

Nothing here imports torch, and onnxruntime is imported only when a session is created,
so ``import angio_deploy.backends`` stays light.
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
