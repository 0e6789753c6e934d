"""Neural-network baselines for the Table 5 problem: PINN and Deep Ritz.

The problem (Table 5 of the DSA paper) is

.. math:: -\\Delta u = f = 2\\pi^2 \\sin(\\pi x)\\sin(\\pi y) \\text{ on } [0,1]^2, \\qquad
          u = 0 \\text{ on the boundary}, \\qquad u = \\sin(\\pi x)\\sin(\\pi y).

*PINN* minimises the mean squared strong residual :math:`(\\Delta u + f)^2` over a fixed
set of collocation points (Adam, then L-BFGS). *Deep Ritz* (E and Yu, 2018) minimises the
Dirichlet energy :math:`E(u) = \\int \\tfrac12 |\\nabla u|^2 - f u`, estimated by Monte Carlo
with fresh uniform points each step; its minimum is :math:`E(u^*) = -\\pi^2/4`.
With a *hard* boundary the network is :math:`u = x(1-x)y(1-y) N(x)`, zero on the boundary
exactly; with a *soft* one, :math:`u = N(x)` and a boundary penalty is added.

Errors are measured by :func:`network_l2_error` with the cell quadrature the FEM errors use,
so network and FEM errors in one table are integrated the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from dfem.basis.space import FunctionSpace
from dfem.exceptions import DfemError
from dfem.mesh import rectangle
from dfem.validation.table5_problem import exact as exact_solution
from dfem.validation.table5_problem import source

ACTIVATIONS = {"tanh": torch.tanh, "sin": torch.sin, "gelu": nn.functional.gelu,
               "softplus": nn.functional.softplus}


class MLP(nn.Module):
    """Fully connected network R^2 -> R: ``depth`` hidden layers of ``width`` units.

    Weights are Xavier (Glorot) normal, biases zero; seed with ``torch.manual_seed``
    before constructing. Input (..., 2), output (...,).
    """

    def __init__(self, width: int = 50, depth: int = 3, activation: str = "tanh"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise DfemError(f"unknown activation {activation!r}: use one of {sorted(ACTIVATIONS)}")
        if int(width) < 1 or int(depth) < 1:
            raise DfemError(f"width and depth must be >= 1 (got {width}, {depth})")
        sizes = [2] + [int(width)] * int(depth) + [1]
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.activation = ACTIVATIONS[activation]
        for layer in self.layers:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x).squeeze(-1)


class HardBoundary(nn.Module):
    """``u(x) = x(1-x) y(1-y) net(x)``: exactly zero on the boundary of the unit square."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0, x1 = x[..., 0], x[..., 1]
        return x0 * (1 - x0) * x1 * (1 - x1) * self.net(x)


@dataclass
class BaselineResult:
    """A trained baseline.

    ``model`` maps points (..., 2) to u (...,); call it under ``torch.no_grad()``.
    ``iterations`` counts Adam steps plus L-BFGS iterations; ``history`` holds
    ``(iteration, loss)`` pairs; ``stopped`` says why training ended ("completed",
    "time budget", "non-finite loss" (the last finite parameters are kept) or
    "L-BFGS converged"); ``config`` the settings, for a table caption.
    """

    model: nn.Module
    method: str
    seed: int
    seconds: float
    iterations: int
    final_loss: float
    history: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    stopped: str = "completed"


def _grad(u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if not u.requires_grad:  # u does not depend on x (a constant or linear test function)
        return torch.zeros_like(x)
    return torch.autograd.grad(u.sum(), x, create_graph=True, materialize_grads=True)[0]


def pinn_residual(u_fn: Callable, x: torch.Tensor, f: Callable = source) -> torch.Tensor:
    """Strong residual ``Δu(x) + f(x)`` at points x (N, 2), Δu by autograd (create_graph)."""
    x = x.detach().requires_grad_(True)
    g = _grad(u_fn(x), x)
    lap = sum(_grad(g[:, i], x)[:, i] for i in range(x.shape[1]))
    return lap + f(x.detach())


def pinn_loss(u_fn, interior, boundary=None, weight: float = 0.0, f: Callable = source):
    """``mean((Δu + f)^2)`` over ``interior`` plus ``weight * mean(u^2)`` over ``boundary``."""
    loss = pinn_residual(u_fn, interior, f).pow(2).mean()
    if boundary is not None and weight:
        loss = loss + weight * u_fn(boundary).pow(2).mean()
    return loss


def ritz_integrand(u_fn: Callable, x: torch.Tensor, f: Callable = source) -> torch.Tensor:
    """``½|∇u|^2 - f u`` at points x (N, 2); its mean over uniform points estimates E(u)."""
    x = x.detach().requires_grad_(True)
    u = u_fn(x)
    return 0.5 * _grad(u, x).pow(2).sum(-1) - f(x.detach()) * u


def boundary_samples(t: torch.Tensor) -> torch.Tensor:
    """``4 * len(t)`` points: parameters t in [0, 1] placed on each side of the unit square."""
    zero, one = torch.zeros_like(t), torch.ones_like(t)
    sides = [(t, zero), (one, t), (t, one), (zero, t)]
    return torch.cat([torch.stack(s, -1) for s in sides])


def _check(counts: dict, reals: dict):
    for name, v in counts.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise DfemError(f"{name} must be an integer >= 0 (got {v!r})")
    for name, v in reals.items():
        if v is not None and (not math.isfinite(v) or v < 0):
            raise DfemError(f"{name} must be a finite number >= 0 (got {v!r})")


def _sobol(dim: int, seed: int, n: int, dtype) -> torch.Tensor:
    return torch.quasirandom.SobolEngine(dim, scramble=True, seed=seed).draw(n, dtype=dtype)


def train_pinn(boundary: str = "hard", seed: int = 0, adam_steps: int = 1000,
               lbfgs_steps: int = 3000, collocation: int = 512, boundary_points: int = 256,
               lr: float = 1e-3, dtype: torch.dtype = torch.float64,
               time_budget: float | None = None, progress: Callable | None = None,
               width: int = 50, depth: int = 3, activation: str = "tanh",
               boundary_weight: float = 100.0, lbfgs_chunk: int = 10) -> BaselineResult:
    """Train a PINN on the Table 5 problem.

    Loss: ``mean((Δu + f)^2)`` over ``collocation`` interior points, a scrambled Sobol set
    drawn once (seeded by ``seed``). ``boundary="hard"``: ``u = x(1-x)y(1-y) N(x)``;
    ``"soft"``: ``u = N(x)`` plus ``boundary_weight * mean(u^2)`` over ``boundary_points``
    points (a quarter on each side, from a 1-D Sobol set); weight 100 is a common choice.

    Adam (``lr``) runs ``adam_steps`` steps, then ``torch.optim.LBFGS`` (strong Wolfe line
    search, history 50) ``lbfgs_steps`` iterations in total, ``lbfgs_chunk`` per ``step()``
    call. Training stops early when the loss is not finite, when ``time_budget`` seconds
    pass, or when L-BFGS meets its tolerances. ``progress(iteration, loss)`` is called at
    each history point (every 100 Adam steps, every L-BFGS chunk). With the defaults and
    seed 0 on one CPU thread: hard, relative L2 2.3e-6 in 110 s; soft, 5.9e-5 in 85 s
    (4.2e-4 with ``boundary_weight=1``). Pass smaller step counts for a quick run.
    """
    if boundary not in ("hard", "soft"):
        raise DfemError(f"unknown boundary {boundary!r}: use 'hard' or 'soft'")
    _check(dict(adam_steps=adam_steps, lbfgs_steps=lbfgs_steps),
           dict(lr=lr, time_budget=time_budget, boundary_weight=boundary_weight))
    if collocation < 1 or boundary_points < 4 or lbfgs_chunk < 1:
        raise DfemError("collocation >= 1, boundary_points >= 4 and lbfgs_chunk >= 1 needed "
                        f"(got {collocation}, {boundary_points}, {lbfgs_chunk})")
    torch.manual_seed(seed)
    model = MLP(width, depth, activation).to(dtype)
    model = HardBoundary(model) if boundary == "hard" else model
    interior = _sobol(2, seed, collocation, dtype)
    edge = boundary_samples(_sobol(1, seed + 1, boundary_points // 4, dtype)[:, 0])
    weight = boundary_weight if boundary == "soft" else 0.0

    def loss_fn():
        return pinn_loss(model, interior, edge, weight)

    state = _Run(model, time_budget, progress)
    adam, n_adam = torch.optim.Adam(model.parameters(), lr=lr), 0
    while n_adam < adam_steps:
        adam.zero_grad()
        loss = loss_fn()
        if not state.accept(loss.item(), n_adam, record=n_adam % 100 == 0):
            break
        loss.backward()
        adam.step()
        n_adam += 1
    lbfgs = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=lbfgs_chunk,
                              history_size=50, line_search_fn="strong_wolfe",
                              tolerance_grad=1e-14, tolerance_change=0.0)

    def closure():
        lbfgs.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    done = 0
    while state.stopped == "completed" and done < lbfgs_steps:
        lbfgs.param_groups[0]["max_iter"] = min(lbfgs_chunk, lbfgs_steps - done)
        lbfgs.param_groups[0]["max_eval"] = lbfgs.param_groups[0]["max_iter"] * 5 // 4
        lbfgs.step(closure)
        n_iter = lbfgs.state[lbfgs._params[0]].get("n_iter", 0)
        moved, done = n_iter - done, n_iter
        if not state.accept(loss_fn().item(), n_adam + done, record=True):
            break
        if moved == 0:
            state.stopped = "L-BFGS converged"
    config = dict(width=width, depth=depth, activation=activation, collocation=collocation,
                  collocation_points="scrambled Sobol", adam_steps=adam_steps,
                  lbfgs_steps=lbfgs_steps, lr=lr, dtype=str(dtype).removeprefix("torch."))
    if boundary == "soft":
        config.update(boundary_points=4 * (boundary_points // 4), boundary_weight=weight)
    return state.result(f"pinn-{boundary}", seed, loss_fn().item(), n_adam + done, config)


def train_deep_ritz(seed: int = 0, steps: int = 10000, batch: int = 1024, lr: float = 1e-3,
                    dtype: torch.dtype = torch.float64, hard_boundary: bool = True,
                    time_budget: float | None = None, progress: Callable | None = None,
                    width: int = 50, depth: int = 3, activation: str = "tanh",
                    penalty: float = 500.0, boundary_batch: int = 256) -> BaselineResult:
    """Train a Deep Ritz network on the Table 5 problem.

    Each step draws ``batch`` fresh uniform points (a generator seeded by ``seed``) and
    takes an Adam step on the Monte Carlo energy ``mean(½|∇u|^2 - f u)``; the learning rate
    follows a cosine schedule from ``lr`` to ``lr / 100``. With ``hard_boundary`` the
    network is ``x(1-x)y(1-y) N(x)`` as in the hard PINN; otherwise (as in E and Yu's paper)
    ``u = N(x)`` and ``penalty * ∫_∂Ω u^2 ≈ penalty * 4 * mean(u^2)`` over ``boundary_batch``
    fresh boundary points is added (β = 500 as in the paper). ``final_loss`` is the energy
    estimated on 2^16 scrambled Sobol points (exact minimum: ``-pi^2/4``). With the
    defaults and seed 0 on one CPU thread: relative L2 2.4e-3 in about 140 s.
    """
    _check(dict(steps=steps), dict(lr=lr, time_budget=time_budget, penalty=penalty))
    if batch < 1 or boundary_batch < 4:
        raise DfemError(f"batch >= 1 and boundary_batch >= 4 needed (got {batch}, "
                        f"{boundary_batch})")
    torch.manual_seed(seed)
    model = MLP(width, depth, activation).to(dtype)
    model = HardBoundary(model) if hard_boundary else model
    gen = torch.Generator().manual_seed(seed)
    adam = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(adam, max(int(steps), 1), eta_min=lr / 100)
    state = _Run(model, time_budget, progress)

    def energy(x, edge=None):
        e = ritz_integrand(model, x).mean()
        return e if edge is None else e + penalty * 4 * model(edge).pow(2).mean()

    k = 0
    while k < steps:
        x = torch.rand(batch, 2, generator=gen, dtype=dtype)
        edge = None if hard_boundary else boundary_samples(
            torch.rand(boundary_batch // 4, generator=gen, dtype=dtype))
        adam.zero_grad()
        loss = energy(x, edge)
        if not state.accept(loss.item(), k, record=k % 100 == 0):
            break
        loss.backward()
        adam.step()
        sched.step()
        k += 1
    final = ritz_integrand(model, _sobol(2, seed, 2**16, dtype)).mean().item()
    config = dict(width=width, depth=depth, activation=activation, batch=batch, steps=steps,
                  lr=lr, schedule="cosine to lr/100", dtype=str(dtype).removeprefix("torch."))
    if not hard_boundary:
        config.update(penalty=penalty, boundary_batch=4 * (boundary_batch // 4))
    return state.result(f"deep-ritz-{'hard' if hard_boundary else 'soft'}", seed, final, k,
                        config)


class _Run:
    """Bookkeeping shared by the trainers: history, time budget, non-finite losses."""

    def __init__(self, model, time_budget, progress):
        self.model, self.budget, self.progress = model, time_budget, progress
        self.start, self.history, self.stopped = time.perf_counter(), [], "completed"
        self.good = nn.utils.parameters_to_vector(model.parameters()).detach().clone()

    def accept(self, loss: float, iteration: int, record: bool) -> bool:
        """Record ``loss``; False (with ``stopped`` set) when training must stop. A
        non-finite loss restores the last parameters that gave a finite one."""
        if not math.isfinite(loss):
            nn.utils.vector_to_parameters(self.good, self.model.parameters())
            self.stopped = "non-finite loss"
            return False
        self.good = nn.utils.parameters_to_vector(self.model.parameters()).detach().clone()
        if record:
            self.history.append((iteration, loss))
            if self.progress is not None:
                self.progress(iteration, loss)
        if self.budget is not None and time.perf_counter() - self.start > self.budget:
            self.stopped = "time budget"
            return False
        return True

    def result(self, method, seed, final, iterations, config) -> BaselineResult:
        seconds = time.perf_counter() - self.start
        self.model.eval()
        return BaselineResult(self.model, method, seed, seconds, iterations, final,
                              self.history, config, self.stopped)


def network_l2_error(model: Callable, n: int, degree: int = 8, chunk: int | None = 2**16,
                     exact: Callable = exact_solution, dtype: torch.dtype | None = None) -> dict:
    """L2 error of a network against ``exact`` on [0,1]^2, by the FEM errors' quadrature.

    .. math:: \\|u_\\theta - u\\|_{L^2}^2 = \\sum_{cells} \\sum_q w_q (u_\\theta(x_q) - u(x_q))^2

    with the degree-``degree`` cell rule of an ``n x n`` quad mesh (Q1 space geometry).
    The model is evaluated in chunks of ``chunk`` points (None: all at once) in ``dtype``
    (default: the model's parameter dtype, float64 for a plain function).

    Returns
    -------
    dict
        ``{"l2": ..., "relative_l2": ..., "l2_norm": ...}`` (``l2_norm`` of ``exact``).
    """
    if chunk is not None and chunk < 1:
        raise DfemError(f"chunk must be >= 1 or None (got {chunk})")
    g = FunctionSpace(rectangle(n, n, "quad"), "Q1").geometry(degree)
    points, weights = g.points.reshape(-1, 2), g.weights.reshape(-1)
    if dtype is None:
        params = list(model.parameters()) if isinstance(model, nn.Module) else []
        dtype = params[0].dtype if params else torch.float64
    step = points.shape[0] if chunk is None else int(chunk)
    err = norm = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, points.shape[0], step):
            x, w = points[i:i + step], weights[i:i + step]
            ue = exact(x)
            uh = model(x.to(dtype)).to(torch.float64)
            err = err + ((uh - ue) ** 2 * w).sum()
            norm = norm + (ue**2 * w).sum()
    l2, l2_norm = float(err.sqrt()), float(norm.sqrt())
    return {"l2": l2, "relative_l2": l2 / l2_norm, "l2_norm": l2_norm}
