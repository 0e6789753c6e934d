"""PINN and Deep Ritz baselines (dfem.validation.baselines): mechanics, not accuracy.

The accuracy of the full-length defaults is measured outside the suite (about 2 minutes a run).
"""

from __future__ import annotations

import math

import pytest
import torch

from dfem.exceptions import DfemError
from dfem.validation.baselines import (
    MLP,
    HardBoundary,
    boundary_samples,
    exact_solution,
    network_l2_error,
    pinn_loss,
    pinn_residual,
    ritz_integrand,
    source,
    train_deep_ritz,
    train_pinn,
)

pytestmark = pytest.mark.usefixtures("one_thread")
PI = math.pi


def points(n, seed=0):
    return torch.rand(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def zero_network():
    torch.manual_seed(0)
    net = MLP().double()
    with torch.no_grad():
        net.layers[-1].weight.zero_()
        net.layers[-1].bias.zero_()
    return net


@pytest.mark.parametrize("n", [8, 16])
def test_network_l2_error_of_exact_and_zero_models(n):
    """||u - u|| = 0 and ||0 - u|| = ||u|| = 1/2, since ∫ sin²(πx) sin²(πy) = 1/4."""
    e = network_l2_error(exact_solution, n)
    assert e["l2"] < 1e-12 and e["relative_l2"] < 1e-12
    e = network_l2_error(lambda x: torch.zeros(x.shape[:-1], dtype=x.dtype), n)
    assert e["l2"] == pytest.approx(0.5, abs=1e-10)
    assert e["l2_norm"] == pytest.approx(0.5, abs=1e-10)
    assert e["relative_l2"] == pytest.approx(1.0, abs=1e-10)
    z = network_l2_error(zero_network(), n)
    assert z["l2"] == pytest.approx(0.5, abs=1e-10)


def test_network_l2_error_chunking_does_not_change_the_result():
    torch.manual_seed(3)
    model = HardBoundary(MLP(width=8, depth=2).double())
    whole = network_l2_error(model, 16, chunk=None)
    for chunk in (7, 1000):
        part = network_l2_error(model, 16, chunk=chunk)
        assert part["l2"] == pytest.approx(whole["l2"], rel=1e-12)
        assert part["l2_norm"] == pytest.approx(whole["l2_norm"], rel=1e-12)


def test_network_l2_error_uses_the_model_dtype():
    torch.manual_seed(0)
    model = MLP(width=4, depth=1)  # float32
    e = network_l2_error(model, 8)
    assert math.isfinite(e["l2"]) and e["l2"] > 0


def test_hard_boundary_output_vanishes_on_the_sides():
    torch.manual_seed(0)
    model = HardBoundary(MLP().double())
    edge = boundary_samples(torch.linspace(0, 1, 11, dtype=torch.float64))
    assert edge.shape == (44, 2)
    assert torch.all(model(edge) == 0)
    assert torch.all(model(points(20)) != 0)


def test_pinn_residual_matches_the_analytic_laplacian():
    x = points(50)
    # the exact solution: Δu + f = 0
    assert pinn_residual(exact_solution, x).abs().max() < 1e-11
    # a polynomial: Δ(x² y³) = 2 y³ + 6 x² y
    r = pinn_residual(lambda p: p[:, 0] ** 2 * p[:, 1] ** 3, x, f=lambda p: torch.zeros(len(p)))
    torch.testing.assert_close(r, 2 * x[:, 1] ** 3 + 6 * x[:, 0] ** 2 * x[:, 1])
    # a hard-boundary model with a constant network part c: Δ(c B) = -2 c (x(1-x) + y(1-y))
    class Constant(torch.nn.Module):
        def forward(self, p):
            return torch.full(p.shape[:-1], 3.0, dtype=p.dtype)

    r = pinn_residual(HardBoundary(Constant()), x, f=lambda p: torch.zeros(len(p)))
    torch.testing.assert_close(r, -6 * (x[:, 0] * (1 - x[:, 0]) + x[:, 1] * (1 - x[:, 1])))
    # linear functions (no second-derivative graph) have zero Laplacian
    r = pinn_residual(lambda p: 2 * p[:, 0] - p[:, 1], x, f=lambda p: torch.zeros(len(p)))
    assert torch.all(r == 0)


def test_soft_pinn_loss_adds_the_boundary_term():
    interior = points(64)
    edge = boundary_samples(torch.rand(8, dtype=torch.float64))
    zero = zero_network()
    residual_only = source(interior).pow(2).mean()
    assert pinn_loss(zero, interior, edge, weight=100.0) == residual_only
    torch.manual_seed(1)
    net = MLP().double()
    expected = pinn_residual(net, interior).pow(2).mean() + 100 * net(edge).pow(2).mean()
    torch.testing.assert_close(pinn_loss(net, interior, edge, weight=100.0), expected)
    assert pinn_loss(net, interior, edge, weight=100.0) > pinn_loss(net, interior)


def test_short_hard_pinn_training_lowers_loss_and_error():
    calls = []
    r = train_pinn("hard", adam_steps=100, lbfgs_steps=60, collocation=256,
                   progress=lambda k, loss: calls.append(k))
    assert r.method == "pinn-hard" and r.stopped == "completed"
    assert r.iterations == 160
    assert r.final_loss < 1e-3 * r.history[0][1]
    assert network_l2_error(r.model, 16)["relative_l2"] < 0.05
    assert calls == [k for k, _ in r.history] and calls[0] == 0
    assert r.config["width"] == 50 and r.config["depth"] == 3 and r.config["collocation"] == 256


def test_pinn_training_is_deterministic_under_a_seed():
    kw = dict(adam_steps=30, lbfgs_steps=5, collocation=64)
    a, b, c = train_pinn(seed=4, **kw), train_pinn(seed=4, **kw), train_pinn(seed=5, **kw)
    assert a.final_loss == b.final_loss
    assert a.history == b.history
    assert a.final_loss != c.final_loss


def test_soft_pinn_runs():
    r = train_pinn("soft", adam_steps=30, lbfgs_steps=5, collocation=64, boundary_points=16)
    assert r.method == "pinn-soft" and math.isfinite(r.final_loss)
    assert r.config["boundary_points"] == 16 and r.config["boundary_weight"] == 100.0
    assert r.final_loss < r.history[0][1]


def test_time_budget_and_non_finite_loss_stop_training():
    r = train_pinn(adam_steps=100, lbfgs_steps=10, collocation=16, time_budget=0.0)
    assert r.stopped == "time budget" and r.iterations == 0
    r = train_pinn(adam_steps=20, lbfgs_steps=0, collocation=16, lr=1e300)
    assert r.stopped == "non-finite loss"
    assert all(torch.isfinite(p).all() for p in r.model.parameters())
    assert math.isfinite(r.final_loss)


def test_ritz_energy_estimator_of_the_exact_solution():
    """E(u) = ∫ ½|∇u|² - f u = π²/4 - π²/2 = -π²/4 for the exact solution."""
    n = 2**17
    values = ritz_integrand(exact_solution, points(n, seed=1)).detach()
    stderr = float(values.std()) / math.sqrt(n)
    assert abs(float(values.mean()) + PI**2 / 4) < 4 * stderr
    assert stderr < 0.03  # the check is meaningful: 4 stderr is about 3% of |E|


def test_short_deep_ritz_lowers_its_energy():
    r = train_deep_ritz(steps=300, batch=256)
    assert r.method == "deep-ritz-hard" and r.iterations == 300 and r.stopped == "completed"
    assert r.history[0][1] > -0.5  # a near-zero network
    assert r.final_loss < -1.5  # on the way to -π²/4 ≈ -2.47
    assert r.final_loss > -PI**2 / 4 - 0.05  # the exact solution minimises E
    again = train_deep_ritz(steps=300, batch=256)
    assert again.final_loss == r.final_loss


def test_deep_ritz_with_boundary_penalty_runs():
    r = train_deep_ritz(steps=20, batch=64, hard_boundary=False, boundary_batch=16)
    assert r.method == "deep-ritz-soft" and math.isfinite(r.final_loss)
    assert r.config["penalty"] == 500.0 and r.config["boundary_batch"] == 16


@pytest.mark.parametrize(
    "call",
    [
        lambda: train_pinn("mixed"),
        lambda: train_pinn(adam_steps=-1),
        lambda: train_pinn(lbfgs_steps=2.5),
        lambda: train_pinn(collocation=0),
        lambda: train_pinn(lr=float("nan")),
        lambda: train_pinn(activation="relu6"),
        lambda: train_deep_ritz(steps=-5),
        lambda: train_deep_ritz(batch=0),
        lambda: MLP(activation="swish"),
        lambda: MLP(width=0),
        lambda: network_l2_error(exact_solution, 4, chunk=0),
    ],
)
def test_bad_arguments_raise_dfem_error(call):
    with pytest.raises(DfemError):
        call()
