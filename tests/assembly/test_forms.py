"""Energy, residual and matrix: consistent with each other and with exact integrals."""

import math

import numpy as np
import pytest
import torch

import dfem
from dfem.assembly import (
    AtQuadrature,
    Nodal,
    PerCell,
    assemble,
    assemble_matrix,
    assemble_vector,
    energy,
    residual,
)
from dfem.exceptions import DfemError

ELEMENTS = ["P1", "P2", "P3", "Q1", "Q2", "Q3"]


def space_for(name, n=4):
    cell = "tri" if name.startswith("P") else "quad"
    return dfem.FunctionSpace(dfem.mesh.rectangle(n, n + 1, cell, x=(0.0, 2.0)), name)


def coefficients():
    return dict(
        nu=lambda x: 1 + x[..., 0] ** 2 * x[..., 1],
        c=lambda x: 0.5 + x[..., 1],
        f=lambda x: torch.sin(x[..., 0]) + x[..., 1],
        neumann={"right": lambda x: x[..., 1] ** 2},
        robin={"top": (2.0, lambda x: torch.cos(x[..., 0]))},
    )


@pytest.mark.parametrize("name", ELEMENTS)
def test_energy_residual_matrix_agree(name):
    space = space_for(name)
    kw = coefficients()
    K, F = assemble(space, format="scipy", **kw)
    u = torch.randn(space.n_dofs, dtype=torch.float64, requires_grad=True)
    J = energy(space, u, **kw)
    (grad,) = torch.autograd.grad(J, u)
    ud = u.detach().numpy()
    assert float(J.detach()) == pytest.approx(0.5 * ud @ (K @ ud) - ud @ F, rel=1e-12)
    np.testing.assert_allclose(grad.numpy(), K @ ud - F, atol=1e-11)
    np.testing.assert_allclose(residual(space, u.detach(), **kw).numpy(), K @ ud - F, atol=1e-11)
    assert abs(K - K.T).max() < 1e-13
    # positive definite: all eigenvalues of K > 0 with c > 0 and a Robin term
    assert np.linalg.eigvalsh(K.toarray()).min() > 0


@pytest.mark.parametrize("name", ELEMENTS)
def test_exact_integrals(name):
    space = space_for(name)
    one = torch.ones(space.n_dofs, dtype=torch.float64)
    # stiffness annihilates constants; the mass matrix sums to the area (2 x 1)
    K = assemble_matrix(space, nu=1.0)
    assert space.pattern.to_scipy(K).dot(one.numpy()) == pytest.approx(
        np.zeros(space.n_dofs), abs=1e-12
    )
    M = assemble_matrix(space, nu=1e-300, c=1.0)
    assert float(M.sum()) == pytest.approx(2.0, rel=1e-13)
    # int f = 1 * area; Neumann g = y^2 on the right side x=2: int_0^1 y^2 dy = 1/3
    F = assemble_vector(space, f=1.0, neumann={"right": lambda x: x[..., 1] ** 2})
    assert float(F.sum()) == pytest.approx(2.0 + 1.0 / 3.0, rel=1e-13)
    # Dirichlet energy of u = x: 1/2 int |grad u|^2 = area / 2
    u = space.interpolate(lambda x: x[..., 0])
    assert float(energy(space, u)) == pytest.approx(1.0, rel=1e-13)


def test_coefficient_forms_agree():
    space = space_for("Q2")
    g = space.geometry()
    fn = lambda x: 1 + x[..., 0] * x[..., 1]  # noqa: E731  (degree 2: exact in Q2)
    nodal = space.interpolate(fn)
    at_q = fn(g.points)
    reference = assemble_matrix(space, nu=fn)
    for value in (nodal, Nodal(nodal), at_q, AtQuadrature(at_q)):
        torch.testing.assert_close(assemble_matrix(space, nu=value), reference, atol=1e-13, rtol=0)
    per_cell = torch.rand(space.mesh.n_cells, dtype=torch.float64) + 0.5
    torch.testing.assert_close(
        assemble_matrix(space, nu=per_cell), assemble_matrix(space, nu=PerCell(per_cell))
    )


def test_batched_energy_matches_loop():
    space = space_for("P2")
    u = torch.randn(3, space.n_dofs, dtype=torch.float64)
    nu = torch.rand(3, space.mesh.n_cells, dtype=torch.float64) + 0.1
    batched = energy(space, u, nu=nu, f=1.0)
    looped = torch.stack([energy(space, u[k], nu=nu[k], f=1.0) for k in range(3)])
    torch.testing.assert_close(batched, looped)
    values = assemble_matrix(space, nu=nu)
    assert values.shape == (3, space.pattern.nnz)
    torch.testing.assert_close(values[1], assemble_matrix(space, nu=nu[1]))


def test_torch_sparse_matrix_carries_gradients():
    space = space_for("Q1", n=3)
    nu = torch.rand(space.mesh.n_cells, dtype=torch.float64, requires_grad=True)
    nodes = space.mesh.nodes.clone().requires_grad_(True)
    moved = space.with_nodes(nodes)
    K, F = assemble(moved, nu=nu, f=lambda x: x[..., 0], format="torch")
    u = torch.randn(space.n_dofs, dtype=torch.float64)
    value = u @ (K @ u) + (F * u).sum()
    value.backward()
    # d(u^T K u)/d nu_e = u_e^T K_e(nu=1) u_e, independently from the element matrices
    Ke = dfem.assembly.element_matrices(space, nu=1.0)
    ue = u[space.cell_dofs]
    expected = torch.einsum("ea,eab,eb->e", ue, Ke, ue)
    torch.testing.assert_close(nu.grad, expected)
    assert nodes.grad is not None and float(nodes.grad.abs().sum()) > 0
    dense = K.to_dense()
    torch.testing.assert_close(
        dense, torch.as_tensor(space.pattern.to_scipy(assemble_matrix(space, nu=nu)).toarray())
    )


def test_nonpositive_nu_rejected():
    space = space_for("Q1")
    with pytest.raises(DfemError, match="nu must be positive"):
        assemble_matrix(space, nu=lambda x: x[..., 0] - 0.5)
    with pytest.raises(DfemError, match="nu must be positive"):
        energy(space, torch.zeros(space.n_dofs, dtype=torch.float64), nu=0.0)


def test_bad_coefficient_shapes():
    space = space_for("Q1")
    with pytest.raises(DfemError, match="expected a number, a callable"):
        assemble_vector(space, f=torch.ones(7, dtype=torch.float64))
    with pytest.raises(DfemError, match="Robin condition"):
        assemble_matrix(space, robin={"top": 1.0})
    with pytest.raises(dfem.MeshError, match="does not exist"):
        assemble_vector(space, neumann={"nowhere": 1.0})
    with pytest.raises(DfemError, match="format must be"):
        assemble(space, format="dense")


def test_facet_normals_point_outward():
    space = space_for("P1")
    for tag, normal in {"left": (-1, 0), "right": (1, 0), "bottom": (0, -1), "top": (0, 1)}.items():
        n = space.facet_geometry(tag).normals
        torch.testing.assert_close(n, torch.tensor(normal, dtype=torch.float64).expand_as(n))


def test_divergence_theorem_on_boundary():
    # int_boundary grad(u).n = int_domain laplace(u) for u = x^2 + x y: laplace = 2
    space = space_for("P2")
    total = 0.0
    for tag in ("left", "right", "bottom", "top"):
        fg = space.facet_geometry(tag)
        grad = torch.stack([2 * fg.points[..., 0] + fg.points[..., 1], fg.points[..., 0]], -1)
        total += float(((grad * fg.normals[:, None, :]).sum(-1) * fg.weights).sum())
    assert total == pytest.approx(2 * 2.0, rel=1e-13)
    assert math.isfinite(total)


@pytest.mark.parametrize("name", ["P2", "Q2"])
def test_energy_gradcheck_all_inputs(name):
    """J is differentiable in u, nu (per cell), c (at quadrature points), f (nodal),
    the Neumann g (per facet), the Robin alpha and the node coordinates."""
    space = dfem.FunctionSpace(
        dfem.mesh.rectangle(2, 2, "tri" if name.startswith("P") else "quad"), name
    )
    gen = torch.Generator().manual_seed(3)

    def rand(*shape):
        return (torch.rand(*shape, dtype=torch.float64, generator=gen) + 0.5).requires_grad_(True)

    n_q = space.geometry().weights.shape[1]
    n_right = len(space.boundary_facets("right"))
    inputs = (
        rand(space.n_dofs),
        rand(space.mesh.n_cells),
        rand(space.mesh.n_cells, n_q),
        rand(space.n_dofs),
        rand(n_right),
        rand(()),
        space.mesh.nodes.clone().requires_grad_(True),
    )

    def J(u, nu, c, f, g, alpha, nodes):
        moved = space.with_nodes(nodes)
        return energy(moved, u, nu=PerCell(nu), c=AtQuadrature(c), f=Nodal(f),
                      neumann={"right": PerCell(g)}, robin={"top": (alpha, 1.0)})

    assert torch.autograd.gradcheck(J, inputs)


# one thread: gradgradcheck makes thousands of small products, each milliseconds with two
# OpenMP threads on busy cores
@pytest.mark.parametrize("mesh", ["tet", "quad"])
@pytest.mark.parametrize("small_nnz", [0, 10**9])
def test_matvec_fast_path_matches_dense_to_second_order(mesh, small_nnz, monkeypatch,
                                                       one_thread):
    """The CSR product of one matrix and one vector (and, for small matrices, the gather
    path instead) equals the dense product, and its first and second derivatives in the
    values and the vector pass gradcheck / gradgradcheck (non-symmetric values on the
    symmetric pattern, so A^T is really exercised)."""
    from dfem.assembly import forms
    from dfem.assembly.forms import assemble_matrix, matvec

    monkeypatch.setattr(forms, "_SMALL_NNZ", small_nnz)

    grid = dfem.mesh.box(2, cell="tet") if mesh == "tet" else dfem.mesh.rectangle(2, 2, "quad")
    space = dfem.FunctionSpace(grid, "P2" if mesh == "tet" else "Q2")
    pattern = space.pattern
    assert pattern.transpose is not None
    gen = torch.Generator().manual_seed(0)
    values = assemble_matrix(space, 1.0) + torch.rand(pattern.nnz, dtype=torch.float64,
                                                      generator=gen)
    values.requires_grad_(True)
    u = torch.rand(space.n_dofs, dtype=torch.float64, generator=gen, requires_grad=True)
    dense = pattern.to_dense(values.detach())
    torch.testing.assert_close(matvec(pattern, values, u), dense @ u.detach())
    assert torch.autograd.gradcheck(lambda v, x: matvec(pattern, v, x), (values, u))
    assert torch.autograd.gradgradcheck(lambda v, x: matvec(pattern, v, x), (values, u))
    batched = matvec(pattern, values.detach().expand(2, -1), u.detach())  # the batched path
    torch.testing.assert_close(batched, (dense @ u.detach()).expand(2, -1))
