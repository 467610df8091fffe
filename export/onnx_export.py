"""Segmenter checkpoint -> ONNX, with checks.

    python -m export.onnx_export CHECKPOINT_DIR OUT.onnx [--fp16-weights] [--opset 17]
                                 [--version V] [--register] [--parity-inputs crops.npy]

CHECKPOINT_DIR holds ``model.safetensors`` (the state_dict) and ``config.json`` with at
least ``{"arch": "unet", "encoder": ..., "in_channels": 1, "classes": 1,
"crop": {"width": 256, "height": 160, ...}}``. The ONNX model takes ``image``
(N, in_channels, height, width) float32 crops normalised by
:func:`angio_deploy.pipeline.crop.normalise_crop` and returns ``logits`` of shape
(N, classes, height, width); the batch axis is dynamic, the spatial size fixed by the
crop config. Model metadata (``metadata_props``) records the name, version, role, crop
config, the sha256 of the source weights and config, and how the weights are stored.

``--fp16-weights`` stores large weights as float16 with Cast-to-float32 nodes
(:mod:`export.compact`): half the file, float32 arithmetic. Every export runs
``onnx.checker``, an ONNX Runtime optimisation check (all weight Casts folded) and a
parity check against the torch model on seeded random inputs (``--parity-inputs`` adds
real crops from an .npy file); the summary is printed as JSON. ``--register`` adds the
model to ``manifest.json`` in OUT's folder, which is how a model ships:
``OUT = python/angio_deploy/models/segmenter.onnx``.

The legacy TorchScript exporter (``dynamo=False``) is used: it needs no onnxscript and
gives a plain opset-17 graph that ONNX Runtime and TensorRT 10 both take.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from training.segmenter.checkpoint import (  # training's checkpoints, read for export
    CONFIG_FILE,
    CheckpointError,
    load_checkpoint,
)

from angio_deploy.hashing import sha256_file
from export.compact import fp16_weights, ort_optimisation_report

log = logging.getLogger("export.onnx_export")

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
NORMALISATION = "per-crop zero mean, unit sd (angio_deploy.pipeline.crop.normalise_crop)"


def metadata_for(
    config: dict[str, Any],
    *,
    name: str,
    version: str,
    source_sha256: str,
    weights_storage: str,
    config_sha256: str | None = None,
) -> dict[str, str]:
    """The ONNX ``metadata_props`` (all values strings; JSON where structured)."""
    import torch

    from angio_deploy import __version__

    crop = config["crop"]
    meta = {
        "name": name,
        "version": version,
        "role": "segmenter",
        "arch": str(config["arch"]),
        "encoder": str(config["encoder"]),
        "crop": json.dumps(crop, sort_keys=True),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_shape": json.dumps(
            [None, int(config["in_channels"]), int(crop["height"]), int(crop["width"])]
        ),
        "output_shape": json.dumps(
            [None, int(config["classes"]), int(crop["height"]), int(crop["width"])]
        ),
        "normalization": NORMALISATION,
        "source_sha256": source_sha256,
        "weights_storage": weights_storage,
        "config": json.dumps(config, sort_keys=True),
        "exporter": (
            f"angio-deploy {__version__}, torch {torch.__version__}, onnx {onnx.__version__}"
        ),
    }
    if config_sha256:
        meta["source_config_sha256"] = config_sha256
    return meta


def trace_to_onnx(
    module,
    example: tuple,
    inputs: Sequence[str],
    outputs: Sequence[str],
    dynamic_axes: dict | None = None,
    *,
    opset: int = DEFAULT_OPSET,
) -> onnx.ModelProto:
    """Trace ``module`` (eval mode) with the legacy TorchScript exporter (see the module
    docstring) to an in-memory ModelProto; exporter warnings go to the debug log."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        with warnings.catch_warnings(record=True) as caught, torch.no_grad():
            warnings.simplefilter("always")
            torch.onnx.export(
                module,
                example,
                str(path),
                input_names=list(inputs),
                output_names=list(outputs),
                opset_version=opset,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
                dynamo=False,
            )
        for msg in sorted({f"{w.category.__name__}: {w.message}" for w in caught}):
            log.debug("exporter: %s", msg)
        return onnx.load(str(path))


def torch_to_onnx(model, config: dict[str, Any], *, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Trace ``model`` (eval mode) to an ONNX ModelProto with a dynamic batch axis."""
    import torch

    crop = config["crop"]
    example = torch.zeros(2, int(config["in_channels"]), int(crop["height"]), int(crop["width"]))
    proto = trace_to_onnx(
        model,
        (example,),
        [INPUT_NAME],
        [OUTPUT_NAME],
        {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset=opset,
    )
    # The TorchScript exporter's symbolic shapes can be wrong (it labelled the output's
    # height "batch"); drop its intermediate shapes and declare the I/O shapes exactly.
    del proto.graph.value_info[:]
    want = {
        INPUT_NAME: ["batch", int(config["in_channels"]), int(crop["height"]), int(crop["width"])],
        OUTPUT_NAME: ["batch", int(config["classes"]), int(crop["height"]), int(crop["width"])],
    }
    for vi in list(proto.graph.input) + list(proto.graph.output):
        if vi.name in want:
            dims = vi.type.tensor_type.shape.dim
            del dims[:]
            for d in want[vi.name]:
                dim = dims.add()
                if isinstance(d, str):
                    dim.dim_param = d
                else:
                    dim.dim_value = d
    return proto


def _check_io(path: Path, config: dict[str, Any]) -> None:
    """ONNX Runtime sees input 'image' and output 'logits' with the expected shapes."""
    import onnxruntime as ort

    crop = config["crop"]
    hw = [int(crop["height"]), int(crop["width"])]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    got = [(inp.name, inp.shape, inp.type), (out.name, out.shape, out.type)]
    want = [
        (INPUT_NAME, ["batch", int(config["in_channels"]), *hw], "tensor(float)"),
        (OUTPUT_NAME, ["batch", int(config["classes"]), *hw], "tensor(float)"),
    ]
    if got != want:
        raise AssertionError(f"exported I/O {got} != expected {want}")


@dataclass
class ExportResult:
    path: Path
    size_bytes: int
    sha256: str
    metadata: dict[str, str]
    compact: dict[str, Any] | None = None
    ort_optimisation: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "metadata": self.metadata,
            "compact": self.compact,
            "ort_optimisation": self.ort_optimisation,
            "parity": self.parity,
            "seconds": round(self.seconds, 2),
        }


def parity_check(
    model,
    onnx_path: str | Path,
    config: dict[str, Any],
    *,
    batch: int = 2,
    seed: int = 0,
    inputs: np.ndarray | None = None,
) -> dict[str, Any]:
    """Torch vs ONNX Runtime (CPU, float32) on the same inputs.

    Seeded standard-normal inputs (what normalised crops look like) plus ``inputs`` when
    given. Returns the max abs logit difference, the max difference of probabilities and
    the fraction of pixels whose 0.5-threshold mask differs.
    """
    import onnxruntime as ort
    import torch

    crop = config["crop"]
    rng = np.random.default_rng(seed)
    shape = (batch, int(config["in_channels"]), int(crop["height"]), int(crop["width"]))
    x = rng.standard_normal(shape).astype(np.float32)
    if inputs is not None:
        x = np.concatenate([x, np.asarray(inputs, dtype=np.float32).reshape(-1, *shape[1:])])
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    if got.shape != ref.shape:
        raise AssertionError(f"ONNX output shape {got.shape} != torch {ref.shape}")

    def sig(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))

    return {
        "inputs": int(x.shape[0]),
        "max_abs_logit_diff": float(np.abs(got - ref).max()),
        "max_abs_logit": float(np.abs(ref).max()),
        "max_abs_prob_diff": float(np.abs(sig(got) - sig(ref)).max()),
        "mask_disagreement": float(np.mean((got > 0) != (ref > 0))),
    }


def export_checkpoint(
    checkpoint_dir: str | Path,
    out_path: str | Path,
    *,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    name: str = "segmenter",
    version: str | None = None,
    parity: bool = True,
    parity_batch: int = 2,
    parity_inputs: np.ndarray | None = None,
) -> ExportResult:
    """Export a checkpoint folder to ``out_path`` (written atomically) and check it."""
    t0 = time.perf_counter()
    checkpoint_dir = Path(checkpoint_dir)
    out_path = Path(out_path)
    model, config, weights_sha = load_checkpoint(checkpoint_dir)
    proto = torch_to_onnx(model, config, opset=opset)
    compact = None
    if fp16:
        proto, stats = fp16_weights(proto)
        compact = stats.as_dict()
    meta = metadata_for(
        config,
        name=name,
        version=version or str(config.get("version") or weights_sha[:12]),
        source_sha256=weights_sha,
        config_sha256=sha256_file(checkpoint_dir / CONFIG_FILE),
        weights_storage="float16 (Cast to float32 in graph)" if fp16 else "float32",
    )
    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = (
        f"{name}: U-Net ({config['encoder']}) vessel segmenter of 3DAngioNet; input "
        f"'{INPUT_NAME}' {meta['input_shape']} normalised crops, output '{OUTPUT_NAME}'."
    )
    onnx.checker.check_model(proto, full_check=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        onnx.save(proto, str(tmp))
        onnx.checker.check_model(str(tmp))
        opt = ort_optimisation_report(tmp)
        _check_io(tmp, config)
        if opt["unfolded_weight_casts"]:
            raise AssertionError(
                f"ONNX Runtime left {opt['unfolded_weight_casts']} weight Casts unfolded"
            )
        par = (
            parity_check(model, tmp, config, batch=parity_batch, inputs=parity_inputs)
            if parity
            else {}
        )
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(
        path=out_path,
        size_bytes=out_path.stat().st_size,
        sha256=sha256_file(out_path),
        metadata=meta,
        compact=compact,
        ort_optimisation=opt,
        parity=par,
        seconds=time.perf_counter() - t0,
    )


def register(result: ExportResult) -> dict[str, Any]:
    """Add the exported model to the manifest of its folder (angio_deploy.models format)."""
    from angio_deploy.models import register_model

    meta = result.metadata
    entry = register_model(
        result.path,
        name=meta["name"],
        role=meta["role"],
        version=meta["version"],
        input={"name": INPUT_NAME, "dtype": "float32", "shape": json.loads(meta["input_shape"])},
        output={
            "name": OUTPUT_NAME,
            "dtype": "float32",
            "shape": json.loads(meta["output_shape"]),
        },
        crop=json.loads(meta["crop"]),
        encoder=meta["encoder"],
        weights_storage=meta["weights_storage"],
        source_sha256=meta["source_sha256"],
    )
    return entry.as_dict()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m export.onnx_export", description=__doc__.split("\n")[0]
    )
    p.add_argument("checkpoint_dir", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--fp16-weights", action="store_true", help="store weights as float16 (+Cast)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--name", default="segmenter")
    p.add_argument("--version", default=None, help="model version (default: config 'version')")
    p.add_argument("--no-parity", action="store_true", help="skip the torch vs ORT check")
    p.add_argument("--parity-batch", type=int, default=2)
    p.add_argument("--parity-inputs", type=Path, help=".npy of normalised crops (N,C,H,W)")
    p.add_argument(
        "--register",
        action="store_true",
        help="add/replace the model's entry in manifest.json of OUT's folder (shipping: "
        "OUT inside python/angio_deploy/models/)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        result = export_checkpoint(
            args.checkpoint_dir,
            args.out,
            fp16=args.fp16_weights,
            opset=args.opset,
            name=args.name,
            version=args.version,
            parity=not args.no_parity,
            parity_batch=args.parity_batch,
            parity_inputs=None if args.parity_inputs is None else np.load(args.parity_inputs),
        )
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 65
    summary = result.as_dict()
    if args.register:
        summary["manifest_entry"] = register(result)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
