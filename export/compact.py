"""Compact ONNX storage: float16 weight initializers upcast to float32 inside the graph.

:func:`fp16_weights` rewrites every large float32 initializer ``W`` as a float16
initializer ``W__fp16`` followed by ``Cast(to=FLOAT) -> W``. Every operator still sees
float32 tensors, so ONNX Runtime computes in float32 exactly as before; only the stored
weights are rounded to float16 (relative error at most 2**-11 per weight, half a unit in
the last place). ONNX Runtime's constant folding (graph optimisation level "basic" and
above) evaluates the Casts once at session creation, so the running graph is the
float32 graph with rounded weights and inference speed is unchanged:
:func:`ort_optimisation_report` checks that no Cast of a weight survives optimisation.

Tensors that float16 cannot hold (any magnitude above 65504) stay float32, as do small
tensors (biases, scales, Resize/Pad parameters), which cost nothing and keep the model's
shape-like constants exact. Pure ``onnx`` + ``numpy``: no torch needed.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Largest finite float16 value.
FP16_MAX = 65504.0
#: Initializers with fewer elements stay float32 (biases, Resize scales, Pad amounts).
DEFAULT_MIN_ELEMENTS = 1024
FP16_SUFFIX = "__fp16"


@dataclass
class CompactStats:
    """What :func:`fp16_weights` did."""

    converted: int = 0
    kept_small: int = 0
    kept_range: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    max_abs_rounding: float = 0.0
    max_rel_rounding: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fp16_weights(
    model: onnx.ModelProto, *, min_elements: int = DEFAULT_MIN_ELEMENTS
) -> tuple[onnx.ModelProto, CompactStats]:
    """Copy of ``model`` with large float32 initializers stored as float16 + Cast nodes."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    stats = CompactStats()
    graph_inputs = {i.name for i in g.input}
    keep: list[onnx.TensorProto] = []
    casts: list[onnx.NodeProto] = []
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        stats.bytes_before += arr.nbytes
        if init.data_type != TensorProto.FLOAT or init.name in graph_inputs:
            keep.append(init)
            stats.bytes_after += arr.nbytes
            continue
        if arr.size < min_elements:
            stats.kept_small += 1
            keep.append(init)
            stats.bytes_after += arr.nbytes
            continue
        if not np.all(np.isfinite(arr)) or float(np.abs(arr).max()) > FP16_MAX:
            stats.kept_range += 1
            keep.append(init)
            stats.bytes_after += arr.nbytes
            continue
        half = arr.astype(np.float16)
        err = np.abs(half.astype(np.float32) - arr)
        stats.max_abs_rounding = max(stats.max_abs_rounding, float(err.max()))
        nz = np.abs(arr) > np.finfo(np.float16).tiny  # relative error of normal numbers
        if nz.any():
            stats.max_rel_rounding = max(
                stats.max_rel_rounding, float((err[nz] / np.abs(arr[nz])).max())
            )
        keep.append(numpy_helper.from_array(half, init.name + FP16_SUFFIX))
        casts.append(
            helper.make_node(
                "Cast",
                [init.name + FP16_SUFFIX],
                [init.name],
                to=TensorProto.FLOAT,
                name=init.name + "__upcast",
            )
        )
        stats.converted += 1
        stats.bytes_after += half.nbytes
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)  # Casts first: the graph stays topologically sorted
    return out, stats


def ort_optimisation_report(model_path: str | Path) -> dict[str, Any]:
    """Optimise ``model_path`` with ONNX Runtime (CPU, level "all") and describe the result.

    Returns the node counts before and after, the number of Cast nodes left whose input is
    a float16 weight (0 when ORT folded them all) and the dtypes of the optimised
    initializers.
    """
    import onnxruntime as ort

    model_path = Path(model_path)
    src = onnx.load(str(model_path))
    fp16_names = {i.name for i in src.graph.initializer if i.name.endswith(FP16_SUFFIX)}
    with tempfile.TemporaryDirectory() as tmp:
        opt_path = Path(tmp) / "optimised.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(opt_path)
        so.log_severity_level = 3
        ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
        opt = onnx.load(str(opt_path))
    unfolded = [n.name for n in opt.graph.node if n.op_type == "Cast" and n.input[0] in fp16_names]
    dtypes: dict[str, int] = {}
    for init in opt.graph.initializer:
        key = TensorProto.DataType.Name(init.data_type)
        dtypes[key] = dtypes.get(key, 0) + 1
    return {
        "nodes_before": len(src.graph.node),
        "nodes_after": len(opt.graph.node),
        "fp16_weights": len(fp16_names),
        "unfolded_weight_casts": len(unfolded),
        "optimised_initializer_dtypes": dtypes,
    }
