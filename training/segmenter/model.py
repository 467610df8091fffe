"""The segmenter: U-Net with an EfficientNet-B3 encoder (segmentation-models-pytorch).

Trained from scratch here (no weights can be downloaded); :func:`load_encoder_weights`
takes *local* pretrained encoder weights from a safetensors file instead (never a pickle).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from angio_deploy.hashing import sha256_file

log = logging.getLogger(__name__)

ARCH = "unet"
ENCODER = "efficientnet-b3"


def build_segmenter(encoder: str = ENCODER, in_channels: int = 1, classes: int = 1):
    """Random-initialised smp U-Net (encoder_weights=None: nothing is downloaded)."""
    import segmentation_models_pytorch as smp

    return smp.Unet(encoder, encoder_weights=None, in_channels=in_channels, classes=classes)


def architecture(encoder: str = ENCODER, in_channels: int = 1, classes: int = 1) -> dict:
    """The config.json keys that rebuild the model (export.onnx_export reads them)."""
    return {"arch": ARCH, "encoder": encoder, "in_channels": in_channels, "classes": classes}


def load_encoder_weights(model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """Load encoder weights from a local safetensors file into ``model.encoder``.

    Keys may carry an ``encoder.`` prefix (a whole smp model's state_dict) or not (the
    encoder's own). A stem convolution with a different input channel count (e.g. RGB
    ImageNet weights into a 1-channel model) is adapted the way smp adapts pretrained
    weights: summed over the input channels for 1 channel. Every encoder tensor must be
    found with the right shape; otherwise a ValueError names them. Returns a summary.
    """
    from safetensors.torch import load_file

    path = Path(path)
    state = load_file(str(path))
    if any(k.startswith("encoder.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    target = model.encoder.state_dict()
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    adapted = []
    for k, v in list(state.items()):
        if k not in target or v.shape == target[k].shape:
            continue
        t = target[k]
        if v.dim() == 4 and v.shape[0] == t.shape[0] and v.shape[2:] == t.shape[2:]:
            if t.shape[1] == 1:
                state[k] = v.sum(dim=1, keepdim=True)
            else:  # repeat the channels cyclically and rescale, as smp does
                reps = [v[:, i % v.shape[1]] for i in range(t.shape[1])]
                state[k] = torch.stack(reps, dim=1) * (v.shape[1] / t.shape[1])
            adapted.append(k)
    wrong = sorted(k for k in state if k in target and state[k].shape != target[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"{path}: encoder weights do not fit {type(model.encoder).__name__}: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, "
            f"wrong shape {wrong[:5]}"
        )
    model.encoder.load_state_dict({k: state[k].to(target[k].dtype) for k in target}, strict=True)
    info = {
        "path": str(path),
        "sha256": sha256_file(path),
        "tensors": len(target),
        "adapted": adapted,
    }
    log.info("loaded encoder weights %s", info)
    return info
