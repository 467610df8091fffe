"""Which ONNX Runtime execution provider to use, chosen by what the machine has.

A request is ``"auto"`` (the default), a short name (``"cpu"``, ``"cuda"``,
``"tensorrt"``) or a full ONNX Runtime provider name (``"CUDAExecutionProvider"``).

- ``"auto"`` takes every provider this ONNX Runtime build offers, best first:
  TensorRT > CUDA > CPU. ONNX Runtime gives each node to the first provider that can run
  it, so the list doubles as the fallback chain.
- An explicit request that the machine cannot honour raises
  :class:`~angio_deploy.errors.BackendUnavailableError` (exit code 69) naming the
  provider and what the machine does have; it never silently falls back to the CPU.

The environment variable ``ANGIO_DEPLOY_PROVIDER`` sets the default request (for example
``cpu`` to keep a GPU free). onnxruntime is imported inside the functions, so importing
this module costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from angio_deploy.errors import BackendUnavailableError

ENV_PROVIDER = "ANGIO_DEPLOY_PROVIDER"

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

#: Best first. Providers not listed here are only used when asked for by name.
PREFERENCE: tuple[str, ...] = (TENSORRT, CUDA, CPU)

ALIASES: dict[str, str] = {
    "cpu": CPU,
    "cuda": CUDA,
    "gpu": CUDA,
    "tensorrt": TENSORRT,
    "trt": TENSORRT,
}

#: Short names for reports ("cpu", "cuda", "tensorrt").
SHORT_NAMES: dict[str, str] = {CPU: "cpu", CUDA: "cuda", TENSORRT: "tensorrt"}


def available_providers() -> list[str]:
    """The execution providers of the installed ONNX Runtime (in ORT's order)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailableError(
            f"onnxruntime is not installed ({exc}); install angio-deploy's dependencies"
        ) from exc
    return list(ort.get_available_providers())


def default_request() -> str:
    """The provider request used when none is given: $ANGIO_DEPLOY_PROVIDER or "auto"."""
    return os.environ.get(ENV_PROVIDER, "").strip() or "auto"


def canonical_name(request: str) -> str:
    """Full ONNX Runtime name of a request ("cuda" -> "CUDAExecutionProvider")."""
    key = request.strip()
    if key.lower() in ALIASES:
        return ALIASES[key.lower()]
    if key.endswith("ExecutionProvider"):
        return key
    raise ValueError(
        f"unknown execution provider {request!r}; use 'auto', "
        + ", ".join(repr(a) for a in ("cpu", "cuda", "tensorrt"))
        + " or a full ONNX Runtime provider name"
    )


def resolve_providers(
    request: str | None = None, available: Sequence[str] | None = None
) -> list[str]:
    """The provider list to give ONNX Runtime for ``request``, best first.

    ``available`` defaults to :func:`available_providers`; tests pass their own. An
    explicit provider comes first, followed by the better-to-worse fallbacks below it in
    :data:`PREFERENCE` that are available (TensorRT -> CUDA -> CPU) for the nodes it cannot
    run.
    """
    request = default_request() if request is None else request
    avail = list(available_providers() if available is None else available)
    if request.strip().lower() == "auto":
        chosen = [p for p in PREFERENCE if p in avail]
        if not chosen:
            raise BackendUnavailableError(
                f"no usable ONNX Runtime execution provider; this build offers {avail}"
            )
        return chosen
    name = canonical_name(request)
    if name not in avail:
        hint = ""
        if name in (CUDA, TENSORRT):
            hint = " (install onnxruntime-gpu with CUDA/TensorRT libraries on an NVIDIA machine)"
        raise BackendUnavailableError(
            f"ONNX Runtime execution provider {name} (requested as {request!r}) is not "
            f"available on this machine; available: {', '.join(avail) or 'none'}{hint}"
        )
    below = PREFERENCE[PREFERENCE.index(name) + 1 :] if name in PREFERENCE else (CPU,)
    return [name] + [p for p in below if p in avail and p != name]


def is_explicit(request: str | None) -> bool:
    """Whether ``request`` names a provider (so falling back from it is an error)."""
    request = default_request() if request is None else request
    return request.strip().lower() != "auto"
