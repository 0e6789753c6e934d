"""Point location and point evaluation of finite element functions."""

import numpy as np
import pytest
import torch

import dfem
from dfem.basis import FunctionSpace, PointEvaluation, locate_points, probe_matrix
from dfem.basis import probes as probes_module
from dfem.basis.lagrange import geometry_element
from dfem.exceptions import DfemError

ELEMENTS = ["P1", "P2", "P3", "Q1", "Q2", "Q3"]


def distorted_mesh(cell, n=4, seed=0):
    """A unit-square mesh with its interior nodes moved randomly (cells stay valid)."""
    return dfem.mesh.perturb_interior(dfem.mesh.rectangle(n, n, cell, diagonal="alternate"),
                                      0.2, seed)


# an affine map of the unit square: quads become parallelograms (affine cells)
SHEAR = torch.tensor([[1.2, 0.0], [0.5, 0.9]], dtype=torch.float64)  # x -> x @ SHEAR


def parallelogram_mesh(cell, n=3):
    mesh = dfem.mesh.rectangle(n, n, cell, diagonal="alternate")
    return mesh.with_nodes(mesh.nodes @ SHEAR)


def random_points(n=200, seed=1, margin=1e-3):
    rng = np.random.default_rng(seed)
    return torch.as_tensor(margin + (1 - 2 * margin) * rng.random((n, 2)))


def forward_map(mesh, cells, xi):
    """x(xi) with the geometry element's shape functions (P1 or Q1)."""
    N = torch.as_tensor(geometry_element(mesh.cell_type).values(xi.numpy()))
    return torch.einsum("na,nai->ni", N, mesh.nodes[mesh.cells[cells]])


def poly(degree):
    def fn(x):
        return 0.3 + x[..., 0] ** degree - 2 * x[..., 0] * x[..., 1] ** (degree - 1) + x[..., 1]

    return fn


def linear(x):
    return 0.3 + 2 * x[..., 0] - x[..., 1]


@pytest.mark.parametrize("name", ELEMENTS)
def test_reproduces_polynomials_of_its_degree(name):
    """P_k on distorted triangles; Q_k on parallelograms (affine cells), where the mapped
    Q_k space contains all polynomials of total degree k."""
    e = dfem.basis.element(name)
    if e.cell_type == "tri":
        mesh, points = distorted_mesh("tri"), random_points()
    else:
        mesh, points = parallelogram_mesh("quad"), random_points() @ SHEAR
    space = FunctionSpace(mesh, name)
    fn = poly(e.degree)
    probe = PointEvaluation(space, points)
    torch.testing.assert_close(probe(space.interpolate(fn)), fn(points), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["Q1", "Q2", "Q3"])
def test_quads_reproduce_linear_functions_on_distorted_mesh(name):
    space = FunctionSpace(distorted_mesh("quad"), name)
    points = random_points()
    values = PointEvaluation(space, points)(space.interpolate(linear))
    torch.testing.assert_close(values, linear(points), atol=1e-12, rtol=0)


@pytest.mark.parametrize("cell", ["quad", "tri"])
def test_located_xi_maps_back_to_the_points(cell):
    mesh = distorted_mesh(cell, n=5, seed=2)
    points = random_points(500, seed=3, margin=0.0)
    cells, xi = locate_points(mesh, points)
    assert cells.dtype == torch.int64 and cells.shape == (500,) and xi.shape == (500, 2)
    torch.testing.assert_close(forward_map(mesh, cells, xi), points, atol=1e-12, rtol=0)
    inside = (xi >= -1e-9).all(1) & (xi <= 1 + 1e-9).all(1)
    if cell == "tri":
        inside &= xi.sum(1) <= 1 + 1e-9
    assert inside.all()


@pytest.mark.parametrize("cell", ["quad", "tri"])
def test_vertices_edges_and_boundary_points_are_located(cell):
    mesh = distorted_mesh(cell, n=4, seed=4)
    ends = torch.as_tensor(mesh.edge_table.edges)
    s = torch.linspace(0, 1, 7, dtype=torch.float64)
    boundary = torch.cat([
        torch.stack([s, torch.zeros_like(s)], 1), torch.stack([s, torch.ones_like(s)], 1),
        torch.stack([torch.zeros_like(s), s], 1), torch.stack([torch.ones_like(s), s], 1),
    ])
    x = mesh.nodes
    points = torch.cat([x, 0.5 * (x[ends[:, 0]] + x[ends[:, 1]]),
                        0.3 * x[ends[:, 0]] + 0.7 * x[ends[:, 1]], boundary])
    cells, xi = locate_points(mesh, points)
    torch.testing.assert_close(forward_map(mesh, cells, xi), points, atol=1e-12, rtol=0)
    space = FunctionSpace(mesh, "Q2" if cell == "quad" else "P2")
    values = PointEvaluation(space, points)(space.interpolate(linear))
    torch.testing.assert_close(values, linear(points), atol=1e-12, rtol=0)


def test_many_chunks_give_the_same_cells(monkeypatch):
    mesh = distorted_mesh("quad", n=6, seed=5)
    points = random_points(300, seed=6)
    cells, xi = locate_points(mesh, points)
    monkeypatch.setattr(probes_module, "_PAIR_BUDGET", 50)  # one point per chunk
    cells_chunked, xi_chunked = locate_points(mesh, points)
    assert torch.equal(cells, cells_chunked)
    torch.testing.assert_close(xi, xi_chunked, atol=0, rtol=0)


@pytest.mark.parametrize("name", ["Q1", "P1"])
def test_matches_scikit_fem_probes(name):
    skfem = pytest.importorskip("skfem")
    cell = "quad" if name == "Q1" else "tri"
    mesh = distorted_mesh(cell, n=5, seed=7)
    p, t = mesh.nodes.numpy().T.copy(), mesh.cells_np.T.copy()
    if cell == "quad":
        sk_mesh, sk_element = skfem.MeshQuad(p, t), skfem.ElementQuad1()
    else:
        sk_mesh, sk_element = skfem.MeshTri(p, t), skfem.ElementTriP1()
    space = FunctionSpace(mesh, name)
    assert space.n_dofs == mesh.n_nodes  # vertex dofs are the node numbers
    u = torch.randn(space.n_dofs, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    points = random_points(100, seed=9)
    expected = skfem.Basis(sk_mesh, sk_element).probes(points.numpy().T) @ u.numpy()
    values = PointEvaluation(space, points)(u)
    torch.testing.assert_close(values, torch.as_tensor(expected), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["Q2", "P3"])
def test_probe_matrix_and_batched_evaluation(name):
    space = FunctionSpace(distorted_mesh(dfem.basis.element(name).cell_type, n=3), name)
    points = random_points(40, seed=10)
    probe = PointEvaluation(space, points)
    u = torch.randn(2, 3, space.n_dofs, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(11))
    values = probe(u)
    assert values.shape == (2, 3, 40) and probe.n_points == 40
    P = probe_matrix(space, points)
    assert P.layout == torch.sparse_csr and P.shape == (40, space.n_dofs)
    assert P.dtype == torch.float64
    torch.testing.assert_close(P @ u[1, 2], values[1, 2], atol=1e-13, rtol=0)
    torch.testing.assert_close(P.to_dense().sum(1), torch.ones(40, dtype=torch.float64))


def test_gradcheck_in_u():
    space = FunctionSpace(distorted_mesh("quad", n=2), "Q2")
    probe = PointEvaluation(space, random_points(7, seed=12))
    u = torch.randn(2, space.n_dofs, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(probe, (u,))


def test_points_outside_the_mesh_raise():
    space = FunctionSpace(dfem.mesh.rectangle(3, 3, "quad"), "Q1")
    points = [[0.5, 0.5], [1.5, 0.5], [0.2, -0.25]]
    with pytest.raises(DfemError, match=r"2 of 3 point\(s\) lie outside") as info:
        PointEvaluation(space, points)
    assert "(1.5, 0.5)" in str(info.value) and "(0.2, -0.25)" in str(info.value)
    assert "inside the mesh's domain" in str(info.value)
    with pytest.raises(DfemError, match="lie outside"):
        locate_points(dfem.mesh.rectangle(3, 3, "tri"), [[1.0 + 1e-6, 0.5]])
    # an L-shape: the notch lies inside the mesh's bounding box but outside its cells
    nodes = [[0, 0], [1, 0], [1, 1], [0, 1], [2, 0], [2, 1], [0, 2], [1, 2]]
    lshape = dfem.mesh.Mesh(nodes, [[0, 1, 2, 3], [1, 4, 5, 2], [3, 2, 7, 6]])
    cells, _ = locate_points(lshape, [[1.5, 0.5], [0.5, 1.5], [0.25, 0.75], [2.0, 1.0]])
    assert cells.tolist() == [1, 2, 0, 1]
    with pytest.raises(DfemError, match=r"1 of 2 point\(s\).*\(1.5, 1.5\)"):
        locate_points(lshape, [[0.5, 0.5], [1.5, 1.5]])


def test_bad_points_and_dof_vectors_raise():
    mesh = dfem.mesh.rectangle(2, 2, "tri")
    with pytest.raises(DfemError, match="NaN or infinite"):
        locate_points(mesh, [[0.5, float("nan")], [0.1, 0.1]])
    with pytest.raises(DfemError, match=r"shape \(n, 2\)"):
        locate_points(mesh, [0.5, 0.5, 0.5])
    with pytest.raises(DfemError, match="tol"):
        locate_points(mesh, [[0.5, 0.5]], tol=-1.0)
    space = FunctionSpace(mesh, "P2")
    probe = PointEvaluation(space, [[0.5, 0.5]])
    with pytest.raises(DfemError, match=rf"shape \(\.\.\., {space.n_dofs}\)"):
        probe(torch.zeros(space.n_dofs - 1, dtype=torch.float64))
