"""Point location and point evaluation on tetrahedra and hexahedra."""

import numpy as np
import pytest
import torch

import dfem
from dfem.basis import location as location_module
from dfem.basis import probes as probes_module
from dfem.basis.lagrange import geometry_element
from dfem.basis.probes import PointEvaluation, locate_points, points_inside, probe_matrix
from dfem.exceptions import DfemError

pytestmark = pytest.mark.usefixtures("one_thread")

CELLS = ["hex", "tet"]

# an affine map of the unit cube: hexahedra become parallelepipeds (affine cells)
SHEAR = torch.tensor([[1.2, 0.0, 0.0], [0.4, 0.9, 0.0], [0.2, -0.3, 1.1]],
                     dtype=torch.float64)  # x -> x @ SHEAR


def distorted_box(cell, n=3, seed=0):
    """A unit-cube mesh with its interior nodes moved randomly (cells stay valid)."""
    return dfem.mesh.perturb_interior(dfem.mesh.box(n, cell=cell), 0.2, seed)


def random_points(n=300, seed=1, margin=1e-3):
    rng = np.random.default_rng(seed)
    return torch.as_tensor(margin + (1 - 2 * margin) * rng.random((n, 3)))


def forward_map(mesh, cells, xi):
    """x(xi) with the geometry element's shape functions (P1 or Q1)."""
    N = torch.as_tensor(geometry_element(mesh.cell_type).values(xi.numpy()))
    return torch.einsum("na,nai->ni", N, mesh.nodes[mesh.cells[cells]])


def in_reference_cell(cell, xi, tol=1e-9):
    inside = (xi >= -tol).all(1) & (xi <= 1 + tol).all(1)
    if cell == "tet":
        inside &= xi.sum(1) <= 1 + tol
    return inside


def poly(degree):
    def fn(x):
        x0, x1, x2 = x[..., 0], x[..., 1], x[..., 2]
        return (0.3 + x0**degree - 2 * x1 * x2 ** (degree - 1) + x2
                + 0.5 * x0 * x1 ** (degree - 1))

    return fn


def linear(x):
    return 0.3 + 2 * x[..., 0] - x[..., 1] + 0.5 * x[..., 2]


@pytest.mark.parametrize("cell", CELLS)
def test_located_xi_maps_back_to_the_points(cell):
    mesh = distorted_box(cell, n=4, seed=2)
    points = random_points(1000, seed=3, margin=0.0)
    cells, xi = locate_points(mesh, points)
    assert cells.dtype == torch.int64 and cells.shape == (1000,) and xi.shape == (1000, 3)
    torch.testing.assert_close(forward_map(mesh, cells, xi), points, atol=1e-12, rtol=0)
    assert in_reference_cell(cell, xi).all()


@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_reproduces_polynomials_of_its_degree(cell, degree):
    """P_k on distorted tetrahedra; Q_k on parallelepipeds (affine cells), where the mapped
    Q_k space contains all polynomials of total degree k."""
    if cell == "tet":
        mesh, points = distorted_box("tet", n=3, seed=4), random_points()
    else:
        mesh = dfem.mesh.box(3, cell="hex")
        mesh, points = mesh.with_nodes(mesh.nodes @ SHEAR), random_points() @ SHEAR
    space = dfem.FunctionSpace(mesh, ("P" if cell == "tet" else "Q") + str(degree))
    fn = poly(degree)
    probe = PointEvaluation(space, points)
    assert probe.xi.shape == (len(points), 3)
    torch.testing.assert_close(probe(fn(space.dof_coordinates)), fn(points), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["Q1", "Q2", "Q3"])
def test_distorted_hexahedra_reproduce_linear_functions(name):
    space = dfem.FunctionSpace(distorted_box("hex", n=3, seed=5), name)
    points = random_points(200, seed=6)
    values = PointEvaluation(space, points)(linear(space.dof_coordinates))
    torch.testing.assert_close(values, linear(points), atol=1e-12, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_vertices_edges_faces_and_boundary_points_are_located(cell):
    mesh = distorted_box(cell, n=3, seed=7)
    x = mesh.nodes
    ends = torch.as_tensor(mesh.edge_table.edges)
    faces = torch.as_tensor(mesh.face_table.entities)
    rng = np.random.default_rng(8)
    s = torch.as_tensor(rng.random((40, 2)))
    sides = [torch.stack([s[:, 0], s[:, 1], torch.full_like(s[:, 0], float(v))], 1)[:, perm]
             for v in (0, 1) for perm in ([0, 1, 2], [0, 2, 1], [2, 0, 1])]
    points = torch.cat([
        x,  # vertices
        0.5 * (x[ends[:, 0]] + x[ends[:, 1]]), 0.3 * x[ends[:, 0]] + 0.7 * x[ends[:, 1]],
        x[faces].mean(dim=1),  # face centres (also of bilinear faces: the vertex mean)
        *sides,  # on the boundary of the cube
    ])
    cells, xi = locate_points(mesh, points)
    torch.testing.assert_close(forward_map(mesh, cells, xi), points, atol=1e-12, rtol=0)
    assert in_reference_cell(cell, xi).all()
    space = dfem.FunctionSpace(mesh, "Q2" if cell == "hex" else "P2")
    values = PointEvaluation(space, points)(linear(space.dof_coordinates))
    torch.testing.assert_close(values, linear(points), atol=1e-12, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_many_chunks_give_the_same_cells_and_xi(cell, monkeypatch):
    mesh = distorted_box(cell, n=3, seed=9)
    points = random_points(200, seed=10)
    cells, xi = locate_points(mesh, points)
    monkeypatch.setattr(probes_module, "_PAIR_BUDGET", 30)  # about one point per chunk
    cells_chunked, xi_chunked = locate_points(mesh, points)
    assert torch.equal(cells, cells_chunked)
    torch.testing.assert_close(xi, xi_chunked, atol=0, rtol=0)


def test_vector_space_values_have_one_column_per_component():
    mesh = distorted_box("hex", n=2, seed=11)
    space = dfem.FunctionSpace(mesh, "Q1", shape=(3,))
    X = space.scalar.dof_coordinates
    fields = [linear, lambda x: 1 - x[..., 2], lambda x: x[..., 0] + 3 * x[..., 1]]
    u = torch.stack([f(X) for f in fields], dim=-1).reshape(-1)  # interleaved components
    points = random_points(50, seed=12)
    probe = PointEvaluation(space, points)
    values = probe(u)
    assert values.shape == (50, 3)
    expected = torch.stack([f(points) for f in fields], dim=-1)
    torch.testing.assert_close(values, expected, atol=1e-12, rtol=0)
    assert probe(torch.stack([u, 2 * u])).shape == (2, 50, 3)


def test_probe_matrix_rows_are_partitions_of_unity():
    space = dfem.FunctionSpace(distorted_box("tet", n=2, seed=13), "P3")
    points = random_points(30, seed=14)
    P = probe_matrix(space, points)
    assert P.shape == (30, space.n_dofs)
    torch.testing.assert_close(P.to_dense().sum(1), torch.ones(30, dtype=torch.float64))
    u = torch.randn(space.n_dofs, dtype=torch.float64, generator=torch.Generator().manual_seed(15))
    torch.testing.assert_close(P @ u, PointEvaluation(space, points)(u), atol=1e-13, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_points_outside_the_mesh_raise(cell):
    mesh = dfem.mesh.box(2, cell=cell, x=(0.0, 2.0))
    points = [[0.5, 0.5, 0.5], [1.0, 0.5, 1.25], [2.0 + 1e-6, 0.5, 0.5], [1.5, 0.2, 0.3]]
    with pytest.raises(DfemError, match=r"2 of 4 point\(s\) lie outside") as info:
        PointEvaluation(dfem.FunctionSpace(mesh, "Q1" if cell == "hex" else "P1"), points)
    message = str(info.value)
    assert "(1, 0.5, 1.25)" in message and "(2, 0.5, 0.5)" in message
    assert "[0, 2] x [0, 1] x [0, 1]" in message
    assert points_inside(mesh, points).tolist() == [True, False, False, True]


def test_points_in_a_hole_are_outside():
    """A 4 x 4 x 4 box without its 2 x 2 x 2 middle cells: a cavity [0.25, 0.75]^3."""
    box = dfem.mesh.box(4, cell="hex")
    centres = box.nodes[box.cells].mean(dim=1)
    keep = ((centres - 0.5).abs() > 0.25).any(dim=1)
    nodes, cells, _ = dfem.mesh.remove_unused_nodes(box.nodes, box.cells_np[keep.numpy()])
    mesh = dfem.mesh.Mesh(nodes, cells)
    points = [[0.5, 0.5, 0.5], [0.1, 0.5, 0.5], [0.75, 0.5, 0.5], [0.6, 0.4, 0.7]]
    assert points_inside(mesh, points).tolist() == [False, True, True, False]
    with pytest.raises(DfemError, match=r"2 of 4 point\(s\).*\(0.5, 0.5, 0.5\)"):
        locate_points(mesh, points)


def test_wrong_point_dimension_raises():
    mesh3, mesh2 = dfem.mesh.box(2, cell="tet"), dfem.mesh.rectangle(2, 2, "quad")
    with pytest.raises(DfemError, match=r"shape \(n, 3\) on this 3D mesh of tetrahedra.*\(4, 2\)"):
        locate_points(mesh3, torch.rand(4, 2, dtype=torch.float64))
    with pytest.raises(DfemError, match=r"shape \(n, 2\) on this 2D mesh"):
        locate_points(mesh2, [[0.5, 0.5, 0.5]])
    with pytest.raises(DfemError, match=r"shape \(n, 3\).*\[\[x, y, z\]\]"):
        locate_points(mesh3, [0.5, 0.5, 0.5])
    with pytest.raises(DfemError, match="NaN or infinite"):
        locate_points(mesh3, [[0.5, float("inf"), 0.5]])


def test_newton_that_does_not_converge_raises(monkeypatch):
    mesh = distorted_box("hex", n=2, seed=16)
    monkeypatch.setattr(location_module, "_NEWTON_STEPS", 1)
    monkeypatch.setattr(location_module, "_NEWTON_MAX", 1)  # one step: no convergence
    with pytest.raises(DfemError, match="did not invert the trilinear map of the hexahedron"):
        locate_points(mesh, random_points(20, seed=17))


def test_gradcheck_in_u():
    space = dfem.FunctionSpace(distorted_box("hex", n=1), "Q2")
    probe = PointEvaluation(space, random_points(5, seed=18))
    u = torch.randn(2, space.n_dofs, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(probe, (u,))
