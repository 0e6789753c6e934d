"""The pieces of the approximate mode: merged statistics, candidate costs, knot polishing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dfem.spline.exact import length_whitening
from dfem.spline.merging import (
    _candidate_costs,
    _errors,
    _merge,
    _run_stats,
    refine_knots,
)


def _polyfit_error(segment: np.ndarray, degree: int) -> float:
    t = np.arange(len(segment), dtype=float)
    coef = np.polynomial.polynomial.polyfit(t, segment, degree)
    return float(np.sum((np.polynomial.polynomial.polyval(t, coef) - segment) ** 2))


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_merged_statistics_equal_those_of_the_union(degree):
    rng = np.random.default_rng(degree)
    n = 60
    x = torch.tensor(1e3 + np.cumsum(rng.normal(size=n))).unsqueeze(0)
    white = length_whitening(n, degree, x.dtype, x.device)
    parts = _run_stats(x, torch.tensor([[0, 17, 41, 60]]), degree)
    union = _run_stats(x, torch.tensor([[0, 41, 60]]), degree)
    merged = _merge(parts[:, :1], parts[:, 1:2])
    torch.testing.assert_close(merged, union[:, :1], rtol=1e-11, atol=1e-8)
    err = _errors(merged, white).item()
    assert err == pytest.approx(_polyfit_error(x[0, :41].numpy(), degree), rel=1e-7, abs=1e-7)


@pytest.mark.parametrize("degree", [0, 2])
def test_candidate_costs_equal_independent_fits(degree):
    rng = np.random.default_rng(20 + degree)
    n = 500
    x = torch.tensor(500.0 + np.cumsum(rng.normal(size=n))).unsqueeze(0)
    bounds = torch.tensor([[0, 3, 3, 10, 250, 257, 480, 497, 500]])  # a repeat: an empty run
    white = length_whitening(n, degree, x.dtype, x.device)
    costs = _candidate_costs(x, bounds, white)[0]
    b = bounds[0].tolist()
    for e in range(len(b)):
        for s in range(len(b)):
            length = b[e] - b[s] if s < e else 0
            if length < degree + 1:
                assert costs[e, s] == float("inf")
            else:
                expected = _polyfit_error(x[0, b[s] : b[e]].numpy(), degree)
                assert costs[e, s].item() == pytest.approx(expected, rel=1e-7, abs=1e-7)


def test_refining_knots_never_raises_the_error_and_finds_a_shifted_step():
    rng = np.random.default_rng(3)
    n = 200
    x = np.concatenate([np.zeros(70), np.full(60, 4.0), np.full(70, -2.0)])
    x = torch.tensor(x + rng.normal(0, 0.1, n)).unsqueeze(0)
    white = length_whitening(n, 0, x.dtype, x.device)
    from dfem.spline import fit_pieces

    def error(breaks):
        return (x - fit_pieces(x, breaks)).square().sum().item()

    start = torch.tensor([[0, 65, 135, 200]])  # both knots 5 points off the steps
    refined = refine_knots(x, start, torch.tensor([3]), white)
    assert refined.tolist() == [[0, 70, 130, 200]]
    # a poor start ends in a local optimum (knots move one at a time), never a worse fit
    poor = torch.tensor([[0, 60, 150, 200]])
    assert error(refine_knots(x, poor, torch.tensor([3]), white)) <= error(poor)
