"""Knot insertion and degree elevation leave curves and surfaces unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dfem.basis.nurbs import (
    clamped_knots,
    curve_points,
    elevate_degree,
    insert_knot,
    surface_points,
)
from dfem.exceptions import DfemError

TOL = 1e-12


def rational_curve(rng, random_knots, p, clamped=True):
    t = random_knots(rng, p, 3, clamped=clamped, max_mult=max(p - 1, 1))
    n = len(t) - p - 1
    return (
        torch.tensor(rng.uniform(-1, 1, (n, 3))),
        torch.tensor(rng.uniform(0.3, 3, n)),
        torch.tensor(t),
    )


def samples(t, p, k=200):
    n = len(t) - p - 1
    return torch.linspace(float(t[p]), float(t[n]), k, dtype=torch.float64)


@pytest.mark.parametrize("p", [1, 2, 3, 5])
@pytest.mark.parametrize("clamped", [True, False])
def test_insert_knot_curve(p, clamped, rng, random_knots):
    cp, w, t = rational_curve(rng, random_knots, p, clamped)
    u = samples(t, p)
    ref = curve_points(cp, w, t, p, u)
    # a new value once, an existing value up to multiplicity p, several values
    existing = float(t[p + 1])
    mult = int((t == existing).sum())
    cases = [(0.37, 1), (0.61, p), ([0.11, 0.83], 1)]
    if mult < p:
        cases.append((existing, p - mult))
    for value, times in cases:
        cp2, w2, t2 = insert_knot(cp, w, t, p, value, times)
        added = times * (len(value) if isinstance(value, list) else 1)
        assert cp2.shape == (cp.shape[0] + added, 3) and w2.shape == (cp.shape[0] + added,)
        assert t2.shape == (len(t) + added,) and (t2.diff() >= 0).all()
        err = (curve_points(cp2, w2, t2, p, u) - ref).abs().max().item()
        assert err < TOL, (value, times, err)
    # a B-spline stays a B-spline
    cp2, w2, t2 = insert_knot(cp, None, t, p, 0.5)
    assert w2 is None
    assert (curve_points(cp2, None, t2, p, u) - curve_points(cp, None, t, p, u)).abs().max() < TOL


@pytest.mark.parametrize("p", [1, 2, 3, 4])
@pytest.mark.parametrize("clamped", [True, False])
def test_elevate_degree_curve(p, clamped, rng, random_knots):
    cp, w, t = rational_curve(rng, random_knots, p, clamped)
    u = samples(t, p)
    ref, dref = curve_points(cp, w, t, p, u, derivatives=True)
    for times in (1, 2):
        cp2, w2, t2 = elevate_degree(cp, w, t, p, times)
        q = p + times
        C, dC = curve_points(cp2, w2, t2, q, u, derivatives=True)
        assert (C - ref).abs().max().item() < TOL
        assert (dC - dref).abs().max().item() < 1e-9 * max(dref.abs().max().item(), 1.0)
        assert (w2 > 0).all()
        # knots: clamped ends p + t + 1 times, each interior knot t more times
        inner = t[(t > t[p]) & (t < t[len(t) - p - 1])]
        assert len(t2) == 2 * (q + 1) + len(inner) + times * len(torch.unique(inner))


def test_refine_surface_both_directions(rng, random_knots):
    p, q = 2, 3
    tu = torch.tensor(random_knots(rng, p, 2, max_mult=1))
    tv = torch.tensor(random_knots(rng, q, 2, max_mult=2))
    nu, nv = len(tu) - p - 1, len(tv) - q - 1
    cp = torch.tensor(rng.uniform(-1, 1, (nu, nv, 3)))
    w = torch.tensor(rng.uniform(0.3, 3, (nu, nv)))
    u, v = samples(tu, p, 20), samples(tv, q, 10)  # 200 points
    ref = surface_points(cp, w, tu, tv, p, q, u, v)
    cp2, w2, tv2 = insert_knot(cp, w, tv, q, [0.3, 0.55], 2, axis=1)
    assert cp2.shape == (nu, nv + 4, 3) and w2.shape == (nu, nv + 4)
    assert (surface_points(cp2, w2, tu, tv2, p, q, u, v) - ref).abs().max() < TOL
    cp3, w3, tu3 = elevate_degree(cp2, w2, tu, p, 2, axis=0)
    S = surface_points(cp3, w3, tu3, tv2, p + 2, q, u, v)
    assert (S - ref).abs().max() < TOL
    cp4, w4, tu4 = insert_knot(cp3, w3, tu3, p + 2, 0.5, 1, axis=-2)
    assert (surface_points(cp4, w4, tu4, tv2, p + 2, q, u, v) - ref).abs().max() < TOL
    cp5, w5, tv5 = elevate_degree(cp, w, tv, q, 1, axis=1)
    assert (surface_points(cp5, w5, tu, tv5, p, q + 1, u, v) - ref).abs().max() < TOL


def test_refinement_is_differentiable(rng):
    t = clamped_knots(5, 2)
    cp = torch.tensor(rng.uniform(-1, 1, (5, 2)), requires_grad=True)
    w = torch.tensor(rng.uniform(0.5, 2, 5), requires_grad=True)
    cp2, w2, t2 = insert_knot(cp, w, t, 2, 0.3)
    cp3, w3, t3 = elevate_degree(cp2, w2, t2, 2)
    u = torch.linspace(0, 1, 30, dtype=torch.float64)
    g1 = torch.autograd.grad(curve_points(cp3, w3, t3, 3, u).sum(), (cp, w))
    g0 = torch.autograd.grad(curve_points(cp, w, t, 2, u).sum(), (cp, w))
    for a, b in zip(g1, g0, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_refinement_errors():
    t = clamped_knots(5, 2)
    cp = torch.zeros(5, 2, dtype=torch.float64)
    with pytest.raises(DfemError, match="strictly inside"):
        insert_knot(cp, None, t, 2, 1.0)
    with pytest.raises(DfemError, match="multiplicity 1"):
        insert_knot(cp, None, t, 2, float(t[3]), 2)
    with pytest.raises(DfemError, match="times must be a positive integer"):
        elevate_degree(cp, None, t, 2, 0)
    with pytest.raises(DfemError, match="axis 2 is out of range"):
        insert_knot(cp, None, t, 2, 0.5, axis=2)


def test_greville_interpolation_is_well_posed():
    """Sanity check of the elevation's collocation: elevated geometry of a line is a line."""
    t = clamped_knots(4, 3)
    cp = torch.tensor(np.linspace(0, 1, 4)[:, None] * [1.0, 2.0])
    cp2, _, t2 = elevate_degree(cp, None, t, 3, 1)
    torch.testing.assert_close(cp2[:, 1], 2 * cp2[:, 0])
