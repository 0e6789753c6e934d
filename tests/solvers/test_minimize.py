"""The energy-minimisation route reaches the direct solution; Newton converges quadratically."""

import math

import pytest
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


def test_lbfgs_reaches_direct_solution_32x32_q1():
    problem = table5_like()
    direct = problem.solve()
    u, info = minimize_energy(problem, "lbfgs", rtol=1e-11)
    assert info.converged
    rel = float((u - direct).abs().max() / direct.abs().max())
    assert rel < 1e-8
    assert info.iterations < 1000


def test_adam_and_torch_lbfgs_report_their_shortfall():
    problem = table5_like(n=8)
    direct = problem.solve()
    for optimizer in ("adam", "torch-lbfgs"):
        u, info = minimize_energy(problem, optimizer, rtol=1e-14, max_iter=30)
        assert not info.converged
        assert info.iterations == 30 or optimizer == "torch-lbfgs"
        assert float((u - direct).abs().max()) > 0  # it moved but did not get there
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
