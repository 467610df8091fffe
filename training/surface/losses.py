"""Surface refinement losses, 3DAngioNet equations 2-8, over the fixed ring topology.

All terms take vertices in the normalised frame ((N, 3) or batched (B, N, 3)).

- :func:`vertex_mse` (eq. 2): mean over vertices of the squared distance to the truth.
- :func:`normal_loss` (eqs. 3-4): 1 - mean |n_pred . n_true| of unit vertex normals, each
  the normalised mean of its adjacent faces' unit normals.
- :func:`edge_loss` (eq. 5): mean squared length of the predicted mesh's graph edges.
- :func:`laplacian_loss` (eqs. 6-7): mean squared difference between the uniform
  Laplacians (vertex minus mean of its graph neighbours) of prediction and reference; the
  reference is the truth (the equation's v), or the input MI mesh as in Pixel2Mesh.
- :func:`silhouette_loss`: L_seg (BCE + soft Dice, as for the segmenter) between the soft
  silhouette of the prediction in each view and a target silhouette.
- :class:`SRLoss` combines them with eq. 8's weights (configurable).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .topology import RingTopology


def vertex_mse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    return ((pred - true) ** 2).sum(-1).mean()


def vertex_normals(v: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit vertex normals (..., N, 3): normalised mean of adjacent unit face normals."""
    a, b, c = v[..., faces[:, 0], :], v[..., faces[:, 1], :], v[..., faces[:, 2], :]
    fn = torch.nn.functional.normalize(torch.cross(b - a, c - a, dim=-1), dim=-1, eps=1e-12)
    acc = torch.zeros_like(v)
    for k in range(3):
        acc = acc.index_add(-2, faces[:, k], fn)
    return torch.nn.functional.normalize(acc, dim=-1, eps=1e-12)


def normal_loss(pred: torch.Tensor, true: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    dots = (vertex_normals(pred, faces) * vertex_normals(true, faces)).sum(-1)
    return 1.0 - dots.abs().mean()


def edge_loss(pred: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    d = pred[..., edges[:, 0], :] - pred[..., edges[:, 1], :]
    return (d**2).sum(-1).mean()


def uniform_laplacian(v: torch.Tensor, index: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """v_i - mean of v's graph neighbours; ``index``/``mask`` (N, K) exclude self."""
    g = v[..., index.reshape(-1), :].reshape(*v.shape[:-2], *index.shape, 3)
    m = mask.to(v.dtype).unsqueeze(-1)
    return v - (g * m).sum(-2) / m.sum(-2)


def laplacian_loss(
    pred: torch.Tensor, ref: torch.Tensor, index: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    d = uniform_laplacian(pred, index, mask) - uniform_laplacian(ref, index, mask)
    return (d**2).sum(-1).mean()


def silhouette_loss(prob: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """BCE + soft Dice of a soft silhouette ``prob`` in [0, 1] against ``target``."""
    p = prob.clamp(1e-6, 1.0 - 1e-6)
    bce = torch.nn.functional.binary_cross_entropy(p, target)
    dice = (2.0 * (p * target).sum() + smooth) / (p.sum() + target.sum() + smooth)
    return bce + (1.0 - dice)


@dataclass(frozen=True)
class LossWeights:
    """Eq. 8: L = L_MSE + 0.01 L_Norm + 2.5 L_Edge + 100 L_Lap + 0.0002 L_Seg."""

    mse: float = 1.0
    normal: float = 0.01
    edge: float = 2.5
    laplacian: float = 100.0
    silhouette: float = 0.0002
    laplacian_reference: str = "truth"  # or "input"

    def to_dict(self) -> dict:
        return asdict(self)


class SRLoss(torch.nn.Module):
    """Weighted sum of the terms above; :meth:`forward` returns (total, parts)."""

    def __init__(self, topology: RingTopology, weights: LossWeights | None = None):
        super().__init__()
        self.weights = weights or LossWeights()
        if self.weights.laplacian_reference not in ("truth", "input"):
            raise ValueError("laplacian_reference must be 'truth' or 'input'")
        idx, w = topology.neighbour_table()
        # Neighbours without self (column 0) for the Laplacian.
        self.register_buffer("lap_index", torch.as_tensor(idx[:, 1:]))
        self.register_buffer("lap_mask", torch.as_tensor(w[:, 1:] > 0))
        self.register_buffer("faces", torch.as_tensor(topology.faces))
        self.register_buffer("edges", torch.as_tensor(topology.edges))

    def forward(
        self,
        pred: torch.Tensor,
        true: torch.Tensor,
        initial: torch.Tensor,
        silhouettes: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        w = self.weights
        ref = true if w.laplacian_reference == "truth" else initial
        parts = {
            "mse": vertex_mse(pred, true),
            "normal": normal_loss(pred, true, self.faces),
            "edge": edge_loss(pred, self.edges),
            "laplacian": laplacian_loss(pred, ref, self.lap_index, self.lap_mask),
        }
        if silhouettes and w.silhouette > 0:
            parts["silhouette"] = torch.stack(
                [silhouette_loss(p, t) for p, t in silhouettes]
            ).mean()
        total = sum(getattr(w, k) * v for k, v in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}


def as_tensor(a: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)
