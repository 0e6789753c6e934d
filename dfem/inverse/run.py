"""Run an inverse config: observations, identification, outputs.

A steady case (Poisson) is observed once; a transient case (one with a ``[time]``
table, a :class:`dfem.Heat` run) is observed at every time level, and its unknown is
the conductivity (``log nu`` per cell or per vertex, or ``w``) or the initial condition
(``inverse.unknown = "initial_condition"``).

Writes, under ``out``:

- ``report.json``: the settings, iterations, forward+adjoint solve pairs, seconds,
  final misfit and regularisation and, with a known truth, the relative L2 error of
  ``log nu`` (and the error of ``w``), or of the initial condition ``u0``; transient
  runs add the time stepping (``scheme``, ``dt``, ``t_end``, ``time_levels``,
  ``steps``) and ``sensors_per_level``;
- ``history.json`` and ``history.png``: misfit, regularisation and error per iteration;
- ``recovered.vtu``: cell averages of the recovered and true ``log nu`` (or ``u0``);
  steady runs add the observed and recovered solution at the vertices, transient runs
  the recovered field at the vertices (nodal ``log nu``, ``u0``) beside the truth and
  the final states of the recovered and the true run;
- ``recovered.png``: truth, recovery and their difference (cell averages);
- ``sensors.png`` (transient runs): data and fitted histories at four sensors, spread
  over the ranks of their peak signal from the strongest one.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from dfem.exceptions import DfemError
from dfem.inverse.config import InverseConfig, read_observation_file
from dfem.inverse.identification import InverseResult, identify
from dfem.inverse.observations import Observations
from dfem.inverse.unknowns import UNKNOWNS, FamilyParameters, log_nu_error

#: Sensors whose histories ``sensors.png`` draws.
SHOWN_SENSORS = 4


def random_points_in_cells(mesh, count: int, seed: int) -> torch.Tensor:
    """``count`` points inside the mesh: random cells, random convex combinations of
    their vertices (inside, as the cells are convex), seeded."""
    generator = torch.Generator().manual_seed(int(seed))
    cells = torch.randint(mesh.n_cells, (count,), generator=generator)
    weights = -torch.log(torch.rand(count, mesh.cells.shape[1], generator=generator,
                                    dtype=torch.float64))
    weights = weights / weights.sum(dim=1, keepdim=True)
    corners = mesh.nodes.detach().cpu()[mesh.cells.cpu()[cells]]
    return (weights[..., None] * corners).sum(dim=1).to(mesh.nodes)


def _truth(config: InverseConfig):
    """``(family, w)`` when the case's nu is a parametric field table, else ``(None, None)``."""
    nu = config.case.data.get("problem", {}).get("nu")
    if isinstance(nu, dict):
        from dfem.problems.fields import field_family

        return field_family(nu, "problem.nu")
    return None, None


def _log_truth(nu, family, w):
    """``log nu`` as a callable of x, for the coefficient ``nu`` (a number or a callable)."""
    if family is not None:
        return lambda x: family.log_field(x, w)
    if callable(nu):
        return lambda x: torch.log(torch.as_tensor(nu(x), dtype=x.dtype).expand(x.shape[:-1]))
    return lambda x: torch.full(x.shape[:-1], math.log(float(nu)), dtype=x.dtype)


@dataclass
class _Time:
    """The time stepping of a transient case: the keyword arguments of
    :meth:`dfem.Heat.run` and the time levels the data are taken at."""

    options: dict
    levels: list

    @classmethod
    def of(cls, case) -> _Time:
        from dfem.problems.transient_case import time_options
        from dfem.solvers.schemes import step_times

        solver = case.solver_options()
        if solver["method"] == "energy":
            raise DfemError('solver.method = "energy" minimises the energy of a steady '
                            'problem; a transient inverse config steps with method = '
                            '"direct", "cg" or "amg".')
        options = time_options(case.data)
        levels = step_times(options["t_end"], options["dt"])
        # only the first and last states are kept: the data are the observations
        options["save_every"] = max(1, len(levels) - 1)
        return cls(options={**options, **solver}, levels=levels)


def _sensor_points(settings: dict, mesh):
    points = settings["sensors"]
    if isinstance(points, int):
        points = random_points_in_cells(mesh, points, settings["seed"] + 1)
    return points


def _measured(settings: dict, space, clock: _Time | None):
    """The observations of ``observations.file``, checked against the time levels."""
    values, points = read_observation_file(settings["file"])
    if clock is None:
        return Observations(space, values, points, settings["sigma"])
    count = space.n_dofs if points is None else len(points)
    where = "sensor points" if points is not None else "dofs (no 'points' in the file)"
    needed = (len(clock.levels), count)
    if values.shape != needed:
        raise DfemError(
            f"observations.file {str(settings['file'])!r}: 'values' has shape "
            f"{tuple(values.shape)}, but this run has {needed[0]} time levels (t = 0 to "
            f"t_end = {clock.levels[-1]:g} in steps of dt = {clock.options['dt']:g}, both "
            f"ends included) and {count} {where}: give values of shape {needed}.")
    from dfem.inverse.transient import SensorHistories

    return SensorHistories(space, values, points, settings["sigma"])


def _histories(heat, u0, space, points, clock: _Time):
    """The noise-free histories of a run of ``heat`` from ``u0`` at ``points`` (every dof
    when None), and the forward that computed them."""
    from dfem.inverse.transient import SensorHistories, TransientForward

    count = space.n_dofs if points is None else len(points)
    blank = SensorHistories(space, torch.zeros(len(clock.levels), count), points)
    forward = TransientForward(heat, u0, blank, **clock.options)
    return forward.solve(), forward


def _relative_l2(space, u: torch.Tensor, truth: torch.Tensor) -> float:
    """``||u - truth|| / ||truth||`` in L2 for two dof vectors of ``space``."""
    geometry = space.geometry()
    diff = space.at_quadrature(u.detach() - truth)[0]
    exact = space.at_quadrature(truth)[0]
    return float(torch.sqrt((diff * diff * geometry.weights).sum()
                            / (exact * exact * geometry.weights).sum()))


def run_inverse(config: InverseConfig, out=None, progress=None) -> dict:
    """Solve the inverse problem of ``config``; write the outputs under ``out`` (optional).

    Returns the report (see the module docstring).
    """
    case, obs_settings, settings = config.case, config.observations, config.inverse
    space = case.space()
    truth_problem = case.problem(space)
    clock = _Time.of(case) if case.transient else None
    family, w_true = _truth(config)
    kind = settings["unknown"]
    synthetic = obs_settings["file"] is None
    u0_true = None  # the true initial state (transient)
    if clock is not None:
        from dfem.inverse.transient import InitialCondition
        from dfem.problems.transient_case import initial_condition

        u0_case = initial_condition(case.data)
        u0_true = InitialCondition(space, truth_problem).coefficient(
            truth_problem.initial_state(u0_case))
    u_true = None  # the true solution (steady) or the true run's final state (transient)
    if not synthetic:
        observations = _measured(obs_settings, space, clock)
    elif clock is None:
        u_true = truth_problem.solve()
        observations = Observations.synthetic(space, u_true, obs_settings["noise"],
                                              obs_settings["seed"],
                                              _sensor_points(obs_settings, space.mesh))
    else:
        from dfem.inverse.transient import SensorHistories

        points = _sensor_points(obs_settings, space.mesh)
        history, run = _histories(truth_problem, u0_true, space, points, clock)
        u_true = run.last_result.u.detach()
        observations = SensorHistories.synthetic(space, history, obs_settings["noise"],
                                                 obs_settings["seed"], points)

    field_unknown, log_truth, error = None, None, None
    if kind == "initial_condition":
        from dfem.inverse.transient import InitialCondition

        unknown = InitialCondition(space, truth_problem)
        if synthetic:
            error = lambda m: _relative_l2(space, unknown.coefficient(m), u0_true)  # noqa: E731
    else:
        if kind == "w":
            if family is None:
                raise DfemError("inverse.unknown = \"w\" recovers the parameters of a field "
                                "family: give problem.nu as a field table, e.g. {field = "
                                "\"lognormal\", w = [...]} (its w is the truth for synthetic "
                                "data).")
            unknown = FamilyParameters(family)
            field_unknown = _FamilyField(space, family)
        else:
            unknown = field_unknown = UNKNOWNS[kind](space)
        if synthetic:
            nu = truth_problem.k if clock is not None else truth_problem.nu
            log_truth = _log_truth(nu, family, w_true)
            error = lambda m: log_nu_error(field_unknown, m, log_truth)  # noqa: E731

    forward = truth_problem
    if clock is not None:
        from dfem.inverse.transient import TransientForward

        # the conductivity unknowns start from the case's initial condition (known); the
        # initial condition unknown replaces it
        forward = TransientForward(truth_problem, u0_true, observations, **clock.options)
    result = identify(
        forward, observations, unknown,
        m0=torch.full((unknown.size,), float(settings["initial"]), dtype=space.dtype),
        regularization=settings["regularization"] if kind != "w" else "none",
        weight=settings["weight"], epsilon=settings["epsilon"],
        bounds=tuple(settings["bounds"]) if settings["bounds"] else None,
        max_iter=settings["max_iter"], gtol=settings["gtol"], error=error, progress=progress,
    )
    report = _report(config, space, unknown, observations, result, error, w_true, clock)
    if out is not None:
        truth = _Truths(log_nu=log_truth, u0=u0_true if synthetic else None, u=u_true)
        _write(Path(out), config, space, forward, unknown, field_unknown, result, report,
               truth, observations, clock)
    return report


class _FamilyField:
    """``log nu`` of a family's field at the quadrature points, for errors and plots."""

    def __init__(self, space, family):
        self.space, self.family = space, family

    def log_nu_at_quadrature(self, w):
        return self.family.log_field(self.space.geometry().points, w)


def _report(config, space, unknown, observations, result: InverseResult, error, w_true,
            clock: _Time | None) -> dict:
    last = result.history[-1]
    kind = config.inverse["unknown"]
    report = {
        "case": config.name,
        "element": space.element.name,
        "cells": space.mesh.n_cells,
        "unknown": kind,
        "unknowns": unknown.size,
        "observations": len(observations),
        "sensors": observations.points is not None,
        "noise_sigma": observations.sigma,
        "regularization": config.inverse["regularization"],
        "weight": config.inverse["weight"],
        "iterations": result.iterations,
        "solve_pairs": result.evaluations,
        "seconds": result.seconds,
        "converged": result.converged,
        "message": result.message,
        "misfit": last["misfit"],
        "regularization_value": last["regularization"],
    }
    value = error(result.m) if error is not None else None
    if kind == "initial_condition":
        report["u0_rel_l2_error"] = value
    else:
        report["log_nu_rel_l2_error"] = value
    if kind == "w":
        report["w"] = result.m.tolist()
        if w_true is not None and config.observations["file"] is None:
            report["w_true"] = w_true.tolist()
            report["w_max_abs_error"] = float((result.m - w_true).abs().max())
    if clock is not None:
        from dfem.solvers.schemes import resolve_scheme

        scheme, theta = resolve_scheme(clock.options.get("scheme"), clock.options.get("theta"))
        report.update(problem="heat", scheme=scheme, theta=theta,
                      dt=clock.options["dt"], t_end=clock.levels[-1],
                      time_levels=len(clock.levels), steps=len(clock.levels) - 1,
                      sensors_per_level=observations.values.shape[1])
    return report


@dataclass
class _Truths:
    """What is known of the truth for the outputs: ``log nu`` (a callable of x), the
    initial state and the solution (steady) or final state (transient); None if not."""

    log_nu: object = None
    u0: torch.Tensor | None = None
    u: torch.Tensor | None = None


def _cell_average(space, values: torch.Tensor) -> torch.Tensor:
    """Cell averages of values at the quadrature points (n_cells, n_q)."""
    weights = space.geometry().weights
    return (values * weights).sum(dim=-1) / weights.sum(dim=-1)


def _write(out: Path, config, space, forward, unknown, field_unknown, result, report,
           truth: _Truths, observations, clock: _Time | None) -> None:
    from dfem.fileio import write_json_atomic
    from dfem.mesh import write_mesh
    from dfem.plots import plot_cell_fields, plot_inverse_history

    mesh = space.mesh
    kind = report["unknown"]
    point_data, cell_data = {}, {}
    if field_unknown is not None:  # log nu
        label, name = "log nu", "log_nu"
        recovered = _cell_average(space, field_unknown.log_nu_at_quadrature(result.m))
        true = (None if truth.log_nu is None
                else _cell_average(space, truth.log_nu(space.geometry().points)))
        if clock is not None and kind == "log_nu_nodal":
            point_data["log_nu"] = result.m
            if truth.log_nu is not None:
                point_data["log_nu_true"] = truth.log_nu(mesh.nodes.detach())
    else:  # the initial condition
        label, name = "u0", "u0"
        u0 = unknown.coefficient(result.m)
        recovered = _cell_average(space, space.at_quadrature(u0)[0])
        point_data["u0"] = space.vertex_values(u0)
        true = None
        if truth.u0 is not None:
            true = _cell_average(space, space.at_quadrature(truth.u0)[0])
            point_data["u0_true"] = space.vertex_values(truth.u0)
    fields = {f"recovered {label}": recovered}
    cell_data[name] = recovered
    if true is not None:
        fields = {f"true {label}": true, **fields, "recovered - true": recovered - true}
        cell_data[f"{name}_true"] = true
    if clock is None:
        point_data["u_recovered"] = space.vertex_values(result.u)
        if truth.u is not None:
            point_data["u_true"] = space.vertex_values(truth.u.detach())
    else:
        run = copy.copy(forward)  # the recovered run, for its final state
        setattr(run, getattr(unknown, "target", "nu"), unknown.coefficient(result.m))
        with torch.no_grad():
            run.solve()
        point_data["u_end_recovered"] = space.vertex_values(run.last_result.u)
        if truth.u is not None:
            point_data["u_end_true"] = space.vertex_values(truth.u)
    out.mkdir(parents=True, exist_ok=True)
    write_mesh(out / "recovered.vtu", mesh,
               point_data={k: v.detach() for k, v in point_data.items()},
               cell_data={k: v.detach() for k, v in cell_data.items()})
    plot_cell_fields(mesh, fields, out / "recovered.png",
                     title=f"{config.name}: {kind}")
    error_label = "relative L2 error of u0" if field_unknown is None else None
    plot_inverse_history(result.history, report["weight"], out / "history.png",
                         title=f"{config.name}: L-BFGS history", error_label=error_label)
    if clock is not None:
        from dfem.plots import plot_sensor_histories

        # sensors spread over the ranks of their peak signal, the strongest first
        order = torch.argsort(observations.values.abs().amax(dim=0), descending=True)
        ranks = torch.linspace(0, (len(order) - 1) * 0.75, min(SHOWN_SENSORS, len(order)))
        shown = order[torch.unique(ranks.round().long())]
        names = ([f"dof {int(i)}" for i in shown] if observations.points is None else
                 ["(" + ", ".join(f"{c:.2f}" for c in observations.points[i].tolist()) + ")"
                  for i in shown])
        plot_sensor_histories(clock.levels, observations.values[:, shown],
                              result.u[:, shown], names, out / "sensors.png",
                              title=f"{config.name}: data and fit at {len(shown)} sensors")
    write_json_atomic(out / "history.json", result.history)
    write_json_atomic(out / "report.json", report)
