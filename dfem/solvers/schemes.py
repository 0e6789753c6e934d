"""Time-stepping schemes for ``M u' + K u = F(t)`` as coefficients of one linear step.

Every step ``n -> n + 1`` of every scheme here solves

.. math:: (\\alpha_n M + \\beta_n K)\\, U^{n+1}
          = \\sum_j (a_{n,j} M + b_{n,j} K)\\, U^{n-j} + \\sum_k w_{n,k} F(t_{n,k}),

so one stepper (:mod:`dfem.solvers.trajectory`) and one adjoint serve them all.

``theta`` (``"implicit-euler"`` is theta = 1, ``"crank-nicolson"`` theta = 1/2)
    ``(M + theta dt K) U^{n+1} = (M - (1 - theta) dt K) U^n
    + dt (theta F^{n+1} + (1 - theta) F^n)``.
``"bdf2"``
    The variable-step BDF2 formula with ``omega = dt_n / dt_{n-1}``,
    ``((1 + 2 omega)/(1 + omega) M + dt_n K) U^{n+1} = (1 + omega) M U^n
    - omega^2/(1 + omega) M U^{n-1} + dt_n F^{n+1}``; the first step is implicit Euler
    (its local error O(dt^2) keeps the global order 2). For constant steps the
    coefficients are 3/2, 2 and -1/2.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from dfem.exceptions import DfemError

SCHEMES = {"implicit-euler": 1.0, "crank-nicolson": 0.5, "bdf2": None}


@dataclass(frozen=True)
class Step:
    """One step's coefficients: ``new = (alpha, beta)``, ``previous[j] = (a_j, b_j)`` for
    ``U^{n-j}``, ``loads = ((time index, weight), ...)``."""

    new: tuple
    previous: tuple
    loads: tuple


def resolve_scheme(scheme: str | None = None, theta: float | None = None) -> tuple[str, float]:
    """``(name, theta)`` from a scheme name or a theta (theta is None for BDF2)."""
    if theta is not None:
        if scheme is not None and scheme != "theta":
            raise DfemError(f"give either scheme={scheme!r} or theta={theta!r}, not both.")
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not 0 <= theta <= 1:
            raise DfemError(f"theta must be a number in [0, 1] (1 implicit Euler, 0.5 "
                            f"Crank-Nicolson), got {theta!r}.")
        return "theta", float(theta)
    scheme = "crank-nicolson" if scheme is None else scheme
    if scheme not in SCHEMES:
        raise DfemError(f"unknown time-stepping scheme {scheme!r}; use one of "
                        f"{', '.join(map(repr, SCHEMES))} (or theta = a number in [0, 1]).")
    return scheme, SCHEMES[scheme]


def step_times(t_end=None, dt=None, times=None, t0: float = 0.0) -> list[float]:
    """The time levels ``t_0 < t_1 < ... < t_N``: equal steps ``dt`` up to ``t_end`` (the
    last step shortened to land on ``t_end`` when ``t_end - t0`` is not a whole number of
    steps), or a given increasing sequence ``times``."""
    if times is not None:
        if t_end is not None or dt is not None:
            raise DfemError("give either times=[...] or t_end and dt, not both.")
        values = [float(t) for t in (times.tolist() if torch.is_tensor(times) else times)]
        if len(values) < 2:
            raise DfemError(f"times needs at least two time levels, got {values!r}.")
        steps = [b - a for a, b in itertools.pairwise(values)]
        if not all(math.isfinite(t) for t in values) or min(steps) <= 0:
            raise DfemError("times must be finite and strictly increasing.")
        return values
    for name, value in (("dt", dt), ("t_end", t_end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            raise DfemError(f"{name} must be a finite number, got {value!r}.")
    if dt <= 0:
        raise DfemError(f"dt must be positive, got dt={dt!r}.")
    span = t_end - t0
    if span < dt * (1 - 1e-12):
        raise DfemError(f"t_end={t_end!r} is less than one step dt={dt!r} after t0={t0!r}; "
                        "choose dt <= t_end - t0.")
    n = max(1, math.ceil(span / dt - 1e-9))
    values = [t0 + k * dt for k in range(n)] + [float(t_end)]
    return values


def scheme_steps(scheme: str, theta: float | None, times: list[float]) -> list[Step]:
    """The :class:`Step` coefficients of every step between the time levels ``times``."""
    steps, sizes = [], []
    for n in range(len(times) - 1):
        dt = _snap(times[n + 1] - times[n], sizes)
        if theta is None and n > 0:
            omega = dt / _snap(times[n] - times[n - 1], sizes)
            steps.append(Step(new=((1 + 2 * omega) / (1 + omega), dt),
                              previous=((1 + omega, 0.0), (-omega * omega / (1 + omega), 0.0)),
                              loads=((n + 1, dt),)))
        else:
            th = 1.0 if theta is None else theta
            loads = ((n + 1, th * dt),) + (((n, (1 - th) * dt),) if th < 1 else ())
            steps.append(Step(new=(1.0, th * dt), previous=((1.0, -(1 - th) * dt),),
                              loads=loads))
    return steps


def _snap(dt: float, sizes: list) -> float:
    """``dt``, or an earlier step size within round-off of it (levels ``t0 + k dt`` differ
    by ulps, and each distinct size costs a factorisation)."""
    for size in sizes:
        if abs(dt - size) <= 1e-10 * size:
            return size
    sizes.append(dt)
    return dt
