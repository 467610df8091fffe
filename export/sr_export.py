"""Surface refinement checkpoint -> two ONNX models, with parity checks.

    python -m export.sr_export CHECKPOINT_DIR OUT_DIR [--fp16-weights] [--register]

- ``OUT_DIR/sr_encoder.onnx``: input ``crops`` (N, C, H, W) float32 (the encoder input of
  :func:`angio_deploy.pipeline.sr.encoder_input`), outputs ``block1`` .. ``block4``
  (N, C_k, H / 2^k, W / 2^k). Batch axis dynamic.
- ``OUT_DIR/sr_gcn.onnx``: input ``features`` (6000, 483) float32, output ``displacement``
  (6000, 3) in the normalised frame. The graph network is exported in its gather form
  (:class:`training.surface.model.GatherGCN`): each GCNConv is a MatMul, a Gather over the
  precomputed neighbour table (6000 x 5) and a weighted sum; no scatter operations, which
  TensorRT handles badly.

Checks on every export: onnx.checker; encoder ORT vs torch max |diff| <= 1e-4 on seeded
random crops; graph network ORT vs the torch-geometric model <= 1e-5 (fp32 weights; the
fp16-weight tolerance is reported, not enforced). ``--register`` adds both to the
manifest in OUT_DIR (shipping: ``OUT_DIR = python/angio_deploy/models``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from angio_deploy.hashing import sha256_file
from angio_deploy.io.atomic import atomic_write_bytes
from export.compact import fp16_weights
from export.onnx_export import trace_to_onnx

log = logging.getLogger("export.sr_export")

ENCODER_TOL = 1e-4
GCN_TOL = 1e-5


def load_sr_checkpoint(ckpt: str | Path):
    """(SurfaceRefinementNet in eval mode, config, weights sha256)."""
    import torch  # noqa: F401
    from training.segmenter.checkpoint import load_tensors, read_json
    from training.surface.model import SurfaceRefinementNet, edge_index_of
    from training.surface.topology import ring_topology

    ckpt = Path(ckpt)
    config = read_json(ckpt / "config.json")
    topo = ring_topology(config["topology"]["n_rings"], config["topology"]["n_around"])
    net = SurfaceRefinementNet(edge_index_of(topo.edges), in_channels=int(config["in_channels"]))
    net.load_state_dict(load_tensors(ckpt / "model.safetensors"))
    net.eval()
    return net, config, sha256_file(ckpt / "model.safetensors")


def save_checked(proto: onnx.ModelProto, path: Path, props: dict[str, str]) -> None:
    """Set the model's metadata, run the full ONNX checker, write it atomically."""
    onnx.helper.set_model_props(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    atomic_write_bytes(path, proto.SerializeToString())


def cpu_session(path: Path):
    """An ONNX Runtime CPU session (2 threads) for the exporters' parity checks."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def export_sr(
    ckpt: str | Path, out_dir: str | Path, *, fp16: bool = False, seed: int = 0
) -> dict[str, Any]:
    """Export both models into ``out_dir``; returns a summary with the parity numbers."""
    import torch
    from training.surface.model import IN_FEATURES, GatherGCN
    from training.surface.topology import ring_topology

    net, config, weights_sha = load_sr_checkpoint(ckpt)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    C = int(config["in_channels"])
    H, W = int(config["crop"]["height"]), int(config["crop"]["width"])
    topo = ring_topology(config["topology"]["n_rings"], config["topology"]["n_around"])
    n = topo.n_vertices
    common = {
        "source_sha256": weights_sha,
        "weights_storage": "float16 (Cast to float32 in graph)" if fp16 else "float32",
        "producer": "angio-deploy export.sr_export",
    }
    g = torch.Generator().manual_seed(seed)

    # Encoder.
    names = [f"block{k + 1}" for k in range(4)]
    enc = trace_to_onnx(
        net.encoder,
        (torch.zeros(2, C, H, W),),
        ["crops"],
        names,
        {"crops": {0: "batch"}, **{k: {0: "batch"} for k in names}},
    )
    if fp16:
        enc, _ = fp16_weights(enc)
    enc_path = out_dir / "sr_encoder.onnx"
    save_checked(enc, enc_path, {**common, "name": "sr_encoder", "role": "encoder"})
    x = torch.randn(2, C, H, W, generator=g)
    with torch.no_grad():
        ref = [m.numpy() for m in net.encoder(x)]
    got = cpu_session(enc_path).run(names, {"crops": x.numpy()})
    enc_diff = max(float(np.abs(a - b).max()) for a, b in zip(ref, got, strict=True))

    # Graph network, gather form, compared with the torch-geometric model.
    gather = GatherGCN(*topo.neighbour_table()).load_from(net.gcn).eval()
    gcn = trace_to_onnx(gather, (torch.zeros(n, IN_FEATURES),), ["features"], ["displacement"])
    if fp16:
        gcn, _ = fp16_weights(gcn)
    gcn_path = out_dir / "sr_gcn.onnx"
    save_checked(gcn, gcn_path, {**common, "name": "sr_gcn", "role": "gcn"})
    f = torch.randn(n, IN_FEATURES, generator=g)
    with torch.no_grad():
        ref_g = net.gcn(f, net.edge_index).numpy()
    got_g = cpu_session(gcn_path).run(["displacement"], {"features": f.numpy()})[0]
    gcn_diff = float(np.abs(ref_g - got_g).max())
    if not fp16 and (enc_diff > ENCODER_TOL or gcn_diff > GCN_TOL):
        raise AssertionError(f"parity failed: encoder {enc_diff:.2e}, gcn {gcn_diff:.2e}")
    return {
        "encoder": {
            "path": str(enc_path),
            "size": enc_path.stat().st_size,
            "max_abs_diff": enc_diff,
        },
        "gcn": {"path": str(gcn_path), "size": gcn_path.stat().st_size, "max_abs_diff": gcn_diff},
        "config": config,
        "source_sha256": weights_sha,
        "fp16": fp16,
    }


def register_sr(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Add both exported models to the manifest of their folder."""
    from angio_deploy.models import register_model

    cfg = summary["config"]
    C, H, W = int(cfg["in_channels"]), int(cfg["crop"]["height"]), int(cfg["crop"]["width"])
    n = int(cfg["topology"]["n_rings"]) * int(cfg["topology"]["n_around"])
    storage = "float16 (Cast to float32 in graph)" if summary["fp16"] else "float32"
    enc = register_model(
        summary["encoder"]["path"],
        name="sr_encoder",
        role="encoder",
        version=summary["source_sha256"][:12],
        input={
            "name": "crops",
            "dtype": "float32",
            "shape": ["N", C, H, W],
            "channels": cfg["channels"],
        },
        output={"names": [f"block{k + 1}" for k in range(4)], "channels": [16, 32, 64, 128]},
        crop=cfg["crop"],
        weights_storage=storage,
        source_sha256=summary["source_sha256"],
    )
    gcn = register_model(
        summary["gcn"]["path"],
        name="sr_gcn",
        role="gcn",
        version=summary["source_sha256"][:12],
        input={"name": "features", "dtype": "float32", "shape": [n, 483]},
        output={"name": "displacement", "dtype": "float32", "shape": [n, 3]},
        topology=cfg["topology"],
        frame=cfg["frame"],
        weights_storage=storage,
        source_sha256=summary["source_sha256"],
    )
    return [enc.as_dict(), gcn.as_dict()]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m export.sr_export", description=__doc__.split("\n")[0]
    )
    ap.add_argument("checkpoint_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--fp16-weights", action="store_true")
    ap.add_argument("--register", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = export_sr(args.checkpoint_dir, args.out_dir, fp16=args.fp16_weights)
    if args.register:
        summary["manifest"] = register_sr(summary)
    summary.pop("config")
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
