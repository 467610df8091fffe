"""SR losses (eqs. 2-8) on shapes with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training.surface.losses import (
    LossWeights,
    SRLoss,
    edge_loss,
    laplacian_loss,
    normal_loss,
    silhouette_loss,
    vertex_mse,
    vertex_normals,
)
from training.surface.topology import ring_topology

from angio_deploy import kernels


def _cylinder(radius=1.5, spacing=0.5, bend=0.0):
    z = spacing * np.arange(100)
    c = np.stack([bend * (z / z[-1]) ** 2 * 10.0, np.zeros(100), z], axis=1)
    v, _ = kernels.tube_mesh(c, np.full(100, radius), n_around=60, reference=[1.0, 0.0, 0.0])
    return torch.tensor(v, dtype=torch.float64)


@pytest.fixture(scope="module")
def topo():
    return ring_topology()


def test_topology_counts_match_the_paper(topo) -> None:
    assert topo.n_vertices == 6000 and len(topo.edges) == 11_940
    assert len(topo.faces) == 11_880 and len(topo.faces_capped) == 11_996
    idx, w = topo.neighbour_table()
    assert idx.shape == (6000, 5)
    # Interior vertices: 4 neighbours + self, each weight 1/5; symmetric normalisation.
    np.testing.assert_allclose(w[6000 // 2], 0.2)
    dense = np.zeros((6000, 6000))
    np.add.at(dense, (np.repeat(np.arange(6000), 5), idx.ravel()), w.ravel())
    np.testing.assert_allclose(dense, dense.T, atol=1e-15)


def test_mse_and_edge_known_values(topo) -> None:
    v = _cylinder(radius=1.5, spacing=0.5)
    assert float(vertex_mse(v + torch.tensor([0.3, 0.4, 0.0], dtype=v.dtype), v)) == pytest.approx(
        0.25
    )
    around = (2 * 1.5 * np.sin(np.pi / 60)) ** 2
    expected = (6000 * around + 5940 * 0.25) / 11_940
    assert float(edge_loss(v, torch.tensor(topo.edges))) == pytest.approx(expected, rel=1e-9)


def test_normals_are_radial_and_normal_loss_ignores_radius_and_shift(topo) -> None:
    faces = torch.tensor(topo.faces)
    v = _cylinder()
    n = vertex_normals(v, faces).reshape(100, 60, 3)[1:-1]
    radial = torch.nn.functional.normalize(
        (v.reshape(100, 60, 3) - v.reshape(100, 60, 3).mean(1, keepdim=True))[1:-1], dim=-1
    )
    torch.testing.assert_close((n * radial).sum(-1).abs(), torch.ones(98, 60, dtype=v.dtype))
    assert float(normal_loss(_cylinder(radius=2.5) + 3.0, v, faces)) < 1e-12
    assert float(normal_loss(_cylinder(bend=1.0), v, faces)) > 1e-3


def test_laplacian_is_translation_invariant_and_scales(topo) -> None:
    loss = SRLoss(topo)
    v = _cylinder()
    assert float(laplacian_loss(v + 5.0, v, loss.lap_index, loss.lap_mask)) < 1e-20
    # Scaling the mesh about any point by s scales the Laplacians by s.
    lap0 = float(laplacian_loss(v, 0.0 * v, loss.lap_index, loss.lap_mask))
    lap2 = float(laplacian_loss(2.0 * v, v, loss.lap_index, loss.lap_mask))
    assert lap2 == pytest.approx(lap0, rel=1e-9)


def test_silhouette_loss_and_weighted_total(topo) -> None:
    t = torch.zeros(10, 10)
    t[3:7, 3:7] = 1.0
    assert float(silhouette_loss(t, t)) < 1e-3
    assert float(silhouette_loss(1.0 - t, t)) > 5.0
    w = LossWeights(mse=1.0, normal=0.0, edge=0.0, laplacian=0.0, silhouette=2.0)
    loss = SRLoss(topo, w)
    v = _cylinder().float()
    total, parts = loss(v + 0.1, v, v, [(t, t), (1.0 - t, t)])
    expected = parts["mse"] + 2.0 * parts["silhouette"]
    assert float(total) == pytest.approx(expected, rel=1e-5)
    assert parts["mse"] == pytest.approx(0.03, rel=1e-5)
    with pytest.raises(ValueError, match="laplacian_reference"):
        SRLoss(topo, LossWeights(laplacian_reference="x"))
