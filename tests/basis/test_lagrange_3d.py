"""Lagrange elements on tetrahedra and hexahedra: nodal basis, dof sharing, continuity.

The continuity test is the one that catches a face or edge dof shared with the wrong
orientation: a random finite element function, evaluated from the two cells on either
side of every interior face at the same physical points, must agree. A face permutation
error (Q3 has four dofs per face, P3 one, Q2 one) or a reversed edge breaks it at once.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import dfem
from dfem.basis.lagrange import LagrangeElement, element, geometry_element
from dfem.mesh.cells import REFERENCE_CELLS
from dfem.validation.error_norms import errors as dfem_errors

ELEMENTS = [("tet", p) for p in (1, 2, 3)] + [("hex", p) for p in (1, 2, 3)]
COUNTS = {("tet", 1): 4, ("tet", 2): 10, ("tet", 3): 20,
          ("hex", 1): 8, ("hex", 2): 27, ("hex", 3): 64}


def twisted_mesh(cell: str, seed: int = 0, perturb: float = 0.15) -> dfem.mesh.Mesh:
    """A perturbed box whose cells are renumbered with random vertex rotations, so that
    neighbours see shared edges and faces in every relative orientation."""
    mesh = dfem.mesh.perturb_interior(dfem.mesh.box(3, 2, 2, cell=cell), perturb, seed=seed)
    rng = np.random.default_rng(seed)
    cells = mesh.cells_np.copy()
    if cell == "tet":
        # the even permutations of the four vertices keep the orientation
        even = np.array([q for q in itertools.permutations(range(4))
                         if np.linalg.det(np.eye(4)[list(q)]) > 0])
        assert len(even) == 12
        cells = np.take_along_axis(cells, even[rng.integers(0, 12, len(cells))], axis=1)
    else:
        # the 24 rotations of the cube, as vertex permutations, by composing quarter turns
        turn_z = np.array([1, 2, 3, 0, 5, 6, 7, 4])
        turn_x = np.array([3, 2, 6, 7, 0, 1, 5, 4])
        rotations = {tuple(range(8))}
        while True:
            grown = {tuple(np.array(r)[t]) for r in rotations for t in (turn_z, turn_x)}
            if grown <= rotations:
                break
            rotations |= grown
        rotations = np.array(sorted(rotations))
        assert len(rotations) == 24
        cells = np.take_along_axis(cells, rotations[rng.integers(0, 24, len(cells))], axis=1)
    return dfem.mesh.Mesh(mesh.nodes, cells)


@pytest.mark.parametrize(("cell", "p"), ELEMENTS)
def test_nodal_basis(cell, p):
    e = LagrangeElement(cell, p)
    assert e.n_basis == COUNTS[(cell, p)]
    np.testing.assert_allclose(e.values(e.nodes), np.eye(e.n_basis), atol=1e-12)
    xi = np.random.default_rng(1).random((20, 3)) * (0.3 if cell == "tet" else 1.0)
    np.testing.assert_allclose(e.values(xi).sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(e.gradients(xi).sum(1), 0.0, atol=1e-11)
    # reproduces every monomial of the space, and its gradient (finite differences)
    values = e.values(xi)
    for m in e._exponents:
        exact = np.prod(e.nodes ** m, axis=1)
        np.testing.assert_allclose(values @ exact, np.prod(xi ** m, axis=1), atol=1e-11)
    h = 1e-6
    for k in range(3):
        step = np.eye(3)[k] * h
        fd = (e.values(xi + step) - e.values(xi - step)) / (2 * h)
        np.testing.assert_allclose(e.gradients(xi)[..., k], fd, atol=1e-6)


@pytest.mark.parametrize(("cell", "p"), ELEMENTS)
def test_every_local_copy_of_a_dof_sits_at_the_same_point(cell, p):
    mesh = twisted_mesh(cell)
    space = dfem.FunctionSpace(mesh, element(f"{'P' if cell == 'tet' else 'Q'}{p}", cell))
    N = geometry_element(cell).values(space.element.nodes)
    local = np.einsum("eai,ba->ebi", mesh.nodes.numpy()[mesh.cells_np], N)
    coords = space.dof_coordinates.numpy()
    np.testing.assert_allclose(coords[space.dofmap.cell_dofs], local, atol=1e-13)
    assert len(np.unique(space.dofmap.cell_dofs)) == space.n_dofs


def _values_from(space, cells, xi):
    """u's basis values in ``cells`` at reference points ``xi`` (n, q, 3): (n, q, n_basis)."""
    n, q, _ = xi.shape
    return space.element.values(xi.reshape(-1, 3)).reshape(n, q, -1)


@pytest.mark.parametrize(("cell", "p"), ELEMENTS)
def test_random_functions_are_continuous_across_every_interior_face(cell, p):
    mesh = twisted_mesh(cell, seed=p)
    family = "P" if cell == "tet" else "Q"
    space = dfem.FunctionSpace(mesh, f"{family}{p}")
    u = np.random.default_rng(2).standard_normal(space.n_dofs)
    ref = REFERENCE_CELLS[cell]
    neighbours = mesh.facet_neighbours
    interior = neighbours[neighbours[:, 1, 0] >= 0]
    c0, k0, c1 = interior[:, 0, 0], interior[:, 0, 1], interior[:, 1, 0]
    face = mesh.cells_np[c0[:, None], ref.facets[k0]]  # global vertices, side 0's order
    s = np.random.default_rng(3).random((7, 2))
    if cell == "tet":
        s = s[s.sum(1) < 1]
        weights = np.stack([1 - s[:, 0] - s[:, 1], s[:, 0], s[:, 1]], axis=1)
    else:
        a, b = s[:, 0], s[:, 1]
        weights = np.stack([(1 - a) * (1 - b), a * (1 - b), a * b, (1 - a) * b], axis=1)

    def reference_points(cells):
        # the reference coordinates of the face's vertices in each cell, interpolated
        position = np.argmax(mesh.cells_np[cells][:, None, :] == face[:, :, None], axis=2)
        return np.einsum("qv,nvi->nqi", weights, ref.vertices[position])

    sides = []
    for cells in (c0, c1):
        values = _values_from(space, cells, reference_points(cells))
        sides.append(np.einsum("nqa,na->nq", values, u[space.dofmap.cell_dofs[cells]]))
        x = np.einsum("nqa,nai->nqi", geometry_element(cell).values(
            reference_points(cells).reshape(-1, 3)).reshape(len(cells), len(weights), -1),
            mesh.nodes.numpy()[mesh.cells_np[cells]])
        sides.append(x)
    np.testing.assert_allclose(sides[1], sides[3], atol=1e-13)  # the same physical points
    np.testing.assert_allclose(sides[0], sides[2], atol=1e-11)


@pytest.mark.parametrize("cell", ["tet", "hex"])
def test_cubic_interpolant_is_exact(cell):
    # hexes unperturbed: Q3 of a trilinear (non-affine) map does not hold physical cubics
    mesh = twisted_mesh(cell, seed=5, perturb=0.15 if cell == "tet" else 0.0)
    space = dfem.FunctionSpace(mesh, "P3" if cell == "tet" else "Q3")

    def cubic(x):
        return 1 + x[..., 0] ** 3 - 2 * x[..., 0] * x[..., 1] * x[..., 2] + x[..., 2] ** 2

    u = space.interpolate(cubic)
    errors = dfem_errors(space, u, cubic)
    assert errors["l2"] < 1e-12 and errors["h1"] < 1e-11


def test_element_names_follow_the_mesh():
    tet = dfem.mesh.box(1, cell="tet")
    assert dfem.FunctionSpace(tet, "P2").element.cell_type == "tet"
    with pytest.raises(dfem.DfemError, match="does not fit a mesh of tetrahedra"):
        dfem.FunctionSpace(tet, "Q1")
    with pytest.raises(dfem.DfemError, match="does not fit a mesh of hexahedra"):
        dfem.FunctionSpace(dfem.mesh.box(1), "P1")


@pytest.mark.parametrize(("cell", "p"), ELEMENTS)
def test_facet_geometry_areas_and_normals(cell, p):
    mesh = dfem.mesh.perturb_interior(dfem.mesh.box(2, 3, 2, cell=cell, x=(0, 2)), 0.1)
    space = dfem.FunctionSpace(mesh, f"{'P' if cell == 'tet' else 'Q'}{p}")
    areas = {"left": 1.0, "right": 1.0, "bottom": 2.0, "top": 2.0, "front": 2.0, "back": 2.0}
    outward = {"left": [-1, 0, 0], "right": [1, 0, 0], "bottom": [0, -1, 0],
               "top": [0, 1, 0], "front": [0, 0, -1], "back": [0, 0, 1]}
    for tag, area in areas.items():
        fg = space.facet_geometry(tag)
        assert float(fg.weights.sum()) == pytest.approx(area, rel=1e-13)
        normals = fg.normals.reshape(-1, 3)
        torch.testing.assert_close(normals, torch.tensor(outward[tag], dtype=normals.dtype)
                                   .expand_as(normals), atol=1e-13, rtol=0)
    # the divergence theorem on the whole boundary: int div F = int F.n for F = (x^2, yz, z)
    fg = space.facet_geometry("boundary")
    x = fg.points
    F = torch.stack([x[..., 0] ** 2, x[..., 1] * x[..., 2], x[..., 2]], dim=-1)
    n = fg.normals if fg.normals.ndim == 3 else fg.normals[:, None, :]
    flux = float(((F * n).sum(-1) * fg.weights).sum())
    g = space.geometry()
    y = g.points
    divergence = float(((2 * y[..., 0] + y[..., 2] + 1) * g.weights).sum())
    assert flux == pytest.approx(divergence, rel=1e-12)
