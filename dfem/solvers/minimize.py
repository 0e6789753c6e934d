"""The paper's route: minimise the Galerkin energy over the free dofs with a torch optimiser.

The DSA paper (eq. 11) obtains the solution by minimising ``J(U) = 1/2 B(U, U) - L(U)``
with a gradient-based optimiser. dfem offers it for comparison with the direct
solve, on the free dof values with the Dirichlet dofs held at their values,
stopped when the relative residual ``|dJ/dU_free|`` (relative to its value at the
start) falls below ``rtol`` or the iteration budget runs out:

``"lbfgs"``
    L-BFGS (two-loop recursion) whose line search finds a zero of the directional
    derivative ``d . grad J(x + a d)`` by secant steps. It uses gradients only:
    near the minimiser the energy changes by less than its round-off, which stalls
    line searches that compare energy values (such as torch's strong-Wolfe
    L-BFGS). On a quadratic energy one secant step is exact.
``"torch-lbfgs"``
    ``torch.optim.LBFGS`` with its strong-Wolfe line search, as a user would write it.
``"adam"``
    ``torch.optim.Adam``, the optimiser of the paper's experiments.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from dfem.exceptions import ConvergenceError, DfemError


@dataclass
class MinimizeInfo:
    """History of an energy minimisation."""

    optimizer: str
    iterations: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    converged: bool = False
    residuals: list = field(default_factory=list)


def minimize_energy(
    problem,
    optimizer: str = "lbfgs",
    rtol: float = 1e-10,
    max_iter: int = 20000,
    lr: float | None = None,
    history_size: int = 20,
    u0: torch.Tensor | None = None,
    raise_on_failure: bool = False,
) -> tuple[torch.Tensor, MinimizeInfo]:
    """Minimise ``problem.energy`` over the free dofs.

    Parameters
    ----------
    problem : dfem.Poisson (or any object with ``energy(u)``, ``dirichlet_data()``,
        ``restricted_pattern(fixed)``)
    optimizer : {"lbfgs", "torch-lbfgs", "adam"}
    rtol : float
        Stop when ``|grad J (free dofs)| <= rtol * |grad J at the start|``.
    max_iter : int
        Iteration budget (optimiser steps).
    lr : float, optional
        Learning rate of "torch-lbfgs" (default 1) and "adam" (default 1e-2).
    history_size : int
        Correction pairs kept by L-BFGS.
    raise_on_failure : bool
        Raise :class:`ConvergenceError` when the budget runs out (otherwise the
        returned info has ``converged=False``).

    Returns
    -------
    u : (n_dofs,) tensor
        The minimiser (detached).
    info : MinimizeInfo
    """
    t0 = time.perf_counter()
    fixed, u_fixed = problem.dirichlet_data()
    u_fixed = u_fixed.detach()
    free = problem.restricted_pattern(fixed).free_dofs
    x0 = u0.detach()[free].clone() if u0 is not None else torch.zeros_like(u_fixed[free])
    info = MinimizeInfo(optimizer=optimizer)

    def energy(x):
        info.evaluations += 1
        return problem.energy(u_fixed.index_put((free,), x))

    def gradient(x):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(energy(x), x)
        return g

    runners = {"lbfgs": _lbfgs_secant, "torch-lbfgs": _torch_lbfgs, "adam": _adam}
    if optimizer not in runners:
        raise DfemError(f"unknown optimizer {optimizer!r}; use one of {', '.join(runners)}.")
    g0 = gradient(x0)
    reference = float(torch.linalg.vector_norm(g0))
    if reference == 0.0:  # already the minimiser
        info.converged = True
        x = x0
    else:
        x = runners[optimizer](
            energy, gradient, x0, g0, reference, info, rtol, max_iter, lr, history_size
        )
    info.seconds = time.perf_counter() - t0
    if not info.converged and raise_on_failure:
        last = info.residuals[-1][1] if info.residuals else float("nan")
        raise ConvergenceError(
            f"{optimizer} did not reach rtol={rtol:g} in {max_iter} iterations "
            f"(relative residual {last:.3e}); the direct solve (problem.solve()) does not iterate."
        )
    return u_fixed.index_put((free,), x.detach()), info


def _record(info: MinimizeInfo, g: torch.Tensor, reference: float, rtol: float) -> bool:
    relative = float(torch.linalg.vector_norm(g)) / reference
    info.residuals.append((info.iterations, relative))
    info.converged = relative <= rtol
    return info.converged or not math.isfinite(relative)


def _lbfgs_secant(energy, gradient, x, g, reference, info, rtol, max_iter, lr, history_size):
    if _record(info, g, reference, rtol):
        return x
    s_hist, y_hist = [], []
    while info.iterations < max_iter:
        # Two-loop recursion: d = -H g with H the L-BFGS inverse-Hessian estimate
        q = g.clone()
        alphas = []
        for s, y in zip(reversed(s_hist), reversed(y_hist), strict=True):
            a = torch.dot(s, q) / torch.dot(y, s)
            alphas.append(a)
            q -= a * y
        if y_hist:
            q *= torch.dot(s_hist[-1], y_hist[-1]) / torch.dot(y_hist[-1], y_hist[-1])
        else:
            q *= 1.0 / reference
        for (s, y), a in zip(zip(s_hist, y_hist, strict=True), reversed(alphas), strict=True):
            q += s * (a - torch.dot(y, q) / torch.dot(y, s))
        d = -q
        slope0 = float(torch.dot(d, g))
        if slope0 >= 0:  # not a descent direction: restart from steepest descent
            s_hist.clear(), y_hist.clear()
            d, slope0 = -g / reference, -float(torch.dot(g, g)) / reference
        # Secant search for d . grad J(x + a d) = 0, from a = 0 and a = 1
        a_prev, slope_prev, a = 0.0, slope0, 1.0
        for _ in range(10):
            g_new = gradient(x + a * d)
            slope = float(torch.dot(d, g_new))
            if abs(slope) <= 0.1 * abs(slope0) or slope == slope_prev:
                break
            a_next = a - slope * (a - a_prev) / (slope - slope_prev)
            if not math.isfinite(a_next) or a_next <= 0:
                a_next = 2.0 * a
            a_prev, slope_prev, a = a, slope, a_next
        step = a * d
        x = x + step
        y = g_new - g
        if float(torch.dot(y, step)) > 0:
            s_hist.append(step), y_hist.append(y)
            if len(s_hist) > history_size:
                s_hist.pop(0), y_hist.pop(0)
        g = g_new
        info.iterations += 1
        if _record(info, g, reference, rtol):
            break
    return x


def _torch_lbfgs(energy, gradient, x, g, reference, info, rtol, max_iter, lr, history_size):
    x = x.clone().requires_grad_(True)
    # torch's own loop (20 iterations a step); progress measured by a fresh gradient
    opt = torch.optim.LBFGS(
        [x],
        lr=1.0 if lr is None else lr,
        max_iter=20,
        history_size=history_size,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )

    def closure():
        opt.zero_grad()
        J = energy(x)
        J.backward()
        return J

    while info.iterations < max_iter:
        opt.step(closure)
        info.iterations = int(opt.state[x]["n_iter"])
        if _record(info, gradient(x), reference, rtol):
            break
    return x


def _adam(energy, gradient, x, g, reference, info, rtol, max_iter, lr, history_size):
    x = x.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=1e-2 if lr is None else lr)
    while True:
        opt.zero_grad()
        energy(x).backward()
        # recorded at every iterate, the returned one included
        if _record(info, x.grad, reference, rtol) or info.iterations >= max_iter:
            break
        opt.step()
        info.iterations += 1
    return x
