"""The 1D spline projection: exact against brute force and ruptures, Jacobian against autograd
of an independent fixed-knot fit, the approximate mode, the layer and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dfem.exceptions import DfemError
from dfem.spline import SplineProjection1d, fit_pieces, project_1d, spline_fit_1d

pytestmark = pytest.mark.usefixtures("one_thread")


def _piece_error(segment: np.ndarray, degree: int) -> float:
    t = np.arange(len(segment), dtype=float)
    coef = np.polynomial.polynomial.polyfit(t, segment, degree)
    return float(np.sum((np.polynomial.polynomial.polyval(t, coef) - segment) ** 2))


def _brute_force(x: np.ndarray, k: int, degree: int) -> float:
    """Least error over every partition into at most k pieces of >= degree + 1 points."""
    n, best = len(x), np.inf
    for pieces in range(1, k + 1):
        for cuts in itertools.combinations(range(1, n), pieces - 1):
            bounds = (0, *cuts, n)
            if min(np.diff(bounds)) < degree + 1:
                continue
            err = sum(_piece_error(x[a:b], degree) for a, b in itertools.pairwise(bounds))
            best = min(best, err)
    return best


@pytest.mark.parametrize("degree", [0, 1, 2])
def test_exact_fit_equals_brute_force_optimum(degree):
    rng = np.random.default_rng(10 + degree)
    for trial in range(6):
        n = int(rng.integers(8, 15))
        k = int(rng.integers(1, min(4, n // (degree + 1)) + 1))
        # piecewise trends plus noise, and pure noise: both kinds of optimum
        levels = rng.normal(0, 3, 3)
        x = rng.normal(size=n) + (trial % 2) * levels[np.arange(n) * 3 // n]
        fit = spline_fit_1d(torch.tensor(x), k, degree)
        best = _brute_force(x, k, degree)
        assert fit.error.item() == pytest.approx(best, rel=1e-9, abs=1e-12)
        # the reported knots give that error with an independent fit per piece
        bounds = fit.breaks.tolist()[: fit.pieces.item() + 1]
        direct = sum(_piece_error(x[a:b], degree) for a, b in itertools.pairwise(bounds))
        assert direct == pytest.approx(best, rel=1e-9, abs=1e-12)


def test_degree_three_equals_brute_force_optimum():
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.normal(size=13))
    for k in (1, 2, 3):
        fit = spline_fit_1d(torch.tensor(x), k, 3)
        assert fit.error.item() == pytest.approx(_brute_force(x, k, 3), rel=1e-9, abs=1e-12)


def test_degree_zero_equals_ruptures_dynp():
    ruptures = pytest.importorskip("ruptures")
    rng = np.random.default_rng(7)
    n, k = 300, 6
    levels = rng.normal(0, 2, k)
    x = np.repeat(levels, n // k) + rng.normal(0, 1.0, n)
    cuts = ruptures.Dynp(model="l2", min_size=1, jump=1).fit(x.reshape(-1, 1)).predict(k - 1)
    bounds = [0, *cuts]
    theirs = sum(_piece_error(x[a:b], 0) for a, b in itertools.pairwise(bounds))
    fit = spline_fit_1d(torch.tensor(x), k, 0)
    assert fit.error.item() == pytest.approx(theirs, rel=1e-9)
    assert fit.breaks.tolist() == bounds


def _independent_fixed_fit(x: torch.Tensor, bounds, degree: int) -> torch.Tensor:
    """Within-piece least squares by a monomial Vandermonde and torch.linalg.lstsq."""
    parts = []
    for a, b in itertools.pairwise(bounds):
        t = torch.linspace(-1, 1, b - a, dtype=x.dtype)
        vander = t.unsqueeze(-1) ** torch.arange(degree + 1)
        coef = torch.linalg.lstsq(vander, x[a:b].unsqueeze(-1)).solution
        parts.append((vander @ coef).squeeze(-1))
    return torch.cat(parts)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_backward_is_the_fixed_partition_jacobian(degree):
    rng = np.random.default_rng(100 + degree)
    n, k = 24, 3
    # three well separated levels: the optimal partition is unique and stable
    x = torch.tensor(np.repeat([0.0, 10.0, -8.0], 8) + rng.normal(0, 0.3, n))
    x.requires_grad_(True)
    fit = spline_fit_1d(x, k, degree)
    bounds = fit.breaks.tolist()
    assert bounds == [0, 8, 16, 24]
    v = torch.tensor(rng.normal(size=n))
    (ours,) = torch.autograd.grad(fit.values, x, v)
    jac = torch.autograd.functional.jacobian(
        lambda y: _independent_fixed_fit(y, bounds, degree), x.detach()
    )
    torch.testing.assert_close(ours, jac.T @ v, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        fit.values.detach(), _independent_fixed_fit(x.detach(), bounds, degree)
    )
    breaks = torch.tensor(bounds)
    assert torch.autograd.gradcheck(
        lambda y: fit_pieces(y, breaks, degree), (x.detach().clone().requires_grad_(),)
    )


def test_gradcheck_through_the_knot_search():
    rng = np.random.default_rng(5)
    x = torch.tensor(np.repeat([1.0, -4.0, 3.0, 7.0], 5) + rng.normal(0, 0.1, 20))
    x = x.reshape(2, 10).requires_grad_(True)  # a batch of two signals
    for degree in (0, 1):
        assert torch.autograd.gradcheck(lambda y, d=degree: project_1d(y, 2, d), (x,))


def test_batched_shapes_dtype_and_leading_axes():
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(2, 3, 20)), dtype=torch.float32)
    fit = spline_fit_1d(x, 4, 1)
    assert fit.values.shape == x.shape and fit.values.dtype == torch.float32
    assert fit.breaks.shape == (2, 3, 5) and fit.pieces.shape == (2, 3)
    for i, j in itertools.product(range(2), range(3)):
        single = spline_fit_1d(x[i, j].double(), 4, 1)
        assert single.breaks.tolist() == fit.breaks[i, j].tolist()


def test_fewest_pieces_and_deterministic_ties():
    x = torch.ones(12, dtype=torch.float64)
    fit = spline_fit_1d(x, 4)
    assert fit.pieces.item() == 1 and fit.breaks.tolist() == [0, 12, 12, 12, 12]
    # an exact line needs one piece of degree 1
    assert spline_fit_1d(torch.arange(10.0).double(), 3, 1).pieces.item() == 1
    # a symmetric step: splitting at 2 or at 4 costs the same; the leftmost wins, every time
    x = torch.tensor([0.0, 0.0, 1.0, 1.0, 2.0, 2.0]).double()
    runs = {tuple(spline_fit_1d(x, 2).breaks.tolist()) for _ in range(3)}
    assert runs == {(0, 2, 6)}


def test_cost_is_accurate_for_short_runs_on_long_offset_signals():
    # moments in each run's own coordinate keep short cubic fits exact far from the origin
    rng = np.random.default_rng(9)
    n = 400
    x = 1e3 + np.cumsum(rng.normal(size=n))
    from dfem.spline.exact import run_errors

    errors = run_errors(torch.tensor(x).unsqueeze(0), 3)[0]
    for s, length in [(390, 5), (350, 12), (0, 400), (200, 7)]:
        expected = _piece_error(x[s : s + length], 3)
        assert errors[s, length - 1].item() == pytest.approx(expected, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("degree", [0, 1, 2])
def test_approximate_mode_never_beats_and_closely_tracks_the_exact_fit(degree):
    rng = np.random.default_rng(40 + degree)
    n, k = 400, 6
    t = np.linspace(0, 1, n)
    trend = np.repeat(rng.normal(0, 3, k), n // k + 1)[:n] + 2 * np.sin(6 * t)
    x = torch.tensor(trend + rng.normal(0, 0.5, (4, n)))
    exact = spline_fit_1d(x, k, degree)
    approx = spline_fit_1d(x, k, degree, mode="approximate")
    assert torch.all(approx.error >= exact.error * (1 - 1e-12))
    assert torch.all(approx.error <= 1.05 * exact.error)


def test_approximate_mode_finds_clean_change_points():
    rng = np.random.default_rng(1)
    n = 5000
    bounds = [0, 700, 1900, 2000, 3500, 4100, n]
    x = np.concatenate([np.full(b - a, rng.normal(0, 5)) for a, b in itertools.pairwise(bounds)])
    x += rng.normal(0, 0.05, n)
    fit = spline_fit_1d(torch.tensor(x), 6, mode="approximate")
    assert fit.breaks.tolist() == bounds


def test_layer_trains_in_a_network():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 32), SplineProjection1d(k=4, degree=1))
    out = net(torch.randn(5, 8))
    out.square().mean().backward()
    grad = net[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert "k=4, degree=1" in repr(net)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k .* >= 1"),
        ({"k": 2.5}, "k .* integer"),
        ({"k": 4, "degree": 2}, r"k \* \(degree \+ 1\) = 12 is more than .* n = 10"),
        ({"k": 2, "degree": -1}, "degree must be an integer from 0"),
        ({"k": 2, "mode": "greedy"}, "mode must be one of"),
    ],
)
def test_bad_settings_give_clear_errors(kwargs, match):
    with pytest.raises(DfemError, match=match):
        spline_fit_1d(torch.zeros(10), **kwargs)


def test_bad_input_gives_clear_errors():
    with pytest.raises(DfemError, match="NaN or infinite"):
        project_1d(torch.tensor([0.0, float("nan"), 1.0]), 1)
    with pytest.raises(DfemError, match="NaN or infinite"):
        project_1d(torch.tensor([0.0, float("inf"), 1.0]), 1)
    with pytest.raises(DfemError, match="floating-point tensor"):
        project_1d(torch.arange(5), 1)
    with pytest.raises(DfemError, match="degree must be"):
        SplineProjection1d(k=2, degree=-1)
    with pytest.raises(DfemError, match="fewer than degree"):
        fit_pieces(torch.zeros(6), torch.tensor([0, 1, 6]), degree=1)


def test_empty_batch_and_list_breaks():
    fit = spline_fit_1d(torch.zeros(0, 5), 2)
    assert fit.values.shape == (0, 5) and fit.breaks.shape == (0, 3)
    h = fit_pieces(torch.arange(6.0, dtype=torch.float64), [0, 3, 6])
    torch.testing.assert_close(h, torch.tensor([1.0, 1, 1, 4, 4, 4], dtype=torch.float64))
    with pytest.raises(DfemError, match="one row of breaks per signal"):
        fit_pieces(torch.zeros(2, 6), [0, 3, 6])
