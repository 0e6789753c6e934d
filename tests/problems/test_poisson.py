"""The Poisson problem: exact patch tests, boundary conditions and bad input."""

import numpy as np
import pytest
import torch

import dfem
from dfem.exceptions import DfemError, MeshError

ELEMENTS = ["P1", "P2", "P3", "Q1", "Q2", "Q3"]


def linear(x):
    return 1 + 2 * x[..., 0] - 3 * x[..., 1]


@pytest.mark.parametrize("name", ELEMENTS)
def test_patch_test_linear_solution_is_exact(name):
    """u = 1 + 2x - 3y solves -div(nu grad u) = -d(nu)/dx*2 + ... ; with nu = 1 and f = 0 it is
    harmonic, and every element must reproduce it exactly from Dirichlet data on a
    distorted mesh (inhomogeneous Dirichlet, lifting and elimination)."""
    cell = "tri" if name.startswith("P") else "quad"
    mesh = (
        dfem.mesh.rectangle(4, 3, cell, diagonal="alternate")
        if cell == "tri"
        else (dfem.mesh.rectangle(4, 3, cell))
    )
    x = mesh.nodes.clone()
    interior = (x > 1e-12).all(1) & (x < 1 - 1e-12).all(1)
    x[interior] += 0.05 * torch.sin(7 * x[interior])
    space = dfem.FunctionSpace(mesh.with_nodes(x), name)
    u = dfem.Poisson(space, nu=1.0, dirichlet={"boundary": linear}).solve()
    torch.testing.assert_close(u, linear(space.dof_coordinates), atol=1e-12, rtol=0)


def test_neumann_and_robin_patch_test():
    """u = 1 + 2x - 3y with nu = 2: Neumann g = nu du/dn on the right (= 4), Robin on top:
    nu du/dn + alpha u = g_R with du/dn = -3, so g_R = -6 + alpha u."""
    space = dfem.FunctionSpace(dfem.mesh.rectangle(3, 3, "quad"), "Q2")
    alpha = 1.5
    problem = dfem.Poisson(
        space,
        nu=2.0,
        dirichlet={"left": linear, "bottom": linear},
        neumann={"right": 4.0},
        robin={"top": (alpha, lambda x: -6.0 + alpha * linear(x))},
    )
    u = problem.solve()
    torch.testing.assert_close(u, linear(space.dof_coordinates), atol=1e-12, rtol=0)


def test_dirichlet_value_forms_and_order():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 4, "quad"), "Q2")
    left = space.boundary_dofs("left")
    values = torch.linspace(0, 1, len(left), dtype=torch.float64)
    full = torch.zeros(space.n_dofs, dtype=torch.float64)
    full[left] = values
    for given in (values, full):
        fixed, u_fixed = dfem.Poisson(space, dirichlet={"left": given}).dirichlet_data()
        torch.testing.assert_close(fixed, left)
        torch.testing.assert_close(u_fixed[left], values)
    # where tags meet, the later tag wins
    problem = dfem.Poisson(space, dirichlet={"left": 1.0, "bottom": 2.0})
    fixed, u_fixed = problem.dirichlet_data()
    corner = int(torch.nonzero((space.dof_coordinates == 0).all(1)).item())
    assert float(u_fixed[corner]) == 2.0


def test_bad_input_is_named():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 4, "quad"), "Q1")
    with pytest.raises(MeshError, match="boundary tag 'inlet' does not exist.*left"):
        dfem.Poisson(space, dirichlet={"inlet": 0.0})
    with pytest.raises(DfemError, match="Dirichlet values for 'left' have shape \\(3,\\)"):
        dfem.Poisson(space, dirichlet={"left": torch.zeros(3)}).solve()
    with pytest.raises(DfemError, match="nu must be positive at every quadrature point"):
        dfem.Poisson(space, nu=lambda x: x[..., 0] - 0.3, dirichlet={"left": 0.0}).solve()
    per_cell = torch.ones(space.mesh.n_cells, dtype=torch.float64)
    per_cell[5] = -1.0
    with pytest.raises(DfemError, match="1 value\\(s\\) <= 0"):
        dfem.Poisson(space, nu=per_cell, dirichlet={"left": 0.0}).solve()
    with pytest.raises(DfemError, match="no Dirichlet or Robin condition"):
        dfem.Poisson(space, f=1.0).solve()


def test_inverted_cell_rejected():
    nodes = np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]])
    with pytest.raises(MeshError, match="zero or negative area"):
        dfem.mesh.Mesh(nodes, [[0, 3, 2, 1]])  # clockwise
    mesh = dfem.mesh.rectangle(2, 2, "quad")
    moved = mesh.nodes.clone()
    moved[4] = torch.tensor([1.2, 1.2], dtype=torch.float64)  # centre node pushed past a corner
    with pytest.raises(MeshError, match="zero or negative area"):
        mesh.with_nodes(moved)


def test_gpu_style_dtype_device_agnostic_float32():
    mesh = dfem.mesh.rectangle(8, 8, "quad", dtype=torch.float32)
    space = dfem.FunctionSpace(mesh, "Q1")
    u = dfem.Poisson(space, f=1.0, dirichlet={"boundary": 0.0}).solve(method="cg", rtol=1e-6)
    assert u.dtype == torch.float32
    ref = dfem.Poisson(
        dfem.FunctionSpace(dfem.mesh.rectangle(8, 8, "quad"), "Q1"),
        f=1.0,
        dirichlet={"boundary": 0.0},
    ).solve()
    torch.testing.assert_close(u.double(), ref, atol=1e-5, rtol=0)


def test_nonfinite_coefficients_are_named():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 4, "quad"), "Q1")
    with pytest.raises(DfemError, match="f is not finite"):
        dfem.Poisson(space, f=lambda x: 1 / x[..., 0] * 0 + float("inf"),
                     dirichlet={"left": 0.0}).solve()
    with pytest.raises(DfemError, match="Dirichlet values for 'left' are not all finite"):
        dfem.Poisson(space, dirichlet={"left": float("nan")}).solve()
    with pytest.raises(DfemError, match="rtol must be"):
        dfem.Poisson(space, f=1.0, dirichlet={"left": 0.0}).solve(method="amg", rtol=-1.0)
