"""dfem against scikit-fem in 3D: the same mesh, element and problem give the same solution.

Both codes solve ``-div(nu grad u) + c u = f`` with ``u = u_D`` on the tags ``left`` and
``right`` and ``nu du/dn = g`` on the rest of the boundary, on

- the unstructured tetrahedral mesh of a block with a cylindrical hole made by gmsh
  (``cases/meshes/block_with_hole.msh``), P1 and P2;
- a hexahedral tensor grid with random spacings (cells are boxes, so the trilinear map is
  affine and every integrand a polynomial), Q1 and Q2.

The data are polynomials of low degree, so dfem's default degree-2p rules and
scikit-fem's rules of order 2p + 2 integrate every form exactly: the discrete systems are
the same and the solutions agree to round-off. Dofs are matched by coordinates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import dfem

skfem = pytest.importorskip("skfem")
from scipy.spatial import cKDTree  # noqa: E402
from skfem.helpers import dot, grad  # noqa: E402

MESH = Path(__file__).parents[2] / "cases" / "meshes" / "block_with_hole.msh"
C_REACTION = 1.5
# meshio's hexahedron vertex order -> scikit-fem's (its reference vertices are 000, 001,
# 010, 100, 011, 101, 110, 111)
HEX_TO_SKFEM = [0, 4, 3, 1, 7, 5, 2, 6]


def nu(x, y, z):
    return 1.0 + x + 0.5 * y - 0.25 * z


def f(x, y, z):
    return 2.0 - x + y + 3.0 * z


def g(x, y, z):
    return 0.5 + x - z


def u_d(x, y, z):
    return 1.0 + x - 2.0 * y + 0.5 * z + 0.25 * x * y


def _torch(fn):
    return lambda x: fn(x[..., 0], x[..., 1], x[..., 2])


def tensor_grid_hexes(n: int, seed: int = 0) -> dfem.mesh.Mesh:
    mesh = dfem.mesh.box(n, n + 1, n - 1, cell="hex", x=(0.0, 2.0))
    rng = np.random.default_rng(seed)
    X = mesh.nodes.numpy().copy()
    for axis, m in enumerate((n, n + 1, n - 1)):
        ticks = np.unique(X[:, axis])
        moved = ticks.copy()
        moved[1:-1] += rng.uniform(-0.25, 0.25, m - 1) * (ticks[1] - ticks[0])
        X[:, axis] = moved[np.searchsorted(ticks, X[:, axis])]
    return mesh.with_nodes(torch.as_tensor(X))


def dfem_solution(mesh, element):
    space = dfem.FunctionSpace(mesh, element)
    others = [t for t in mesh.boundaries if t not in ("left", "right")]
    problem = dfem.Poisson(space, nu=_torch(nu), c=C_REACTION, f=_torch(f),
                           dirichlet={"left": _torch(u_d), "right": _torch(u_d)},
                           neumann={t: _torch(g) for t in others})
    return space, problem.solve().numpy()


def skfem_solution(mesh, element_name):
    p = mesh.nodes.numpy().T
    if mesh.cell_type == "tet":
        sk_mesh = skfem.MeshTet(p, mesh.cells_np.T)
        element = {"P1": skfem.ElementTetP1(), "P2": skfem.ElementTetP2()}[element_name]
    else:
        sk_mesh = skfem.MeshHex(p, mesh.cells_np[:, HEX_TO_SKFEM].T)
        element = {"Q1": skfem.ElementHex1(), "Q2": skfem.ElementHex2()}[element_name]
    degree = int(element_name[1])
    basis = skfem.Basis(sk_mesh, element, intorder=2 * degree + 2)

    @skfem.BilinearForm
    def a(u, v, w):
        return nu(*w.x) * dot(grad(u), grad(v)) + C_REACTION * u * v

    @skfem.LinearForm
    def load(v, w):
        return f(*w.x) * v

    @skfem.LinearForm
    def flux(v, w):
        return g(*w.x) * v

    # facets where dfem puts Neumann data: the boundary without the faces at x = 0 and x = 2
    facets = sk_mesh.boundary_facets()
    midpoints = sk_mesh.p[:, sk_mesh.facets[:, facets]].mean(axis=1)
    ends = np.isclose(midpoints[0], 0.0) | np.isclose(midpoints[0], 2.0)
    neumann = skfem.FacetBasis(sk_mesh, element, facets=facets[~ends], intorder=2 * degree + 2)
    A = skfem.asm(a, basis)
    b = skfem.asm(load, basis) + skfem.asm(flux, neumann)
    dirichlet = basis.get_dofs(facets=facets[ends]).all()
    x = np.zeros(basis.N)
    x[dirichlet] = u_d(*basis.doflocs[:, dirichlet])
    return basis, skfem.solve(*skfem.condense(A, b, x=x, D=dirichlet))


@pytest.mark.parametrize(("source", "element"),
                         [("gmsh", "P1"), ("gmsh", "P2"), ("hex", "Q1"), ("hex", "Q2")])
def test_same_solution_as_scikit_fem(source, element):
    mesh = dfem.mesh.read_mesh(MESH) if source == "gmsh" else tensor_grid_hexes(4)
    space, u = dfem_solution(mesh, element)
    basis, v = skfem_solution(mesh, element)
    assert basis.N == space.n_dofs
    distance, match = cKDTree(basis.doflocs.T).query(space.dof_coordinates.numpy())
    assert distance.max() < 1e-12  # the same points carry the dofs
    assert len(np.unique(match)) == space.n_dofs
    assert np.abs(u - v[match]).max() <= 1e-9 * np.abs(v).max()
