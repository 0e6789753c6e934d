"""Node-coordinate optimisation: the objective falls, the error against the exact solution
with it, and the guard keeps every cell from inverting."""

from __future__ import annotations

import itertools

import pytest
import torch

import dfem
from dfem.exceptions import DfemError
from dfem.inverse import corner_jacobians, optimize_nodes
from dfem.inverse.shape import boundary_nodes

pytestmark = pytest.mark.usefixtures("one_thread")

CENTRE, WIDTH = torch.tensor([0.4, 0.45], dtype=torch.float64), 0.1


def exact(x):
    return torch.exp(-((x - CENTRE) ** 2).sum(-1) / (2 * WIDTH**2))


def forcing(x):
    r2 = ((x - CENTRE) ** 2).sum(-1)
    return exact(x) * (2 / WIDTH**2 - r2 / WIDTH**4)


def _bump(n, cell="quad"):
    mesh = dfem.mesh.rectangle(n, n, cell)
    space = dfem.FunctionSpace(mesh, "Q1" if cell == "quad" else "P1", quadrature_degree=8)

    def solve(nodes):
        problem = dfem.Poisson(space.with_nodes(nodes), f=forcing, dirichlet={"boundary": exact})
        return problem, problem.solve()

    return mesh, solve


@pytest.mark.parametrize("cell", ["quad", "tri"])
def test_energy_and_error_fall_without_inverted_cells(cell):
    mesh, solve = _bump(8, cell)

    def objective(nodes):
        problem, u = solve(nodes)
        return problem.energy(u)

    result = optimize_nodes(objective, mesh, max_iter=8)
    values = [row["objective"] for row in result.history]
    assert all(b < a for a, b in itertools.pairwise(values))
    initial, u0 = solve(mesh.nodes)
    before = dfem.errors(initial.space, u0, exact)["h1"]
    problem, u = solve(result.nodes)
    after = dfem.errors(problem.space, u, exact)["h1"]
    assert after < 0.95 * before
    # Galerkin orthogonality: the energy drop is half the drop of the squared error
    assert values[0] - values[-1] == pytest.approx(0.5 * (before**2 - after**2), rel=0.02)
    fixed = boundary_nodes(mesh)
    assert torch.equal(result.nodes[fixed], mesh.nodes[fixed])
    ratios = corner_jacobians(mesh, result.nodes).min(1).values \
        / corner_jacobians(mesh, mesh.nodes).min(1).values
    assert float(ratios.min()) >= 0.1


def test_guard_stops_a_step_that_would_invert_a_cell():
    mesh = dfem.mesh.rectangle(4, 4, "quad")
    centre = int(torch.argmin(((mesh.nodes - 0.5) ** 2).sum(1)))

    def pull_left(nodes):  # lower without bound by moving one node left, through its cells
        return 10.0 * nodes[centre, 0]

    result = optimize_nodes(pull_left, mesh, max_iter=50, min_jacobian_ratio=0.2)
    assert result.guard_trips > 0
    ratios = corner_jacobians(mesh, result.nodes).min(1).values \
        / corner_jacobians(mesh, mesh.nodes).min(1).values
    assert float(ratios.min()) >= 0.2
    assert float(result.nodes[centre, 0]) < 0.4  # it moved until the guard stopped it


def test_bad_input():
    mesh = dfem.mesh.rectangle(3, 3, "quad")
    with pytest.raises(DfemError, match="min_jacobian_ratio"):
        optimize_nodes(lambda x: x.sum(), mesh, min_jacobian_ratio=1.5)
    with pytest.raises(DfemError, match="movable"):
        optimize_nodes(lambda x: x.sum(), mesh, movable=torch.ones(3, dtype=torch.bool))
    with pytest.raises(DfemError, match="max_iter"):
        optimize_nodes(lambda x: x.sum(), mesh, max_iter=0)
