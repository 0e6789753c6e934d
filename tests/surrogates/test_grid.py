"""The surrogate's grid problem: image layout, exact Dirichlet values, and the energy loss
against the FEM core's solve (its minimiser) and the 1/2 identity J(u_h) = -1/2 F.u_h."""

from __future__ import annotations

import math

import pytest
import torch

from dfem import Poisson
from dfem.assembly import AtQuadrature
from dfem.exceptions import DfemError
from dfem.surrogates import LogNormalDiffusivity
from dfem.surrogates.grid import GridProblem

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("element", ["Q1", "Q2"])
def test_images_and_dofs_round_trip_with_x_along_columns(element):
    grid = GridProblem(4, element)
    assert grid.size == (5 if element == "Q1" else 9)
    image = torch.randn(3, grid.size, grid.size, dtype=torch.float64)
    torch.testing.assert_close(grid.to_grid(grid.to_dofs(image)), image)
    # the image of x is constant down each column and rises along each row
    x_image = grid.to_grid(grid.space.dof_coordinates[:, 0])
    torch.testing.assert_close(x_image, grid.points[..., 0])
    assert torch.all(x_image[:, 0] == 0) and torch.all(x_image[:, -1] == 1)


def test_dirichlet_values_are_imposed_exactly():
    grid = GridProblem(6, "Q1")  # u = 1 at x = 0, u = 0 at x = 1, zero flux elsewhere
    out = grid.impose(torch.full((2, 7, 7), 0.3, dtype=torch.float64))
    assert torch.all(out[:, :, 0] == 1.0) and torch.all(out[:, :, -1] == 0.0)
    assert torch.all(out[:, 1:-1, 1:-1] == 0.3) and torch.all(out[:, 0, 1:-1] == 0.3)


@pytest.mark.parametrize("element", ["Q1", "Q2"])
def test_fem_solution_minimises_the_batched_energy(element):
    family = LogNormalDiffusivity()
    grid = GridProblem(6, element)
    w = family.sample(3, seed=4)
    nu_q = family(grid.quadrature_points, w)
    u = grid.solve(nu_q)
    # independent: each sample solved by dfem.Poisson directly
    for b in range(3):
        direct = Poisson(grid.space, nu=AtQuadrature(nu_q[b]), dirichlet=grid.dirichlet).solve()
        torch.testing.assert_close(grid.to_dofs(u[b]), direct)
    free = u.clone().requires_grad_()
    energies = grid.energy(free, nu_q)
    assert energies.shape == (3,)
    (grad,) = torch.autograd.grad(energies.sum(), free)
    assert grad.abs().max() < 1e-11  # stationary at the free nodes, zero at fixed ones
    bumped = grid.energy(u + 1e-2 * torch.randn_like(u), nu_q)
    assert torch.all(bumped > energies.detach())
    # the batch is the samples' energies side by side
    torch.testing.assert_close(grid.energy(u[1:2], nu_q[1:2])[0], energies[1].detach())


def test_energy_has_the_half_factor():
    # u = 0 on all sides, f = 1: at the discrete minimiser K u = F, so J = -1/2 F.u
    grid = GridProblem(8, "Q2", dirichlet={"boundary": 0.0}, f=1.0)
    nu_q = torch.ones(1, *grid.quadrature_points.shape[:2], dtype=torch.float64)
    u = grid.solve(nu_q)
    load = grid.space.geometry().weights.sum()  # int 1
    assert load == pytest.approx(1.0)
    f_dot_u = Poisson(grid.space, f=1.0).assemble()[1] @ grid.to_dofs(u[0])
    assert grid.energy(u, nu_q).item() == pytest.approx(-0.5 * f_dot_u.item(), rel=1e-12)
    # and u is close to the series solution of -lap u = 1 at the centre (0.0736713...)
    centre = sum(
        16
        / (math.pi**4 * i * j * (i * i + j * j))
        * math.sin(i * math.pi / 2)
        * math.sin(j * math.pi / 2)
        for i in range(1, 200, 2)
        for j in range(1, 200, 2)
    )
    assert u[0, 8, 8].item() == pytest.approx(centre, rel=1e-4)


def test_bad_settings_give_clear_errors():
    with pytest.raises(DfemError, match="n >= 1"):
        GridProblem(0)
    with pytest.raises(DfemError, match="element must be one of"):
        GridProblem(4, "P1")
    with pytest.raises(DfemError, match="at least one side"):
        GridProblem(4, dirichlet={})
    grid = GridProblem(4)
    with pytest.raises(DfemError, match="5x5"):
        grid.impose(torch.zeros(2, 4, 4))


def test_stiffness_diagonal_matches_the_assembled_matrix():
    family = LogNormalDiffusivity()
    grid = GridProblem(5, "Q2")
    w = family.sample(2, seed=1)
    nu_q = family(grid.quadrature_points, w)
    diagonal = grid.stiffness_diagonal(nu_q)
    for b in range(2):
        K, _ = Poisson(grid.space, nu=AtQuadrature(nu_q[b])).assemble(format="scipy")
        expected = torch.as_tensor(K.diagonal())
        torch.testing.assert_close(grid.to_dofs(diagonal[b]), expected)
