"""Linear time stepping with the discrete adjoint through time, by checkpointing.

The semi-discrete system is ``M u' + K u = F(t)`` with ``u = G(t)`` on the Dirichlet
dofs; a step of a scheme of :mod:`dfem.solvers.schemes` solves, on the free dofs,

.. math:: A_n U^{n+1} = \\sum_j B_{n,j} U^{n-j} + \\sum_k w_{n,k} F(t_{n,k}), \\qquad
          A_n = \\alpha_n M + \\beta_n K,\\ B_{n,j} = a_{n,j} M + b_{n,j} K,

with ``U^{n+1} = G(t_{n+1})`` on the Dirichlet dofs. ``A_n`` is factorised once per
distinct ``(alpha_n, beta_n)`` (one factorisation for all equal steps).

The adjoint
-----------
For outputs ``U^s`` (saved states) and observations ``o_n = observe(t_n, U^n)``, the
reverse sweep runs the steps backwards with the adjoint load ``Ubar^{n+1}`` (complete
once the later steps are done):

.. math:: \\lambda_n = A_n^{-T} \\bar U^{n+1}_f, \\quad
          \\bar U^{n-j} \\mathrel{+}= B_{n,j}^T \\lambda_n, \\quad
          \\bar G^{n+1} \\mathrel{+}= \\bar U^{n+1}_d - (A_n^T \\lambda_n)_d, \\quad
          \\bar F(t_{n,k}) \\mathrel{+}= w_{n,k} \\lambda_n,

and ``Mbar += lambda_n (sum_j a_j U^{n-j} - alpha_n U^{n+1})^T``, ``Kbar`` alike with
``b_j`` and ``beta_n``, on the stored entries of the pattern. One adjoint solve per
step with the forward factorisation; the matrices, the loads and the Dirichlet data are
differentiated by autograd once (or, when they change in time, once per time level)
with these accumulated adjoints. Torch never records the steps.

Memory: the forward pass keeps a checkpoint every ``c = ceil(sqrt(N))`` steps; the
reverse sweep recomputes one segment of ``c`` states at a time from its checkpoint, so
at most about ``2 sqrt(N)`` states are held (one extra forward pass in cost).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from dfem.assembly.forms import matvec
from dfem.exceptions import DfemError
from dfem.solvers.implicit import graph_leaves
from dfem.solvers.linear import factorize


@dataclass
class LinearDynamics:
    """``M u' + K u = F(t)``, ``u = G(t)`` on the Dirichlet dofs.

    Attributes
    ----------
    pattern : SparsityPattern
    restricted : RestrictedPattern
        The free/fixed split of ``pattern``.
    mass, stiffness : (nnz,) tensors
        CSR values of ``M`` and ``K`` (may carry autograd graphs).
    load : callable t -> (n,) tensor
    dirichlet : callable t -> (n,) tensor
        The Dirichlet values at the fixed dofs (anything elsewhere).
    load_varies, dirichlet_varies : bool
        Whether ``load`` / ``dirichlet`` depend on t (otherwise each is evaluated once).
    method, solver_options
        The linear solver of every step (:func:`dfem.solvers.factorize`).
    """

    pattern: object
    restricted: object
    mass: torch.Tensor
    stiffness: torch.Tensor
    load: Callable
    dirichlet: Callable
    load_varies: bool = False
    dirichlet_varies: bool = False
    method: str = "direct"
    solver_options: dict = field(default_factory=dict)


@dataclass
class TrajectoryInfo:
    """What a run did: steps, factorisations, linear solves, Newton iterations (gradient
    flows), seconds, and the peak number of states held by the adjoint's checkpoints and
    segment (``peak_states``)."""

    steps: int = 0
    factorizations: int = 0
    forward_s: float = 0.0
    backward_s: float = 0.0
    checkpoint_every: int = 1
    peak_states: int = 0
    solves: int = 0
    newton_iterations: int = 0


class _Run:
    """The forward sweep, its checkpoints and the reverse sweep of one trajectory."""

    def __init__(self, dynamics: LinearDynamics, times, steps, save, observe, callback,
                 leaves, progress=None):
        self.dyn, self.times, self.steps = dynamics, times, steps
        self.save = save  # sorted state indices to return
        self.observe, self.callback, self.leaves = observe, callback, leaves
        self.progress = progress
        self.free = dynamics.restricted.free_dofs
        self.fixed_mask = torch.ones(dynamics.pattern.n, dtype=torch.bool,
                                     device=self.free.device)
        self.fixed_mask[self.free] = False
        self.depth = max(len(s.previous) for s in steps)
        n = len(steps)
        self.every = max(1, math.ceil(math.sqrt(n)))
        self.info = TrajectoryInfo(steps=n, checkpoint_every=self.every)
        self._factors: dict = {}
        self._combined: dict = {}

    # ------------------------------------------------------------------ pieces
    def combined(self, a: float, b: float) -> torch.Tensor:
        key = (a, b)
        if key not in self._combined:
            if len(self._combined) > 8:
                self._combined.clear()
            M, K = self.M, self.K
            self._combined[key] = (a * M if b == 0 else b * K if a == 0 else a * M + b * K)
        return self._combined[key]

    def factor(self, new):
        if new not in self._factors:
            r = self.dyn.restricted
            values = self.combined(*new)[r.ff]
            self._factors[new] = factorize(r.pattern, values, self.dyn.method, symmetric=True,
                                           **self.dyn.solver_options)
            self.info.factorizations += 1
        return self._factors[new]

    def load_at(self, k: int) -> torch.Tensor:
        if not self.dyn.load_varies:
            return self.F
        cache = self._load_cache
        if k not in cache:
            if len(cache) > 3:
                cache.pop(min(cache))
            with torch.no_grad():
                cache[k] = self.dyn.load(self.times[k]).detach()
        return cache[k]

    def dirichlet_at(self, k: int) -> torch.Tensor:
        if not self.dyn.dirichlet_varies:
            return self.G
        with torch.no_grad():
            return torch.where(self.fixed_mask, self.dyn.dirichlet(self.times[k]).detach(), 0.0)

    def step(self, n: int, history: list[torch.Tensor]) -> torch.Tensor:
        """``U^{n+1}`` from ``history = [U^n, U^{n-1}, ...]``."""
        s = self.steps[n]
        pattern = self.dyn.pattern
        b = torch.zeros_like(history[0])
        for (a_j, b_j), U in zip(s.previous, history, strict=False):
            b = b + matvec(pattern, self.combined(a_j, b_j), U)
        for k, w in s.loads:
            b = b + w * self.load_at(k)
        G = self.dirichlet_at(n + 1)
        r = self.dyn.restricted
        A = self.combined(*s.new)
        x = self.factor(s.new).solve(b[self.free] - r.lift(A, G))
        self.info.solves += 1
        return G.index_put((self.free,), x)

    def observation(self, k: int, U: torch.Tensor):
        with torch.no_grad():
            return torch.as_tensor(self.observe(self.times[k], U), dtype=U.dtype,
                                   device=U.device).detach()

    def _record(self, buffer, k: int, U: torch.Tensor):
        """Store ``observe(t_k, U)`` in the preallocated buffer (allocated at k = 0): one
        array for the run, not a small tensor per level (thousands of small long-lived
        allocations fragment the heap so that freed states are not reused)."""
        if self.observe is None:
            return buffer
        value = self.observation(k, U)
        if buffer is None:
            buffer = value.new_empty((len(self.times), *value.shape))
        elif value.shape != buffer.shape[1:]:
            raise DfemError(f"observe returned shape {tuple(value.shape)} at t = "
                            f"{self.times[k]:g} but {tuple(buffer.shape[1:])} at t0; it must "
                            "return the same shape at every time level.")
        buffer[k] = value
        return buffer

    # ------------------------------------------------------------------ forward
    def forward(self, u0, M, K, F, G):
        t0 = time.perf_counter()
        self.M, self.K = M.detach(), K.detach()
        self.F = None if F is None else F.detach()
        self.G = None if G is None else torch.where(self.fixed_mask, G.detach(), 0.0)
        self._load_cache = {}
        U = torch.where(self.fixed_mask, self.dirichlet_at(0), u0.detach())
        history = [U]
        self.checkpoints = {0: list(history)}
        saved = [U] if 0 in self.save else []
        save = set(self.save)
        observations = self._record(None, 0, U)
        if self.callback is not None:
            self.callback(0, self.times[0], U)
        steps = range(len(self.steps))
        if self.progress is not None:
            steps = self.progress(steps)
        for n in steps:
            U = self.step(n, history)
            history = [U, *history][: self.depth]
            if (n + 1) % self.every == 0:
                self.checkpoints[n + 1] = list(history)
            if n + 1 in save:
                saved.append(U)
            observations = self._record(observations, n + 1, U)
            if self.callback is not None:
                self.callback(n + 1, self.times[n + 1], U)
        self.info.forward_s = time.perf_counter() - t0
        self.info.peak_states = len(self.checkpoints) * self.depth + self.depth
        if observations is None:
            observations = U.new_zeros((len(self.times), 0))
        return torch.stack(saved), observations

    # ------------------------------------------------------------------ backward
    def _segment(self, start: int, stop: int) -> dict:
        """States ``U^k`` for ``start - depth < k <= stop`` recomputed from the checkpoint."""
        history = list(self.checkpoints[start])
        states = {start - j: U for j, U in enumerate(history)}
        for n in range(start, stop):
            U = self.step(n, history)
            history = [U, *history][: self.depth]
            states[n + 1] = U
        return states

    def _vjp(self, outputs, grad_outputs, extra=()):
        """Gradients of ``outputs`` (with ``grad_outputs``) for ``extra`` and the leaves."""
        inputs = [*extra, *self.leaves]
        if not inputs or not outputs.requires_grad:
            return [None] * len(inputs)
        return torch.autograd.grad(outputs, inputs, grad_outputs, allow_unused=True,
                                   retain_graph=True)

    def _accumulate_leaves(self, grads):
        for i, g in enumerate(grads):
            if g is not None:
                self.leaf_grads[i] = g if self.leaf_grads[i] is None else self.leaf_grads[i] + g

    def _observation_adjoint(self, k: int, U: torch.Tensor, g_obs) -> torch.Tensor | None:
        if self.observe is None or g_obs is None or not bool(g_obs[k].any()):
            return None
        with torch.enable_grad():
            u = U.detach().requires_grad_(True)
            o = torch.as_tensor(self.observe(self.times[k], u))
            grads = self._vjp(o, g_obs[k].to(o.dtype), extra=(u,))
        self._accumulate_leaves(grads[1:])
        return grads[0]

    def _flush_time_data(self, k: int, Fbar, Gbar):
        """The adjoints of ``F(t_k)`` and ``G(t_k)``: into the constant inputs' gradients,
        or back through ``load(t_k)``/``dirichlet(t_k)`` when they vary in time."""
        for bar, varies, fn, name in ((Fbar.pop(k, None), self.dyn.load_varies, self.dyn.load,
                                       "F"),
                                      (Gbar.pop(k, None), self.dyn.dirichlet_varies,
                                       self.dyn.dirichlet, "G")):
            if bar is None:
                continue
            if not varies:
                total = self.const_grads[name]
                self.const_grads[name] = bar if total is None else total + bar
            elif self.leaves:
                with torch.enable_grad():
                    value = fn(self.times[k])
                    self._accumulate_leaves(self._vjp(value, bar.to(value.dtype)))

    def backward(self, g_saved, g_obs, needs):
        t0 = time.perf_counter()
        pattern = self.dyn.pattern
        rows, cols = pattern.rows, pattern.indices
        fixed = self.fixed_mask
        n_steps = len(self.steps)
        self.leaf_grads = [None] * len(self.leaves)
        self.const_grads = {"F": None, "G": None}
        Mbar = torch.zeros_like(self.M) if needs["M"] else None
        Kbar = torch.zeros_like(self.K) if needs["K"] else None
        Ubar = {k: g for k, g in zip(self.save, g_saved, strict=True)}
        Fbar, Gbar = {}, {}

        def add(store, k, value):
            store[k] = value if k not in store else store[k] + value

        starts = sorted(self.checkpoints)
        for start in reversed(starts):
            stop = min(start + self.every, n_steps)
            if start >= stop:
                continue
            states = self._segment(start, stop)
            self.info.peak_states = max(self.info.peak_states,
                                        len(self.checkpoints) * self.depth + len(states))
            for n in reversed(range(start, stop)):
                s = self.steps[n]
                U1 = states[n + 1]
                ub = Ubar.pop(n + 1, None)
                extra = self._observation_adjoint(n + 1, U1, g_obs)
                if extra is not None:
                    ub = extra if ub is None else ub + extra
                if ub is None:
                    ub = torch.zeros_like(U1)
                lam_free = self.factor(s.new).solve(ub[self.free], transpose=True)
                self.info.solves += 1
                lam = torch.zeros_like(ub).index_put((self.free,), lam_free)
                A_lam = matvec(pattern, self.combined(*s.new), lam)
                add(Gbar, n + 1, torch.where(fixed, ub - A_lam, 0.0))
                mass_side = -s.new[0] * U1
                stiff_side = -s.new[1] * U1
                for j, (a_j, b_j) in enumerate(s.previous):
                    U = states[n - j]
                    add(Ubar, n - j, matvec(pattern, self.combined(a_j, b_j), lam))
                    mass_side = mass_side + a_j * U
                    stiff_side = stiff_side + b_j * U
                if Mbar is not None:
                    Mbar += lam[rows] * mass_side[cols]
                if Kbar is not None:
                    Kbar += lam[rows] * stiff_side[cols]
                for k, w in s.loads:
                    add(Fbar, k, w * lam)
                for k in [k for k in {*Fbar, *Gbar} if k > n]:
                    self._flush_time_data(k, Fbar, Gbar)
            for k in [k for k in states if k > start]:
                states.pop(k)
        ub0 = Ubar.pop(0, None)
        extra = self._observation_adjoint(0, self.checkpoints[0][0], g_obs)
        if extra is not None:
            ub0 = extra if ub0 is None else ub0 + extra
        if ub0 is None:
            ub0 = torch.zeros_like(self.checkpoints[0][0])
        add(Gbar, 0, torch.where(fixed, ub0, 0.0))
        for k in sorted({*Fbar, *Gbar}):
            self._flush_time_data(k, Fbar, Gbar)
        u0_bar = torch.where(fixed, 0.0, ub0)
        self.info.backward_s = time.perf_counter() - t0
        return u0_bar, Mbar, Kbar, self.const_grads["F"], self.const_grads["G"], self.leaf_grads


class _Trajectory(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run, u0, M, K, F, G, *leaves):
        ctx.run = run
        return run.forward(u0, M, K, F, G)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_saved, g_obs):
        needs = dict(M=ctx.needs_input_grad[2], K=ctx.needs_input_grad[3])
        u0_bar, Mbar, Kbar, Fbar, Gbar, leaf_grads = ctx.run.backward(g_saved, g_obs, needs)
        F_needed, G_needed = ctx.needs_input_grad[4], ctx.needs_input_grad[5]
        return (None, u0_bar, Mbar, Kbar, Fbar if F_needed else None,
                Gbar if G_needed else None, *leaf_grads)


def integrate(dynamics: LinearDynamics, u0: torch.Tensor, times: list[float], steps,
              save: list[int], observe=None, callback=None, progress=None):
    """Run the steps; differentiable in ``u0``, the matrices, the loads, the Dirichlet
    data and whatever ``observe`` depends on.

    Returns
    -------
    saved : (len(save), n) tensor
        The states ``U^k`` for ``k`` in ``save``.
    observations : (N + 1, ...) tensor
        ``observe(t_k, U^k)`` at every time level (shape (N + 1, 0) without ``observe``).
    info : TrajectoryInfo
    """
    if len(steps) != len(times) - 1:
        raise DfemError("one Step per interval between the time levels is needed.")
    F = None if dynamics.load_varies else dynamics.load(times[0])
    G = None if dynamics.dirichlet_varies else dynamics.dirichlet(times[0])
    probes = []
    if torch.is_grad_enabled():
        if dynamics.load_varies:
            probes.append(dynamics.load(times[0]))
        if dynamics.dirichlet_varies:
            probes.append(dynamics.dirichlet(times[0]))
        if observe is not None:
            stand_in = u0.detach().clone()
            stand_in._dfem_point_leaf = True
            probes.append(torch.as_tensor(observe(times[0], stand_in.requires_grad_(True))))
    leaves = graph_leaves(probes)
    run = _Run(dynamics, times, steps, sorted(set(save)), observe, callback, leaves, progress)
    saved, observations = _Trajectory.apply(run, u0, dynamics.mass, dynamics.stiffness, F, G,
                                            *leaves)
    return saved, observations, run.info
