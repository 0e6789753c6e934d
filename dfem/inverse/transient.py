"""Inverse problems in time: recover a conductivity or an initial condition from sensor
histories of a :class:`dfem.Heat` run.

The forward map is a whole run, observed at every time level,

.. math:: m \\mapsto d(m) = \\big(P u_h(t_0; m), \\dots, P u_h(t_N; m)\\big),

with ``P`` point evaluation at the sensors (or every dof), and the misfit is that of
:mod:`dfem.inverse.observations` over all levels and sensors,
``M = 1/(2 N L) sum_{k, i} ((d_{k,i}(m) - d^obs_{k,i}) / sigma)^2``. Its gradient is one
forward run and one adjoint run through time (:mod:`dfem.solvers.trajectory`), so
:func:`dfem.inverse.identify` drives it exactly as it drives a steady solve: a
:class:`TransientForward` stands in for the problem, a :class:`SensorHistories` for the
observations, and the unknowns are those of :mod:`dfem.inverse.unknowns`
(``log k`` per cell or per vertex) or :class:`InitialCondition`.
"""

from __future__ import annotations

import copy

import torch

from dfem.exceptions import DfemError
from dfem.inverse.observations import Observations
from dfem.inverse.unknowns import gradient_regularization


class SensorHistories(Observations):
    """Data at every time level of a run: ``values`` of shape (n_levels, N), N sensors
    (``points``) or every dof (``points=None``); ``sigma`` the noise standard deviation."""

    def __init__(self, space, values, points=None, sigma: float | None = None):
        like = dict(dtype=space.dtype, device=space.device)
        values = torch.as_tensor(values, **like).detach()
        if values.ndim != 2:
            raise DfemError(f"sensor histories have shape (time levels, sensors); got "
                            f"{tuple(values.shape)}.")
        super().__init__(space, values[0], points, sigma)
        if not bool(torch.isfinite(values).all()):
            raise DfemError("the sensor histories contain inf or NaN; remove or fill those "
                            "values.")
        self.values = values

    def __len__(self) -> int:
        return self.values.numel()

    def misfit(self, history: torch.Tensor) -> torch.Tensor:
        """The misfit of predicted histories (n_levels, N)."""
        if history.shape != self.values.shape:
            raise DfemError(f"the predicted histories have shape {tuple(history.shape)}; the "
                            f"data have {tuple(self.values.shape)} (time levels, sensors): "
                            "run with the time levels the data were taken at.")
        r = (history - self.values) / self.sigma
        return 0.5 * (r * r).mean()

    @classmethod
    def synthetic(cls, space, history: torch.Tensor, noise: float, seed: int = 0,
                  points=None) -> SensorHistories:
        """Noisy copies of the true histories (n_levels, N): Gaussian, standard deviation
        ``noise * max |history|``, seeded."""
        if not (noise >= 0):
            raise DfemError(f"the noise level must be >= 0, got {noise!r}.")
        exact = history.detach()
        sigma = noise * float(exact.abs().max())
        generator = torch.Generator().manual_seed(int(seed))
        scatter = torch.randn(exact.shape, generator=generator, dtype=exact.dtype)
        return cls(space, exact + sigma * scatter.to(exact.device), points,
                   sigma if sigma > 0 else None)


class TransientForward:
    """A :class:`dfem.Heat` run as the forward problem of :func:`dfem.inverse.identify`.

    ``nu`` is the heat problem's conductivity ``k`` and ``u0`` the initial condition: the
    attributes the unknowns set. :meth:`solve` runs and returns the histories at the
    sensors of ``observations`` (the last run's result is ``last_result``).

    Parameters
    ----------
    heat : Heat
    u0 : initial condition (number, callable of x, or dof tensor)
    observations : SensorHistories or Observations
        Where the run is observed (its sensor points, or every dof).
    **run_options
        ``t_end``, ``dt`` (or ``times``), ``scheme``, ``method``, ... of :meth:`Heat.run`.
    """

    def __init__(self, heat, u0, observations, **run_options):
        if "observe" in run_options:
            raise DfemError("TransientForward observes at the observations' sensors; do not "
                            "pass observe=.")
        self.heat, self.u0, self.observations = heat, u0, observations
        self.run_options = run_options
        self.last_result = None

    @property
    def space(self):
        return self.heat.space

    @property
    def nu(self):
        return self.heat.k

    @nu.setter
    def nu(self, value):
        self.heat.k = value

    def __copy__(self):
        twin = TransientForward(copy.copy(self.heat), self.u0, self.observations,
                                **self.run_options)
        return twin

    def solve(self) -> torch.Tensor:
        """The predicted histories (n_levels, N) for the current ``nu`` and ``u0``."""
        observe = self.observations.observe
        self.last_result = self.heat.run(self.u0, observe=lambda t, u: observe(u),
                                         **self.run_options)
        return self.last_result.observations


class InitialCondition:
    """The initial condition's dof values ``m``: ``u0 = m`` off the Dirichlet dofs of
    ``heat`` (given) and ``u_D(t0)`` on them, so that the regularisers of
    :mod:`dfem.inverse.unknowns`, taken on the solution space itself, see the state the
    run starts from.

    Parameters
    ----------
    space : FunctionSpace
    heat : Heat, optional
        The problem whose Dirichlet data at ``t0`` fix the boundary values.
    t0 : float
    """

    name = "initial_condition"
    target = "u0"

    def __init__(self, space, heat=None, t0: float = 0.0):
        if hasattr(space, "scalar"):
            raise DfemError("InitialCondition recovers a scalar field; the space is "
                            "vector-valued.")
        self.space = space
        if heat is None:
            self.fixed = torch.zeros(0, dtype=torch.int64, device=space.device)
            self.fixed_values = torch.zeros(0, dtype=space.dtype, device=space.device)
        else:
            self.fixed, full = heat.dirichlet_values(t0)
            self.fixed_values = full[self.fixed].detach()

    @property
    def size(self) -> int:
        return self.space.n_dofs

    def coefficient(self, m: torch.Tensor) -> torch.Tensor:
        """The initial state: ``m`` with the Dirichlet values in place."""
        return m.index_put((self.fixed,), self.fixed_values)

    def field_at_quadrature(self, m: torch.Tensor) -> torch.Tensor:
        """``u0`` at the quadrature points, (n_cells, n_q)."""
        return self.space.at_quadrature(self.coefficient(m))[0]

    def regularization(self, m: torch.Tensor, kind: str, epsilon: float) -> torch.Tensor:
        return gradient_regularization(self.space, self.coefficient(m), kind, epsilon)
