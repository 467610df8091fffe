"""Features both surface-refinement stages read from a mesh initialisation (MI) result.

One home for what the ring-profile stage (:mod:`.profile`), the paper's encoder + graph
network (:mod:`.sr`), their trainers and the exporters must agree on: the encoder input
planes of a view, the normalised frame of an MI mesh, per-vertex samples of the maps, and
ring summaries. Imports only the MI result types, so both stages import it without a cycle.
"""

from __future__ import annotations

import numpy as np

from angio_deploy import kernels
from angio_deploy.geometry import NormalisedFrame
from angio_deploy.topology import N_AROUND

from .crop import normalise_crop
from .result import ViewResult

#: Encoder input channels, in order (recorded in the model manifest as input.channels).
CHANNELS = ("image", "probability")


def encoder_input(vr: ViewResult, channels: tuple[str, ...] = CHANNELS) -> np.ndarray:
    """(C, height, width) float32 encoder input of one view from its MI crop."""
    planes = []
    for ch in channels:
        if ch == "image":
            planes.append(normalise_crop(vr.crop.warp(vr.view.image)))
        elif ch == "probability":
            planes.append(np.asarray(vr.prob, dtype=np.float32))
        else:
            raise ValueError(f"unknown encoder input channel {ch!r}")
    return np.stack(planes).astype(np.float32)


def sr_frame(vertices: np.ndarray, reference: np.ndarray) -> NormalisedFrame:
    """The normalised frame of an MI mesh, roll fixed by view A's direction."""
    return NormalisedFrame.from_ring_mesh(vertices, N_AROUND, roll_reference=reference)


def vertex_features(
    maps: list[list[np.ndarray]],
    crop_projections: list[np.ndarray],
    crop_size: tuple[int, int],
    vertices: np.ndarray,
    frame: NormalisedFrame,
) -> np.ndarray:
    """(N, 483) float32: per view, bilinear samples of its maps [(Hk, Wk, Ck)] at the
    vertices' crop pixels (projection ``crop_projections[v]``, crop ``(width, height)``),
    then the vertices' normalised coordinates."""
    W, H = crop_size
    parts = []
    for view_maps, Pc in zip(maps, crop_projections, strict=True):
        uv = kernels.project(Pc, vertices)
        parts.append(kernels.sample_bilinear(view_maps, uv, W, H).astype(np.float32))
    parts.append(frame.to_frame(vertices).astype(np.float32))
    return np.concatenate(parts, axis=1)


def ring_summary(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring centres (R, 3) mm and mean radii (R,) mm of a ring mesh."""
    rings = vertices.reshape(-1, N_AROUND, 3)
    centres = rings.mean(axis=1)
    return centres, np.linalg.norm(rings - centres[:, None], axis=2).mean(axis=1)
