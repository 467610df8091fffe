"""Feature encoder shapes; graph network: zero start, gather form == torch-geometric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training.surface.model import IN_FEATURES, FeatureEncoder, GatherGCN
from training.surface.topology import ring_topology

pytest.importorskip("torch_geometric")


def _edge_index(topo) -> torch.Tensor:
    return torch.as_tensor(np.concatenate([topo.edges, topo.edges[:, ::-1]]).T.copy())


def test_encoder_returns_four_blocks_of_240_channels() -> None:
    enc = FeatureEncoder(in_channels=2)
    maps = enc(torch.zeros(2, 2, 160, 256))
    assert [tuple(m.shape) for m in maps] == [
        (2, 16, 160, 256),
        (2, 32, 80, 128),
        (2, 64, 40, 64),
        (2, 128, 20, 32),
    ]
    assert 2 * sum(m.shape[1] for m in maps) + 3 == IN_FEATURES == 483


def test_untrained_network_keeps_the_mi_mesh() -> None:
    from training.surface.model import SurfaceGCN

    topo = ring_topology()
    with torch.no_grad():
        out = SurfaceGCN()(torch.randn(6000, IN_FEATURES), _edge_index(topo))
    assert out.shape == (6000, 3) and float(out.abs().max()) == 0.0


def test_gather_form_matches_torch_geometric() -> None:
    from training.surface.model import SurfaceGCN

    torch.manual_seed(0)
    topo = ring_topology()
    gcn = SurfaceGCN()
    for p in gcn.convs[-1].parameters():
        torch.nn.init.normal_(p, std=0.2)
    gather = GatherGCN(*topo.neighbour_table()).load_from(gcn)
    x = torch.randn(6000, IN_FEATURES)
    with torch.no_grad():
        ref = gcn(x, _edge_index(topo))
        got = gather(x)
    assert float(ref.abs().max()) > 0.1
    assert float((got - ref).abs().max()) <= 1e-5
    with pytest.raises(ValueError, match="483 features"):
        gather(torch.zeros(6000, 10))
