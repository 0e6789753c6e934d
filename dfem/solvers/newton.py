"""Newton's method for nonlinear problems, each step one sparse linear solve.

.. math:: J(u_k)\\, \\delta = -R(u_k) \\ \\text{(free dofs)}, \\qquad u_{k+1} = u_k + t\\,\\delta,

with ``t`` halved until ``|R|`` decreases (backtracking), and the Dirichlet dofs
held at their values. Stops when ``|R_free| <= max(rtol |R_free(u_0)|, atol)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from dfem.errors import ConvergenceError
from dfem.solvers.linear import factorize


@dataclass
class NewtonInfo:
    """Residual norms per iteration, iterations, seconds, whether it converged."""

    iterations: int = 0
    residuals: list = field(default_factory=list)
    seconds: float = 0.0
    converged: bool = False


def newton(
    problem,
    u0: torch.Tensor | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-13,
    max_iter: int = 50,
    method: str = "direct",
    **solver_options,
):
    """Solve ``problem.residual_and_jacobian(u) = 0`` by damped Newton.

    Parameters
    ----------
    problem
        An object with ``residual_and_jacobian(u, jacobian=True)``, ``dirichlet_data()``,
        ``restricted_pattern(fixed)``, ``space`` and ``symmetric``
        (e.g. :class:`dfem.problems.nonlinear.NonlinearPoisson`).
    u0 : tensor, optional
        Initial guess (its Dirichlet dofs are overwritten); default zero.

    Returns
    -------
    u : (n_dofs,) tensor
    info : NewtonInfo

    Raises
    ------
    ConvergenceError
        If the residual does not reach the tolerance in ``max_iter`` steps.
    """
    t0 = time.perf_counter()
    fixed, u_fixed = problem.dirichlet_data()
    restricted = problem.restricted_pattern(fixed)
    free = restricted.free_dofs
    u = u_fixed.detach().clone()
    if u0 is not None:
        u[free] = u0.detach()[free]
    info = NewtonInfo()

    R, values = problem.residual_and_jacobian(u)
    norm = float(torch.linalg.vector_norm(R[free]))
    info.residuals.append(norm)
    target = max(rtol * norm, atol)
    while norm > target and info.iterations < max_iter:
        factor = factorize(
            restricted.pattern,
            values[restricted.ff],
            method,
            symmetric=problem.symmetric,
            **solver_options,
        )
        delta = factor.solve(-R[free])
        step = 1.0
        while True:
            trial = u.index_put((free,), u[free] + step * delta)
            R_trial, _ = problem.residual_and_jacobian(trial, jacobian=False)
            trial_norm = float(torch.linalg.vector_norm(R_trial[free]))
            if trial_norm < norm or step < 1e-4:
                break
            step *= 0.5
        u = trial
        R, values = problem.residual_and_jacobian(u)
        norm = float(torch.linalg.vector_norm(R[free]))
        info.iterations += 1
        info.residuals.append(norm)
    info.seconds = time.perf_counter() - t0
    info.converged = norm <= target
    if not info.converged:
        raise ConvergenceError(
            f"Newton did not converge in {max_iter} iterations (|R| {info.residuals[0]:.3e} -> "
            f"{norm:.3e}, target {target:.3e}); try a better initial guess u0."
        )
    return u, info
