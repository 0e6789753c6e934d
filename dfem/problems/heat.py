"""Transient heat conduction (reaction-diffusion in time).

Find u(x, t) with

.. math:: \\rho_c\\, \\partial_t u - \\nabla\\cdot(k \\nabla u) + c\\,u = f(x, t),
          \\qquad u = u_D(x, t) \\text{ on } \\Gamma_D, \\quad
          k\\,\\partial_n u = g(x, t) \\text{ on } \\Gamma_N, \\quad
          k\\,\\partial_n u + \\alpha u = g_R(x, t) \\text{ on } \\Gamma_R,

and ``u = u_0`` at ``t = t_0``. The Galerkin semi-discretisation ``M u' + K u = F(t)``
uses the mass matrix of :mod:`dfem.assembly.mass` and the stiffness matrix and load
vector of the steady problem (:class:`~dfem.problems.poisson.Poisson`, whose energy is
the Dirichlet energy reported along a run); the steppers and the adjoint through time
are :mod:`dfem.solvers.schemes` and :mod:`dfem.solvers.trajectory`.

Time-dependent data
-------------------
``f``, the Dirichlet values, the Neumann fluxes and the Robin data ``g_R`` may be
callables ``fn(x, t)`` of the points and the time (a callable of one argument is
``fn(x)``, constant in time). ``rho_c``, ``k``, ``c`` and the Robin ``alpha`` are
constant in time; they take every coefficient form of
:mod:`dfem.assembly.coefficients` and are differentiable, as are the node coordinates.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import torch

from dfem.assembly.coefficients import cell_coefficient, require_positive
from dfem.assembly.forms import assemble_matrix, assemble_vector, energy
from dfem.assembly.mass import mass_matrix
from dfem.exceptions import DfemError
from dfem.problems.dirichlet import dirichlet_data
from dfem.solvers.linear import METHODS
from dfem.solvers.schemes import resolve_scheme, scheme_steps, step_times
from dfem.solvers.trajectory import LinearDynamics, TrajectoryInfo, integrate


def depends_on_time(value) -> bool:
    """Whether ``value`` is a callable taking ``(x, t)``."""
    if not callable(value) or torch.is_tensor(value):
        return False
    try:
        parameters = inspect.signature(value).parameters.values()
    except (TypeError, ValueError):  # a builtin: called with x alone
        return False
    # named parameters only: a callable taking *args (an Expression of x) is one of x
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY,
                                                      p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


def at_time(value, t: float):
    """``value`` at time ``t``: ``fn(x, t)`` becomes ``x -> fn(x, t)``; other values stay."""
    if depends_on_time(value):
        return lambda x: value(x, torch.as_tensor(t, dtype=x.dtype, device=x.device))
    return value


def initial_state(space, u0) -> torch.Tensor:
    """``u0`` as a dof vector of ``space``: a number, a callable of x, or a tensor (n_dofs,)."""
    if torch.is_tensor(u0):
        if u0.shape != (space.n_dofs,):
            raise DfemError(f"the initial condition has shape {tuple(u0.shape)}, but the "
                            f"space has {space.n_dofs} dofs: give a tensor of shape "
                            f"({space.n_dofs},), a number or a callable of x.")
        u0 = u0.to(dtype=space.dtype, device=space.device)
    elif callable(u0):
        u0 = space.interpolate(u0)
    elif isinstance(u0, (int, float)) and not isinstance(u0, bool) and math.isfinite(u0):
        return torch.full((space.n_dofs,), float(u0), dtype=space.dtype, device=space.device)
    else:
        raise DfemError(f"the initial condition must be a number, a callable of x or a tensor "
                        f"of shape ({space.n_dofs},); got {u0!r}.")
    if not bool(torch.isfinite(u0.detach()).all()):
        raise DfemError(f"the initial condition has {int((~torch.isfinite(u0.detach())).sum())} "
                        "NaN or infinite value(s).")
    return u0


@dataclass
class TransientResult:
    """The outcome of :meth:`Heat.run` and :meth:`GradientFlow.run`.

    Attributes
    ----------
    u : (n_dofs,) tensor
        The state at the final time.
    snapshots : (n_saved, n_dofs) tensor
        The saved states (every ``save_every`` steps, the first and the last included).
    saved_times : list of float
    times : list of float
        Every time level ``t_0 < ... < t_N``.
    observations : (N + 1, ...) tensor
        ``observe(t_k, u_k)`` at every time level (empty without ``observe``).
    info : TrajectoryInfo
    scheme : str

    ``u``, ``snapshots`` and ``observations`` are differentiable (discrete adjoint).
    """

    u: torch.Tensor
    snapshots: torch.Tensor
    saved_times: list
    times: list
    observations: torch.Tensor
    info: TrajectoryInfo
    scheme: str


class Heat:
    """A transient heat (reaction-diffusion) problem on a scalar space.

    Parameters
    ----------
    space : FunctionSpace
    rho_c : coefficient
        Heat capacity per volume (> 0).
    k : coefficient
        Conductivity (> 0).
    c : coefficient, optional
        Reaction.
    f : coefficient or callable (x, t), optional
        Source.
    dirichlet : dict {tag: u_D}, optional
        ``u_D`` a number, ``fn(x)``, ``fn(x, t)`` or a tensor (see
        :class:`~dfem.problems.poisson.Poisson`).
    neumann : dict {tag: g}, optional
    robin : dict {tag: (alpha, g_R)}, optional
    lumped : bool
        Use the lumped (diagonal) mass matrix.

    Example
    -------
    >>> import math, torch, dfem
    >>> space = dfem.FunctionSpace(dfem.mesh.rectangle(8, 8, "quad"), "Q2")
    >>> heat = dfem.Heat(space, dirichlet={"boundary": 0.0})
    >>> u0 = lambda x: torch.sin(math.pi * x[..., 0]) * torch.sin(math.pi * x[..., 1])
    >>> result = heat.run(u0, t_end=0.1, dt=0.01, scheme="crank-nicolson")
    >>> float(result.u.max()) < float(space.interpolate(u0).max())
    True
    """

    def __init__(self, space, rho_c=1.0, k=1.0, c=None, f=None, dirichlet=None, neumann=None,
                 robin=None, lumped: bool = False):
        if hasattr(space, "scalar"):
            raise DfemError(f"Heat solves for a scalar temperature, but {space!r} is "
                            "vector-valued.")
        self.space = space
        self.rho_c, self.k, self.c, self.f = rho_c, k, c, f
        self.dirichlet = dict(dirichlet or {})
        self.neumann = dict(neumann or {})
        self.robin = dict(robin or {})
        self.lumped = bool(lumped)
        for name, value in (("rho_c", rho_c), ("k", k), ("c", c)):
            if depends_on_time(value):
                raise DfemError(f"{name} must not depend on t (only f and the boundary data "
                                f"may); got a callable of (x, t) for {name}.")
        for tag, pair in self.robin.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise DfemError(f"Robin condition on {tag!r} must be a pair (alpha, g_R) for "
                                f"k du/dn + alpha u = g_R, got {pair!r}.")
            if depends_on_time(pair[0]):
                raise DfemError(f"the Robin alpha on {tag!r} must not depend on t.")
        for tag in [*self.dirichlet, *self.neumann, *self.robin]:
            space.boundary_dofs(tag)  # raises naming the known tags

    # ------------------------------------------------------------------ data at t
    def _boundary_at(self, t):
        neumann = {tag: at_time(g, t) for tag, g in self.neumann.items()}
        robin = {tag: (alpha, at_time(g, t)) for tag, (alpha, g) in self.robin.items()}
        return neumann, robin

    @property
    def load_varies(self) -> bool:
        data = [self.f, *self.neumann.values(), *(g for _, g in self.robin.values())]
        return any(depends_on_time(v) for v in data)

    @property
    def dirichlet_varies(self) -> bool:
        return any(depends_on_time(v) for v in self.dirichlet.values())

    def load(self, t: float) -> torch.Tensor:
        """``F(t)``: source, Neumann and Robin data at time t, (n_dofs,)."""
        neumann, robin = self._boundary_at(t)
        return assemble_vector(self.space, at_time(self.f, t), neumann, robin)

    def dirichlet_values(self, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The Dirichlet dofs and a full vector holding ``u_D(t)`` there."""
        conditions = {tag: at_time(value, t) for tag, value in self.dirichlet.items()}
        return dirichlet_data(self.space, conditions)

    def mass(self) -> torch.Tensor:
        """CSR values of ``M`` (consistent or lumped) with ``rho_c``."""
        require_positive(cell_coefficient(self.space, self.rho_c, "rho_c"), "rho_c")
        return mass_matrix(self.space, self.rho_c, lumped=self.lumped)

    def stiffness(self) -> torch.Tensor:
        """CSR values of ``K`` (diffusion, reaction and Robin alpha)."""
        return assemble_matrix(self.space, self.k, self.c, self.robin)

    def energy(self, u: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        """The Dirichlet energy ``J(u; t) = 1/2 u.K u - F(t).u`` (batched over u)."""
        neumann, robin = self._boundary_at(t)
        return energy(self.space, u, nu=self.k, c=self.c, f=at_time(self.f, t),
                      neumann=neumann, robin=robin)

    def initial_state(self, u0) -> torch.Tensor:
        """``u0`` as a dof vector (see :func:`initial_state`)."""
        return initial_state(self.space, u0)

    # ------------------------------------------------------------------ run
    def run(self, u0, t_end=None, dt=None, scheme: str | None = None, theta=None, times=None,
            t0: float = 0.0, save_every: int = 1, observe=None, callback=None,
            method: str = "direct", show_progress: bool = False, **solver_options
            ) -> TransientResult:
        """Step from ``u0`` at ``t0`` to ``t_end``.

        Parameters
        ----------
        u0 : number, callable of x, or (n_dofs,) tensor
            The initial state; its Dirichlet dofs take ``u_D(t0)``.
        t_end, dt : float
            Equal steps of ``dt`` (the last one shortened to end at ``t_end``), or
        times : sequence of float
            the time levels themselves (``t0`` first).
        scheme : {"crank-nicolson", "implicit-euler", "bdf2"}, or theta in [0, 1]
        save_every : int
            Keep every ``save_every``-th state (the first and the last always).
        observe : callable ``(t, u) -> tensor``, optional
            Evaluated at every time level; the results are ``result.observations``, so
            that an objective summed over the trajectory (misfits at sensors) is a
            function of them. Write it in torch: it is differentiated.
        callback : callable ``(step, t, u)``, optional
            Called with the (detached) state at every time level.
        method : {"direct", "cg", "amg"}
            The linear solver; its setup is reused by every step of the same size.
        show_progress : bool
            A progress bar over the steps on stderr.
        **solver_options
            ``rtol``, ``maxiter``, ``hierarchy``, ... (:func:`dfem.solvers.factorize`).

        Returns
        -------
        TransientResult
            Differentiable in ``u0``, every coefficient, the data and the node
            coordinates by the discrete adjoint (one adjoint solve per step; about
            ``2 sqrt(N)`` states held, :mod:`dfem.solvers.trajectory`).
        """
        name, theta = resolve_scheme(scheme, theta)
        levels = step_times(t_end, dt, times, t0)
        if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
            raise DfemError(f"save_every must be a positive integer, got {save_every!r}.")
        if method not in METHODS:
            raise DfemError(f"unknown solver method {method!r}; use one of "
                            f"{', '.join(METHODS)}.")
        start = self.initial_state(u0)
        n_steps = len(levels) - 1
        save = sorted({*range(0, n_steps + 1, save_every), n_steps})
        fixed, _ = self.dirichlet_values(levels[0])
        free = torch.ones(self.space.n_dofs, dtype=torch.bool, device=self.space.device)
        free[fixed] = False
        dynamics = LinearDynamics(
            pattern=self.space.pattern, restricted=self.space.pattern.restrict(free),
            mass=self.mass(), stiffness=self.stiffness(), load=self.load,
            dirichlet=lambda t: self.dirichlet_values(t)[1], load_varies=self.load_varies,
            dirichlet_varies=self.dirichlet_varies, method=method,
            solver_options=solver_options)
        progress = None
        if show_progress:
            from dfem.progress import progress as bar

            progress = lambda steps: bar(steps, "time steps", unit="step", max_lines=20)  # noqa: E731
        saved, observations, info = integrate(dynamics, start, levels,
                                               scheme_steps(name, theta, levels), save,
                                               observe=observe, callback=callback,
                                               progress=progress)
        return TransientResult(u=saved[-1], snapshots=saved, saved_times=[levels[k] for k in save],
                          times=levels, observations=observations, info=info, scheme=name)


HeatResult = TransientResult
