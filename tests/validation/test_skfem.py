"""dfem against scikit-fem: the same mesh, element and problem give the same solution.

Both codes solve

    -div(nu grad u) + c u = f,  u = u_D on Dirichlet sides,  nu du/dn = g on the right side
    (and nu du/dn + alpha u = g_R on the top side in the Robin variant)

with polynomial data chosen so that both codes' quadratures are exact (dfem's default
degree-2p rules; scikit-fem with intorder 2p + 2): the discrete systems are then the same and the
solutions agree to round-off. The meshes are not uniform: triangles have randomly moved
interior nodes (cells stay affine), quadrilaterals are rectangles of random sizes (a tensor
grid, so the bilinear map stays affine and the integrands polynomial).

Dofs are matched by coordinates (scikit-fem's ``basis.doflocs`` against dfem's
``space.dof_coordinates``), which also checks that both codes place the P3 edge dofs at the
same points whatever the edge orientation. scikit-fem has no nodal Q3 element; its
``ElementQuadP(3)`` is the hierarchical (integrated Legendre) basis of the same space Q3, so
there the scikit-fem solution is evaluated at dfem's dof coordinates with ``basis.probes``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dfem

skfem = pytest.importorskip("skfem")
from scipy.spatial import cKDTree  # noqa: E402
from skfem.helpers import dot, grad  # noqa: E402

# -------------------------------------------------------------------- data (polynomials)
# Degrees: nu, f, g, g_R linear, c and alpha constant, u_D bilinear. dfem's rules of degree
# 2p integrate nu grad(phi).grad(phi) (degree 2p - 1), f phi (p + 1 <= 2p), c phi phi (2p)
# exactly on affine triangles and (per variable) on rectangles; u_D is linear along every
# side, so its interpolant is the same at any nodes.
C_REACTION = 2.0
ALPHA = 3.0


def nu_np(x, y):
    return 1.0 + x + 2.0 * y


def f_np(x, y):
    return 2.0 + x - 3.0 * y


def g_np(x, y):
    return 1.0 + y


def gr_np(x, y):
    return 1.0 - x


def ud_np(x, y):
    return 1.0 + x - 2.0 * y + 0.5 * x * y


def _torch(fn):
    return lambda x: fn(x[..., 0], x[..., 1])


# -------------------------------------------------------------------- meshes
def perturbed_mesh(cell: str, nx: int, ny: int, diagonal: str = "right", seed: int = 0):
    mesh = dfem.mesh.rectangle(nx, ny, cell, diagonal=diagonal)
    rng = np.random.default_rng(seed)
    X = mesh.nodes.numpy().copy()
    if cell == "tri":
        eps = 1e-12
        inner = (X[:, 0] > eps) & (X[:, 0] < 1 - eps) & (X[:, 1] > eps) & (X[:, 1] < 1 - eps)
        X[inner] += rng.uniform(-0.25, 0.25, (int(inner.sum()), 2)) / np.array([nx, ny])
    else:
        xs = np.linspace(0.0, 1.0, nx + 1)
        ys = np.linspace(0.0, 1.0, ny + 1)
        xs[1:-1] += rng.uniform(-0.25, 0.25, nx - 1) / nx
        ys[1:-1] += rng.uniform(-0.25, 0.25, ny - 1) / ny
        X[:, 0] = np.tile(xs, ny + 1)
        X[:, 1] = np.repeat(ys, nx + 1)
    return mesh.with_nodes(torch.as_tensor(X))


# -------------------------------------------------------------------- the two solvers
def solve_dfem(mesh, element: str, robin: bool):
    space = dfem.FunctionSpace(mesh, element)
    ud = _torch(ud_np)
    if robin:
        problem = dfem.Poisson(
            space, nu=_torch(nu_np), c=C_REACTION, f=_torch(f_np),
            dirichlet={"left": ud, "bottom": ud},
            neumann={"right": _torch(g_np)},
            robin={"top": (ALPHA, _torch(gr_np))},
        )
    else:
        problem = dfem.Poisson(
            space, nu=_torch(nu_np), f=_torch(f_np),
            dirichlet={"left": ud, "bottom": ud, "top": ud},
            neumann={"right": _torch(g_np)},
        )
    return space, problem.solve().numpy()


def _skfem_element(element: str):
    return {
        "P1": skfem.ElementTriP1,
        "P2": skfem.ElementTriP2,
        "P3": skfem.ElementTriP3,
        "Q1": skfem.ElementQuad1,
        "Q2": skfem.ElementQuad2,
        "Q3": lambda: skfem.ElementQuadP(3),
    }[element]()


def solve_skfem(mesh, element: str, robin: bool):
    nodes, cells = mesh.nodes.numpy(), mesh.cells.numpy()
    kind = skfem.MeshTri if mesh.cell_type == "tri" else skfem.MeshQuad
    m = kind(np.ascontiguousarray(nodes.T), np.ascontiguousarray(cells.T))
    e = _skfem_element(element)
    order = 2 * int(element[1]) + 2
    basis = skfem.Basis(m, e, intorder=order)

    @skfem.BilinearForm
    def stiffness(u, v, w):
        return nu_np(w.x[0], w.x[1]) * dot(grad(u), grad(v))

    @skfem.BilinearForm
    def mass(u, v, w):
        return u * v

    @skfem.LinearForm
    def load(v, w):
        return f_np(w.x[0], w.x[1]) * v

    @skfem.LinearForm
    def neumann(v, w):
        return g_np(w.x[0], w.x[1]) * v

    @skfem.LinearForm
    def robin_load(v, w):
        return gr_np(w.x[0], w.x[1]) * v

    def side(test):
        return skfem.FacetBasis(m, e, facets=m.facets_satisfying(test), intorder=order)

    right = side(lambda x: np.isclose(x[0], 1.0))
    A = stiffness.assemble(basis)
    b = load.assemble(basis) + neumann.assemble(right)
    if robin:
        top = side(lambda x: np.isclose(x[1], 1.0))
        A = A + C_REACTION * mass.assemble(basis) + ALPHA * mass.assemble(top)
        b = b + robin_load.assemble(top)

        def dirichlet(x):
            return np.isclose(x[0], 0.0) | np.isclose(x[1], 0.0)
    else:
        def dirichlet(x):
            return np.isclose(x[0], 0.0) | np.isclose(x[1], 0.0) | np.isclose(x[1], 1.0)

    D = basis.get_dofs(dirichlet).all()
    x = np.zeros(basis.N)
    if element == "Q3":
        # Hierarchical basis: the vertex dofs are point values; the edge modes of u_D vanish
        # because u_D is linear along each side.
        x[basis.nodal_dofs[0]] = ud_np(*m.p)
    else:
        x[D] = ud_np(*basis.doflocs[:, D])
    u = skfem.solve(*skfem.condense(A, b, x=x, D=D))
    return basis, u


# -------------------------------------------------------------------- the comparison
ELEMENTS = [("P1", "tri"), ("P2", "tri"), ("P3", "tri"), ("Q1", "quad"), ("Q2", "quad"),
            ("Q3", "quad")]


def skfem_at_dfem_dofs(space, basis, u_sk, element):
    X = space.dof_coordinates.numpy()
    if element == "Q3":
        return basis.probes(np.ascontiguousarray(X.T)) @ u_sk
    assert basis.N == space.n_dofs
    distance, index = cKDTree(basis.doflocs.T).query(X)
    assert distance.max() < 1e-12  # every dfem dof sits on a scikit-fem dof ...
    assert len(np.unique(index)) == space.n_dofs  # ... and the matching is one-to-one
    return u_sk[index]


CASES = [(e, c, d) for e, c in ELEMENTS for d in (["right", "alternate"] if c == "tri" else ["-"])]


@pytest.mark.parametrize("robin", [False, True], ids=["dirichlet-neumann", "robin-reaction"])
@pytest.mark.parametrize(("element", "cell", "diagonal"), CASES,
                         ids=[e if c == "quad" else f"{e}-{d}" for e, c, d in CASES])
def test_matches_skfem(element, cell, diagonal, robin):
    mesh = perturbed_mesh(cell, 9, 7, diagonal=diagonal if cell == "tri" else "right", seed=3)
    space, u = solve_dfem(mesh, element, robin)
    basis, u_sk = solve_skfem(mesh, element, robin)
    reference = skfem_at_dfem_dofs(space, basis, u_sk, element)
    relative = np.abs(u - reference).max() / np.abs(reference).max()
    assert relative <= 1e-9, relative
    # A non-trivial solution: the data are not all zero and u differs from u_D inside.
    assert np.abs(reference).max() > 0.5
    ud = ud_np(*space.dof_coordinates.numpy().T)
    assert np.abs(reference - ud).max() > 1e-2
