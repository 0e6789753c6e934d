"""Newton's method for nonlinear problems, each step one sparse linear solve.

.. math:: K(u_k)\\, \\delta = -R(u_k) \\ \\text{(free dofs)}, \\qquad u_{k+1} = u_k + t\\,\\delta,

with the Dirichlet dofs held at their values. The step length ``t`` comes from a
backtracking line search: on the energy (Armijo, ``J(u + t delta) <= J(u) + 1e-4 t
R.delta``) when the problem has one and ``delta`` descends, otherwise on ``|R|``.
A trial at which the energy or the residual is not finite (a cell turned inside out,
``det F <= 0``) is always rejected; where the energy's change is within its round-off,
the residual decides. Stops when ``|R_free| <= max(rtol |R_free(u_0)|,
atol)``.

:func:`load_stepping` applies the loads of a problem in increments of its load factor,
each solved by :func:`newton` from the extrapolation of the last two converged states; a
failed increment is halved, and the increment grows back after each success.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from dfem.exceptions import ConvergenceError, DfemError
from dfem.solvers.linear import factorize

_MIN_STEP = 2.0**-20


@dataclass
class NewtonInfo:
    """Residual norms per iteration, iterations, seconds, whether it converged, and the
    step lengths the line search took."""

    iterations: int = 0
    residuals: list = field(default_factory=list)
    seconds: float = 0.0
    converged: bool = False
    steps: list = field(default_factory=list)
    tangent: torch.Tensor | None = field(default=None, repr=False)


def _finite(x) -> bool:
    return bool(torch.isfinite(x).all()) if torch.is_tensor(x) else x == x and abs(x) < 1e308


def newton(
    problem,
    u0: torch.Tensor | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-13,
    max_iter: int = 50,
    method: str = "direct",
    linear_options: dict | None = None,
    **solver_options,
):
    """Solve ``problem.residual_and_tangent(u) = 0`` by damped Newton.

    Parameters
    ----------
    problem
        An object with ``residual_and_tangent(u, tangent=True)`` (residual and CSR
        tangent values, detached), ``dirichlet_data()``, ``restricted_pattern(fixed)``,
        ``symmetric`` and, for the energy line search, ``has_energy`` and ``energy(u)``
        (e.g. :class:`dfem.EnergyProblem`).
    u0 : tensor, optional
        Initial guess (its Dirichlet dofs are overwritten); default zero.
    rtol, atol, max_iter
        Newton's stopping rule.
    method, linear_options, **solver_options
        The linear solver of each step (:func:`dfem.solvers.linear.factorize`);
        ``linear_options`` may hold its own ``rtol``/``atol``.

    Returns
    -------
    u : (n_dofs,) tensor
        Detached; :meth:`dfem.EnergyProblem.solve` attaches the adjoint.
    info : NewtonInfo
        ``info.tangent`` holds the tangent's CSR values at ``u``.

    Raises
    ------
    ConvergenceError
        If the residual does not reach the tolerance in ``max_iter`` steps, or no step
        keeps the energy and residual finite.
    """
    t0 = time.perf_counter()
    solver_options = {**(linear_options or {}), **solver_options}
    fixed, u_fixed = problem.dirichlet_data()
    restricted = problem.restricted_pattern(fixed)
    free = restricted.free_dofs
    u = u_fixed.detach().clone()
    if u0 is not None:
        u[free] = u0.detach().to(u)[free]
    info = NewtonInfo()
    use_energy = bool(getattr(problem, "has_energy", False))

    with torch.no_grad():
        R, values = problem.residual_and_tangent(u)
        norm = float(torch.linalg.vector_norm(R[free]))
        info.residuals.append(norm)
        if not _finite(norm):
            raise ConvergenceError(
                "Newton: the residual is not finite at the initial guess (an inverted cell, "
                "det F <= 0, or a coefficient out of range); start from another guess or "
                "apply the load in steps."
            )
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
            u, step = _line_search(problem, u, free, delta, R[free], use_energy,
                                   info.residuals[0])
            R, values = problem.residual_and_tangent(u)
            norm = float(torch.linalg.vector_norm(R[free]))
            info.iterations += 1
            info.residuals.append(norm)
            info.steps.append(step)
    info.seconds = time.perf_counter() - t0
    info.converged = norm <= target
    info.tangent = values
    if not info.converged:
        raise ConvergenceError(
            f"Newton did not converge in {max_iter} iterations (|R| {info.residuals[0]:.3e} -> "
            f"{norm:.3e}, target {target:.3e}); try a better initial guess u0 or more load "
            "steps."
        )
    return u, info


def _line_search(problem, u, free, delta, R_free, use_energy, first_norm):
    """Backtracking from the full Newton step; returns (u_new, step)."""
    slope = float(R_free @ delta)
    on_energy = use_energy and slope < 0
    E0 = float(problem.energy(u)) if on_energy else None

    def residual_norm(v):
        # one evaluation path for u and every trial, so that round-off cannot rank them
        R, _ = problem.residual_and_tangent(v, tangent=False)
        return float(torch.linalg.vector_norm(R[free]))

    norm = None
    step = 1.0
    while step >= _MIN_STEP:
        trial = u.index_put((free,), u[free] + step * delta)
        if on_energy:
            E = float(problem.energy(trial))
            if _finite(E):
                if E <= E0 + 1e-4 * step * slope:
                    return trial, step
                # Within round-off of J (a small difference of large terms, e.g. an elastic
                # energy near the reference state) the energy cannot rank the steps: there
                # the full step is taken when |R| falls, and near the solution (|R| below
                # 1e-3 of its first value) when it falls by 100, as Newton's steps do.
                norm = residual_norm(u) if norm is None else norm
                near = norm <= 1e-3 * first_norm
                if E - E0 <= 1e-12 * abs(E0) or (near and step == 1.0):
                    trial_norm = residual_norm(trial)
                    if trial_norm < (1e-2 * norm if E - E0 > 1e-12 * abs(E0) else norm):
                        return trial, step
        else:
            norm = residual_norm(u) if norm is None else norm
            trial_norm = residual_norm(trial)
            if _finite(trial_norm) and (trial_norm < norm or step < 1e-4):
                return trial, step
        step *= 0.5
    raise ConvergenceError(
        "Newton's line search found no acceptable step (the energy or residual is not "
        "finite along the Newton direction, e.g. det F <= 0 in some cell, or it does not "
        "decrease); apply the load in more steps."
    )


def load_stepping(problem, u0, load_steps: int, min_load_step: float, **newton_options):
    """Newton solves at load factors rising to 1, with cutback.

    Parameters
    ----------
    problem
        As for :func:`newton`, with a ``load_factor`` attribute that scales its loads
        (reset to 1 on return).
    u0 : tensor or None
        The first increment's initial guess (default: extrapolated from the zero state of
        the unloaded problem).
    load_steps : int
        The number of equal increments to start with.
    min_load_step : float
        The smallest increment tried before giving up.

    Returns
    -------
    u : tensor
        The converged state at load factor 1.
    infos : list of NewtonInfo
        One per converged increment.
    reached : list of float
        The load factors of the converged increments.
    """
    if isinstance(load_steps, bool) or not isinstance(load_steps, int) or load_steps < 1:
        raise DfemError(f"load_steps must be a positive integer, got {load_steps!r}.")
    space = problem.space
    # converged (load factor, state) pairs; with no load the solution is zero
    history = [] if u0 is not None else [
        (0.0, torch.zeros(space.n_dofs, dtype=space.dtype, device=space.device))]
    base = increment = 1.0 / load_steps
    done, reached, infos = 0.0, [], []
    try:
        while done < 1.0:
            target = min(1.0, done + increment)
            problem.load_factor = target
            guess = _extrapolate(history, target) if history else u0.detach()
            try:
                u_new, info = newton(problem, u0=guess, **newton_options)
            except ConvergenceError as exc:
                increment /= 2
                if increment < min_load_step:
                    raise ConvergenceError(
                        f"the solve failed at load factor {target:.4g} (reached {done:.4g}) "
                        f"even with load increments below {min_load_step:g}: {exc}"
                    ) from exc
                continue
            done = target
            history = [*history[-1:], (target, u_new)]
            reached.append(target)
            infos.append(info)
            increment = min(base, 1.5 * increment)
    finally:
        problem.load_factor = 1.0
    return history[-1][1], infos, reached


def _extrapolate(history, target: float) -> torch.Tensor:
    """The initial guess at load factor ``target``: linear extrapolation of the last two
    converged states (the last one alone if there is one)."""
    if len(history) == 1:
        return history[0][1]
    (l0, u0), (l1, u1) = history[-2:]
    return u1 + (target - l1) / (l1 - l0) * (u1 - u0)
