"""Ring-profile refinement: a learned edge reader that corrects each ring of the MI mesh.

The part of surface refinement that measurably helps here (docs/RESULTS.md): the error
MI leaves with a calibrated geometry is, ring by ring, a shift of the ring centre and an
error of its radius (on validation, removing each ring's mean radial error and its shift
leaves 0.03 of 0.19 mm), i.e. where the two lumen edges of each ring lie in each view.
So this stage reads exactly that. For every ring and view:

- the ring's centre is projected into the view's SOI crop; the 2-D normal to the
  projected centreline there is the line across the vessel;
- the ring's own vertices projected onto that line give MI's two edges ``lo`` < 0 < ``hi``
  (crop pixels from the projected centre) and its projected radius r = (hi - lo) / 2;
- both crop channels (standardised image, segmenter probability: the encoder input of
  :func:`angio_deploy.pipeline.features.encoder_input`) are sampled at
  :data:`PROFILE_OFFSETS` x r along the line (the native bilinear kernel).

Features per ring (:data:`N_FEATURES`): per view the two profiles, r and (lo + hi) / 2r,
for the ring and its :data:`CONTEXT` neighbours on each side. A small network (ONNX)
returns per view the corrections of both edges in units of r. The corrected edges give,
per view, a new projected centre offset and width; the 3-D centre moves by the smallest
step across the vessel that shifts both projections by those offsets (a 3 x 3 solve per
ring, along the vessel not at all), and the radius scales by the width ratio, averaged
over the views. The tube is rebuilt with the same vertex convention as MI.

Units: crop pixels for the profiles and edges, world mm for centres and radii.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from angio_deploy import kernels
from angio_deploy.topology import N_AROUND

from .features import CHANNELS, encoder_input
from .result import MIResult, Progress

log = logging.getLogger(__name__)

PROFILE = "sr_profile"
#: Sample positions across the vessel, in units of MI's projected radius.
PROFILE_OFFSETS = np.linspace(-2.5, 2.5, 21)
#: Neighbouring rings on each side whose features each ring also sees.
CONTEXT = 2
N_CHANNELS = 2
N_VIEWS = 2
PER_VIEW = N_CHANNELS * len(PROFILE_OFFSETS) + 2
N_FEATURES = N_VIEWS * PER_VIEW * (2 * CONTEXT + 1)
#: Outputs per ring: (lo, hi) correction per view, units of the projected radius.
N_OUTPUTS = 2 * N_VIEWS
#: Largest centre shift per ring, as a share of its radius: a guard against a
#: near-degenerate solve where the vessel runs along both views' lines of sight.
MAX_SHIFT_SHARE = 0.75
MIN_RADIUS_MM = 0.1
#: Ridge of the per-ring centre solve (rows scaled to unit length, so in mm^2 per mm^2):
#: a prior that shifts are small against the noise of the edge reading, which keeps the
#: step short where both views see the vessel's cross-section line nearly edge-on (a
#: depth the two views barely constrain). Chosen on validation with SMOOTH_RINGS
#: (tools/sr_diagnostics.py variants): ridge 0.1 and 2 rings 0.1946 mm, ridge 0.001
#: unsmoothed 0.1972 (MI 0.2189); on header geometry, where the views disagree slightly,
#: the small ridge folded rings.
RIDGE = 0.1
#: Gaussian smoothing (in rings) of the corrections along the vessel before they are
#: applied: neighbouring rings (0.3-0.8 mm apart) see the same edges, and independent
#: per-ring shifts would zigzag the centreline.
SMOOTH_RINGS = 2.0


@dataclass(frozen=True)
class RingProfiles:
    """Features (R, N_FEATURES) float32 and the per-ring geometry they were read with.

    ``centres`` (R, 3) mm, ``tangents`` (R, 3) unit, ``radius_mm`` (R,) MI ring radii;
    per view (lists of length V): ``projections`` (3, 4) world-to-crop, ``centre_px``
    (R, 2), ``normal_px`` (R, 2) unit, ``lo``/``hi`` (R,) crop px from ``centre_px``.
    """

    features: np.ndarray
    centres: np.ndarray
    tangents: np.ndarray
    radius_mm: np.ndarray
    projections: list[np.ndarray]
    centre_px: list[np.ndarray]
    normal_px: list[np.ndarray]
    lo: list[np.ndarray]
    hi: list[np.ndarray]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def ring_edges(
    P: np.ndarray, rings: np.ndarray, centre_px: np.ndarray, normal_px: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Extent (lo, hi) crop px of each ring (R, n, 3) mm projected with P onto its line
    through ``centre_px`` along ``normal_px`` (R, 2)."""
    R, n, _ = rings.shape
    uv = kernels.project(P, rings.reshape(-1, 3)).reshape(R, n, 2)
    s = np.einsum("rkj,rj->rk", uv - centre_px[:, None], normal_px)
    return s.min(axis=1), s.max(axis=1)


def _with_context(f: np.ndarray, context: int) -> np.ndarray:
    if context == 0:
        return f
    pad = np.pad(f, ((context, context), (0, 0)), mode="edge")
    n = len(f)
    return np.concatenate(
        [pad[context + o : context + o + n] for o in range(-context, context + 1)], 1
    )


def ring_profiles(
    planes: Sequence[np.ndarray],
    crop_projections: Sequence[np.ndarray],
    vertices: np.ndarray,
    n_around: int = N_AROUND,
) -> RingProfiles:
    """Profiles of a ring mesh ``vertices`` (R * n_around, 3) mm in each view.

    ``planes[v]`` (C, H, W) float: the view's crop channels; ``crop_projections[v]``
    (3, 4): world mm to crop pixels.
    """
    if len(planes) != N_VIEWS or len(crop_projections) != N_VIEWS:
        raise ValueError(
            f"need {N_VIEWS} views, got {len(planes)} crop planes and "
            f"{len(crop_projections)} projections"
        )
    rings = np.asarray(vertices, dtype=np.float64).reshape(-1, n_around, 3)
    centres = rings.mean(axis=1)
    radius = np.linalg.norm(rings - centres[:, None], axis=2).mean(axis=1)
    tangents = _unit(np.gradient(centres, axis=0))
    feats, cpx, npx, los, his, Ps = [], [], [], [], [], []
    for plane, P in zip(planes, crop_projections, strict=True):
        plane = np.asarray(plane, dtype=np.float32)
        if plane.ndim != 3 or plane.shape[0] != N_CHANNELS:
            raise ValueError(f"crop planes must be ({N_CHANNELS}, H, W), got {plane.shape}")
        P = np.asarray(P, dtype=np.float64)
        c2 = kernels.project(P, centres)
        t2 = _unit(np.gradient(c2, axis=0))
        n2 = np.stack([-t2[:, 1], t2[:, 0]], axis=1)
        lo, hi = ring_edges(P, rings, c2, n2)
        r = np.maximum(0.5 * (hi - lo), 1e-3)
        pts = c2[:, None, :] + (PROFILE_OFFSETS[None, :, None] * r[:, None, None]) * n2[:, None, :]
        H, W = plane.shape[1:]
        samples = kernels.sample_bilinear(
            [np.ascontiguousarray(plane.transpose(1, 2, 0))], pts.reshape(-1, 2), W, H
        ).reshape(len(centres), len(PROFILE_OFFSETS), N_CHANNELS)
        feats.append(
            np.concatenate(
                [
                    samples.transpose(0, 2, 1).reshape(len(centres), -1),
                    r[:, None],
                    (0.5 * (lo + hi) / r)[:, None],
                ],
                axis=1,
            )
        )
        cpx.append(c2)
        npx.append(n2)
        los.append(lo)
        his.append(hi)
        Ps.append(P)
    f = _with_context(np.concatenate(feats, axis=1), CONTEXT).astype(np.float32)
    return RingProfiles(f, centres, tangents, radius, Ps, cpx, npx, los, his)


def _projection_jacobian(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """d(pixel)/d(world mm) (R, 2, 3) of the projection P at points X (R, 3)."""
    h = X @ P[:, :3].T + P[:, 3]
    uv = h[:, :2] / h[:, 2:3]
    return (P[None, :2, :3] - uv[:, :, None] * P[None, 2:3, :3]) / h[:, 2, None, None]


def corrected_rings(
    rp: RingProfiles,
    edge_corrections: np.ndarray,
    ridge: float = RIDGE,
    smooth_rings: float = SMOOTH_RINGS,
) -> tuple[np.ndarray, np.ndarray]:
    """New ring centres (R, 3) mm and radii (R,) mm from edge corrections (R, 2V).

    Column 2v / 2v + 1: the move of view v's lower / upper edge in units of its projected
    radius. Zero corrections return MI's rings.
    """
    corr = np.asarray(edge_corrections, dtype=np.float64)
    R = len(rp.centres)
    if corr.shape != (R, N_OUTPUTS):
        raise ValueError(f"edge corrections must be ({R}, {N_OUTPUTS}), got {corr.shape}")
    if smooth_rings > 0:
        corr = ndimage.gaussian_filter1d(corr, smooth_rings, axis=0, mode="nearest")
    A = np.zeros((R, 3, 3))
    b = np.zeros((R, 3))
    radii = []
    for v in range(N_VIEWS):
        lo, hi = rp.lo[v], rp.hi[v]
        r = 0.5 * (hi - lo)
        new_lo = lo + r * corr[:, 2 * v]
        new_hi = hi + r * corr[:, 2 * v + 1]
        A[:, v] = np.einsum(
            "ri,rij->rj", rp.normal_px[v], _projection_jacobian(rp.projections[v], rp.centres)
        )
        b[:, v] = 0.5 * (new_lo + new_hi) - 0.5 * (lo + hi)
        width = hi - lo
        ratio = np.where(
            width > 1e-6, np.maximum(new_hi - new_lo, 0.0) / np.maximum(width, 1e-6), 1.0
        )
        radii.append(rp.radius_mm * ratio)
    A[:, 2] = rp.tangents  # no move along the vessel
    scale = np.maximum(np.linalg.norm(A, axis=2), 1e-12)
    A /= scale[..., None]
    b /= scale
    AtA = np.einsum("rki,rkj->rij", A, A) + ridge * np.eye(3)
    shift = np.linalg.solve(AtA, np.einsum("rki,rk->ri", A, b)[..., None])[..., 0]
    limit = MAX_SHIFT_SHARE * rp.radius_mm
    norm = np.linalg.norm(shift, axis=1)
    shift *= np.minimum(1.0, limit / np.maximum(norm, 1e-12))[:, None]
    return rp.centres + shift, np.maximum(np.mean(radii, axis=0), MIN_RADIUS_MM)


def refined_mesh(
    rp: RingProfiles, edge_corrections: np.ndarray, reference: np.ndarray, **step: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (R * N_AROUND, 3), centres (R, 3) and radii (R,), mm, of the tube rebuilt
    from the corrected rings (:func:`corrected_rings`; ``step``: its ridge /
    smooth_rings), with MI's vertex convention (``reference``: view A's direction)."""
    centres, radii = corrected_rings(rp, edge_corrections, **step)
    vertices, _ = kernels.tube_mesh(centres, radii, n_around=N_AROUND, reference=reference)
    return vertices, centres, radii


def feature_layout() -> dict[str, Any]:
    """What the features are, as the model's manifest entry records it (``input``): the
    export writes it and :class:`ProfileRefiner` refuses a model recorded otherwise."""

    return {
        "shape": ["R", N_FEATURES],
        "offsets_in_radii": [float(u) for u in PROFILE_OFFSETS],
        "context_rings": CONTEXT,
        "channels": list(CHANNELS),
    }


class ProfileRefiner:
    """Loads the ring-profile network once; :meth:`refine` is thread-safe."""

    def __init__(self, *, folder=None, **session_overrides: Any):
        from angio_deploy.models import ModelFileError, load_manifest, open_model

        entry = load_manifest(folder).get(PROFILE)
        inp = entry.input or {}
        # A model trained on other profiles would read these features wrongly, silently.
        for key, want in feature_layout().items():
            if inp.get(key) != want:
                raise ModelFileError(
                    f"{entry.path}: manifest input.{key} is {inp.get(key)!r}, this version "
                    f"of angio-deploy computes {want!r}; re-export the model for it"
                )
        self.model = open_model(PROFILE, folder=folder, **session_overrides)

    def refine(self, mi: MIResult, progress: Progress | None = None) -> MIResult:
        """The MI result with corrected rings (vertices, centreline, radii)."""
        t0 = time.perf_counter()
        rp = ring_profiles(
            [encoder_input(vr) for vr in mi.views],
            [vr.crop.projection(g.P) for vr, g in zip(mi.views, mi.geometries, strict=True)],
            mi.vertices,
        )
        vertices, centres, radii = refined_mesh(
            rp, self.model(rp.features), mi.geometries[0].direction
        )
        low = mi.low_confidence
        if low is not None and low.any() and not low.all():
            # The edges this stage reads lie in a gap of the segmentation there: take the
            # radius from the refined neighbours instead, as MI does.
            k = np.arange(len(radii))
            radii = radii.copy()
            radii[low] = np.interp(k[low], k[~low], radii[~low])
            vertices, _ = kernels.tube_mesh(
                centres, radii, n_around=N_AROUND, reference=mi.geometries[0].direction
            )
        dt = time.perf_counter() - t0
        timings = {**mi.timings_s, "sr_profile": dt}
        if progress is not None:
            progress("sr_profile", dt)
        return dataclasses.replace(
            mi, vertices=vertices, centreline_mm=centres, radius_mm=radii, timings_s=timings
        )

    def report(self) -> dict[str, Any]:
        return {"profile": self.model.report()}
