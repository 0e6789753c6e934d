"""The energy-minimisation route reaches the direct solution; Newton converges quadratically."""

import math

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

import dfem
from dfem.exceptions import DfemError
from dfem.problems import NonlinearPoisson
from dfem.solvers import minimize_energy


def table5_like(n=32, f=None):
    space = dfem.FunctionSpace(dfem.mesh.rectangle(n, n, "quad"), "Q1")
    return dfem.Poisson(
        space,
        nu=lambda x: 1 + x[..., 0] ** 2,
        f=f or (lambda x: 1 + x[..., 0] * x[..., 1]),
        dirichlet={"boundary": 0.0, "left": lambda x: x[..., 1]},
    )


class Reference:
    """The problem's linear system by scipy, for checks independent of dfem's solvers:
    ``K u = F`` with the Dirichlet dofs held at their values (solved by ``spsolve``), the
    energy ``J(u) = 1/2 u.K u - F.u`` and the free part of its gradient ``K u - F``."""

    def __init__(self, problem):
        self.K, self.F = problem.assemble(format="scipy")
        fixed, u_fixed = problem.dirichlet_data()
        self.u_fixed = u_fixed.detach().numpy()
        self.fixed = fixed.numpy()
        self.free = np.setdiff1d(np.arange(len(self.F)), self.fixed)
        self.K_ff = self.K[self.free][:, self.free].tocsc()

    def solution(self):
        b = self.F - self.K @ self.u_fixed
        u = self.u_fixed.copy()
        u[self.free] = spla.spsolve(self.K_ff, b[self.free])
        return u

    def energy(self, u):
        u = np.asarray(u)
        return 0.5 * u @ (self.K @ u) - self.F @ u

    def gradient(self, u):
        return (self.K @ np.asarray(u) - self.F)[self.free]


def test_lbfgs_reaches_direct_solution_32x32_q1():
    """L-BFGS stops at rtol on the residual it reports, at the solution of K u = F."""
    problem = table5_like()
    ref = Reference(problem)
    exact_discrete = ref.solution()
    u, info = minimize_energy(problem, "lbfgs", rtol=1e-11)
    assert info.converged and info.iterations < 1000
    # the reported residual is the relative gradient of the energy at the returned u
    start = np.linalg.norm(ref.gradient(ref.u_fixed))
    reported = info.residuals[-1][1]
    assert reported <= 1e-11
    assert np.linalg.norm(ref.gradient(u)) / start == pytest.approx(reported, rel=1e-3,
                                                                    abs=1e-14)
    rel = np.abs(u.numpy() - exact_discrete).max() / np.abs(exact_discrete).max()
    assert rel < 1e-8
    torch.testing.assert_close(problem.solve(), torch.as_tensor(exact_discrete), rtol=0,
                               atol=1e-10)
    # the energy it reached is the minimum, to round-off
    assert ref.energy(u) == pytest.approx(ref.energy(exact_discrete), rel=1e-12)


@pytest.mark.parametrize("optimizer", ["adam", "torch-lbfgs"])
def test_adam_and_torch_lbfgs_report_their_shortfall(optimizer):
    """Stopped by the budget, the optimiser says so: not converged, with the true relative
    residual of the point it returns. That point has a lower energy than the start and lies
    at least ``|r| / |K_ff|`` from the solution (``K_ff (u - u*) = r`` on the free dofs)."""
    problem = table5_like(n=8)
    ref = Reference(problem)
    solution = ref.solution()
    u, info = minimize_energy(problem, optimizer, rtol=1e-14, max_iter=30)
    assert not info.converged
    if optimizer == "adam":
        assert info.iterations == 30
    else:  # torch's LBFGS counts its iterations in steps of 20
        assert 30 <= info.iterations < 50
    u = u.numpy()
    np.testing.assert_array_equal(u[ref.fixed], ref.u_fixed[ref.fixed])  # held fixed
    residual = ref.gradient(u)
    relative = np.linalg.norm(residual) / np.linalg.norm(ref.gradient(ref.u_fixed))
    assert info.residuals[-1][1] == pytest.approx(relative, rel=1e-6)
    assert relative > 1e-14
    assert ref.energy(u) < ref.energy(ref.u_fixed)  # it descended from the start
    norm_K = abs(ref.K_ff).sum(axis=1).max()  # |K_ff|_inf >= |K_ff|_2 (symmetric)
    assert np.linalg.norm(u - solution) >= np.linalg.norm(residual) / norm_K


def test_failure_and_bad_optimizer_raise():
    problem = table5_like(n=8)
    with pytest.raises(dfem.ConvergenceError, match="did not reach"):
        minimize_energy(problem, "adam", rtol=1e-14, max_iter=5, raise_on_failure=True)
    with pytest.raises(DfemError, match="unknown optimizer"):
        minimize_energy(problem, "sgd")


PI = math.pi


def exact(x):
    return torch.sin(PI * x[..., 0]) * torch.sin(PI * x[..., 1]) + x[..., 0]


def source(x):
    """-div((1 + u^2) grad u) + u^3 for the exact u, derived by hand."""
    X, Y = x[..., 0], x[..., 1]
    s, c = torch.sin(PI * X), torch.cos(PI * X)
    sy, cy = torch.sin(PI * Y), torch.cos(PI * Y)
    u = s * sy + X
    ux, uy = PI * c * sy + 1, PI * s * cy
    lap = -2 * PI**2 * s * sy
    nu = 1 + u**2
    return -(nu * lap + 2 * u * (ux**2 + uy**2)) + u**3


def test_hand_derived_source_matches_autograd():
    x = torch.rand(5, 2, dtype=torch.float64).requires_grad_(True)
    u = exact(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    flux = (1 + u**2)[:, None] * g
    div = sum(
        torch.autograd.grad(flux[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(2)
    )
    torch.testing.assert_close(source(x.detach()), (-div + u**3).detach())


def test_newton_nonlinear_diffusion_and_reaction_converges():
    errors, newton_steps = [], []
    for n in (8, 16):
        space = dfem.FunctionSpace(dfem.mesh.rectangle(n, n, "tri"), "P2")
        problem = NonlinearPoisson(
            space,
            nu=lambda u, x: 1 + u**2,
            reaction=lambda u, x: u**3,
            f=source,
            dirichlet={"boundary": exact},
        )
        u = problem.solve()
        info = problem.last_solve["newton"]
        assert info.converged
        newton_steps.append(info.iterations)
        r = info.residuals
        # quadratic convergence at the end: the last ratio far below the previous one
        assert r[-1] / r[-2] < 1e-3 and r[-2] / r[-3] < 0.1
        errors.append(dfem.errors(space, u, exact)["l2"])
    rate = math.log2(errors[0] / errors[1])
    assert rate == pytest.approx(3.0, abs=0.3)
    assert max(newton_steps) <= 10


def test_newton_on_a_linear_problem_takes_one_step():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(6, 6, "quad"), "Q2")
    problem = NonlinearPoisson(space, nu=2.0, f=1.0, dirichlet={"boundary": 0.0})
    u = problem.solve()
    assert problem.last_solve["newton"].iterations == 1
    linear = dfem.Poisson(space, nu=2.0, f=1.0, dirichlet={"boundary": 0.0}).solve()
    torch.testing.assert_close(u, linear, atol=1e-13, rtol=0)
