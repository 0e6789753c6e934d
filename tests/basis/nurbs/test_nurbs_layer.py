"""NURBSSurface / NURBSCurve layers: parameters, fitting by autograd, learnable knots."""

from __future__ import annotations

import math

import numpy as np
import torch

from dfem.basis.nurbs import NURBSCurve, NURBSSurface, clamped_knots, surface_points

f64 = torch.float64


def test_surface_layer_matches_functional(rng):
    cp = torch.tensor(rng.uniform(-1, 1, (6, 5, 3)))
    w = torch.tensor(rng.uniform(0.5, 2, (6, 5)))
    layer = NURBSSurface(cp, w, degree_u=3, degree_v=2)
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"control_points", "log_weights"}
    u, v = torch.rand(9, dtype=f64), torch.rand(4, dtype=f64)
    ref = surface_points(cp, w, clamped_knots(6, 3), clamped_knots(5, 2), 3, 2, u, v)
    torch.testing.assert_close(layer(u, v), ref)
    S, Su, Sv = layer(u, v, derivatives=True)
    assert S.shape == Su.shape == Sv.shape == (9, 4, 3)
    assert layer(17, 5).shape == (17, 5, 3)  # ints: equally spaced over the domain
    assert layer(u, v[:1].expand(9), grid=False).shape == (9, 3)


def test_planar_surface_is_affine():
    layer = NURBSSurface.planar(8, 8, x_range=(-15, -5), y_range=(-3, 3))
    S = layer(11, 7)
    x = torch.linspace(-15, -5, 11, dtype=f64)
    y = torch.linspace(-3, 3, 7, dtype=f64)
    torch.testing.assert_close(S[..., 0], x[:, None].expand(11, 7))
    torch.testing.assert_close(S[..., 1], y[None, :].expand(11, 7))
    assert (S[..., 2] == 0).all()


def test_fit_surface_with_learnable_knots_and_weights():
    """A few Adam steps on a smooth target: the loss falls, weights stay positive,
    knots stay ordered, and the knot logits receive gradients."""
    layer = NURBSSurface.planar(6, 6, learn_knots=True)
    u = torch.linspace(0, 1, 24, dtype=f64)
    X, Y = torch.meshgrid(u, u, indexing="ij")
    target = torch.stack([X, Y, torch.sin(3 * X) * torch.cos(2 * Y)], dim=-1)
    opt = torch.optim.Adam(layer.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = ((layer(u, u) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    assert (layer.weights > 0).all()
    for k in (layer.knots_u, layer.knots_v):
        assert (k.diff() >= 0).all() and k[0] == 0 and k[-1] == 1
    assert layer.knot_vector_u.logits.grad.abs().sum() > 0


def test_gaussian_layer_and_fixed_parts():
    cp = torch.tensor(np.random.default_rng(1).uniform(-1, 1, (5, 5, 3)))
    layer = NURBSSurface(
        cp,
        learn_weights=False,
        learn_knots=(True, False),
        knot_grad="gaussian",
        sigma=0.05,
        degree_u=2,
        degree_v=2,
    )
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"control_points", "knot_vector_u.logits"}
    layer(12, 12).pow(2).sum().backward()
    assert torch.isfinite(layer.knot_vector_u.logits.grad).all()


def test_curve_layer_fits_a_quarter_circle():
    """Control points of a quadratic curve learn the quarter circle (with weights)."""
    cp0 = torch.tensor([[1.0, 0.0], [0.7, 0.7], [0.0, 1.0]], dtype=f64)
    curve = NURBSCurve(cp0, degree=2)
    theta = torch.linspace(0, math.pi / 2, 50, dtype=f64)
    opt = torch.optim.Adam(curve.parameters(), lr=0.02)
    for _ in range(200):
        opt.zero_grad()
        C = curve(50)
        loss = ((C.norm(dim=1) - 1.0) ** 2).mean() + ((C[[0, -1]] - cp0[[0, 2]]) ** 2).sum()
        loss.backward()
        opt.step()
    C = curve(theta / theta[-1])
    assert (C.norm(dim=1) - 1).abs().max() < 2e-2
    curve32 = NURBSCurve(cp0.float(), degree=2)
    assert curve32(7).dtype == torch.float32
