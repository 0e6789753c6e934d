"""Coefficient identification: recover nu (or an initial condition) from observations of
the solution (or of a run: :mod:`dfem.inverse.transient`).

Minimise

.. math:: \\Phi(m) = M(u(m)) + \\alpha R(m), \\qquad
          -\\nabla\\cdot(\\nu(m) \\nabla u) = f \\ \\text{(with the problem's boundary conditions)},

over the unknown ``m`` (see :mod:`dfem.inverse.unknowns`) with L-BFGS-B (scipy).
Each evaluation of ``Phi`` and its gradient is one forward solve and one adjoint
solve with the same factorisation: :meth:`dfem.Poisson.solve` is differentiable in
``nu``, and autograd carries the adjoint through the coefficient's map from ``m``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize

from dfem.exceptions import DfemError
from dfem.inverse.observations import Observations
from dfem.inverse.unknowns import check_regularization
from dfem.problems.poisson import Poisson


@dataclass
class InverseResult:
    """The outcome of :func:`identify`.

    Attributes
    ----------
    m : tensor
        The recovered unknown.
    u : tensor
        The solution for it (for a :class:`~dfem.inverse.transient.TransientForward`, the
        predicted sensor histories).
    history : list of dict
        Per iteration: ``iteration``, ``objective``, ``misfit``, ``regularization``
        (unweighted) and, when a truth was given, ``error``.
    iterations, evaluations : int
        L-BFGS iterations and forward+adjoint solve pairs.
    seconds : float
    converged : bool
    message : str
        The optimiser's stopping reason.
    """

    m: torch.Tensor
    u: torch.Tensor
    history: list = field(default_factory=list)
    iterations: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    converged: bool = False
    message: str = ""


def identify(
    problem: Poisson,
    observations: Observations,
    unknown,
    m0=None,
    regularization: str = "tikhonov",
    weight: float = 0.0,
    epsilon: float = 1e-3,
    bounds: tuple[float, float] | None = None,
    max_iter: int = 200,
    gtol: float = 1e-8,
    error=None,
    progress=None,
) -> InverseResult:
    """Recover ``unknown`` from ``observations`` of the solution of ``problem``.

    Parameters
    ----------
    problem : Poisson or TransientForward
        The forward problem; its ``nu`` (or, for an unknown with a ``target``, that
        attribute, e.g. ``u0``) is replaced by the unknown's coefficient.
    observations : Observations or SensorHistories
    unknown : CellLogDiffusivity, NodalLogDiffusivity, FamilyParameters or InitialCondition
    m0 : array or tensor, optional
        Initial guess (default zeros: ``nu = 1``, or ``w = 0``).
    regularization : {"tikhonov", "tv", "none"}
    weight : float
        ``alpha`` (>= 0).
    epsilon : float
        TV smoothing.
    bounds : (low, high), optional
        Box bounds on every entry of ``m`` (e.g. the family's ``[-3, 3]``).
    max_iter : int
        L-BFGS iteration budget.
    gtol : float
        Stop when the largest projected gradient entry falls below ``gtol`` times the
        largest entry at ``m0`` (the objective is scaled by that entry for the optimiser,
        so the test does not depend on the units of the data).
    error : callable, optional
        ``error(m)`` returns a float recorded in the history (e.g. the error against a
        known truth).
    progress : callable, optional
        Called with each history row (e.g. to update a progress bar).
    """
    check_regularization(regularization, weight, epsilon)
    if observations.space is not problem.space:
        raise DfemError("the observations must be taken in the problem's function space.")
    if not (isinstance(max_iter, int) and max_iter > 0):
        raise DfemError(f"max_iter must be a positive integer, got {max_iter!r}.")
    like = dict(dtype=problem.space.dtype, device=problem.space.device)
    m0 = torch.zeros(unknown.size, **like) if m0 is None else torch.as_tensor(m0, **like)
    if m0.shape != (unknown.size,):
        raise DfemError(f"the initial guess has shape {tuple(m0.shape)}; the unknown "
                        f"{unknown.name} needs ({unknown.size},).")
    regularized = regularization != "none" and weight > 0
    trial = copy.copy(problem)
    state: dict = {}

    def evaluate(x: np.ndarray):
        m = torch.as_tensor(x, **like).requires_grad_(True)
        setattr(trial, getattr(unknown, "target", "nu"), unknown.coefficient(m))
        u = trial.solve()
        misfit = observations.misfit(u)
        penalty = (unknown.regularization(m, regularization, epsilon) if regularized
                   else torch.zeros((), **like))
        objective = misfit + weight * penalty
        (gradient,) = torch.autograd.grad(objective, m)
        state.update(m=m.detach(), u=u.detach(), objective=float(objective.detach()),
                     misfit=float(misfit.detach()), regularization=float(penalty.detach()))
        state["evaluations"] = state.get("evaluations", 0) + 1
        return float(objective.detach()), gradient.detach().cpu().numpy().astype(np.float64)

    history: list = []

    def record(x=None):
        # the row must describe the accepted point, not the last line-search trial
        if x is not None and not np.array_equal(state["m"].cpu().numpy(), x):
            evaluate(x)
        row = {key: state[key] for key in ("objective", "misfit", "regularization")}
        row["iteration"] = len(history)
        if error is not None:
            row["error"] = float(error(state["m"]))
        history.append(row)
        if progress is not None:
            progress(row)

    t0 = time.perf_counter()
    x0 = m0.detach().cpu().numpy().astype(np.float64)
    _, g0 = evaluate(x0)
    record()
    scale = float(np.abs(g0).max()) or 1.0

    def scaled(x):
        value, gradient = evaluate(x)
        return value / scale, gradient / scale

    box = None if bounds is None else [tuple(bounds)] * unknown.size
    result = minimize(scaled, x0, jac=True, method="L-BFGS-B", bounds=box, callback=record,
                      options=dict(maxiter=max_iter, gtol=gtol, ftol=1e-14, maxcor=20))
    # the last evaluation may be a rejected line-search trial: end on the accepted point
    if not np.array_equal(state["m"].cpu().numpy(), result.x):
        evaluate(result.x)
    return InverseResult(
        m=state["m"], u=state["u"], history=history, iterations=int(result.nit),
        evaluations=state["evaluations"], seconds=time.perf_counter() - t0,
        converged=bool(result.success), message=str(result.message),
    )
