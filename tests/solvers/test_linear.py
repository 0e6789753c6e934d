"""Differentiable solves: gradcheck through the direct and CG backends, FD shape derivatives."""

import math

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

import dfem
from dfem.exceptions import DfemError
from dfem.solvers import sparse_solve


def probe(u):
    """Three fixed random combinations of the solution: gradcheck then needs 3 adjoint solves,
    not one per dof, and still checks the full vector-Jacobian product."""
    weights = torch.rand(3, u.shape[-1], dtype=u.dtype, generator=torch.Generator().manual_seed(7))
    return weights @ u


def small_problem(element="Q1", n=3, cell="quad"):
    mesh = dfem.mesh.rectangle(n, n, cell, diagonal="alternate")
    return dfem.FunctionSpace(mesh, element)


def solve_with(space, method, nu=None, f=None, nodes=None, dirichlet=None):
    if nodes is not None:
        space = space.with_nodes(nodes)
    problem = dfem.Poisson(
        space,
        nu=1.0 if nu is None else nu,
        f=(lambda x: 1 + x[..., 0]) if f is None else f,
        dirichlet=dirichlet or {"left": 0.0, "bottom": lambda x: x[..., 0]},
        neumann={"right": 0.5},
    )
    options = {"rtol": 1e-14} if method != "direct" else {}
    return problem.solve(method=method, **options)


@pytest.mark.parametrize("method", ["direct", "cg", "amg"])
def test_methods_agree_with_scipy_spsolve(method):
    space = small_problem("P2", n=6, cell="tri")
    problem = dfem.Poisson(space, nu=lambda x: 1 + x[..., 0], f=1.0, dirichlet={"boundary": 0.0})
    u = problem.solve(method=method, **({"rtol": 1e-13} if method != "direct" else {}))
    # independent reference: assemble, eliminate by hand, scipy spsolve
    K, F = problem.assemble(format="scipy")
    fixed = space.boundary_dofs("boundary").numpy()
    free = np.setdiff1d(np.arange(space.n_dofs), fixed)
    ref = np.zeros(space.n_dofs)
    ref[free] = spla.spsolve(K[free][:, free].tocsc(), F[free])
    np.testing.assert_allclose(u.numpy(), ref, atol=1e-11 * np.abs(ref).max())


@pytest.mark.parametrize("method", ["direct", "cg"])
def test_gradcheck_nu_per_cell(method):
    space = small_problem()
    nu = (torch.rand(space.mesh.n_cells, dtype=torch.float64) + 0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda nu: probe(solve_with(space, method, nu=nu)), (nu,))


@pytest.mark.parametrize("method", ["direct", "cg"])
def test_gradcheck_f_per_node(method):
    space = small_problem("P2", cell="tri")
    f = torch.rand(space.n_dofs, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: probe(solve_with(space, method, f=f)), (f,))


@pytest.mark.parametrize("method", ["direct", "cg"])
@pytest.mark.parametrize("element,cell", [("Q1", "quad"), ("P2", "tri")])
def test_gradcheck_node_coordinates(method, element, cell):
    space = small_problem(element, cell=cell)
    nodes = space.mesh.nodes.clone().requires_grad_(True)

    def solution(nodes):
        return probe(solve_with(space, method, nodes=nodes, nu=lambda x: 1 + x[..., 0] * x[..., 1]))

    assert torch.autograd.gradcheck(solution, (nodes,))


def test_gradcheck_dirichlet_values():
    space = small_problem("Q2")
    n_left = len(space.boundary_dofs("left"))
    values = torch.rand(n_left, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v: probe(solve_with(space, "direct", dirichlet={"left": v})), (values,)
    )


def perturbed(mesh, seed=0, amount=0.25):
    x = mesh.nodes.clone()
    interior = (x > 1e-12).all(1) & (x < 1 - 1e-12).all(1)
    gen = torch.Generator().manual_seed(seed)
    n = int(math.sqrt(mesh.n_nodes)) - 1
    x[interior] += (torch.rand(int(interior.sum()), 2, generator=gen, dtype=x.dtype) - 0.5) * (
        amount / n
    )
    return x


@pytest.mark.parametrize("element,cell", [("Q1", "quad"), ("Q2", "quad"), ("P2", "tri")])
def test_finite_difference_shape_derivative_of_integral_u_squared(element, cell):
    """d/dX int u^2 on a perturbed mesh: autograd (adjoint) against central differences."""
    space = dfem.FunctionSpace(dfem.mesh.rectangle(6, 6, cell), element)
    X0 = perturbed(space.mesh)

    def objective(X):
        moved = space.with_nodes(X)
        problem = dfem.Poisson(
            moved,
            nu=lambda x: 1 + x[..., 0] ** 2,
            f=lambda x: torch.sin(3 * x[..., 0]) + 1,
            dirichlet={"boundary": 0.0},
        )
        u = problem.solve()
        uq, _ = moved.at_quadrature(u)
        return (uq**2 * moved.geometry().weights).sum()

    X = X0.clone().requires_grad_(True)
    objective(X).backward()
    gen = torch.Generator().manual_seed(1)
    interior = ((X0 > 1e-12).all(1) & (X0 < 1 - 1e-12).all(1)).to(X0.dtype)[:, None]
    for _ in range(3):
        direction = torch.randn(X0.shape, dtype=X0.dtype, generator=gen) * interior
        h = 1e-5  # central differences: truncation O(h^2), round-off O(eps / h)
        with torch.no_grad():
            fd = (objective(X0 + h * direction) - objective(X0 - h * direction)) / (2 * h)
        ad = (X.grad * direction).sum()
        assert float(ad) == pytest.approx(float(fd), rel=1e-6, abs=1e-8 * float(X.grad.norm()))


def test_batched_right_hand_sides_share_factorisation():
    space = small_problem("Q2", n=4)
    values = dfem.assembly.assemble_matrix(space, nu=1.0, c=1.0)
    b = torch.randn(3, space.n_dofs, dtype=torch.float64, requires_grad=True)
    x = sparse_solve(space.pattern, values, b)
    A = space.pattern.to_scipy(values).toarray()
    np.testing.assert_allclose(A @ x.detach().numpy().T, b.detach().numpy().T, atol=1e-11)
    assert torch.autograd.gradcheck(lambda b: sparse_solve(space.pattern, values, b), (b,))


def test_nonsymmetric_direct_solve_and_adjoint():
    space = small_problem("Q1", n=3)
    values = dfem.assembly.assemble_matrix(space, nu=1.0, c=1.0)
    values = (values + 0.1 * torch.rand(values.shape, dtype=torch.float64)).requires_grad_(True)
    b = torch.randn(space.n_dofs, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda v: sparse_solve(space.pattern, v, b, symmetric=False), (values,)
    )


def test_singular_problem_gives_clear_error():
    space = small_problem()
    problem = dfem.Poisson(space, f=1.0)  # pure Neumann: singular
    with pytest.raises(DfemError, match="singular"):
        problem.solve()


def test_unknown_method_and_bad_shapes():
    space = small_problem()
    values = dfem.assembly.assemble_matrix(space)
    with pytest.raises(DfemError, match="unknown solver method"):
        sparse_solve(
            space.pattern, values, torch.zeros(space.n_dofs, dtype=torch.float64), method="lu"
        )
    with pytest.raises(DfemError, match="b has"):
        sparse_solve(space.pattern, values, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(DfemError, match="needs a symmetric matrix"):
        sparse_solve(
            space.pattern,
            values,
            torch.zeros(space.n_dofs, dtype=torch.float64),
            method="cg",
            symmetric=False,
        )


def test_cg_budget_raises_convergence_error():
    space = small_problem("Q1", n=8)
    problem = dfem.Poisson(space, f=1.0, dirichlet={"boundary": 0.0})
    with pytest.raises(dfem.ConvergenceError, match="did not reach"):
        problem.solve(method="cg", rtol=1e-14, maxiter=2)


@pytest.mark.parametrize("method", ["direct", "cg", "amg"])
def test_no_free_dofs_needs_no_solve(method):
    # a single Q1 cell with Dirichlet data all round: every dof is fixed (found by the fuzzer)
    space = dfem.FunctionSpace(dfem.mesh.rectangle(1, 1, "quad"), "Q1")
    u = dfem.Poisson(space, f=1.0, dirichlet={"boundary": 2.0}).solve(method)
    assert torch.equal(u, torch.full((4,), 2.0, dtype=torch.float64))



def test_dense_solve_matches_the_sparse_solve_for_a_batch_and_differentiates():
    from dfem.assembly import AtQuadrature
    from dfem.assembly.forms import assemble_matrix
    from dfem.basis.space import FunctionSpace
    from dfem.mesh import rectangle
    from dfem.solvers import dense_solve

    space = FunctionSpace(rectangle(3, 3, "quad", dtype=torch.float64), "Q1")
    pattern = space.pattern
    nu = torch.rand(2, space.mesh.n_cells, 1, dtype=torch.float64) + 0.5
    values = assemble_matrix(space, AtQuadrature(nu.expand(-1, -1, 4)))
    values = values + torch.where(pattern.rows == pattern.indices, 1.0, 0.0)  # SPD
    b = torch.randn(2, pattern.n, dtype=torch.float64)
    x = dense_solve(pattern, values, b)
    for k in range(2):
        torch.testing.assert_close(x[k], sparse_solve(pattern, values[k], b[k]))
        torch.testing.assert_close(
            pattern.to_dense(values)[k], torch.as_tensor(pattern.to_scipy(values[k]).toarray())
        )
    # Cholesky reads one triangle, so differentiate through a symmetric parametrisation
    transpose = pattern.positions(pattern.indices, pattern.rows)
    v, rhs = values[0].clone().requires_grad_(), b[0].clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda v, r: dense_solve(pattern, (v + v[transpose]) / 2, r), (v, rhs)
    )
    assert torch.autograd.gradcheck(
        lambda v, r: dense_solve(pattern, v, r, symmetric=False), (v, rhs)
    )
    with pytest.raises(DfemError, match="not symmetric positive definite"):
        dense_solve(pattern, -values, b)
