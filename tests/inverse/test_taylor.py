"""The Taylor test (dfem.check_gradients) and the rates it shows for the adjoint gradients of
the solution with respect to per-cell nu, the forcing and the node coordinates."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import dfem
from dfem.exceptions import DfemError
from dfem.inverse import check_gradients
from dfem.inverse.shape import boundary_nodes

pytestmark = pytest.mark.usefixtures("one_thread")

MESHES = {"Q1": ("quad", "Q1"), "Q2": ("quad", "Q2"), "P2": ("tri", "P2")}


def _setup(name, n=6):
    cell, element = MESHES[name]
    mesh = dfem.mesh.rectangle(n, n, cell)
    space = dfem.FunctionSpace(mesh, element)
    generator = torch.Generator().manual_seed(3)
    nu = 0.5 + torch.rand(mesh.n_cells, generator=generator, dtype=torch.float64)
    f = 1.0 + torch.rand(space.n_dofs, generator=generator, dtype=torch.float64)
    return mesh, space, nu, f


def _square_integral(space, u):
    g = space.geometry()
    values, _ = space.at_quadrature(u, g)
    return (values * values * g.weights).sum()


def _solve(space, nu, f):
    problem = dfem.Poisson(space, nu=dfem.PerCell(nu), f=f,
                           dirichlet={"left": 0.0, "bottom": 0.0}, neumann={"right": 0.5})
    return problem.solve()


def _forcing(x):
    return 1.0 + torch.sin(3 * x[..., 0]) * torch.cos(2 * x[..., 1])


@pytest.mark.parametrize("name", list(MESHES))
def test_rates_for_per_cell_nu(name):
    _, space, nu, f = _setup(name)
    result = check_gradients(lambda nu: _square_integral(space, _solve(space, nu, f)), nu,
                             torch.randn(nu.shape, generator=torch.Generator().manual_seed(1),
                                         dtype=torch.float64) * 0.3, h0=0.1)
    assert result.passed(0.1), result.report()


@pytest.mark.parametrize("name", list(MESHES))
def test_rates_for_the_forcing(name):
    # the misfit of u to a target is quadratic in f: the first-order remainder is exactly
    # h^2 (d u)^2, so rate 2 holds for every h
    _, space, nu, f = _setup(name)
    target = torch.linspace(0, 0.1, space.n_dofs, dtype=torch.float64)

    def objective(f):
        u = _solve(space, nu, f)
        return ((u - target) ** 2).sum()

    result = check_gradients(objective, f, h0=0.5)
    assert result.passed(0.1), result.report()


@pytest.mark.parametrize("name", list(MESHES))
def test_rates_for_node_coordinates(name):
    mesh, space, nu, _ = _setup(name)
    direction = torch.randn(mesh.nodes.shape, generator=torch.Generator().manual_seed(2),
                            dtype=torch.float64)
    direction[boundary_nodes(mesh)] = 0.0  # the domain stays the unit square

    def objective(nodes):
        moved = space.with_nodes(nodes)
        return _square_integral(moved, _solve(moved, nu, _forcing))

    result = check_gradients(objective, mesh.nodes, direction, h0=0.004)
    assert result.passed(0.1), result.report()


class _WrongBackward(torch.autograd.Function):
    """Identity forward; the backward scales the gradient by 1.1 (a 10 % adjoint bug)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return 1.1 * grad


def test_a_wrong_gradient_fails():
    _, space, nu, f = _setup("Q1", n=4)
    result = check_gradients(
        lambda nu: _square_integral(space, _solve(space, _WrongBackward.apply(nu), f)), nu,
        h0=1e-3)
    assert not result.passed(0.1)
    assert abs(result.first_rates[-1] - 1.0) < 0.1  # R1 falls only like h
    assert "FAILED" in result.report()


def test_smooth_function_and_report():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    result = check_gradients(lambda x: (x.sin() * x.exp()).sum(), x)
    assert result.passed(0.05)
    assert result.derivative == pytest.approx(
        float(((x.cos() + x.sin()) * x.exp()
               * torch.randn(3, generator=torch.Generator().manual_seed(0),
                             dtype=torch.float64) * 2.0).sum()), rel=1e-12)
    assert "passed" in str(result) and len(result.steps) == 5
    assert all(math.isclose(a / b, 2.0) for a, b in itertools.pairwise(result.steps))


def test_several_parameters():
    a = torch.tensor([1.0, 2.0], dtype=torch.float64)
    b = torch.tensor(0.5, dtype=torch.float64)
    result = check_gradients(lambda a, b: (a**3).sum() * torch.exp(b), [a, b])
    assert result.passed(0.1)


def test_bad_input():
    x = torch.ones(3, dtype=torch.float64)
    with pytest.raises(DfemError, match="n_steps"):
        check_gradients(lambda x: x.sum(), x, n_steps=1)
    with pytest.raises(DfemError, match="h0"):
        check_gradients(lambda x: x.sum(), x, h0=-1.0)
    with pytest.raises(DfemError, match="match params"):
        check_gradients(lambda x: x.sum(), x, torch.ones(4, dtype=torch.float64))
    with pytest.raises(DfemError, match="scalar"):
        check_gradients(lambda x: x * 2, x)
    with pytest.raises(DfemError, match="floating-point"):
        check_gradients(lambda x: x.sum(), torch.ones(3, dtype=torch.int64))
