"""TensorRT engines: build from ONNX (optionally fp16), serialize, run with execute_async_v3.

**Status: written against the documented TensorRT 10 Python API and cuda-python's
``cuda.bindings.runtime``; it has NOT run on a GPU here** (the development machine has no
GPU and ``tensorrt`` cannot be installed on it). Its tests skip when ``tensorrt`` is
absent; only the "unavailable" paths are exercised on CPU machines. Treat the first run
on an NVIDIA machine as its real test: ``pytest tests/backends`` there runs them.

API used (TensorRT 10): ``Builder.create_network(0)`` (explicit batch is the only mode
in 10.x, so no ``EXPLICIT_BATCH`` flag), ``OnnxParser.parse_from_file``/``num_errors``/
``get_error``, ``IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, ..)``,
``BuilderFlag.FP16`` (weakly typed fp16; deprecated in late 10.x releases in favour of
strongly typed networks and gone in TensorRT 11, hence the ``hasattr`` guard),
``create_optimization_profile``/``set_shape`` for the dynamic batch axis,
``build_serialized_network``; at run time ``Runtime.deserialize_cuda_engine``,
``num_io_tensors``/``get_tensor_name``/``get_tensor_mode``/``get_tensor_dtype``/
``get_tensor_shape``/``get_tensor_profile_shape``, ``IExecutionContext.set_input_shape``,
``set_tensor_address`` and ``execute_async_v3(stream)``. Device memory, copies and the
stream come from cuda-python (``cuda.bindings.runtime``, or the older ``cuda.cudart``).

An engine is specific to the GPU model and TensorRT version that built it: build on the
deployment machine, never ship engines in the package. (``angio-deploy build-engines``
prepares the engines the pipeline itself uses, through ONNX Runtime's TensorRT execution
provider and its engine cache, :mod:`.prepare`; this module is the standalone path for
vendors who run the exported models under TensorRT without ONNX Runtime.)
A JSON sidecar (``<engine>.json``) records the source ONNX sha256, TensorRT version,
precision and batch profile so a stale engine can be detected.

tensorrt and cuda-python are imported inside the functions; importing this module is
free. A missing package or GPU raises :class:`~angio_deploy.errors.BackendUnavailableError`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from angio_deploy.errors import BackendUnavailableError
from angio_deploy.hashing import sha256_file
from angio_deploy.io.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE_BYTES = 1 << 30
DEFAULT_BATCH_PROFILE = (1, 2, 8)  # min, opt, max


def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailableError(
            f"TensorRT is not installed ({exc}); install the 'tensorrt' package (TensorRT 10) "
            "on an NVIDIA machine, or use the ONNX Runtime backend"
        ) from exc
    return trt


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ImportError as exc:
            raise BackendUnavailableError(
                f"cuda-python is not installed ({exc}); the TensorRT backend needs it "
                "for device memory (pip install cuda-python)"
            ) from exc
    return cudart


def _cuda_check(cudart, result: Any) -> Any:
    """Unpack a cuda-python ``(err, *values)`` tuple, raising on error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        _, msg = cudart.cudaGetErrorString(err)
        raise RuntimeError(f"CUDA error {err}: {msg.decode() if isinstance(msg, bytes) else msg}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def tensorrt_available() -> bool:
    """True when tensorrt and cuda-python import and a CUDA device is visible."""
    try:
        _import_tensorrt()
        cudart = _import_cudart()
        return (_cuda_check(cudart, cudart.cudaGetDeviceCount()) or 0) > 0
    except (BackendUnavailableError, RuntimeError):
        return False


def _trt_logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    *,
    fp16: bool = True,
    batch_profile: tuple[int, int, int] = DEFAULT_BATCH_PROFILE,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> Path:
    """Build a serialized engine (plan) from an ONNX model; writes it and a JSON sidecar.

    Dynamic axes (-1) of the inputs are taken as the batch axis and get the optimisation
    profile ``batch_profile`` = (min, opt, max); every other dimension must be fixed in
    the ONNX model (the exported segmenter's are). Written atomically.
    """
    trt = _import_tensorrt()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    logger = _trt_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT could not parse the model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if fp16:
        if not builder.platform_has_fast_fp16:
            log.warning("this GPU has no fast fp16; building with fp16 anyway")
        if hasattr(trt.BuilderFlag, "FP16"):
            config.set_flag(trt.BuilderFlag.FP16)
        else:  # pragma: no cover - TensorRT 11: strongly typed, precision from the ONNX
            log.warning(
                "TensorRT %s has no BuilderFlag.FP16; precision follows the ONNX types",
                trt.__version__,
            )
    lo, opt, hi = (int(b) for b in batch_profile)
    if not 1 <= lo <= opt <= hi:
        raise ValueError(f"batch_profile must be 1 <= min <= opt <= max, got {batch_profile}")
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        if any(d < 0 for d in shape[1:]):
            raise ValueError(
                f"{onnx_path}: input {tensor.name} {shape}: only the batch axis may be dynamic"
            )
        rest = shape[1:]
        profile.set_shape(tensor.name, (lo, *rest), (opt, *rest), (hi, *rest))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{onnx_path}: TensorRT engine build failed (see the log above)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(engine_path, bytes(memoryview(serialized)))
    sidecar = {
        "onnx": str(onnx_path),
        "onnx_sha256": sha256_file(onnx_path),
        "tensorrt": trt.__version__,
        "fp16": bool(fp16),
        "batch_profile": [lo, opt, hi],
        "engine_sha256": sha256_file(engine_path),
    }
    _sidecar(engine_path).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return engine_path


def _sidecar(engine_path: Path) -> Path:
    return engine_path.with_name(engine_path.name + ".json")


class TensorRTEngine:
    """A deserialized engine with one execution context and one CUDA stream.

    ``run`` is serialised by a lock (one context cannot run two batches at once); create
    one engine object per worker thread for concurrency. Call :meth:`close` (or use as a
    context manager) to free the device memory.
    """

    def __init__(self, engine_path: str | Path):
        self._trt = trt = _import_tensorrt()
        self._cudart = cudart = _import_cudart()
        self.path = Path(engine_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: TensorRT engine not found")
        if (_cuda_check(cudart, cudart.cudaGetDeviceCount()) or 0) < 1:
            raise BackendUnavailableError("TensorRT: no CUDA device visible")
        self._runtime = trt.Runtime(_trt_logger(trt))
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise BackendUnavailableError(
                f"{self.path}: TensorRT {trt.__version__} cannot load this engine (built by "
                "another TensorRT version or for another GPU?); rebuild it"
            )
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_in = {n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_in[n]]
        self.output_names = [n for n in names if not is_in[n]]
        self.dtypes = {n: np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in names}
        self.shapes = {n: tuple(self._engine.get_tensor_shape(n)) for n in names}
        self.profiles = {
            n: [tuple(s) for s in self._engine.get_tensor_profile_shape(n, 0)]
            for n in self.input_names
        }
        self._stream = _cuda_check(cudart, cudart.cudaStreamCreate())
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        self._lock = threading.Lock()
        self.sha256 = sha256_file(self.path)
        side = _sidecar(self.path)
        self.build_info = json.loads(side.read_text()) if side.is_file() else {}

    def _device_buffer(self, name: str, nbytes: int) -> int:
        cudart = self._cudart
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _cuda_check(cudart, cudart.cudaFree(ptr))
            ptr = int(_cuda_check(cudart, cudart.cudaMalloc(nbytes)))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def _validate(self, name: str, arr: np.ndarray) -> np.ndarray:
        want = self.shapes[name]
        lo, _, hi = self.profiles[name]
        if arr.dtype != self.dtypes[name] or arr.ndim != len(want):
            raise ValueError(
                f"{self.path.name}: input {name!r} must be {self.dtypes[name].name} of rank "
                f"{len(want)} {want}; got {arr.dtype.name} {arr.shape}"
            )
        for axis, (g, w, a, b) in enumerate(zip(arr.shape, want, lo, hi, strict=True)):
            if (w >= 0 and g != w) or not a <= g <= b:
                raise ValueError(
                    f"{self.path.name}: input {name!r} axis {axis} is {g}; the engine takes "
                    f"{want} with dynamic axes in [{a}, {b}] (profile {lo} .. {hi})"
                )
        return np.ascontiguousarray(arr)

    def run(self, inputs: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; returns ``{output name: array}``."""
        cudart = self._cudart
        if not isinstance(inputs, Mapping):
            if len(self.input_names) != 1:
                raise ValueError(f"{self.path.name}: several inputs; pass a dict")
            inputs = {self.input_names[0]: inputs}
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ValueError(f"{self.path.name}: missing input(s) {missing}")
        host = {n: self._validate(n, np.asarray(inputs[n])) for n in self.input_names}
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        with self._lock:
            ctx = self._context
            for n, arr in host.items():
                ctx.set_input_shape(n, arr.shape)
                ptr = self._device_buffer(n, arr.nbytes)
                _cuda_check(
                    cudart,
                    cudart.cudaMemcpyAsync(ptr, arr.ctypes.data, arr.nbytes, h2d, self._stream),
                )
                ctx.set_tensor_address(n, ptr)
            outs: dict[str, np.ndarray] = {}
            for n in self.output_names:
                shape = tuple(ctx.get_tensor_shape(n))
                outs[n] = np.empty(shape, dtype=self.dtypes[n])
                ctx.set_tensor_address(n, self._device_buffer(n, outs[n].nbytes))
            if not ctx.execute_async_v3(int(self._stream)):
                raise RuntimeError(f"{self.path.name}: TensorRT execute_async_v3 failed")
            for n, arr in outs.items():
                ptr = self._buffers[n][0]
                _cuda_check(
                    cudart,
                    cudart.cudaMemcpyAsync(arr.ctypes.data, ptr, arr.nbytes, d2h, self._stream),
                )
            _cuda_check(cudart, cudart.cudaStreamSynchronize(self._stream))
        return outs

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)[self.output_names[0]]

    def report(self) -> dict[str, Any]:
        return {
            "backend": "tensorrt",
            "provider": "tensorrt-engine",
            "path": str(self.path),
            "sha256": self.sha256,
            "tensorrt": self._trt.__version__,
            "build": self.build_info,
        }

    def close(self) -> None:
        cudart = self._cudart
        with self._lock:
            for ptr, _ in self._buffers.values():
                cudart.cudaFree(ptr)
            self._buffers.clear()
            if self._stream is not None:
                cudart.cudaStreamDestroy(self._stream)
                self._stream = None

    def __enter__(self) -> TensorRTEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
