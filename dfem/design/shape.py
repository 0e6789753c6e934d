"""NURBS shape optimisation: control points of an isogeometric patch as design variables.

The data path (every arrow differentiable, so one forward solve and one adjoint give the
gradient):

.. math:: \\theta \\;\\to\\; P^d = P^d_0 + \\sum_k \\theta_k\\, e_{i_k} \\otimes d_k
          \\;\\to\\; P^a = \\mathcal R(P^d) \\;\\to\\; x(\\xi) = \\sum_{ab} R_{ab}(\\xi) P^a_{ab}
          \\;\\to\\; u_h \\;\\to\\; J(u_h, x),

- **design variables** ``theta`` (:class:`ControlPointDesign`): each moves one control
  point ``i_k`` of the *design patch* along a unit direction ``d_k`` (radially, along
  ``x`` or ``y``, or along the edge it must stay on), within box bounds
  ``lower_k <= theta_k <= upper_k``; ``theta = 0`` is the initial shape;
- **refinement** ``R``: the analysis patch is a refinement (knot insertion, degree
  elevation) of the design patch, so its control points are a fixed linear map of the
  design's (weights fixed). In homogeneous coordinates it is separable,

  .. math:: w^a \\odot P^a = T_u\\,(w^d \\odot P^d)\\,T_v^T, \\qquad
            T_u = N^a(g_u)^{-1} N^d(g_u),

  ``N^a``, ``N^d`` the fine and coarse B-spline collocation matrices at the fine
  Greville points ``g_u`` (and the same in ``v``): :func:`refinement_operator`. A few
  design control points then move the whole analysis net smoothly (the interior follows
  the boundary with the coarse basis functions), with no mesh-moving step;
- **analysis**: :class:`~dfem.basis.nurbs.space.IsogeometricSpace` on the moved patch
  (a new moved space per evaluation, caching its geometry for that one graph) and
  :class:`~dfem.problems.elasticity.LinearElasticity`, differentiated by one adjoint
  solve (:meth:`~dfem.problems.energy.EnergyProblem.solve`);
- **objectives** (:class:`ShapeObjective`): the compliance ``C = F . u = int_Gamma t . u``
  (self-adjoint) or a smooth peak von Mises stress at the quadrature points, the
  normalised p-norm or the Kreisselmeier-Steinhauser aggregate,

  .. math:: \\sigma_{PN} = \\Big(\\frac{1}{|\\Omega|}\\int_\\Omega \\sigma_{vM}^p\\Big)^{1/p},
            \\qquad
            \\sigma_{KS} = \\sigma_0 + \\frac1\\rho \\ln \\frac{1}{|\\Omega|}
                \\int_\\Omega e^{\\rho(\\sigma_{vM} - \\sigma_0)},

  both below ``max sigma_vM`` and tending to it as ``p, rho -> infinity`` (``sigma_0``
  is the detached maximum, a shift that changes no value and no gradient);
- **constraint**: the area ``A = int_Omega 1 = sum_e sum_q w_q |det J(xi_q)|`` at most
  ``A_max`` (default: the initial area).

The optimiser (:func:`optimize_shape`) is MMA (:class:`dfem.design.optimizers.MMA`, the
mmapy code) on the variables scaled to ``[0, 1]``, with the objective divided by its
initial value and the constraint ``A / A_max - 1 <= 0``. Each MMA step ``s -> s*`` is
**guarded**: the trial ``s + a (s* - s)``, ``a = 1, 1/2, 1/4, ...``, is refused while the
geometry map of the trial fails :class:`JacobianGuard` (the Jacobian determinant at every
quadrature point, element corner and Greville point must stay above
``min_jacobian_ratio`` times its initial value, so no element inverts), as
:func:`dfem.inverse.shape.optimize_nodes` does for Lagrange nodes; with ``monotone`` a
trial must also lower the merit ``J / |J_0| + c max(0, A / A_max - 1)``. The
backtracking is :func:`backtrack`, a helper that ``optimize_nodes`` could share. MMA can
also be told about the guard's wall, as the smooth constraint ``m_KS >= b`` on the soft
minimum of the Jacobian ratios (:func:`soft_min_ratio`, ``jacobian_bound=b``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from dfem.basis.nurbs.patch import plate_with_hole
from dfem.basis.nurbs.space import IsogeometricSpace
from dfem.design.control_points import ControlPointDesign, side_design
from dfem.design.guard import GuardReport, JacobianGuard, backtrack, soft_min_ratio
from dfem.exceptions import DfemError
from dfem.problems.elasticity import LinearElasticity
from dfem.validation import kirsch

#: Objectives of :class:`ShapeObjective`.
OBJECTIVES = ("compliance", "von_mises_pnorm", "von_mises_ks")


# ---------------------------------------------------------------------------- objectives
def stress_aggregate(von_mises: torch.Tensor, weights: torch.Tensor, method: str = "pnorm",
                     p: float = 8.0) -> torch.Tensor:
    """Smooth maximum of the von Mises stress over the domain (module docstring).

    Parameters
    ----------
    von_mises, weights : (n_cells, n_q) tensors
        ``sigma_vM`` at the quadrature points and the weights ``w_q |det J|``.
    method : {"pnorm", "ks"}
        ``(sum w s^p / sum w)^(1/p)`` or ``s0 + log(sum w exp(p (s - s0)) / sum w) / p``
        with ``s0 = max s`` (detached).
    p : float
        The exponent (p-norm) or ``rho`` (KS, in 1 / stress units).
    """
    area = weights.sum()
    if method == "pnorm":
        scale = von_mises.detach().max()
        return scale * (((von_mises / scale) ** p * weights).sum() / area) ** (1.0 / p)
    if method == "ks":
        shift = von_mises.detach().max()
        return shift + torch.log((torch.exp(p * (von_mises - shift)) * weights).sum() / area) / p
    raise DfemError(f"method must be 'pnorm' or 'ks', got {method!r}.")


def plate_problem(space, radius: float = 1.0, length: float = 4.0, tension: float = 10.0,
                  E: float = 1e5, poisson_ratio: float = 0.3, load: str = "kirsch"):
    """The shipped plate-with-a-hole problem (``cases/plate_hole_iga.toml``) on ``space``.

    Plane stress, rollers ``u_y = 0`` on ``bottom`` (``y = 0``) and ``u_x = 0`` on ``top``
    (``x = 0``), the hole (``left``) traction-free, and on the outer edges (``right``)
    either the Kirsch far-field traction ``sigma_K(x) n`` of the shipped case
    (``load="kirsch"``: an infinite plate under uniaxial tension ``T``; a fixed load on
    fixed edges, whatever the hole becomes) or the plain uniaxial traction ``T e_x`` on
    ``x = L`` and nothing on ``y = L`` (``load="uniaxial"``: a finite plate).
    """
    if load == "kirsch":
        traction = kirsch.outer_traction(radius, length, tension)
    elif load == "uniaxial":
        def traction(x):
            on_right = (x[..., 0] >= x[..., 1]).to(x.dtype)
            return torch.stack([tension * on_right, torch.zeros_like(on_right)], -1)
    else:
        raise DfemError(f"load must be 'kirsch' or 'uniaxial', got {load!r}.")
    return LinearElasticity(space, E=E, poisson_ratio=poisson_ratio, plane="stress",
                            dirichlet={"bottom": {"y": 0.0}, "top": {"x": 0.0}},
                            traction={"right": traction})


@dataclass
class Evaluation:
    """One analysis of a design: values (floats) and, if asked, gradients in theta.

    ``jacobian`` is the smooth lower bound of the Jacobian ratios at the quadrature points
    (:func:`soft_min_ratio`), computed when asked for (``jacobian=True``)."""

    objective: float
    area: float
    grad_objective: torch.Tensor | None = None
    grad_area: torch.Tensor | None = None
    max_von_mises: float = math.nan
    jacobian: float = math.nan
    grad_jacobian: torch.Tensor | None = None


class ShapeObjective:
    """Objective and area of a shape design, with gradients by one adjoint solve.

    Parameters
    ----------
    design : ControlPointDesign
    problem : callable, optional
        ``problem(space) -> LinearElasticity`` on the vector space of the moved analysis
        patch; default :func:`plate_problem`.
    objective : {"compliance", "von_mises_pnorm", "von_mises_ks"}
    p : float
        Exponent of the p-norm, or ``rho`` of the KS aggregate.
    quadrature_degree : int, optional
        Of the analysis space.
    """

    def __init__(self, design: ControlPointDesign, problem: Callable | None = None,
                 objective: str = "compliance", p: float = 8.0,
                 quadrature_degree: int | None = None):
        if objective not in OBJECTIVES:
            raise DfemError(f"objective must be one of {', '.join(OBJECTIVES)}, got "
                            f"{objective!r}.")
        self.design = design
        self.problem_factory = plate_problem if problem is None else problem
        self.objective = objective
        self.p = float(p)
        self.quadrature_degree = quadrature_degree
        self.rho = 50.0
        self._space = IsogeometricSpace(design.analysis, quadrature_degree, shape=(2,))

    def analysis(self, theta: torch.Tensor):
        """``(problem, u)`` on the shape ``theta`` (differentiable if theta requires grad).

        The problem's space caches its geometry for one autograd graph: build a new one
        (call this again) for each backward pass."""
        space = self._space.with_control_points(self.design.analysis_points(theta),
                                             cache_geometry=True)
        problem = self.problem_factory(space)
        return problem, problem.solve()

    def value(self, problem, u) -> torch.Tensor:
        """The objective of a solved problem (a scalar tensor)."""
        if self.objective == "compliance":
            return problem.compliance(u)
        vm = problem.von_mises(u)
        weights = problem.space.geometry().weights
        method = "pnorm" if self.objective == "von_mises_pnorm" else "ks"
        return stress_aggregate(vm, weights, method, self.p)

    def area(self, theta: torch.Tensor) -> torch.Tensor:
        """``A = sum_e sum_q w_q |det J|`` of the analysis patch at ``theta``."""
        space = self._space.with_control_points(self.design.analysis_points(theta),
                                             cache_geometry=True)
        return space.geometry().weights.sum()

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        """The objective at ``theta`` as a differentiable scalar tensor."""
        problem, u = self.analysis(theta)
        return self.value(problem, u)

    def evaluate(self, theta: torch.Tensor, gradient: bool = True,
                 jacobian: bool = False) -> Evaluation:
        """Objective, area, the peak von Mises stress at the quadrature points (and with
        ``jacobian=True`` the soft minimum of the Jacobian ratios), with the gradients of
        all but the peak (one forward solve, one adjoint solve)."""
        th = theta.detach().clone().requires_grad_(gradient)
        with torch.set_grad_enabled(gradient):
            problem, u = self.analysis(th)
            g = problem.space.geometry()
            outputs = [self.value(problem, u), g.weights.sum()]
            if jacobian:
                outputs.append(soft_min_ratio(g.det, self._reference_det, self.rho))
            grads = [None] * len(outputs)
            if gradient:
                grads = [torch.autograd.grad(out, th, retain_graph=k < len(outputs) - 1)[0]
                         for k, out in enumerate(outputs)]
            with torch.no_grad():
                peak = float(problem.von_mises(u.detach()).max())
        values = [float(out.detach()) for out in outputs]
        e = Evaluation(values[0], values[1], grads[0], grads[1], peak)
        if jacobian:
            e.jacobian, e.grad_jacobian = values[2], grads[2]
        return e

    @property
    def _reference_det(self) -> torch.Tensor:
        """``det J`` at the quadrature points of the initial analysis patch."""
        return self._space.geometry().det.detach()


# ---------------------------------------------------------------------------- optimiser
@dataclass
class ShapeResult:
    """The outcome of :func:`optimize_shape`.

    Attributes
    ----------
    theta : tensor
        The optimised design variables.
    initial, final : Evaluation
    history : list of dict
        Per iteration: ``iteration``, ``objective``, ``area``, ``area_ratio`` (``A /
        A_max``), ``max_von_mises``, ``min_jacobian`` (oriented ``det J``, smallest over
        the guard's points), ``min_jacobian_ratio``, ``step`` (largest ``|dtheta|``),
        ``scale`` (the accepted fraction of the MMA step).
    guard_trips : int
        Trial steps refused by the mesh-quality guard.
    rejected : int
        Trial steps refused in all (guard or no decrease).
    area_max : float
    guard : GuardReport
        Of the final shape.
    seconds : float
    message : str
    """

    theta: torch.Tensor
    initial: Evaluation
    final: Evaluation
    history: list = field(default_factory=list)
    guard_trips: int = 0
    rejected: int = 0
    area_max: float = math.nan
    guard: GuardReport | None = None
    seconds: float = 0.0
    message: str = ""

    @property
    def reduction(self) -> float:
        """Relative decrease of the objective, ``1 - J_final / J_initial``."""
        return 1.0 - self.final.objective / self.initial.objective


def optimize_shape(objective: ShapeObjective, max_iter: int = 20, area_max: float | None = None,
                   move: float = 0.2, min_jacobian_ratio: float = 0.1,
                   jacobian_bound: float | None = None, rtol: float = 1e-5,
                   theta0: torch.Tensor | None = None, monotone: bool = True,
                   penalty: float = 100.0, max_trials: int = 20, progress=None) -> ShapeResult:
    """Minimise the objective subject to ``area <= area_max`` by guarded MMA steps.

    Each iteration: one analysis and its adjoint give ``J``, ``A`` and their gradients;
    MMA (on ``s = (theta - lower) / (upper - lower)`` in ``[0, 1]``, objective ``J /
    |J_0|``, constraint ``A / A_max - 1 <= 0``) proposes ``s*``; :func:`backtrack` then
    tries ``s + a (s* - s)``, ``a = 1, 1/2, ...``, refusing a trial that fails the
    :class:`JacobianGuard` and, with ``monotone``, one that does not lower the merit
    ``J / |J_0| + penalty max(0, A / A_max - 1)``.

    Parameters
    ----------
    objective : ShapeObjective
    max_iter : int
        MMA iterations (one analysis with its adjoint each, plus one per refused trial
        that passed the guard).
    area_max : float, optional
        The area bound ``A_max``; default the initial area.
    move : float
        MMA's move limit as a fraction of each variable's box.
    min_jacobian_ratio : float in (0, 1)
        The guard (:class:`JacobianGuard`): every checked ``det J`` stays above this
        fraction of its initial value.
    jacobian_bound : float, optional
        Also give MMA the smooth constraint ``soft_min_ratio >= jacobian_bound``
        (:func:`soft_min_ratio` at the quadrature points), so that it sees the guard's
        wall before it hits it; take it above ``min_jacobian_ratio``. Default: none.
    rtol : float
        Stop when a full (unshortened) step changes the objective by less than ``rtol
        |J|`` with the area constraint met to ``rtol``.
    theta0 : tensor, optional
        Starting design (default 0, the initial shape).
    monotone : bool
        Require a decrease of the merit function (above) in the line search.
    max_trials : int
        Trial steps per iteration at most.
    progress : callable, optional
        Called with each history row.
    """
    from dfem.design.optimizers import MMA

    if not (isinstance(max_iter, int) and max_iter > 0):
        raise DfemError(f"max_iter must be a positive integer, got {max_iter!r}.")
    if jacobian_bound is not None and not min_jacobian_ratio < jacobian_bound < 1:
        raise DfemError(f"jacobian_bound must lie in (min_jacobian_ratio, 1) = "
                        f"({min_jacobian_ratio}, 1), got {jacobian_bound!r}.")
    design = objective.design
    guard = JacobianGuard(design.analysis, min_jacobian_ratio,
                          quadrature_degree=objective.quadrature_degree)
    lower, upper = design.lower, design.upper
    width = upper - lower
    with_jacobian = jacobian_bound is not None
    theta = design.zeros() if theta0 is None else theta0.detach().clone()
    t0 = time.perf_counter()
    evaluate = lambda th: objective.evaluate(th, jacobian=with_jacobian)  # noqa: E731
    current = evaluate(theta)
    initial = current
    area_max = current.area if area_max is None else float(area_max)
    J0 = abs(current.objective)
    mma = MMA(design.n, 2 if with_jacobian else 1, move=move)

    def merit(e):
        return e.objective / J0 + penalty * max(0.0, e.area / area_max - 1.0)

    def row(iteration, evaluation, report, step, scale):
        r = dict(iteration=iteration, objective=evaluation.objective, area=evaluation.area,
                 area_ratio=evaluation.area / area_max, max_von_mises=evaluation.max_von_mises,
                 min_jacobian=report.min_det, min_jacobian_ratio=report.min_ratio,
                 step=step, scale=scale)
        if progress is not None:
            progress(r)
        return r

    report = guard.check(design.analysis_patch(theta))
    if not report.valid:
        raise DfemError(f"the starting design fails the mesh-quality guard (min Jacobian "
                        f"ratio {report.min_ratio:.3g} < {min_jacobian_ratio}).")
    history = [row(0, current, report, 0.0, 0.0)]
    result = ShapeResult(theta, initial, current, history, area_max=area_max,
                         message="iteration budget reached")
    for iteration in range(1, max_iter + 1):
        s = ((theta - lower) / width).numpy()
        df0 = (current.grad_objective * width / J0).numpy()
        f = [current.area / area_max - 1.0]
        df = [(current.grad_area * width / area_max).numpy()]
        if with_jacobian:
            f.append(jacobian_bound - current.jacobian)
            df.append(-(current.grad_jacobian * width).numpy())
        s_new = mma.step(s, current.objective / J0, df0, np.array(f), np.stack(df))
        step = (torch.as_tensor(s_new, dtype=theta.dtype) - torch.as_tensor(s)) * width
        reports, trials = [], []
        merit0 = merit(current)

        def admissible(trial, reports=reports):
            reports.append(guard.check(design.analysis_patch(trial)))
            return reports[-1].valid

        def decreases(trial, trials=trials, merit0=merit0):
            trials.append(evaluate(trial))
            return merit(trials[-1]) < merit0

        checks = [("guard", admissible)] + ([("decrease", decreases)] if monotone else [])
        outcome = backtrack(theta, step, checks, max_trials=max_trials)
        result.guard_trips += outcome.refused["guard"]
        result.rejected += sum(outcome.refused.values())
        if not outcome.accepted:
            result.message = ("the line search found no admissible step: the guard refused "
                              f"{outcome.refused['guard']} trial(s), the decrease test "
                              f"{outcome.refused.get('decrease', 0)}")
            break
        previous = current
        theta = outcome.trial
        current = trials[-1] if monotone else evaluate(theta)
        history.append(row(iteration, current, reports[-1],
                           float((outcome.scale * step).abs().max()), outcome.scale))
        small = abs(previous.objective - current.objective) <= rtol * abs(current.objective)
        if small and current.area <= area_max * (1 + rtol):
            if outcome.scale == 1.0:
                result.message = f"converged: the objective changed by less than rtol={rtol}"
                break
            if outcome.refused["guard"]:
                result.message = ("stopped at the mesh-quality guard: MMA's step would "
                                  "distort the elements beyond min_jacobian_ratio")
                break
    result.theta, result.final = theta, current
    result.guard = guard.check(design.analysis_patch(theta))
    result.seconds = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------------------- the benchmark
def plate_with_hole_design(mode: str = "radial", design_elements: int = 4, degree: int = 3,
                           elements: int = 8, radius: float = 1.0, length: float = 4.0,
                           fraction: float = 0.5) -> ControlPointDesign:
    """The hole of :func:`plate_with_hole` as the design.

    The design patch is the biquadratic plate with ``design_elements`` elements around the
    hole (``design_elements + 2`` control points on it); the analysis patch is that patch
    elevated to ``degree`` and subdivided into ``elements x 2 elements`` elements
    (``2 elements`` a multiple of ``design_elements``). The hole's control points move
    radially (``mode="radial"``) or in ``x`` and ``y`` (``"free"``); its ends slide along
    the symmetry edges; everything else of the design net (and so the outer edges and
    their load) stays.
    """
    if 2 * elements % design_elements:
        raise DfemError(f"2 * elements ({2 * elements}) must be a multiple of design_elements "
                        f"({design_elements}).")
    patch = plate_with_hole(radius, length)
    if design_elements != 2:
        patch = patch.subdivide(1, design_elements)
    refine = lambda p: p.elevate(degree).subdivide(elements, 2 * elements)  # noqa: E731
    return side_design(patch, refine, side="left", mode=mode, fraction=fraction)
