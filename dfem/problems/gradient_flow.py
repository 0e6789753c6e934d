"""Gradient flows of an energy problem, stepped by Newton on the incremental potential.

For a problem with residual ``R(u) = dJ/du`` (any :class:`~dfem.problems.energy.EnergyProblem`:
a density of the user's, elasticity, hyperelasticity, nonlinear diffusion), the flow

.. math:: \\rho\\, \\partial_t u = -R(u)

is stepped implicitly. An implicit Euler step (and a BDF2 step, with
``w = (4 u^n - u^{n-1})/3`` and ``3 / (2 dt)`` in place of ``1 / dt``) is the minimiser of
the incremental potential

.. math:: \\Pi(u) = \\frac{\\alpha}{2\\,\\Delta t} \\int \\rho\\, |u - w|^2 + J(u),

an energy problem itself, so the step is one Newton solve through the same assembly
(line search on ``Pi``; on ``|R|`` for weak forms without an energy, such as
``NonlinearPoisson`` with ``nu(u)``). Its solution is differentiable by the implicit
adjoint of each step, chained by autograd through the steps (memory grows with the
number of steps; the linear :class:`~dfem.problems.heat.Heat` keeps about ``2 sqrt(N)``
states instead).
"""

from __future__ import annotations

import time

import torch

from dfem.assembly.coefficients import Nodal
from dfem.exceptions import DfemError
from dfem.problems.energy import EnergyProblem
from dfem.problems.heat import TransientResult, initial_state
from dfem.solvers.schemes import resolve_scheme, scheme_steps, step_times
from dfem.solvers.trajectory import TrajectoryInfo


class _Step(EnergyProblem):
    """``Pi(u) = scale/2 int rho |u - w|^2 + J(u)`` for a base problem."""

    def __init__(self, base: EnergyProblem, rho, scale: float, previous: torch.Tensor):
        self.base, self.scale = base, scale
        space = base.space
        d = space.n_components
        if d == 1:
            w = Nodal(previous)
        else:  # interleaved dofs s * d + i: the components are the last axis
            w = previous.reshape(-1, d)
        params = {**base.params, "_rho": rho, "_previous": w}
        super().__init__(space, self._density, params=params, dirichlet=base.dirichlet,
                         loads=base.loads, quadratic=base.quadratic, kernel=False,
                         point_loads=base.point_loads)
        if base.pointwise_first is not None:
            self.pointwise_first = self._first

    @property
    def boundary(self):
        return self.base.boundary

    @property
    def symmetric(self) -> bool:
        return self.base.symmetric

    @property
    def has_energy(self) -> bool:
        return self.base.has_energy

    def _inertia(self, u, params):
        return self.scale * params["_rho"] * (u - params["_previous"])

    def _density(self, u, grad_u, x, params):
        jump = u - params["_previous"]
        squared = jump * jump if self._scalar else (jump * jump).sum(-1)
        return self.base.density(u, grad_u, x, params) + \
            0.5 * self.scale * params["_rho"] * squared

    def _first(self, u, grad_u, x, params):
        source, flux = self.base.pointwise_first(u, grad_u, x, params)
        inertia = self._inertia(u, params)
        return (inertia if source is None else source + inertia), flux


class GradientFlow:
    """``rho du/dt = -R(u)`` for an energy problem, by implicit Euler or BDF2.

    Parameters
    ----------
    problem : EnergyProblem
        Its parameters, Dirichlet conditions and boundary terms are held fixed in time.
    rho : coefficient
        The mobility's inverse (heat capacity, density), any coefficient form.

    Example
    -------
    >>> import torch, dfem
    >>> space = dfem.FunctionSpace(dfem.mesh.rectangle(6, 6, "quad"), "Q1")
    >>> problem = dfem.NonlinearPoisson(space, nu=lambda u, x: 1 + u ** 2,
    ...                                 dirichlet={"boundary": 0.0})
    >>> result = dfem.GradientFlow(problem).run(1.0, t_end=0.05, dt=0.01)
    >>> float(result.u.max()) < 1.0
    True
    """

    def __init__(self, problem: EnergyProblem, rho=1.0):
        if not isinstance(problem, EnergyProblem):
            raise DfemError(f"GradientFlow takes an EnergyProblem (Poisson, NonlinearPoisson, "
                            f"LinearElasticity, NeoHookean, or your own), got {problem!r}.")
        self.problem, self.rho = problem, rho

    def energy(self, u: torch.Tensor) -> torch.Tensor:
        """The problem's energy ``J(u)`` (batched over u)."""
        return self.problem.energy(u)

    def run(self, u0, t_end=None, dt=None, scheme: str = "implicit-euler", times=None,
            t0: float = 0.0, save_every: int = 1, observe=None, callback=None,
            method: str = "direct", show_progress: bool = False, **newton_options
            ) -> TransientResult:
        """Step from ``u0``; arguments as :meth:`dfem.Heat.run`, and ``newton_options``
        (``rtol``, ``atol``, ``max_iter``, ...) for each step's
        :meth:`EnergyProblem.solve`. ``scheme`` is "implicit-euler" or "bdf2" (a
        Crank-Nicolson step of a nonlinear flow is not a minimisation)."""
        name, theta = resolve_scheme(scheme)
        if theta is not None and theta != 1.0:
            raise DfemError(f"a nonlinear gradient flow steps by 'implicit-euler' or 'bdf2' "
                            f"(each step minimises an incremental potential); {scheme!r} "
                            "does not.")
        levels = step_times(t_end, dt, times, t0)
        if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
            raise DfemError(f"save_every must be a positive integer, got {save_every!r}.")
        space = self.problem.space
        fixed, u_fixed = self.problem.dirichlet_data()
        U = initial_state(space, u0).index_put((fixed,), u_fixed[fixed])  # as Heat.run does
        steps = scheme_steps(name, theta, levels)
        n_steps = len(steps)
        save = {*range(0, n_steps + 1, save_every), n_steps}
        info = TrajectoryInfo(steps=n_steps)
        start = time.perf_counter()
        history, saved, observations = [U], [U], []
        observations.append(_observed(observe, levels[0], U))
        if callback is not None:
            callback(0, levels[0], U.detach())
        indices = range(n_steps)
        if show_progress:
            from dfem.progress import progress

            indices = progress(indices, "time steps", unit="step", max_lines=20)
        for n in indices:
            (alpha, beta), previous = steps[n].new, steps[n].previous
            w = sum(a * V for (a, _), V in zip(previous, history, strict=False)) / alpha
            step = _Step(self.problem, self.rho, alpha / beta, w)
            U = step.solve(method=method, u0=history[0].detach(), **newton_options)
            info.newton_iterations += getattr(step.last_solve.get("newton"), "iterations", 0)
            info.solves += 1
            history = [U, *history][:2]
            if n + 1 in save:
                saved.append(U)
            observations.append(_observed(observe, levels[n + 1], U))
            if callback is not None:
                callback(n + 1, levels[n + 1], U.detach())
        info.forward_s = time.perf_counter() - start
        keep = sorted(save)
        return TransientResult(u=saved[-1], snapshots=torch.stack(saved),
                               saved_times=[levels[k] for k in keep], times=levels,
                               observations=torch.stack(observations), info=info, scheme=name)


def _observed(observe, t, U):
    if observe is None:
        return U.new_zeros(0)
    return torch.as_tensor(observe(t, U), dtype=U.dtype, device=U.device)
