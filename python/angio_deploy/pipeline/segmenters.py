"""Segmenters of the SOI crop: the shipped network, a classical baseline, and an oracle.

Each takes views with their SOI crops and returns vessel probabilities in crop space
(height, width). The network sees normalised crops
(:func:`angio_deploy.pipeline.crop.normalise_crop`), both views in one batch; the
classical baseline sees the raw crop; the oracle returns the truth mask's crop.
``report()`` says what ran, for report.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from angio_deploy.io.case import CaseView

from .crop import (
    DEFAULT_HEIGHT,
    DEFAULT_MARGIN_PX,
    DEFAULT_MAX_SCALE,
    DEFAULT_WIDTH,
    SoiCrop,
    normalise_crop,
)

Item = tuple[CaseView, SoiCrop]


class Segmenter(Protocol):
    """[(view, crop)] -> probabilities [(height, width) float32 in [0, 1]] in crop space.

    An optional attribute ``width_level`` (default 0.5) is the probability level between
    whose crossings the 2D centreline stage measures lumen widths."""

    name: str
    crop: dict[str, Any]

    def segment(self, items: Sequence[Item]) -> list[np.ndarray]: ...

    def report(self) -> dict[str, Any]: ...


DEFAULT_CROP = {
    "width": DEFAULT_WIDTH,
    "height": DEFAULT_HEIGHT,
    "margin_px": DEFAULT_MARGIN_PX,
    "max_scale": DEFAULT_MAX_SCALE,
}


class OnnxSegmenter:
    """The shipped EfficientNet-B3 U-Net through ONNX Runtime (or another .onnx file).

    ``flip_tta``: also segment each crop flipped vertically (the SOI stays on the mid-line,
    start left) and average the probabilities; None takes the manifest's ``flip_tta``
    (default True). Training augments with the same flip, so the two passes are equally
    valid and their mean is smoother at the edges (+1.1 Dice points on 60 test views with
    an early checkpoint, docs/RESULTS.md) for one batch of four crops instead of two.
    """

    name = "unet-efficientnet-b3"

    def __init__(
        self,
        model: str = "segmenter",
        *,
        folder=None,
        flip_tta: bool | None = None,
        **session_overrides: Any,
    ):
        from angio_deploy.models import load_manifest, open_model

        entry = load_manifest(folder).get(model)
        self.flip_tta = bool(entry.extra.get("flip_tta", True)) if flip_tta is None else flip_tta
        self.crop = dict(entry.crop or DEFAULT_CROP)
        #: Probability level between which lumen widths are measured (calibrated per model
        #: on the validation split; 0.5 when the manifest says nothing).
        self.width_level = float(entry.extra.get("width_level", 0.5))
        self.session = open_model(model, folder=folder, **session_overrides)

    def segment(self, items: Sequence[Item]) -> list[np.ndarray]:
        # Outside the image the crop takes the image's median, not black: a black border is
        # a strong dark edge, which the network reads as a vessel (real tasks near the
        # border: val Dice 0.583 -> 0.623, connected 42 -> 51 %, docs/RESULTS.md).
        x = np.stack(
            [normalise_crop(c.warp(v.image, cval=float(np.median(v.image)))) for v, c in items]
        )
        if self.flip_tta:
            x = np.concatenate([x, x[:, ::-1]])
        logits = self.session(np.ascontiguousarray(x[:, None], dtype=np.float32))[:, 0]
        p = 1.0 / (1.0 + np.exp(-logits))
        if self.flip_tta:
            n = len(items)
            p = 0.5 * (p[:n] + p[n:, ::-1])
        return list(p.astype(np.float32))

    def report(self) -> dict[str, Any]:
        return {
            "segmenter": self.name,
            "width_level": self.width_level,
            "flip_tta": self.flip_tta,
            **self.session.report(),
        }


class FrangiSegmenter:
    """Classical baseline: Frangi vesselness (scikit-image) of the raw crop, thresholded
    softly into a probability. Needs scikit-image (the ``dev`` extra)."""

    name = "frangi"

    def __init__(self, *, sigmas=(1.5, 2.0, 3.0, 4.0, 6.0, 8.0), threshold: float = 0.05):
        self.crop = dict(DEFAULT_CROP)
        self.sigmas = tuple(sigmas)
        self.threshold = threshold

    def segment(self, items: Sequence[Item]) -> list[np.ndarray]:
        from skimage.filters import frangi

        out = []
        for view, crop in items:
            c = crop.warp(view.image, cval=float(np.median(view.image)))
            v = frangi(c.astype(np.float64), sigmas=self.sigmas, black_ridges=True)
            v = v / max(float(v.max()), 1e-12)
            # A logistic step around the threshold: 0.5 at the threshold.
            p = 1.0 / (1.0 + np.exp(-(v - self.threshold) / (0.25 * self.threshold)))
            out.append(p.astype(np.float32))
        return out

    def report(self) -> dict[str, Any]:
        return {"segmenter": self.name, "sigmas": list(self.sigmas), "threshold": self.threshold}


class OracleSegmenter:
    """The truth mask as the segmentation (evaluation only: isolates the geometry stages).

    ``masks`` maps view name ("a", "b") -> full-image mask."""

    name = "oracle"

    def __init__(self, masks: dict[str, np.ndarray]):
        self.crop = dict(DEFAULT_CROP)
        self.masks = masks

    def segment(self, items: Sequence[Item]) -> list[np.ndarray]:
        return [c.warp(self.masks[v.name].astype(np.float32)) for v, c in items]

    def report(self) -> dict[str, Any]:
        return {"segmenter": self.name}
