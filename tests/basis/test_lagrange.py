"""Lagrange elements, dof maps and the mapped geometry."""

import numpy as np
import pytest
import torch

import dfem
from dfem.basis import FunctionSpace, element
from dfem.exceptions import DfemError

ELEMENTS = ["P1", "P2", "P3", "Q1", "Q2", "Q3"]


def distorted_mesh(cell, n=4, seed=0, diagonal="alternate"):
    """A rectangle mesh with its interior nodes moved randomly (cells stay valid)."""
    return dfem.mesh.perturb_interior(dfem.mesh.rectangle(n, n, cell, diagonal=diagonal),
                                      0.2, seed)


@pytest.mark.parametrize("name", ELEMENTS)
def test_nodal_basis_properties(name):
    e = element(name)
    V = e.values(e.nodes)
    np.testing.assert_allclose(V, np.eye(e.n_basis), atol=1e-13)
    xi = np.random.default_rng(0).random((20, 2)) * (0.5 if e.cell_type == "tri" else 1.0)
    np.testing.assert_allclose(e.values(xi).sum(1), 1.0, atol=1e-13)  # partition of unity
    np.testing.assert_allclose(e.gradients(xi).sum(1), 0.0, atol=1e-12)
    expected = {"P1": 3, "P2": 6, "P3": 10, "Q1": 4, "Q2": 9, "Q3": 16}[name]
    assert e.n_basis == expected


@pytest.mark.parametrize("name", ELEMENTS)
def test_gradients_match_finite_differences(name):
    e = element(name)
    xi = np.array([[0.21, 0.17], [0.3, 0.45]])
    h = 1e-6
    fd = np.stack(
        [
            (e.values(xi + [h, 0]) - e.values(xi - [h, 0])) / (2 * h),
            (e.values(xi + [0, h]) - e.values(xi - [0, h])) / (2 * h),
        ],
        axis=-1,
    )
    np.testing.assert_allclose(e.gradients(xi), fd, atol=1e-7)


@pytest.mark.parametrize("name", ELEMENTS)
def test_reproduces_polynomials_of_its_degree_on_distorted_mesh(name):
    e = element(name)
    mesh = distorted_mesh(e.cell_type)
    space = FunctionSpace(mesh, name)
    p = e.degree
    if e.cell_type == "tri" or p == 1:
        # total degree p is in P_p and, on affine/bilinear cells, mapped Q_p only keeps
        # degree 1 exactly; use an affine map check for Q on distorted cells below
        def fn(x):
            return 0.3 + x[..., 0] ** p - 2 * x[..., 0] * x[..., 1] ** (p - 1)
    else:

        def fn(x):
            return 0.3 + 2 * x[..., 0] - x[..., 1]

    u = space.interpolate(fn)
    g = space.geometry()
    uq, grad = space.at_quadrature(u, g)
    torch.testing.assert_close(uq, fn(g.points), atol=1e-12, rtol=0)
    xq = g.points.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(fn(xq).sum(), xq)
    torch.testing.assert_close(grad, expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", ["Q2", "Q3"])
def test_q_elements_reproduce_tensor_polynomials_on_rectangles(name):
    p = element(name).degree
    space = FunctionSpace(dfem.mesh.rectangle(3, 2, "quad", x=(0.0, 1.5)), name)

    def fn(x):
        return x[..., 0] ** p * x[..., 1] ** p + x[..., 1]

    g = space.geometry()
    uq, _ = space.at_quadrature(space.interpolate(fn), g)
    torch.testing.assert_close(uq, fn(g.points), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ELEMENTS)
def test_functions_are_continuous_across_edges(name):
    """On every interior edge, the traces from the two neighbouring cells agree."""
    e = element(name)
    mesh = distorted_mesh(e.cell_type, n=3, diagonal="alternate")
    space = FunctionSpace(mesh, name)
    u = torch.randn(space.n_dofs, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    table = mesh.edge_table
    n_local = table.cell_edges.shape[1]
    verts = space._table(element(f"{'P' if e.cell_type == 'tri' else 'Q'}1").nodes)
    s = torch.tensor([0.17, 0.5, 0.71], dtype=torch.float64)
    values = {}
    for local in range(n_local):
        a, b = dfem.mesh.mesh.LOCAL_EDGES[e.cell_type][local]
        # reference points along the local edge, in the global edge direction
        xi = verts[a] + s[:, None] * (verts[b] - verts[a])
        phi = torch.as_tensor(e.values(xi.numpy()))
        vals = space.cell_values(u) @ phi.T  # (E, 3)
        flipped = torch.as_tensor(table.flipped[:, local])
        vals = torch.where(
            flipped[:, None],
            space.cell_values(u)
            @ torch.as_tensor(e.values((verts[b] + s[:, None] * (verts[a] - verts[b])).numpy())).T,
            vals,
        )
        for cell in range(mesh.n_cells):
            values.setdefault(int(table.cell_edges[cell, local]), []).append(vals[cell])
    shared = [v for v in values.values() if len(v) == 2]
    assert len(shared) > 0
    for v0, v1 in shared:
        torch.testing.assert_close(v0, v1, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ELEMENTS)
def test_dof_counts(name):
    n = 3
    e = element(name)
    space = FunctionSpace(dfem.mesh.rectangle(n, n, e.cell_type), name)
    p = e.degree
    expected = (p * n + 1) ** 2 if e.cell_type == "quad" else (p * n + 1) ** 2
    assert space.n_dofs == expected
    coords = space.dof_coordinates.numpy()
    # dofs of a uniform mesh sit on the lattice of spacing 1/(p n), each exactly once
    lattice = np.round(coords * p * n).astype(int)
    assert len(np.unique(lattice, axis=0)) == space.n_dofs
    np.testing.assert_allclose(coords * p * n, lattice, atol=1e-12)


def test_geometry_areas_and_points():
    mesh = distorted_mesh("quad", n=5, seed=3)
    space = FunctionSpace(mesh, "Q2")
    g = space.geometry()
    torch.testing.assert_close(g.weights.sum(1), mesh.signed_areas(), atol=1e-14, rtol=0)
    # integrates x exactly: int_[0,1]^2 x = 1/2
    assert float((g.points[..., 0] * g.weights).sum()) == pytest.approx(0.5, abs=1e-14)


def test_element_errors():
    with pytest.raises(DfemError, match="unknown element"):
        element("P4")
    with pytest.raises(DfemError, match="does not fit"):
        FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "P1")


def test_float32_space_stays_float32():
    mesh = dfem.mesh.rectangle(3, 3, "tri", dtype=torch.float32)
    space = FunctionSpace(mesh, "P2")
    g = space.geometry()
    assert g.grads.dtype == torch.float32 and g.weights.dtype == torch.float32
