"""Nested dissection from dof positions: a permutation that fills less than SuperLU's
minimum degree and leaves the direct solve's answer as it was."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

import dfem
from dfem.assembly.ordering import nested_dissection
from dfem.mesh import rectangle
from dfem.mesh.structured import box, perturb_interior


def stiffness(space, load_benchmark):
    """A symmetric positive definite matrix on ``space``'s pattern, as scipy CSC: the
    elasticity operator (vector spaces) or the Laplacian (scalar), plus the identity."""
    return space.pattern, load_benchmark("bench_ordering").matrix(space)


def fill(A, **options):
    lu = spla.splu(A, diag_pivot_thresh=0.0, options=dict(SymmetricMode=True), **options)
    return lu.L.nnz + lu.U.nnz


@pytest.mark.parametrize("space", [
    dfem.FunctionSpace(rectangle(80, 40), "Q1", shape=(2,)),
    dfem.FunctionSpace(rectangle(64, 64, cell="tri"), "P1", shape=(2,)),
    dfem.FunctionSpace(box(24, 24, 24, cell="tet"), "P1"),
    dfem.FunctionSpace(box(12, 12, 12), "Q1", shape=(3,)),
], ids=["Q1-elasticity", "P1-tri-elasticity", "P1-tet", "Q1-hex-elasticity"])
def test_fills_less_than_minimum_degree(space, load_benchmark):
    pattern, A = stiffness(space, load_benchmark)
    perm = pattern.dissection_order
    assert perm is not None and np.array_equal(np.sort(perm), np.arange(pattern.n))
    dissected = fill(A[perm][:, perm].tocsc(), permc_spec="NATURAL")
    minimum_degree = fill(A, permc_spec="MMD_AT_PLUS_A")
    assert dissected < minimum_degree


def test_separators_come_after_the_parts_they_separate():
    # a path graph 0-1-...-9 on a line: the first cut leaves two halves joined only
    # through the separator, which is numbered last
    n = 10
    A = sp.diags([np.ones(n - 1), 2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1]).tocsr()
    points = np.arange(n, dtype=float)[:, None]
    perm = nested_dissection(A.indptr, A.indices, points, leaf=2)
    assert np.array_equal(np.sort(perm), np.arange(n))
    root = perm[-1]
    before = set(perm[:-1])
    left, right = {i for i in before if i < root}, {i for i in before if i > root}
    # removing the root separator disconnects the two sides: no entry couples them
    assert not any(A[i, j] for i in left for j in right)
    assert left and right
    # nor does the Cholesky factor: eliminating one side never fills into the other
    P = A[perm][:, perm].toarray()
    L = np.linalg.cholesky(P)
    position = np.argsort(perm)
    assert all(abs(L[position[i], position[j]]) < 1e-14 and abs(L[position[j], position[i]])
               < 1e-14 for i in left for j in right)


def test_points_that_cannot_be_cut_still_give_a_permutation():
    A = sp.random(50, 50, density=0.2, random_state=0)
    A = (A + A.T + sp.eye(50)).tocsr()
    perm = nested_dissection(A.indptr, A.indices, np.zeros((50, 2)), leaf=4)
    assert np.array_equal(np.sort(perm), np.arange(50))


@pytest.mark.parametrize("space", [
    dfem.FunctionSpace(rectangle(100, 100, cell="tri"), "P1"),
    dfem.FunctionSpace(perturb_interior(box(16, 16, 16)), "Q1", shape=(3,)),
], ids=["2D-scalar", "perturbed-3D"])
def test_where_dissection_does_not_win_minimum_degree_stays(space):
    # measured: there nested dissection ties or loses (benchmarks/bench_ordering.py)
    assert space.n_dofs > space.pattern.DISSECTION_MIN_SIZE
    assert space.pattern.points is None and space.pattern.dissection_order is None


def test_direct_solve_in_dissection_order_equals_scipy_spsolve():
    space = dfem.FunctionSpace(box(16, 16, 16, cell="tet"), "P1")
    assert space.pattern.dissection_order is not None
    problem = dfem.Poisson(space, nu=lambda x: 1 + x[..., 0] ** 2, f=1.0,
                           dirichlet={"left": 0.0, "right": 1.0})
    u = problem.solve(method="direct")
    free = torch.ones(space.n_dofs, dtype=torch.bool)
    free[space.boundary_dofs(["left", "right"])] = False
    restricted = space.pattern.restrict(free)
    assert restricted.pattern.points is not None  # restricting keeps the positions
    # the same system solved by scipy's spsolve with its own (COLAMD) ordering
    K, F = problem.assemble(format="scipy")
    K, F = sp.csr_matrix(K), np.asarray(F, dtype=float).ravel()
    fixed, u_fixed = problem.dirichlet_data()
    fixed, u_fixed = fixed.numpy(), u_fixed.numpy()
    free = np.setdiff1d(np.arange(space.n_dofs), fixed)
    reference = u_fixed.copy()
    reference[free] = spla.spsolve(K[free][:, free].tocsc(),
                                   F[free] - K[free][:, fixed] @ u_fixed[fixed])
    assert np.abs(u.numpy() - reference).max() <= 1e-11 * np.abs(reference).max()
