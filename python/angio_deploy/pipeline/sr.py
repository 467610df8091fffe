"""Surface refinement (3DAngioNet section 2.3) at run time: no torch.

Two stages, each run when its models are shipped (:class:`SurfaceRefiner`): first the
ring-profile network (:mod:`.profile`: reads each ring's two lumen edges in both views and
moves / resizes the ring; the stage that measurably improves MI here, docs/RESULTS.md),
then the paper's graph network, described below.

The paper's stage, each step timed: the feature encoder (ONNX) runs on both views' SOI
crops (the crops mesh initialisation segmented, two channels: the standardised image and
the segmenter's probability); every MI vertex is projected into each view's crop with the (refined)
geometry and the four feature maps are sampled there (native bilinear kernel); with the
vertex's position in the normalised frame that makes 2 x 240 + 3 = 483 features; the graph
network (ONNX, gather form over the fixed 100 x 60 topology) returns a displacement per
vertex in the normalised frame, mapped back to world mm.

Why crops rather than the paper's whole 512 x 512 views: the crop is what the segmenter
already prepared, it magnifies short segments (up to 2x) so the finest feature map
resolves the lumen edge better, and it costs about a sixth of the pixels (docs/DESIGN.md).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np

from .features import CHANNELS, encoder_input, ring_summary, sr_frame, vertex_features
from .profile import PROFILE, ProfileRefiner
from .result import MIResult, Progress

log = logging.getLogger(__name__)

ENCODER = "sr_encoder"
GCN = "sr_gcn"


class SurfaceRefiner:
    """Loads the shipped surface-refinement stages once; :meth:`refine` is thread-safe.

    Two stages, each used when its models are in the manifest, in this order: the
    ring-profile network (``sr_profile``, :mod:`.profile`), then the paper's encoder and
    graph network (``sr_encoder`` + ``sr_gcn``). ModelFileError when neither is shipped,
    or when only one of the paper's two models is.
    """

    def __init__(self, *, folder=None, **session_overrides: Any):
        from angio_deploy.models import ModelFileError, load_manifest, open_model

        manifest = load_manifest(folder)
        names = set(manifest.names())
        self.profile: ProfileRefiner | None = None
        self.encoder = self.gcn = None
        if PROFILE in names:
            self.profile = ProfileRefiner(folder=folder, **session_overrides)
        if ENCODER in names or GCN in names:
            enc = manifest.get(ENCODER)
            self.channels = tuple((enc.input or {}).get("channels", CHANNELS))
            self.encoder = open_model(ENCODER, folder=folder, **session_overrides)
            self.gcn = open_model(GCN, folder=folder, **session_overrides)
        if self.profile is None and self.gcn is None:
            raise ModelFileError(
                f"{manifest.path}: no surface refinement model ({PROFILE}, or {ENCODER} "
                f"+ {GCN}) is shipped"
            )

    @property
    def stages(self) -> list[str]:
        """Names of the stages :meth:`refine` runs, in order."""
        return [s for s, m in (("profile", self.profile), ("gcn", self.gcn)) if m is not None]

    def refine(self, mi: MIResult, progress: Progress | None = None) -> MIResult:
        """The MI result with refined vertices (and ring centres / radii from them)."""
        out = mi
        if self.profile is not None:
            out = self.profile.refine(out, progress)
        if self.gcn is not None:
            out = self._graph_refine(out, progress)
        return out

    def _graph_refine(self, mi: MIResult, progress: Progress | None) -> MIResult:
        timings = dict(mi.timings_s)
        t0 = time.perf_counter()
        x = np.stack([encoder_input(vr, self.channels) for vr in mi.views])
        outs = self.encoder.run(x)
        # NCHW -> per view, channel-last maps for the native sampler.
        maps = [
            [np.ascontiguousarray(o[v].transpose(1, 2, 0), dtype=np.float32) for o in outs.values()]
            for v in range(len(mi.views))
        ]
        t1 = time.perf_counter()
        timings["sr_encoder"] = t1 - t0
        if progress is not None:
            progress("sr_encoder", t1 - t0)
        crop = mi.views[0].crop
        frame = sr_frame(mi.vertices, mi.geometries[0].direction)
        feats = vertex_features(
            maps,
            [vr.crop.projection(g.P) for vr, g in zip(mi.views, mi.geometries, strict=True)],
            (crop.width, crop.height),
            mi.vertices,
            frame,
        )
        disp = self.gcn(feats)
        vertices = frame.to_world(frame.to_frame(mi.vertices) + disp.astype(np.float64))
        centres, radii = ring_summary(vertices)
        t2 = time.perf_counter()
        timings["sr_gcn"] = t2 - t1
        if progress is not None:
            progress("sr_gcn", t2 - t1)
        return dataclasses.replace(
            mi, vertices=vertices, centreline_mm=centres, radius_mm=radii, timings_s=timings
        )

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stages": self.stages}
        if self.profile is not None:
            out.update(self.profile.report())
        if self.gcn is not None:
            out.update({"encoder": self.encoder.report(), "gcn": self.gcn.report()})
        return out
