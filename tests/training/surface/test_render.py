"""Soft silhouette renderer: culled version == dense reference (values and gradients)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training.surface.render import one_side, project, soft_silhouette, soft_silhouette_dense

from angio_deploy import kernels


def _small_mesh(n_rings=6, n_around=8, radius=3.0, dtype=torch.float64):
    t = np.linspace(0.0, 1.0, n_rings)
    c = np.stack([8.0 + 20.0 * t, 12.0 + 4.0 * np.sin(3.0 * t), np.zeros_like(t)], axis=1)
    v, f = kernels.tube_mesh(
        c,
        np.full(n_rings, radius),
        n_around=n_around,
        caps=True,
        reference=np.array([0.0, 0.0, 1.0]),
    )
    # Orthographic view along z: pixels = (x, y).
    return torch.tensor(v[:, :2], dtype=dtype, requires_grad=True), torch.tensor(f)


@pytest.mark.parametrize("sigma", [0.3, 1.0])
def test_culled_matches_dense_in_values_and_gradients(sigma: float) -> None:
    uv, faces = _small_mesh()
    target = torch.rand(24, 36, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    dense = soft_silhouette_dense(uv, faces, 24, 36, sigma=sigma)
    (g_dense,) = torch.autograd.grad((dense * target).sum(), uv)
    culled = soft_silhouette(uv, faces, 24, 36, sigma=sigma, eps=1e-10, max_pairs=500)
    (g_culled,) = torch.autograd.grad((culled * target).sum(), uv)
    assert float((culled - dense).abs().max().detach()) < 1e-8
    torch.testing.assert_close(g_culled, g_dense, atol=1e-7, rtol=1e-6)
    # The silhouette covers the tube (4 px either side of the axis) and not the corners.
    assert float(culled[16, 18].detach()) > 0.95 and float(culled[0, 0].detach()) < 1e-6


def test_dense_gradient_is_the_analytic_one() -> None:
    uv, faces = _small_mesh(n_rings=3, n_around=5)
    uv = uv.detach().clone().requires_grad_(True)
    torch.autograd.gradcheck(
        lambda x: soft_silhouette_dense(x, faces, 8, 10, sigma=2.0).sum(), (uv,)
    )


def test_twelve_thousand_triangles_at_512_with_bounded_memory() -> None:
    # The 100 x 60 SR mesh (capped: 11,996 triangles), zoomed to cover much of a 512 view.
    t = np.linspace(0.0, 1.0, 100)
    c = np.stack([40.0 + 420.0 * t, 250.0 + 60.0 * np.sin(4.0 * t), np.zeros_like(t)], axis=1)
    v, f = kernels.tube_mesh(
        c, 10.0 + 5.0 * t, n_around=60, caps=True, reference=np.array([0.0, 0.0, 1.0])
    )
    assert len(f) == 11_996
    uv = torch.tensor(v[:, :2], dtype=torch.float32, requires_grad=True)
    sil = soft_silhouette(uv, torch.tensor(f), 512, 512)
    sil.sum().backward()
    assert uv.grad is not None and torch.isfinite(uv.grad).all()
    # As sigma -> 0 the soft silhouette becomes the hard one. (At larger sigma the product
    # over the triangles stacked at a tube's rim pushes the 0.5 level outwards, ~1 px at
    # sigma = 0.5: why training compares with the truth mesh rendered the same way.)
    sil = soft_silhouette(uv.detach(), torch.tensor(f), 512, 512, sigma=0.01)
    hard = (
        kernels.rasterise_silhouette(
            np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]]), v, f, 512, 512
        )
        > 0
    )
    soft = sil.detach().numpy() > 0.5
    assert (soft ^ hard).sum() / hard.sum() < 0.02


def test_project_matches_the_native_kernel() -> None:
    P = np.array([[1000.0, 0, 256, 0], [0, 1000.0, 256, 0], [0, 0, 1.0, 800.0]])
    X = np.random.default_rng(0).normal(size=(50, 3)) * 20.0
    got = project(torch.tensor(P), torch.tensor(X)).numpy()
    np.testing.assert_allclose(got, kernels.project(P, X), rtol=1e-12, atol=1e-9)


def test_one_side_of_a_closed_tube_covers_its_silhouette() -> None:
    t = np.linspace(0.0, 1.0, 40)
    c = np.stack([20.0 + 200.0 * t, 60.0 + 20.0 * np.sin(4.0 * t), 5.0 * t], axis=1)
    v, f = kernels.tube_mesh(
        c, 6.0 + 3.0 * t, n_around=24, caps=True, reference=np.array([0.0, 0.0, 1.0])
    )
    uv = torch.tensor(v[:, :2], dtype=torch.float32)
    faces = torch.tensor(f)
    half = one_side(uv, faces)
    assert 0.4 * len(faces) < len(half) < 0.6 * len(faces)
    # The other winding gives the complementary half (all faces but the edge-on ones).
    other = one_side(uv, faces[:, [0, 2, 1]])
    assert len(half) + len(other) <= len(faces) and len(half) + len(other) > 0.95 * len(faces)
    full = soft_silhouette(uv, faces, 128, 240).numpy() > 0.5
    front = soft_silhouette(uv, half, 128, 240).numpy() > 0.5
    hard = (
        kernels.rasterise_silhouette(
            np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]]), v, f, 240, 128
        )
        > 0
    )
    # One side loses nothing of the hard silhouette; its soft rim sits a little closer in.
    assert (hard & ~front).sum() <= 0.01 * hard.sum()
    assert (front & ~full).sum() == 0
    assert (full ^ front).sum() < 0.08 * hard.sum()
