"""B-spline basis and span search against geomdl.helpers and scipy.interpolate.BSpline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from dfem.basis.nurbs import (
    basis_functions,
    basis_matrix,
    clamped_knots,
    find_spans,
    greville_points,
)

geomdl_helpers = pytest.importorskip("geomdl.helpers")

DEGREES = [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("p", DEGREES)
@pytest.mark.parametrize("clamped", [True, False])
def test_basis_matches_geomdl_helpers(p, clamped, rng, random_knots, parameter_values):
    t = random_knots(rng, p, 5, clamped=clamped)
    n = len(t) - p - 1
    u = parameter_values(rng, t, p)
    order = min(p, 3)  # geomdl's A2.3 fails for orders above the degree
    spans, values = basis_functions(torch.tensor(t), p, torch.tensor(u), derivatives=order)
    assert spans.shape == (len(u),) and values.shape == (len(u), order + 1, p + 1)
    kv = t.tolist()
    for j, x in enumerate(u.tolist()):
        span = geomdl_helpers.find_span_linear(p, kv, n, x)
        assert spans[j].item() == span
        np.testing.assert_allclose(
            values[j, 0].numpy(), geomdl_helpers.basis_function(p, kv, span, x), rtol=0, atol=1e-14
        )
        ders = np.array(geomdl_helpers.basis_function_ders(p, kv, span, x, order))
        scale = np.abs(ders).max(axis=1, keepdims=True) + 1.0
        np.testing.assert_array_less(np.abs(values[j].numpy() - ders) / scale, 1e-12)


@pytest.mark.parametrize("p", DEGREES)
@pytest.mark.parametrize("clamped", [True, False])
def test_basis_matrix_matches_scipy(p, clamped, rng, random_knots, parameter_values):
    t = random_knots(rng, p, 6, clamped=clamped)
    n = len(t) - p - 1
    u = parameter_values(rng, t, p)
    order = p + 1  # includes an order above the degree: zero
    B = basis_matrix(torch.tensor(t), p, torch.tensor(u), derivatives=order).numpy()
    assert B.shape == (len(u), order + 1, n)
    for k in range(order + 1):
        ref = np.stack([BSpline(t, np.eye(n)[i], p)(u, nu=k) for i in range(n)], axis=1)
        scale = np.abs(ref).max() + 1.0
        assert np.abs(B[:, k] - ref).max() / scale < 1e-12, k
    # partition of unity, derivatives of a constant vanish
    np.testing.assert_allclose(B[:, 0].sum(axis=1), 1.0, atol=1e-14)
    if p >= 1:
        assert np.abs(B[:, 1].sum(axis=1)).max() < 1e-9


def test_find_spans_conventions():
    t = torch.tensor([0.0, 0, 0, 0.25, 0.5, 0.5, 1, 1, 1], dtype=torch.float64)
    p = 2  # n = 6 control points, domain [0, 1]
    u = torch.tensor([0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 1.0], dtype=torch.float64)
    # t_s <= u < t_{s+1}; u = 1 is in the last non-empty span [0.5, 1): s = 5
    assert find_spans(t, p, u).tolist() == [2, 2, 3, 3, 5, 5, 5]
    # shape is kept
    assert find_spans(t, p, u.reshape(7, 1)).shape == (7, 1)
    # unclamped: domain [t_p, t_n]
    tu = torch.arange(10, dtype=torch.float64)  # p = 3: n = 6, domain [3, 6]
    assert find_spans(tu, 3, torch.tensor([3.0, 3.5, 5.0, 6.0])).tolist() == [3, 3, 5, 5]


def test_clamped_knots_and_greville():
    k = clamped_knots(8, 3)
    assert k.tolist() == [0, 0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1, 1, 1, 1]
    assert k.dtype == torch.float64
    g = greville_points(k, 3)
    assert g.shape == (8,)
    np.testing.assert_allclose(g.numpy()[[0, -1]], [0.0, 1.0])
    # linear precision: sum_i xi_i N_i(u) = u
    u = torch.linspace(0, 1, 33, dtype=torch.float64)
    np.testing.assert_allclose((basis_matrix(k, 3, u)[:, 0] @ g).numpy(), u.numpy(), atol=1e-15)
    assert greville_points(torch.tensor([0.0, 0.5, 1.0]), 0).tolist() == [0.25, 0.75]


def test_float32_and_other_shapes():
    k = clamped_knots(6, 2, dtype=torch.float32)
    spans, vals = basis_functions(k, 2, torch.rand(4, 5), derivatives=1)
    assert vals.dtype == torch.float32 and vals.shape == (4, 5, 2, 3) and spans.shape == (4, 5)
    torch.testing.assert_close(vals[..., 0, :].sum(-1), torch.ones(4, 5))
