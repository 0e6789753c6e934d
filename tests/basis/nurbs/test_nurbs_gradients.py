"""Gradients: gradcheck for control points and weights, knot gradients (exact, gaussian)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

from dfem.basis.nurbs import (
    OrderedKnots,
    basis_functions,
    clamped_knots,
    curve_points,
    surface_points,
)

f64 = torch.float64


def distinct_knots(rng, p, n_inner, clamped=False):
    """Knots with all values distinct (except clamped ends), domain [0, 1]."""
    inner = np.sort(rng.uniform(0.1, 0.9, n_inner))
    if clamped:
        return np.concatenate([np.zeros(p + 1), inner, np.ones(p + 1)])
    head = -0.15 * np.arange(p, -1, -1)  # -0.15 p, ..., -0.15, 0
    tail = 1 + 0.15 * np.arange(p + 1)  # 1, 1.15, ..., 1 + 0.15 p
    return np.concatenate([head, inner, tail])


def away_from_knots(rng, t, n, gap=0.03):
    """n parameter values in (0, 1) at least ``gap`` away from every knot."""
    u = rng.uniform(0, 1, 20 * n)
    d = np.abs(u[:, None] - t[None, :]).min(axis=1)
    return u[d > gap][:n]


@pytest.mark.parametrize("p", [1, 2, 3])
def test_gradcheck_curve_control_points_and_weights(p, rng):
    t = torch.tensor(distinct_knots(rng, p, 3, clamped=True))
    n = len(t) - p - 1
    cp = torch.tensor(rng.uniform(-1, 1, (n, 2)), requires_grad=True)
    w = torch.tensor(rng.uniform(0.5, 2, n), requires_grad=True)
    u = torch.tensor(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 10)]))

    def f(cp, w):
        return curve_points(cp, w, t, p, u, derivatives=True)

    assert gradcheck(f, (cp, w))


@pytest.mark.parametrize("p,q", [(1, 2), (3, 2)])
def test_gradcheck_surface_control_points_and_weights(p, q, rng):
    tu, tv = clamped_knots(p + 2, p), clamped_knots(q + 3, q)
    cp = torch.tensor(rng.uniform(-1, 1, (p + 2, q + 3, 3)), requires_grad=True)
    w = torch.tensor(rng.uniform(0.5, 2, (p + 2, q + 3)), requires_grad=True)
    u = torch.tensor(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 3)]))
    v = torch.tensor(np.concatenate([[1.0], rng.uniform(0, 1, 3)]))
    for grid in (True, False):
        vv = v if grid else torch.cat([v, v[:1]])

        def f(cp, w, grid=grid, vv=vv):
            return surface_points(cp, w, tu, tv, p, q, u, vv, derivatives=True, grid=grid)

        assert gradcheck(f, (cp, w))


@pytest.mark.parametrize("p", [1, 2, 3, 4])
def test_gradcheck_exact_knot_gradient(p, rng):
    """Away from the knots the curve is a smooth function of all knots: autograd = FD."""
    t = torch.tensor(distinct_knots(rng, p, 3), requires_grad=True)
    n = len(t) - p - 1
    cp = torch.tensor(rng.uniform(-1, 1, (n, 2)))
    w = torch.tensor(rng.uniform(0.5, 2, n), requires_grad=True)
    u = torch.tensor(away_from_knots(rng, t.detach().numpy(), 8))

    def f(t, w):
        return curve_points(cp, w, t, p, u, derivatives=True)

    assert gradcheck(f, (t, w))


def test_exact_knot_gradient_matches_central_differences(rng):
    """Surface with clamped knots: interior knots by central differences, 1e-6 relative."""
    p, q = 3, 2
    tu = torch.tensor(distinct_knots(rng, p, 4, clamped=True))
    tv = torch.tensor(distinct_knots(rng, q, 3, clamped=True))
    nu, nv = len(tu) - p - 1, len(tv) - q - 1
    cp = torch.tensor(rng.uniform(-1, 1, (nu, nv, 3)))
    w = torch.tensor(rng.uniform(0.5, 2, (nu, nv)))
    u = torch.tensor(away_from_knots(rng, tu.numpy(), 12))
    v = torch.tensor(away_from_knots(rng, tv.numpy(), 9))
    c = torch.tensor(rng.standard_normal((12, 9, 3)))

    def J(tu, tv):
        return (c * surface_points(cp, w, tu, tv, p, q, u, v)).sum()

    tu_, tv_ = tu.clone().requires_grad_(), tv.clone().requires_grad_()
    gu, gv = torch.autograd.grad(J(tu_, tv_), (tu_, tv_))
    h = 1e-6
    for knots, grad, which in ((tu, gu, 0), (tv, gv, 1)):
        deg = p if which == 0 else q
        for i in range(deg + 1, len(knots) - deg - 1):  # interior knots
            e = torch.zeros_like(knots)
            e[i] = h
            args_p = (tu + e, tv) if which == 0 else (tu, tv + e)
            args_m = (tu - e, tv) if which == 0 else (tu, tv - e)
            fd = (J(*args_p) - J(*args_m)).item() / (2 * h)
            assert abs(fd - grad[i].item()) <= 1e-6 * max(abs(fd), 1e-3), (which, i, fd, grad[i])
    # the clamped end knots do not move the domain's interior points through the basis
    # beyond what autograd reports; their gradients are finite
    assert torch.isfinite(gu).all() and torch.isfinite(gv).all()


def test_gaussian_forward_is_exact(rng):
    p = 3
    t = torch.tensor(distinct_knots(rng, p, 4, clamped=True), requires_grad=True)
    u = torch.tensor(rng.uniform(0, 1, 40))
    _, a = basis_functions(t, p, u, derivatives=2)
    _, b = basis_functions(t, p, u, derivatives=2, knot_grad="gaussian", sigma=0.05)
    assert torch.equal(a, b)


def test_gaussian_degree_zero_formula(rng):
    """Degree 0: C(u) = P_s; the gaussian derivative in t_j is (P_{j-1} - P_j) G_sigma(u - t_j)
    for the knots t_s, t_{s+1} of the span of u (and 0 exactly)."""
    t = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=f64, requires_grad=True)
    P = torch.tensor([1.0, 3.0, 4.0, 8.0], dtype=f64)
    sigma, u = 0.1, torch.tensor([0.3], dtype=f64)
    C = curve_points(P[:, None], None, t, 0, u, knot_grad="gaussian", sigma=sigma)
    (g,) = torch.autograd.grad(C.sum(), t)

    def G(x):
        return math.exp(-x * x / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)

    # u in span 1 = [0.25, 0.5): the boxes of span 1 and its neighbours (p = 0: only itself)
    expected = torch.zeros(5, dtype=f64)
    expected[1] = -P[1] * G(0.3 - 0.25)
    expected[2] = P[1] * G(0.3 - 0.5)
    torch.testing.assert_close(g, expected)
    # exact mode: a degree-0 curve does not depend on the knots inside a span
    t2 = t.detach().clone().requires_grad_()
    C = curve_points(P[:, None], None, t2, 0, u)
    assert C.grad_fn is None or torch.autograd.grad(C.sum(), t2, allow_unused=True)[0] is None


@pytest.mark.parametrize("p", [1, 2, 3])
def test_gaussian_knot_gradient_tends_to_exact(p, rng):
    """The gaussian gradient = exact + terms of size G_sigma(distance to the knots): as
    sigma shrinks it tends to the exact gradient at parameter values away from the knots."""
    t0 = distinct_knots(rng, p, 4, clamped=True)
    n = len(t0) - p - 1
    cp = torch.tensor(rng.uniform(-1, 1, (n, 2)))
    w = torch.tensor(rng.uniform(0.5, 2, n))
    u = torch.tensor(away_from_knots(rng, t0, 30, gap=0.04))

    def grad(mode, sigma=1e-2):
        t = torch.tensor(t0, requires_grad=True)
        C = curve_points(cp, w, t, p, u, knot_grad=mode, sigma=sigma)
        return torch.autograd.grad(C.sum(), t)[0]

    exact = grad("exact")
    errors = [
        (grad("gaussian", s) - exact).abs().max().item() / exact.abs().max().item()
        for s in (1e-1, 1e-2, 1e-3)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[0] > 1e-2  # a real smoothing at sigma = 0.1 ...
    assert errors[1] < 1e-2  # ... which fades like exp(-d^2 / 2 sigma^2)
    assert errors[2] < 1e-12


def test_ordered_knots_stay_ordered(rng):
    t = torch.tensor([0.0, 0, 0, 0, 0.2, 0.5, 0.6, 1, 1, 1, 1], dtype=f64)
    k = OrderedKnots(t, 3)
    torch.testing.assert_close(k(), t, rtol=0, atol=1e-15)
    assert k.logits.shape == (4,)
    with torch.no_grad():
        k.logits.copy_(torch.tensor(rng.standard_normal(4) * 5))
    new = k()
    assert (new.diff() >= 0).all() and (new[4:7].diff() > 0).all()
    assert new[:4].tolist() == [0.0] * 4 and new[-4:].tolist() == [1.0] * 4
    # gradients reach the logits through a curve evaluation
    cp = torch.tensor(rng.uniform(-1, 1, (7, 2)))
    C = curve_points(cp, None, k(), 3, torch.linspace(0, 1, 20, dtype=f64))
    C.sum().backward()
    assert k.logits.grad is not None and torch.isfinite(k.logits.grad).all()
    fixed = OrderedKnots(t, 3, learnable=False)
    assert fixed.logits is None and list(fixed.parameters()) == [] and torch.equal(fixed(), t)
