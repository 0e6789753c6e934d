"""NURBS surface fitting: the DSA paper's Bukin N.6 experiment (Table 3).

The target is the height field ``z = bukin6(x, y)`` on ``-15 <= x <= -5``, ``-3 <= y <= 3``,
sampled on an ``n x n`` grid; the parameters ``u, v`` in ``[0, 1]`` map linearly to ``x, y``.
The model is a cubic 8 x 8 NURBS with a one-dimensional output, ``z(u, v)``: the fitted
surface is ``(x(u), y(v), z(u, v))``, exact in ``x`` and ``y``. The reported error is the
height-field MSE, ``mean((z_fit - z)**2)`` over the ``n**2`` points (the per-coordinate mean
over ``(x, y, z)`` is a third of it).

For fixed knots and weights the optimal control points solve a linear least-squares problem
(:func:`lsq_control_points`), so the fits eliminate them ("variable projection") and
minimise ``MSE(knots, weights) = min_C mean((S - z)**2)`` over the knots (ordered, with a
minimum gap) and the weights (bounded) with L-BFGS; the knot gradient is ``"exact"`` or the
paper's ``"gaussian"``. The result is evaluated through :class:`NURBSSurface`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from dfem.basis.nurbs.bspline import basis_matrix
from dfem.basis.nurbs.knot_gradient import check_knot_grad
from dfem.basis.nurbs.knots import OrderedKnots, clamped_knots
from dfem.basis.nurbs.layer import NURBSSurface
from dfem.exceptions import DfemError
from dfem.progress import ProgressBar

__all__ = ["BukinGrid", "FitResult", "bukin6", "bukin_grid", "fit_fixed_knots",
           "fit_learnable_knots", "lsq_control_points", "run_bukin"]

X_RANGE, Y_RANGE = (-15.0, -5.0), (-3.0, 3.0)
#: The paper's Table 3 (MSE without / with knot reparameterisation), by grid size.
PAPER_MSE = {256: (19.85, 8.23), 128: (19.83, 8.25)}
MSE_DEFINITION = (
    "mean over the n x n grid points of (z_fit - z)^2 (height field; x and y are exact, so "
    "the per-coordinate mean over (x, y, z) is a third of it)"
)


def bukin6(x, y):
    """Bukin function N.6, ``100 sqrt(|y - 0.01 x^2|) + 0.01 |x + 10|`` (torch or numpy)."""
    lib = torch if isinstance(x, torch.Tensor) else np
    return 100.0 * lib.sqrt(lib.abs(y - 0.01 * x**2)) + 0.01 * lib.abs(x + 10.0)


class BukinGrid(NamedTuple):
    """Parameter values ``u, v`` (n,), coordinates ``x, y`` (n,), target ``z`` (n, n)."""

    u: torch.Tensor
    v: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor


def bukin_grid(n: int = 256, *, dtype: torch.dtype = torch.float64) -> BukinGrid:
    """The target: ``z[i, j] = bukin6(x_i, y_j)`` at ``n`` equally spaced ``u_i, v_j`` in [0, 1].

    ``x = -15 + 10 u`` and ``y = -3 + 6 v`` (both ends included).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 8:
        raise DfemError(f"the grid needs at least 8 x 8 points (8 control points), got {n!r}")
    t = torch.linspace(0.0, 1.0, n, dtype=dtype)
    x = X_RANGE[0] + (X_RANGE[1] - X_RANGE[0]) * t
    y = Y_RANGE[0] + (Y_RANGE[1] - Y_RANGE[0]) * t
    return BukinGrid(t, t.clone(), x, y, bukin6(x[:, None], y[None, :]))


def lsq_control_points(Bu, Bv, z, weights=None):
    """Least-squares control points of a tensor-product surface ``z ~ S``, differentiably.

    Unit weights (``weights=None``): ``S = Bu C Bv^T`` and the separable problem
    ``min_C ||Bu C Bv^T - z||_F`` is solved exactly by ``C = Bu^+ z (Bv^+)^T`` (thin QR of
    each factor). With weights ``W``: ``S = (Bu (W C) Bv^T) / (Bu W Bv^T)`` is linear in
    ``P = W C``; the normal equations of that ``(Nu Nv) x (nu nv)`` system are assembled
    from the factors and solved with Jacobi scaling.

    Parameters
    ----------
    Bu, Bv : tensor (Nu, nu), (Nv, nv)
        Collocation matrices (full column rank).
    z : tensor (Nu, Nv)
    weights : tensor (nu, nv), optional

    Returns
    -------
    C : tensor (nu, nv)
        Control points (z-values).
    S : tensor (Nu, Nv)
        The fitted surface on the grid.
    """
    if weights is None:
        Qu, Ru = torch.linalg.qr(Bu)
        Qv, Rv = torch.linalg.qr(Bv)
        inner = Qu.T @ z @ Qv
        C = torch.linalg.solve_triangular(Ru, inner, upper=True)
        C = torch.linalg.solve_triangular(Rv, C.T, upper=True).T
        return C, Qu @ inner @ Qv.T
    nu, nv = weights.shape
    d_inv = 1.0 / (Bu @ weights @ Bv.T)
    M = torch.einsum("bj,bl,ab->ajl", Bv, Bv, d_inv**2)
    G = torch.einsum("ai,ak,ajl->ijkl", Bu, Bu, M).reshape(nu * nv, nu * nv)
    rhs = (Bu.T @ (z * d_inv) @ Bv).reshape(-1)
    s = G.diagonal().rsqrt()
    P = (s * torch.linalg.solve(G * s[:, None] * s[None, :], rhs * s)).reshape(nu, nv)
    return P / weights, (Bu @ P @ Bv.T) * d_inv


class _Knots(OrderedKnots):
    """Learnable ordered knots whose relative gaps are at least ``min_gap``.

    The gaps ``g`` of :class:`OrderedKnots` (a softmax, summing to 1) become
    ``min_gap + (1 - (m + 1) min_gap) g``: no two knots collapse.
    """

    def __init__(self, n_ctrl: int, degree: int, min_gap: float):
        super().__init__(clamped_knots(n_ctrl, degree), degree)
        m1 = self.logits.shape[0]
        if not 0 <= min_gap * m1 < 1:
            raise DfemError(f"min_gap must lie in [0, 1/{m1}), got {min_gap!r}")
        self.min_gap = float(min_gap)

    def forward(self) -> torch.Tensor:
        t, p, n = super().forward(), self.degree, self.n_ctrl
        g = torch.diff(t[p : n + 1]) / (t[n] - t[p])
        g = self.min_gap + (1 - g.shape[0] * self.min_gap) * g
        return torch.cat([t[: p + 1], t[p] + torch.cumsum(g, 0)[:-1] * (t[n] - t[p]), t[n:]])


def _weights(theta: torch.Tensor, bound: float) -> torch.Tensor:
    """Positive weights ``exp(bound tanh(a / bound))``, ``a = theta - mean(theta)``.

    The weights are defined up to a common factor; this fixes their geometric mean to 1
    and keeps each within ``[e^-bound, e^bound]``.
    """
    a = theta - theta.mean()
    return torch.exp(bound * torch.tanh(a / bound))


@dataclass
class FitResult:
    """One fit: the surface (``dim = 1``, the z-values), its MSE on the grid, the cost."""

    setting: str
    surface: NURBSSurface
    mse: float
    seconds: float
    iterations: int
    history: list = field(default_factory=list)
    bspline: FitResult | None = None  # the unit-weight fit on the way, for a NURBS fit

    def to_dict(self) -> dict:
        s = self.surface
        w = s.weights.detach()
        return {
            "setting": self.setting,
            "mse": self.mse,
            "seconds": self.seconds,
            "iterations": self.iterations,
            "knots_u": s.knots_u.detach().tolist(),
            "knots_v": s.knots_v.detach().tolist(),
            "weight_range": [float(w.min()), float(w.max())],
            "control_points": s.control_points.detach()[..., 0].tolist(),
            "weights": w.tolist(),
            "mse_history": self.history,
        }


def _minimise(objective, params, iterations, label, progress, time_budget):
    """L-BFGS (strong Wolfe) in chunks of iterations; returns (iterations, MSE per chunk).

    Progress after each chunk on stderr (:class:`dfem.progress.ProgressBar`): a bar on a
    terminal, plain lines otherwise.
    """
    chunk = max(10, iterations // 20)
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=chunk, max_eval=4 * chunk,
                            history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-13)
    group = opt.param_groups[0]
    bar = ProgressBar(iterations, label) if progress else None

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    done, history, start = 0, [], time.perf_counter()
    try:
        while done < iterations:
            group["max_iter"] = min(chunk, iterations - done)
            opt.step(closure)
            step = opt.state[params[0]].get("n_iter", 0) - done
            done += step
            with torch.no_grad():
                history.append(float(objective()))  # the line search's last trial may differ
            if bar is not None:
                bar.update(step, {"mse": f"{history[-1]:.4g}"}, at=done)
                bar.log(f"{label}: {done}/{iterations} iterations, MSE {history[-1]:.6g}")
            if step < group["max_iter"] or time.perf_counter() - start > time_budget:
                break  # converged (gradient or change below tolerance) or out of time
    finally:
        if bar is not None:
            bar.close()
    return done, history


def _objective(grid, degree, knots_u, knots_v, weights, knot_grad="exact", sigma=1e-2):
    """``MSE(knots, weights)`` with the least-squares control points (callables give the
    current knot vectors and weights; ``weights=None``: a B-spline)."""
    def objective():
        Bu = basis_matrix(knots_u(), degree, grid.u, knot_grad=knot_grad, sigma=sigma)[:, 0]
        Bv = basis_matrix(knots_v(), degree, grid.v, knot_grad=knot_grad, sigma=sigma)[:, 0]
        W = None if weights is None else weights()
        return ((lsq_control_points(Bu, Bv, grid.z, W)[1] - grid.z) ** 2).mean()

    return objective


def _surface(grid, knots_u, knots_v, weights, degree):
    """The least-squares NURBS surface for given knots and weights, and its grid MSE."""
    with torch.no_grad():
        Bu = basis_matrix(knots_u, degree, grid.u)[:, 0]
        Bv = basis_matrix(knots_v, degree, grid.v)[:, 0]
        C, _ = lsq_control_points(Bu, Bv, grid.z, weights)
        surface = NURBSSurface(C[..., None], weights, knots_u, knots_v, degree, degree,
                               learn_control_points=False, learn_weights=False)
        mse = float(((surface(grid.u, grid.v)[..., 0] - grid.z) ** 2).mean())
    if not math.isfinite(mse):
        raise DfemError("the least-squares fit is singular (knots without data points); "
                        "raise min_gap or use a finer grid")
    return surface, mse


def fit_fixed_knots(grid: BukinGrid, *, n_ctrl: int = 8, degree: int = 3, weights: bool = True,
                    iterations: int = 500, max_log_weight: float = math.log(1e3),
                    time_budget: float = math.inf, progress: bool = False) -> FitResult:
    """Fit with the clamped uniform knots fixed.

    First the B-spline least-squares optimum (unit weights; exact, :func:`lsq_control_points`).
    With ``weights=True`` (the paper's setting: control points and weights learn), then
    L-BFGS on the weights, each within ``[e^-max_log_weight, e^max_log_weight]`` of their
    geometric mean, with the control points the least-squares solution for each set of
    weights. The other parameters are as in :func:`fit_learnable_knots`.

    Returns
    -------
    FitResult
        For ``weights=True``, ``bspline`` holds the unit-weight optimum.
    """
    start = time.perf_counter()
    knots = clamped_knots(n_ctrl, degree, dtype=grid.z.dtype)
    surface, mse = _surface(grid, knots, knots, None, degree)
    bspline = FitResult("fixed knots, B-spline LSQ", surface, mse, time.perf_counter() - start, 0)
    if not weights:
        return bspline
    theta = torch.zeros(n_ctrl, n_ctrl, dtype=grid.z.dtype, requires_grad=True)
    W = lambda: _weights(theta, max_log_weight)  # noqa: E731
    objective = _objective(grid, degree, lambda: knots, lambda: knots, W)
    done, history = _minimise(objective, [theta], iterations, "fixed knots, weights", progress,
                              time_budget)
    surface, mse = _surface(grid, knots, knots, W().detach(), degree)
    return FitResult("fixed knots, NURBS", surface, mse, time.perf_counter() - start, done,
                     history, bspline)


def fit_learnable_knots(grid: BukinGrid, *, n_ctrl: int = 8, degree: int = 3,
                        weights: bool = True, iterations: int = 500, knot_grad: str = "exact",
                        sigma: float = 1e-2, min_gap: float = 1e-4,
                        max_log_weight: float = math.log(1e3), seed: int = 0,
                        time_budget: float = math.inf, progress: bool = False) -> FitResult:
    """Fit with learnable (ordered) interior knots in both directions.

    Stage 1 minimises the B-spline least-squares error over the knots alone, starting from
    the clamped uniform knots, i.e. from the fixed-knot optimum (``seed=0``; another seed
    perturbs the initial knot logits by ``N(0, 0.5^2)``). Stage 2 (``weights=True``)
    continues with the knots and the weights together. The control points are always the
    least-squares solution for the current knots and weights.

    Parameters
    ----------
    grid : BukinGrid
    n_ctrl, degree : int
        Control points and degree in each direction.
    weights : bool
        Run stage 2 (a NURBS); False stops after stage 1 (a B-spline).
    iterations : int
        L-BFGS iterations per stage.
    knot_grad, sigma
        The knot gradient, ``"exact"`` or the paper's ``"gaussian"`` of bandwidth ``sigma``.
    min_gap : float
        Smallest knot gap, relative to the domain (no two knots collapse).
    max_log_weight : float
        Bound on ``|log w|`` (weights relative to their geometric mean).
    seed : int
        The fit is deterministic for a given seed.
    time_budget : float
        Seconds per stage; a stage stops after the first chunk of iterations past it.
    progress : bool
        Report progress on stderr.

    Returns
    -------
    FitResult
        ``bspline`` holds the stage-1 result; ``seconds`` counts both stages.
    """
    check_knot_grad(knot_grad, sigma)
    start = time.perf_counter()
    ku, kv = _Knots(n_ctrl, degree, min_gap), _Knots(n_ctrl, degree, min_gap)
    if seed:
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for knots in (ku, kv):
                noise = torch.randn(knots.logits.shape, generator=gen, dtype=torch.float64)
                knots.logits.add_(0.5 * noise.to(knots.logits))
    kw = {"knot_grad": knot_grad, "sigma": sigma}
    done, history = _minimise(_objective(grid, degree, ku, kv, None, **kw),
                              [ku.logits, kv.logits], iterations, "learnable knots, B-spline",
                              progress, time_budget)
    with torch.no_grad():
        surface, mse = _surface(grid, ku(), kv(), None, degree)
    bspline = FitResult("learnable knots, B-spline", surface, mse, time.perf_counter() - start,
                        done, history)
    if not weights:
        return bspline
    theta = torch.zeros(n_ctrl, n_ctrl, dtype=grid.z.dtype, requires_grad=True)
    W = lambda: _weights(theta, max_log_weight)  # noqa: E731
    its, hist = _minimise(_objective(grid, degree, ku, kv, W, **kw),
                          [ku.logits, kv.logits, theta], iterations, "learnable knots, weights",
                          progress, time_budget)
    with torch.no_grad():
        surface, mse = _surface(grid, ku(), kv(), W(), degree)
    return FitResult("learnable knots, NURBS", surface, mse, time.perf_counter() - start,
                     done + its, history + hist, bspline)


def run_bukin(out=None, n: int = 256, iterations: int = 500, knot_grad: str = "exact",
              sigma: float = 1e-2, seed: int = 0, *, progress: bool = False) -> dict:
    """The Table 3 experiment: fixed and learnable knots, each as a B-spline and a NURBS.

    Writes ``out/nurbs_fit.json`` and ``out/nurbs_fit.png`` (atomically) when ``out`` is
    given. Returns the JSON dict: ``mse_fixed_knots`` / ``mse_learnable_knots`` (NURBS:
    control points and weights learn, as in the paper), the ``*_bspline`` variants (unit
    weights), the paper's values, the seconds of each fit (a NURBS fit includes its
    B-spline stage) and the final knots.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise DfemError(f"iterations must be a positive integer, got {iterations!r}")
    grid = bukin_grid(n)
    fit_fixed_knots(bukin_grid(16), weights=False)  # warm-up: first-call library set-up
    fixed = fit_fixed_knots(grid, iterations=iterations, progress=progress)
    learned = fit_learnable_knots(grid, iterations=iterations, knot_grad=knot_grad,
                                  sigma=sigma, seed=seed, progress=progress)
    fits = {"fixed_knots_bspline": fixed.bspline, "fixed_knots": fixed,
            "learnable_knots_bspline": learned.bspline, "learnable_knots": learned}
    paper = PAPER_MSE.get(n, PAPER_MSE[256])
    result = {
        "grid": n, "mse_definition": MSE_DEFINITION,
        "target": "z = 100 sqrt(|y - 0.01 x^2|) + 0.01 |x + 10|, -15 <= x <= -5, -3 <= y <= 3",
        "model": "cubic x cubic, 8 x 8 control points, clamped knots, z(u, v) height field",
        "paper_grid": n if n in PAPER_MSE else 256,
        "paper_mse_fixed_knots": paper[0], "paper_mse_learnable_knots": paper[1],
        "knot_grad": knot_grad, "sigma": sigma, "seed": seed, "iterations": iterations,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    for key, fit in fits.items():
        result[f"mse_{key}"] = fit.mse
        result[f"seconds_{key}"] = fit.seconds
    result.update(knots_u=learned.surface.knots_u.tolist(),
                  knots_v=learned.surface.knots_v.tolist(),
                  fits={key: fit.to_dict() for key, fit in fits.items()})
    if out is not None:
        from dfem.fileio import write_json_atomic

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "nurbs_fit.json", result)
        from dfem.plots import plot_nurbs_fit

        plot_nurbs_fit(grid, fixed, learned, out / "nurbs_fit.png", X_RANGE, Y_RANGE)
    return result
