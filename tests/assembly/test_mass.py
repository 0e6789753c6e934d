"""Mass matrices against exact integrals of interpolated polynomials, and the lumped (HRZ)
matrix: positive, mass-preserving, the row sums for P1 and Q1."""

import pytest
import torch

import dfem
from dfem.assembly.mass import mass_matrix
from dfem.exceptions import DfemError


def _bilinear(space, values, u, v):
    return float(u @ (space.pattern.to_dense(values) @ v))


@pytest.mark.parametrize("cell,element", [("tri", "P1"), ("tri", "P2"), ("quad", "Q2"),
                                          ("quad", "Q3")])
def test_consistent_mass_integrates_products_exactly_2d(cell, element):
    mesh = dfem.mesh.rectangle(3, 2, cell, x=(0.0, 2.0))
    space = dfem.FunctionSpace(mesh, element)
    M = mass_matrix(space, rho=lambda x: 1 + x[..., 1])
    if element == "P1":
        u, v, exact = space.interpolate(lambda x: x[..., 0]), space.interpolate(
            lambda x: 0 * x[..., 0] + 1), 2.0 * 1.5  # int_0^2 int_0^1 x (1 + y)
    else:
        u = space.interpolate(lambda x: x[..., 0] ** 2)
        v = space.interpolate(lambda x: x[..., 1])
        exact = 8 / 3 * (1 / 2 + 1 / 3)  # int x^2 y (1 + y)
    assert _bilinear(space, M, u, v) == pytest.approx(exact, rel=1e-12)


def test_consistent_mass_3d_tets_and_hexes():
    for cell, element in (("tet", "P2"), ("hex", "Q2")):
        space = dfem.FunctionSpace(dfem.mesh.box(2, 2, 2, cell=cell), element)
        M = mass_matrix(space)
        u = space.interpolate(lambda x: x[..., 0] * x[..., 2])
        v = space.interpolate(lambda x: x[..., 1] + 0 * x[..., 0])
        assert _bilinear(space, M, u, v) == pytest.approx(1 / 8, rel=1e-12)


@pytest.mark.parametrize("cell,element", [("tri", "P1"), ("quad", "Q1"), ("tri", "P2"),
                                          ("quad", "Q2"), ("tri", "P3")])
def test_lumped_mass_is_positive_keeps_the_mass_and_is_the_row_sum_for_p1_q1(cell, element):
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 3, cell), element)
    # constant on each cell: then HRZ and row sums agree on P1 and Q1
    rho = 2 + torch.arange(space.cell_dofs.shape[0], dtype=torch.float64) % 3
    consistent = mass_matrix(space, rho)
    diagonal = mass_matrix(space, rho, lumped=True, format="diagonal")
    assert bool((diagonal > 0).all())
    assert float(diagonal.sum()) == pytest.approx(float(consistent.sum()), rel=1e-12)
    row_sums = space.pattern.to_dense(consistent).sum(1)
    if element in ("P1", "Q1"):
        assert torch.allclose(diagonal, row_sums, rtol=1e-12, atol=1e-15)
    elif element == "P2":  # row sums give P2 triangles zero vertex masses
        assert float(row_sums.min()) <= 1e-15
    lumped_values = mass_matrix(space, rho, lumped=True)
    assert torch.allclose(space.pattern.to_dense(lumped_values), torch.diag(diagonal))


def test_mass_matrix_is_differentiable_in_rho_and_nodes_and_rejects_bad_input():
    mesh = dfem.mesh.rectangle(2, 2, "quad")
    space = dfem.FunctionSpace(mesh, "Q1")
    rho = torch.ones(4, dtype=torch.float64, requires_grad=True)
    mass_matrix(space, rho).sum().backward()
    assert torch.allclose(rho.grad, torch.full((4,), 0.25, dtype=torch.float64))
    nodes = mesh.nodes.clone().requires_grad_(True)
    total = mass_matrix(space.with_nodes(nodes)).sum()
    (grad,) = torch.autograd.grad(total, nodes)
    assert torch.isfinite(grad).all() and float(grad.abs().sum()) > 0
    with pytest.raises(DfemError, match="lumped=True"):
        mass_matrix(space, format="diagonal")
    with pytest.raises(DfemError, match="vector-valued"):
        mass_matrix(dfem.FunctionSpace(mesh, "Q1", shape=(2,)))
    with pytest.raises(DfemError, match="format"):
        mass_matrix(space, format="dense")
