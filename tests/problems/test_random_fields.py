"""Diffusivity samplers: the paper's log-normal family and Karhunen–Loève fields."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from dfem.exceptions import DfemError
from dfem.problems.random_fields import PAPER_ROOTS
from dfem.surrogates import (
    KarhunenLoeve,
    LogNormalDiffusivity,
    exponential_covariance_roots,
    sample_parameters,
)


def paper_nu_numpy(x, y, w):
    """The paper's formula written out independently, scalar by scalar."""
    total = 0.0
    for wi, a in zip(w, PAPER_ROOTS, strict=True):
        lam = 1.0 / (1.0 + 0.25 * a * a)
        xi = 0.5 * a * math.cos(a * x) + math.sin(a * x)
        eta = 0.5 * a * math.cos(a * y) + math.sin(a * y)
        total += wi * lam * xi * eta
    return math.exp(total)


def test_paper_family_matches_the_formula():
    family = LogNormalDiffusivity()
    rng = np.random.default_rng(3)
    points = rng.random((40, 2))
    w = rng.uniform(-3, 3, size=(5, 4))
    nu = family(torch.as_tensor(points), torch.as_tensor(w))
    assert nu.shape == (5, 40)
    expected = np.array([[paper_nu_numpy(px, py, wk) for px, py in points] for wk in w])
    np.testing.assert_allclose(nu.numpy(), expected, rtol=1e-13)
    # a single w gives the field at the points' shape, and field(w) is the same callable
    single = family.field(w[0])(torch.as_tensor(points).reshape(8, 5, 2))
    np.testing.assert_allclose(single.reshape(-1).numpy(), expected[0], rtol=1e-13)


def test_paper_roots_solve_the_exponential_covariance_equation():
    roots = exponential_covariance_roots(0.5, 4)
    np.testing.assert_allclose(roots, PAPER_ROOTS, atol=0.01)  # the paper rounds to 2 decimals
    for a in roots:  # tan a = 2aL / (a^2 L^2 - 1) with L = 1/2
        assert math.tan(a) == pytest.approx(a / (0.25 * a * a - 1.0), rel=1e-8)


def test_paper_family_range_over_2000_samples():
    """design.md: on a 65^2 grid nu spans about 1.6e-4 .. 7.4e3, median contrast about 900."""
    family = LogNormalDiffusivity()
    s = torch.linspace(0, 1, 65, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(s, s, indexing="ij"), -1).reshape(-1, 2)
    nu = family(grid, family.sample(2000, seed=0))
    assert 1e-4 < float(nu.min()) < 1e-3
    assert 1e3 < float(nu.max()) < 1e5
    contrast = (nu.max(1).values / nu.min(1).values).median()
    assert 600 < float(contrast) < 1300


@pytest.mark.parametrize("method", ["uniform", "sobol", "lhs"])
def test_sampling_is_seeded_and_in_the_box(method):
    a = sample_parameters(64, 4, -3, 3, method=method, seed=7)
    b = sample_parameters(64, 4, -3, 3, method=method, seed=7)
    c = sample_parameters(64, 4, -3, 3, method=method, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (64, 4) and float(a.min()) >= -3 and float(a.max()) <= 3
    if method == "lhs":  # one sample in each of the 64 strata of every coordinate
        strata = torch.floor((a + 3) / 6 * 64).long()
        assert all(len(set(strata[:, j].tolist())) == 64 for j in range(4))


def test_gradient_with_respect_to_w():
    family = LogNormalDiffusivity()
    x = torch.rand(30, 2, dtype=torch.float64)
    w = torch.tensor([-0.26, -0.77, -0.37, -0.92], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: family(x, w), (w,))


@pytest.mark.parametrize("length", [0.3, 1.0])
def test_karhunen_loeve_modes_are_normalised_eigenfunctions(length):
    """int_0^1 exp(-|s-t|/L) phi(t) dt = lambda phi(s), int phi_i phi_j = delta_ij."""
    kl = KarhunenLoeve(modes=6, length=length)
    roots = exponential_covariance_roots(length, 3)
    norms = kl.norms_x.numpy()
    by_root = {round(float(a), 10): float(n) for a, n in zip(kl.roots_x, norms, strict=True)}

    def phi(k, s):
        a = roots[k]
        return (a * length * math.cos(a * s) + math.sin(a * s)) / by_root[round(a, 10)]

    for k in range(3):
        lam = 2 * length / (1 + (roots[k] * length) ** 2)
        for s in (0.0, 0.37, 1.0):
            integral = quad(lambda t, s=s, k=k: math.exp(-abs(s - t) / length) * phi(k, t),
                            0, 1, points=[s])[0]
            assert integral == pytest.approx(lam * phi(k, s), rel=1e-9, abs=1e-12)
        for j in range(3):
            inner = quad(lambda t, j=j, k=k: phi(j, t) * phi(k, t), 0, 1)[0]
            assert inner == pytest.approx(float(j == k), abs=1e-10)


def test_karhunen_loeve_variance():
    """Var log nu at a point = sigma^2 sum_k lambda_k phi_k(x)^2 -> sigma^2 as modes grow."""
    kl = KarhunenLoeve(modes=400, length=0.5, sigma=0.7)
    x = torch.tensor([[0.4, 0.6]], dtype=torch.float64)
    w = kl.sample(20000, seed=1)
    log_nu = kl.log_field(x, w)[:, 0]
    assert float(log_nu.var()) == pytest.approx(0.49, rel=0.05)
    # the largest eigenvalues come first
    assert np.all(np.diff(kl.eigenvalues) <= 1e-15)


@pytest.mark.parametrize(
    "build,fragment",
    [
        (lambda: LogNormalDiffusivity().field([1.0, 2.0]), "4 parameters"),
        (lambda: LogNormalDiffusivity().field([1.0, 2.0, float("nan"), 0.0]), "finite"),
        (lambda: LogNormalDiffusivity(roots=[-1.0]), "positive"),
        (lambda: KarhunenLoeve(length=0.0), "correlation length"),
        (lambda: KarhunenLoeve(modes=0), "modes"),
        (lambda: sample_parameters(4, 2, method="halton"), "unknown sampling method"),
        (lambda: sample_parameters(4, 2, low=1, high=1), "low < high"),
    ],
)
def test_bad_input(build, fragment):
    with pytest.raises(DfemError, match=fragment):
        build()
