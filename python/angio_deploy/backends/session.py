"""ONNX Runtime sessions: configured, validated, loaded once and shared.

:func:`get_session` returns a :class:`ModelSession` for a model file and a
:class:`SessionConfig`; the same (file, provider request, threads, optimisation level)
always gives the same object, created once even when many threads ask at the same time
(a lock per key around creation). ``ModelSession.run`` may be called from many threads
at once: ONNX Runtime's ``InferenceSession.run`` is thread-safe.

Every run validates its inputs against the model's declared inputs (name, float32 dtype,
rank and every fixed dimension, such as the 160 x 256 crop the segmenter needs) and
raises :class:`ModelInputError` naming the model and the expected shape. ``report()``
gives what the run report records: the provider actually used
(``session.get_providers()[0]``), the model's sha256, threads and versions.

No torch anywhere; onnxruntime is imported when the first session is created.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from angio_deploy.errors import BackendUnavailableError, InputError, InputNotFoundError
from angio_deploy.hashing import file_key, sha256_file

from . import providers as _prov

log = logging.getLogger(__name__)

GRAPH_OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")

_ORT_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


class ModelInputError(InputError):
    """An array given to a model does not fit the model's declared input."""


def available_cpu_count() -> int:
    """CPU cores this process may use: affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


@dataclass(frozen=True)
class SessionConfig:
    """How to run a model. ``None`` threads mean "every core this process may use".

    ``provider``: "auto" (TensorRT > CUDA > CPU, what the machine has), "cpu", "cuda",
    "tensorrt" or a full ORT provider name; ``None`` reads $ANGIO_DEPLOY_PROVIDER.
    ``graph_optimization``: one of "disabled", "basic", "extended", "all".
    ``trt_fp16``/``trt_cache_dir``: TensorRT execution provider options (fp16 kernels;
    where built engines are cached, default ~/.cache/angio-deploy/tensorrt).
    """

    provider: str | None = None
    intra_op_threads: int | None = None
    inter_op_threads: int = 1
    graph_optimization: str = "all"
    allow_spinning: bool = True
    device_id: int = 0
    trt_fp16: bool = True
    trt_cache_dir: str | None = None
    log_severity: int = 3  # ORT: 0 verbose .. 3 error, 4 fatal

    def resolved(self) -> SessionConfig:
        """Copy with the defaults filled in (provider request, thread count)."""
        if self.graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            raise ValueError(
                f"graph_optimization must be one of {GRAPH_OPTIMIZATION_LEVELS}, "
                f"got {self.graph_optimization!r}"
            )
        intra = self.intra_op_threads
        if intra is None or intra <= 0:
            intra = available_cpu_count()
        if self.inter_op_threads < 1:
            raise ValueError("inter_op_threads must be at least 1")
        provider = _prov.default_request() if self.provider is None else self.provider
        return replace(self, provider=provider, intra_op_threads=intra)


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, numpy dtype name and shape (str/None = free dim)."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]

    def describe(self) -> str:
        dims = ", ".join(
            str(d) if isinstance(d, int) and d >= 0 else ("N" if i == 0 else "?")
            for i, d in enumerate(self.shape)
        )
        return f"{self.dtype} ({dims})"


def _spec(arg: Any) -> TensorSpec:
    dtype = _ORT_DTYPES.get(arg.type)
    shape = tuple(d if isinstance(d, int) else (d or None) for d in (arg.shape or ()))
    return TensorSpec(arg.name, np.dtype(dtype).name if dtype else arg.type, shape)


def _provider_options(names: Sequence[str], cfg: SessionConfig) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for name in names:
        if name == _prov.TENSORRT:
            cache = cfg.trt_cache_dir or str(
                Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                / "angio-deploy"
                / "tensorrt"
            )
            opts = {
                "device_id": str(cfg.device_id),
                "trt_fp16_enable": "True" if cfg.trt_fp16 else "False",
                "trt_engine_cache_enable": "True",
                "trt_engine_cache_path": cache,
            }
        elif name == _prov.CUDA:
            opts = {"device_id": str(cfg.device_id)}
        else:
            opts = {}
        out.append((name, opts))
    return out


class ModelSession:
    """One ONNX model loaded in ONNX Runtime: validated, thread-safe runs and a report.

    Create through :func:`get_session` (cached); the constructor always loads.
    """

    def __init__(self, path: str | Path, config: SessionConfig | None = None):
        t0 = time.perf_counter()
        path = Path(path)
        if not path.is_file():
            raise InputNotFoundError("model file not found", source=str(path))
        cfg = (config or SessionConfig()).resolved()
        assert cfg.provider is not None
        chosen = _prov.resolve_providers(cfg.provider)
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - resolve_providers raised already
            raise BackendUnavailableError(f"onnxruntime is not installed ({exc})") from exc

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(cfg.intra_op_threads or 1)
        so.inter_op_num_threads = int(cfg.inter_op_threads)
        so.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL
            if cfg.inter_op_threads > 1
            else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        so.graph_optimization_level = {
            "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[cfg.graph_optimization]
        so.log_severity_level = int(cfg.log_severity)
        if not cfg.allow_spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        with warnings.catch_warnings(record=True) as caught:
            # ORT warns (Python warning) when a provider cannot start and falls back;
            # the check below turns that into an error for explicit requests.
            warnings.simplefilter("always")
            sess = ort.InferenceSession(
                str(path), sess_options=so, providers=_provider_options(chosen, cfg)
            )
        for w in caught:
            log.warning("onnxruntime: %s", w.message)
        used = list(sess.get_providers())
        if _prov.is_explicit(cfg.provider) and (not used or used[0] != chosen[0]):
            raise BackendUnavailableError(
                f"{path.name}: ONNX Runtime could not start {chosen[0]} (requested as "
                f"{cfg.provider!r}) and fell back to {used[0] if used else 'nothing'}; "
                "check the CUDA/TensorRT libraries"
            )
        meta = sess.get_modelmeta()
        self._session = sess
        self.path = path
        self.config = cfg
        self.providers: tuple[str, ...] = tuple(used)
        self.provider: str = used[0]
        self.metadata: dict[str, str] = dict(meta.custom_metadata_map or {})
        self.name: str = self.metadata.get("name") or path.stem
        self.inputs: tuple[TensorSpec, ...] = tuple(_spec(a) for a in sess.get_inputs())
        self.outputs: tuple[TensorSpec, ...] = tuple(_spec(a) for a in sess.get_outputs())
        self.sha256: str = sha256_file(path)
        self.size_bytes: int = path.stat().st_size
        self.ort_version: str = ort.__version__
        self.load_seconds: float = time.perf_counter() - t0
        log.info(
            "loaded %s on %s (%d intra-op threads) in %.3f s",
            path.name,
            self.provider,
            so.intra_op_num_threads,
            self.load_seconds,
        )

    # -- validation ------------------------------------------------------------------------
    def _fail(self, spec: TensorSpec, what: str) -> ModelInputError:
        return ModelInputError(
            f"input {spec.name!r} must be {spec.describe()}; {what}",
            source=f"model {self.name!r} ({self.path.name})",
        )

    def validate(self, inputs: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The feed dictionary for ``inputs``, or :class:`ModelInputError` saying what is wrong.

        A bare array is accepted for single-input models. Arrays must already have the
        model's dtype (no silent conversion); they are made contiguous if needed.
        """
        if not isinstance(inputs, Mapping):
            if len(self.inputs) != 1:
                names = ", ".join(repr(s.name) for s in self.inputs)
                raise ModelInputError(
                    f"has {len(self.inputs)} inputs ({names}); pass a dict of arrays",
                    source=f"model {self.name!r} ({self.path.name})",
                )
            inputs = {self.inputs[0].name: inputs}
        expected = {s.name for s in self.inputs}
        unknown = sorted(set(inputs) - expected)
        if unknown:
            raise ModelInputError(
                f"unknown input(s) {unknown}; the model takes "
                + ", ".join(f"{s.name!r}: {s.describe()}" for s in self.inputs),
                source=f"model {self.name!r} ({self.path.name})",
            )
        feeds: dict[str, np.ndarray] = {}
        for spec in self.inputs:
            if spec.name not in inputs:
                raise self._fail(spec, "it is missing")
            arr = inputs[spec.name]
            if not isinstance(arr, np.ndarray):
                raise self._fail(spec, f"got {type(arr).__name__}, not a numpy array")
            if arr.dtype.name != spec.dtype:
                raise self._fail(spec, f"got dtype {arr.dtype.name} (convert with .astype)")
            if arr.ndim != len(spec.shape):
                raise self._fail(spec, f"got shape {arr.shape} ({arr.ndim} dimensions)")
            for axis, (got, want) in enumerate(zip(arr.shape, spec.shape, strict=True)):
                if isinstance(want, int) and want >= 0 and got != want:
                    raise self._fail(spec, f"got shape {arr.shape} (axis {axis} is {got})")
            if arr.size == 0:
                raise self._fail(spec, f"got an empty array of shape {arr.shape}")
            feeds[spec.name] = np.ascontiguousarray(arr)
        return feeds

    # -- running ---------------------------------------------------------------------------
    def run(
        self,
        inputs: np.ndarray | Mapping[str, np.ndarray],
        output_names: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the model; returns ``{output name: array}``. Thread-safe."""
        feeds = self.validate(inputs)
        names = list(output_names) if output_names else [s.name for s in self.outputs]
        values = self._session.run(names, feeds)
        return dict(zip(names, values, strict=True))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Single-input models: the first output for array ``x``."""
        first = self.outputs[0].name
        return self.run(x, [first])[first]

    def report(self) -> dict[str, Any]:
        """What the run report records about this model and how it ran."""
        return {
            "model": self.name,
            "version": self.metadata.get("version"),
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "backend": "onnxruntime",
            "onnxruntime": self.ort_version,
            "provider": self.provider,
            "provider_short": _prov.SHORT_NAMES.get(self.provider, self.provider),
            "providers": list(self.providers),
            "requested_provider": self.config.provider,
            "intra_op_threads": self.config.intra_op_threads,
            "inter_op_threads": self.config.inter_op_threads,
            "graph_optimization": self.config.graph_optimization,
            "load_seconds": round(self.load_seconds, 4),
        }

    def __repr__(self) -> str:
        return f"ModelSession({self.name!r}, provider={self.provider!r}, path={str(self.path)!r})"


@dataclass
class _Cache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: dict[tuple, ModelSession] = field(default_factory=dict)
    key_locks: dict[tuple, threading.Lock] = field(default_factory=dict)


_CACHE = _Cache()


def _key(path: str | Path, cfg: SessionConfig) -> tuple:
    return (file_key(path), tuple(sorted(asdict(cfg).items())))


def get_session(path: str | Path, config: SessionConfig | None = None, **overrides) -> ModelSession:
    """The shared :class:`ModelSession` of ``path`` under ``config`` (+ keyword overrides).

    Loaded on first use and cached per (file, resolved config); concurrent first calls
    for the same key create one session. A replaced or edited file (new size or mtime)
    gets a new session.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError("model file not found", source=str(path))
    cfg = replace(config or SessionConfig(), **overrides).resolved()
    key = _key(path, cfg)
    with _CACHE.lock:
        hit = _CACHE.sessions.get(key)
        if hit is not None:
            return hit
        key_lock = _CACHE.key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _CACHE.lock:
            hit = _CACHE.sessions.get(key)
        if hit is not None:
            return hit
        sess = ModelSession(path, cfg)
        with _CACHE.lock:
            _CACHE.sessions[key] = sess
            _CACHE.key_locks.pop(key, None)
        return sess


def cached_sessions() -> list[ModelSession]:
    """The sessions loaded so far (for reports and tests)."""
    with _CACHE.lock:
        return list(_CACHE.sessions.values())


def clear_session_cache() -> None:
    """Forget every cached session (they are freed once no caller holds them)."""
    with _CACHE.lock:
        _CACHE.sessions.clear()
        _CACHE.key_locks.clear()
