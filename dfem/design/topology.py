"""The topology optimisation loop: design -> filter -> projection -> SIMP -> solve ->
compliance and its gradient (autograd through the adjoint) -> OC or MMA update.

.. math:: \\min_{0 \\le x \\le 1} c(\\bar\\rho(x)) \\quad \\text{s.t.} \\quad
          V(\\bar\\rho(x)) = \\frac{\\sum_e v_e \\bar\\rho_e}{\\sum_e v_e} \\le V^*,
          \\qquad \\bar\\rho = P_\\beta(F(x)),

with ``F`` a filter and ``P_beta`` the optional Heaviside projection, whose ``beta``
doubles every ``continuation_every`` iterations up to ``beta_max``. Every quantity of
an iteration (compliance, volume, change, beta) is a row of :attr:`history`, and
:meth:`state_dict` holds everything the next iteration depends on, so a run saved and
loaded continues exactly.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from dfem.design.filters import heaviside
from dfem.design.optimizers import MMA, oc_update
from dfem.exceptions import DfemError

OPTIMIZERS = ("oc", "mma")


class TopologyOptimization:
    """Minimise a compliance over per-cell densities under a volume constraint.

    Parameters
    ----------
    objective : callable ``rho -> scalar tensor``
        E.g. :class:`~dfem.design.compliance.StructuralCompliance`; differentiable.
    mesh : Mesh
        For the cell volumes.
    volume_fraction : float
        ``V*`` in (0, 1].
    filter : callable, optional
        :class:`~dfem.design.filters.DensityFilter` or ``HelmholtzFilter``.
    projection : dict, optional
        ``{"beta": 1.0, "eta": 0.5, "beta_max": 32.0, "continuation_every": 40}`` for the
        Heaviside projection with continuation.
    optimizer : {"oc", "mma"}
    move : float
        The move limit (0.2).
    x0 : tensor, optional
        The initial design (default: the volume fraction everywhere).
    """

    def __init__(self, objective, mesh, volume_fraction: float = 0.5, filter=None,
                 projection: dict | None = None, optimizer: str = "oc", move: float = 0.2,
                 x0=None):
        if isinstance(volume_fraction, bool) or not isinstance(volume_fraction, (int, float)) \
                or not 0 < volume_fraction <= 1:
            raise DfemError(f"the volume fraction must be in (0, 1], got {volume_fraction!r}.")
        if optimizer not in OPTIMIZERS:
            raise DfemError(f"unknown optimizer {optimizer!r}; use one of "
                            f"{', '.join(OPTIMIZERS)}.")
        if not 0 < move <= 1:
            raise DfemError(f"the move limit must be in (0, 1], got {move!r}.")
        self.objective, self.filter = objective, filter
        self.volume_fraction, self.optimizer, self.move = float(volume_fraction), optimizer, \
            float(move)
        volumes = mesh.volumes().detach().abs()
        self.weights = volumes / volumes.sum()
        n = mesh.n_cells
        like = dict(dtype=volumes.dtype, device=volumes.device)
        self.x = torch.full((n,), self.volume_fraction, **like) if x0 is None else \
            torch.as_tensor(x0, **like).clone()
        if self.x.shape != (n,):
            raise DfemError(f"the initial design has shape {tuple(self.x.shape)}; one value "
                            f"per cell, ({n},), is needed.")
        self.projection = None
        if projection is not None:
            self.projection = {"beta": 1.0, "eta": 0.5, "beta_max": 32.0,
                               "continuation_every": 40, **projection}
            unknown = set(self.projection) - {"beta", "eta", "beta_max", "continuation_every"}
            if unknown:
                raise DfemError(f"unknown projection setting(s) {sorted(unknown)}; known: "
                                "beta, eta, beta_max, continuation_every.")
            if not 0 < self.projection["eta"] < 1 or self.projection["beta"] <= 0:
                raise DfemError("the projection needs beta > 0 and 0 < eta < 1.")
        self.mma = MMA(n, 1, move=self.move) if optimizer == "mma" else None
        self.iteration = 0
        self.history: list[dict] = []

    # ------------------------------------------------------------------ pieces
    def physical(self, x: torch.Tensor) -> torch.Tensor:
        """The physical densities ``P_beta(F(x))``."""
        rho = self.filter(x) if self.filter is not None else x
        if self.projection is not None:
            rho = heaviside(rho, self.projection["beta"], self.projection["eta"])
        return rho

    def volume(self, x: torch.Tensor) -> torch.Tensor:
        """The volume fraction of the design ``x`` (through filter and projection)."""
        return (self.weights * self.physical(x)).sum()

    def evaluate(self, x: torch.Tensor):
        """``(c, dc/dx, V, dV/dx)`` at ``x``."""
        x = x.detach().requires_grad_(True)
        rho = self.physical(x)
        c = self.objective(rho)
        v = (self.weights * rho).sum()
        (dc,) = torch.autograd.grad(c, x, retain_graph=True)
        (dv,) = torch.autograd.grad(v, x)
        return c.detach(), dc, v.detach(), dv

    # ------------------------------------------------------------------ iterate
    def step(self) -> dict:
        """One design update; returns its history row (the compliance and volume are
        those of the design before the update, as in the 88-line code)."""
        t0 = time.perf_counter()
        c, dc, v, dv = self.evaluate(self.x)
        if not (math.isfinite(float(c)) and bool(torch.isfinite(dc).all())):
            raise DfemError(f"iteration {self.iteration + 1}: the compliance or its gradient "
                            "is not finite (NaN or inf); the design was not updated.")
        if self.optimizer == "oc":
            # dV/dx in units of cells (the volume fraction's gradient times their number):
            # the bisection for the multiplier then takes the 88-line code's steps
            new = oc_update(self.x, dc, dv * len(self.x), self.volume, self.volume_fraction,
                            self.move)
        else:
            scale = self._scale(c)
            g = float(v) / self.volume_fraction - 1.0
            new_np = self.mma.step(self.x.cpu().numpy(), float(c) / scale,
                                   (dc / scale).cpu().numpy(), np.array([g]),
                                   (dv / self.volume_fraction).cpu().numpy()[None, :])
            new = torch.as_tensor(new_np, dtype=self.x.dtype, device=self.x.device)
        change = float((new - self.x).abs().max())
        self.x = new.detach()
        self.iteration += 1
        row = {"iteration": self.iteration, "compliance": float(c), "volume": float(v),
               "change": change, "seconds": time.perf_counter() - t0}
        if self.projection is not None:
            row["beta"] = float(self.projection["beta"])
            p = self.projection
            if self.iteration % int(p["continuation_every"]) == 0 and p["beta"] < p["beta_max"]:
                p["beta"] = min(2 * p["beta"], p["beta_max"])
        self.history.append(row)
        return row

    def _scale(self, c) -> float:
        if not hasattr(self, "_c0"):
            self._c0 = max(abs(float(c)), 1e-30)
        return self._c0

    def run(self, iterations: int, tolerance: float = 0.01, callback=None) -> list[dict]:
        """Up to ``iterations`` more updates; stop when the largest change falls below
        ``tolerance`` (the 88-line code's rule) once beta has reached ``beta_max``.
        ``callback(row)`` after each; returns the history."""
        for _ in range(int(iterations)):
            row = self.step()
            if callback is not None:
                callback(row)
            settled = self.projection is None or \
                self.projection["beta"] >= self.projection["beta_max"]
            if row["change"] < tolerance and settled:
                break
        return self.history

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """The design, the iteration, the history, beta and the optimiser's state."""
        state = {"x": self.x.detach().cpu().clone(), "iteration": self.iteration,
                 "history": [dict(r) for r in self.history],
                 "projection": None if self.projection is None else dict(self.projection)}
        if self.mma is not None:
            state["mma"] = self.mma.state_dict()
            state["scale"] = getattr(self, "_c0", None)
        return state

    def load_state_dict(self, state: dict) -> None:
        x = torch.as_tensor(state["x"], dtype=self.x.dtype, device=self.x.device)
        if x.shape != self.x.shape:
            raise DfemError(f"the checkpoint's design has {x.numel()} cells; this problem has "
                            f"{self.x.numel()}.")
        self.x = x.clone()
        self.iteration = int(state["iteration"])
        self.history = [dict(r) for r in state["history"]]
        if state.get("projection") is not None:
            self.projection = dict(state["projection"])
        if self.mma is not None and "mma" in state:
            self.mma.load_state_dict(state["mma"])
            if state.get("scale") is not None:
                self._c0 = float(state["scale"])
