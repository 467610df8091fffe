"""Surface refinement networks (3DAngioNet section 2.3).

- :class:`FeatureEncoder`: the VGG16-style encoder of multi-view Pixel2Mesh, four blocks of
  3x3 convolutions with 16, 32, 64 and 128 channels (2, 2, 3, 3 convolutions; blocks 2-4
  start with a 2x2 max-pool), returning each block's output: 240 channels in all at
  strides 1, 2, 4 and 8 of the input crop.
- :class:`SurfaceGCN`: 8 torch-geometric ``GCNConv`` layers (hidden 128, ReLU, residual
  connections on the hidden layers) regressing a displacement per vertex of the MI mesh,
  in the normalised frame (the last layer's output times DISPLACEMENT_SCALE). The last
  layer starts at zero, so an untrained network returns the MI mesh unchanged.
- :class:`GatherGCN`: the same network with each ``GCNConv`` written as a gather over a
  precomputed normalised neighbour table of the fixed 100 x 60 topology (no scatter
  operations, which TensorRT handles badly): the form exported to ONNX. It shares its
  parameters' layout with :class:`SurfaceGCN` (``load_state_dict`` works both ways).

Per-vertex input features (483 = 2 views x 240 + 3): bilinear samples of the four maps of
each view at the vertex's projection, then the vertex position in the normalised frame.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

BLOCKS = ((16, 2), (32, 2), (64, 3), (128, 3))
FEATURE_CHANNELS = sum(c for c, _ in BLOCKS)  # 240
N_VIEWS = 2
IN_FEATURES = N_VIEWS * FEATURE_CHANNELS + 3  # 483
HIDDEN = 128
N_LAYERS = 8
#: The last layer's output times this is the displacement in the normalised frame (where
#: 1 is the segment's length, ~30-80 mm): Adam's first steps move every weight by ~lr,
#: which unscaled displaced the zero-initialised output by millimetres at step one.
DISPLACEMENT_SCALE = 0.01


class FeatureEncoder(nn.Module):
    """Crop (B, in_channels, H, W) -> four maps (B, C_k, H / 2^k, W / 2^k), k = 0..3."""

    def __init__(self, in_channels: int = 2):
        super().__init__()
        self.in_channels = in_channels
        blocks = []
        c_in = in_channels
        for k, (c, n) in enumerate(BLOCKS):
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if k else []
            for _ in range(n):
                layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = c
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = []
        for b in self.blocks:
            x = b(x)
            out.append(x)
        return tuple(out)


def _check_features(x: torch.Tensor) -> None:
    if x.shape[-1] != IN_FEATURES:
        raise ValueError(f"expected {IN_FEATURES} features per vertex, got {x.shape[-1]}")


class SurfaceGCN(nn.Module):
    """Vertex features (N, 483) + edge_index (2, E) -> displacements (N, 3)."""

    def __init__(
        self, in_features: int = IN_FEATURES, hidden: int = HIDDEN, layers: int = N_LAYERS
    ):
        super().__init__()
        from torch_geometric.nn import GCNConv

        dims = [in_features] + [hidden] * (layers - 1) + [3]
        self.convs = nn.ModuleList(
            GCNConv(dims[k], dims[k + 1], cached=False) for k in range(layers)
        )
        nn.init.zeros_(self.convs[-1].lin.weight)
        nn.init.zeros_(self.convs[-1].bias)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        _check_features(x)
        h = torch.relu(self.convs[0](x, edge_index))
        for conv in self.convs[1:-1]:
            h = h + torch.relu(conv(h, edge_index))
        return DISPLACEMENT_SCALE * self.convs[-1](h, edge_index)


class _GatherConv(nn.Module):
    """GCNConv over a fixed graph: out_i = sum_k w[i, k] (x W^T)[idx[i, k]] + b."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.lin = nn.Linear(c_in, c_out, bias=False)
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        g = y[index.reshape(-1)].reshape(*index.shape, y.shape[-1])
        return (g * weight.unsqueeze(-1)).sum(dim=-2) + self.bias


class GatherGCN(nn.Module):
    """Vertex features (N, 483) -> displacements (N, 3) over one fixed topology."""

    def __init__(
        self,
        index: np.ndarray,
        weight: np.ndarray,
        in_features: int = IN_FEATURES,
        hidden: int = HIDDEN,
        layers: int = N_LAYERS,
    ):
        super().__init__()
        dims = [in_features] + [hidden] * (layers - 1) + [3]
        self.convs = nn.ModuleList(_GatherConv(dims[k], dims[k + 1]) for k in range(layers))
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.int64))
        self.register_buffer("weight", torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features(x)
        h = torch.relu(self.convs[0](x, self.index, self.weight))
        for conv in self.convs[1:-1]:
            h = h + torch.relu(conv(h, self.index, self.weight))
        return DISPLACEMENT_SCALE * self.convs[-1](h, self.index, self.weight)

    def load_from(self, gcn: SurfaceGCN) -> GatherGCN:
        """Copy a torch-geometric :class:`SurfaceGCN`'s parameters (same names)."""
        self.load_state_dict({**gcn.state_dict(), "index": self.index, "weight": self.weight})
        return self


def sample_maps(maps: tuple[torch.Tensor, ...], uv: torch.Tensor, width: int, height: int):
    """Bilinear samples (N, sum C) of one view's maps [(C, h, w)] at crop pixels uv (N, 2).

    Every map covers the whole crop (align_corners=False, border clamp): the convention of
    the native ``sample_bilinear`` kernel the runtime uses.
    """
    size = torch.tensor([width, height], dtype=uv.dtype)
    grid = ((uv + 0.5) / size * 2.0 - 1.0).reshape(1, 1, -1, 2)
    out = [
        torch.nn.functional.grid_sample(
            m.unsqueeze(0),
            grid.to(m.dtype),
            mode="bilinear",
            padding_mode="border",
            align_corners=False,
        )[0, :, 0].T
        for m in maps
    ]
    return torch.cat(out, dim=1)


def project_h(P: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """World points (N, 3) -> pixels (N, 2) with a 3x4 matrix."""
    h = X @ P[:, :3].T + P[:, 3]
    return h[:, :2] / h[:, 2:3]


class SurfaceRefinementNet(nn.Module):
    """Encoder + graph network of one SR model (the unit that is trained and checkpointed).

    :meth:`forward` takes one case: ``crops`` (V, C, H, W) encoder inputs, ``crop_P``
    (V, 3, 4) world-to-crop projections, ``vertices`` (N, 3) MI mesh in world mm, and the
    normalised frame (``R`` (3, 3), ``b`` (3,), ``scale``); returns the predicted vertices
    in the normalised frame (N, 3) and the input vertices in that frame.
    """

    def __init__(self, edge_index: torch.Tensor, in_channels: int = 2):
        super().__init__()
        self.encoder = FeatureEncoder(in_channels)
        self.gcn = SurfaceGCN()
        self.register_buffer("edge_index", edge_index, persistent=False)

    def features(self, crops, crop_P, vertices, R, b, scale) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.encoder(crops)
        H, W = crops.shape[-2:]
        parts = []
        for v in range(crops.shape[0]):
            uv = project_h(crop_P[v], vertices)
            parts.append(sample_maps(tuple(m[v] for m in maps), uv, W, H))
        pos = scale * (vertices @ R.T + b)
        parts.append(pos.to(parts[0].dtype))
        return torch.cat(parts, dim=1), pos

    def forward(self, crops, crop_P, vertices, R, b, scale) -> tuple[torch.Tensor, torch.Tensor]:
        x, pos = self.features(crops, crop_P, vertices, R, b, scale)
        return pos + self.gcn(x, self.edge_index).to(pos.dtype), pos


def edge_index_of(edges: np.ndarray) -> torch.Tensor:
    """Both directions of undirected edges (E, 2) -> torch-geometric edge_index (2, 2E)."""
    return torch.as_tensor(np.concatenate([edges, edges[:, ::-1]]).T.copy(), dtype=torch.int64)
