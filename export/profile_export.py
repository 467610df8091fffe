"""Ring-profile checkpoint -> ONNX, with a parity check.

    python -m export.profile_export CHECKPOINT_DIR OUT_DIR [--register]

``OUT_DIR/sr_profile.onnx``: input ``features`` (R, N_FEATURES) float32
(:func:`angio_deploy.pipeline.profile.ring_profiles`; R dynamic, 100 in the product),
output ``corrections`` (R, 4): per view, the moves of the lower and upper lumen edge in
units of the ring's projected radius. The input standardisation is part of the graph.
Weights stay float32 (0.72 MB, ~179k parameters). Checks: onnx.checker, ONNX Runtime vs torch
max |diff| <= 1e-5 on seeded random features. ``--register`` adds it to the manifest in
OUT_DIR (shipping: ``OUT_DIR = python/angio_deploy/models``).
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

from export.onnx_export import trace_to_onnx
from export.sr_export import cpu_session, save_checked

TOL = 1e-5


def export_profile(ckpt: str | Path, out_dir: str | Path, *, seed: int = 0) -> dict[str, Any]:
    """Export into ``out_dir``; returns a summary with the parity number."""
    import torch
    from training.surface.profile import load_profile_net

    from angio_deploy.pipeline.profile import N_FEATURES, PROFILE

    net, config, sha = load_profile_net(ckpt)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    proto = trace_to_onnx(
        net,
        (torch.zeros(100, N_FEATURES),),
        ["features"],
        ["corrections"],
        {"features": {0: "rings"}, "corrections": {0: "rings"}},
    )
    path = out_dir / f"{PROFILE}.onnx"
    save_checked(
        proto,
        path,
        {
            "name": PROFILE,
            "role": "profile",
            "source_sha256": sha,
            "weights_storage": "float32",
            "producer": "angio-deploy export.profile_export",
        },
    )
    g = torch.Generator().manual_seed(seed)
    x = net.mean + net.std * torch.randn(100, N_FEATURES, generator=g)
    with torch.no_grad():
        ref = net(x).numpy()
    got = cpu_session(path).run(["corrections"], {"features": x.numpy()})[0]
    diff = float(np.abs(ref - got).max())
    if diff > TOL:
        raise AssertionError(f"parity failed: {diff:.2e} > {TOL:.0e}")
    return {
        "path": str(path),
        "size": path.stat().st_size,
        "max_abs_diff": diff,
        "source_sha256": sha,
        "config": config,
    }


def register_profile(summary: dict[str, Any]) -> dict[str, Any]:
    """Add the exported model to the manifest of its folder."""
    from angio_deploy.models import register_model
    from angio_deploy.pipeline.profile import N_OUTPUTS, PROFILE, feature_layout

    entry = register_model(
        summary["path"],
        name=PROFILE,
        role="profile",
        version=summary["source_sha256"][:12],
        input={"name": "features", "dtype": "float32", **feature_layout()},
        output={"name": "corrections", "dtype": "float32", "shape": ["R", N_OUTPUTS]},
        weights_storage="float32",
        source_sha256=summary["source_sha256"],
    )
    return entry.as_dict()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m export.profile_export", description=__doc__.split("\n")[0]
    )
    ap.add_argument("checkpoint_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--register", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = export_profile(args.checkpoint_dir, args.out_dir)
    if args.register:
        summary["manifest"] = register_profile(summary)
    summary.pop("config")
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
