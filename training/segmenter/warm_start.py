"""Rebuild a trainable smp U-Net from an exported segmenter ``.onnx`` (fine-tuning start).

The shipped model is an ONNX file whose exporter folded every BatchNorm into the
convolution before it (eval mode, constant folding), and whose weights are stored as
float16. The training checkpoint it came from is not shipped, so fine-tuning starts here:

* each ONNX ``Conv`` is matched to the torch ``Conv2d`` of the same module path (the
  exporter names nodes ``/encoder/_blocks.3/_depthwise_conv/Conv``);
* a convolution that has a BatchNorm after it (found by running the model once with hooks)
  gets the folded weight, and that BatchNorm becomes an affine identity: running mean 0,
  running variance ``1 - eps``, weight 1, bias the folded bias. Its running statistics are
  then meaningless for batch statistics, so such a model must be trained with every
  BatchNorm in eval mode (:func:`freeze_batchnorm`); its affine weight and bias still
  learn, the usual way to fine-tune a network on small batches;
* other tensors (squeeze-excitation convolutions, the head) are copied by name or path.

:func:`check_parity` runs both on the same input; the result is only used when they agree.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


def _onnx_tensors(model) -> dict[str, np.ndarray]:
    """Every initializer and Constant output, float16 storage resolved through its Cast."""
    from onnx import numpy_helper

    g = model.graph
    vals = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    vals[n.output[0]] = numpy_helper.to_array(a.t)
    for n in g.node:
        if n.op_type == "Cast" and n.input[0] in vals:
            vals[n.output[0]] = vals[n.input[0]].astype(np.float32)
    return vals


def _conv_bn_pairs(
    model: torch.nn.Module, shape: tuple[int, int]
) -> tuple[dict[str, str], set[str]]:
    """Conv2d module name -> the BatchNorm2d run right after it, and every Conv2d and
    BatchNorm2d that runs at all (one forward pass; smp's EfficientNet keeps an unused
    head)."""
    order: list[tuple[str, str]] = []
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.BatchNorm2d):
            kind = "conv" if isinstance(m, torch.nn.Conv2d) else "bn"
            hooks.append(m.register_forward_hook(lambda *_, n=name, k=kind: order.append((k, n))))
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 1, *shape))
    finally:
        for h in hooks:
            h.remove()
    pairs = {}
    for (k0, n0), (k1, n1) in itertools.pairwise(order):
        if k0 == "conv" and k1 == "bn":
            pairs[n0] = n1
    return pairs, {n for _, n in order}


def _module_path(node_name: str) -> str:
    """ONNX node name -> torch module path. The exporter writes a scope per module and
    names a Sequential's child with its parent's name in front
    (``/decoder/blocks.0/conv1/conv1.0/Conv`` is ``decoder.blocks.0.conv1.0``)."""
    parts: list[str] = []
    prev = ""
    for comp in node_name.strip("/").split("/")[:-1]:
        parts.append(comp[len(prev) + 1 :] if prev and comp.startswith(prev + ".") else comp)
        prev = comp
    return ".".join(parts)


def load_from_onnx(
    model: torch.nn.Module, onnx_path: str | Path, *, shape: tuple[int, int] = (160, 256)
) -> dict[str, Any]:
    """Fill ``model`` (a freshly built smp U-Net of the same architecture) with the
    weights of ``onnx_path``; BatchNorms after convolutions become identities (see the
    module docstring). Raises ValueError naming what does not fit. Returns a summary."""
    import onnx

    path = Path(onnx_path)
    om = onnx.load(str(path))
    vals = _onnx_tensors(om)
    pairs, executed = _conv_bn_pairs(model, shape)
    modules = dict(model.named_modules())
    convs = [n for n in om.graph.node if n.op_type == "Conv"]
    seen = set()
    for node in convs:
        mod_name = _module_path(node.name)
        conv = modules.get(mod_name)
        if not isinstance(conv, torch.nn.Conv2d):
            raise ValueError(f"{path}: ONNX node {node.name} has no Conv2d {mod_name!r}")
        w = torch.from_numpy(np.array(vals[node.input[1]], dtype=np.float32))
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise ValueError(
                f"{path}: {mod_name} weight {tuple(w.shape)} != {tuple(conv.weight.shape)}"
            )
        b = None
        if len(node.input) > 2:
            b = torch.from_numpy(np.array(vals[node.input[2]], dtype=np.float32))
        with torch.no_grad():
            conv.weight.copy_(w)
            if conv.bias is not None:
                if b is None:
                    raise ValueError(f"{path}: {mod_name} has no bias in the ONNX graph")
                conv.bias.copy_(b)
            elif b is not None:
                bn_name = pairs.get(mod_name)
                if bn_name is None:
                    raise ValueError(f"{path}: {mod_name} has a folded bias but no BatchNorm")
                bn = modules[bn_name]
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                seen.add(bn_name)
        seen.add(mod_name)
    missing = [
        n
        for n, m in modules.items()
        if isinstance(m, torch.nn.Conv2d | torch.nn.BatchNorm2d) and n in executed - seen
    ]
    if missing:
        raise ValueError(f"{path}: no weights for {missing[:5]}")
    info = {"onnx": str(path), "convs": len(convs), "batchnorms_folded": len(seen) - len(convs)}
    log.info("warm start from %s", info)
    # Modules the forward pass never runs (EfficientNet's classifier head) keep their
    # random init; callers that combine weights need to know which ones were set.
    return {**info, "modules": sorted(seen)}


def freeze_batchnorm(model: torch.nn.Module) -> int:
    """Put every BatchNorm in eval mode (running statistics fixed, affine still learns);
    call after every ``model.train()``. Returns how many."""
    n = 0
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
            n += 1
    return n


def check_parity(
    model: torch.nn.Module, onnx_path: str | Path, *, shape: tuple[int, int] = (160, 256)
) -> float:
    """Largest |logit| difference between ``model`` (eval) and ONNX Runtime on a fixed
    random input."""
    import onnxruntime as ort

    x = np.random.default_rng(0).normal(size=(2, 1, *shape)).astype(np.float32)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    model.eval()
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    return float(np.abs(got - ref).max())
