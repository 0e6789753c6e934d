"""Run an inverse config: observations, identification, outputs.

Writes, under ``out``:

- ``report.json``: the settings, iterations, forward+adjoint solve pairs, seconds,
  final misfit and regularisation and, with a known truth, the relative L2 error of
  ``log nu`` (and the error of ``w``);
- ``history.json`` and ``history.png``: misfit, regularisation and error per iteration;
- ``recovered.vtu``: cell averages of the recovered and true ``log nu``, the observed
  and recovered solution at the vertices;
- ``recovered.png``: true ``log nu``, recovered ``log nu`` and their difference.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from dfem.errors import DfemError
from dfem.inverse.config import InverseConfig, read_observation_file
from dfem.inverse.identification import InverseResult, identify
from dfem.inverse.observations import Observations
from dfem.inverse.unknowns import UNKNOWNS, FamilyParameters, log_nu_error


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


def _log_truth(problem, family, w):
    if family is not None:
        return lambda x: family.log_field(x, w)
    nu = problem.nu
    if callable(nu):
        return lambda x: torch.log(torch.as_tensor(nu(x), dtype=x.dtype).expand(x.shape[:-1]))
    return lambda x: torch.full(x.shape[:-1], math.log(float(nu)), dtype=x.dtype)


def run_inverse(config: InverseConfig, out=None, progress=None) -> dict:
    """Solve the inverse problem of ``config``; write the outputs under ``out`` (optional).

    Returns the report (see the module docstring).
    """
    case, obs_settings, settings = config.case, config.observations, config.inverse
    space = case.space()
    truth_problem = case.problem(space)
    family, w_true = _truth(config)
    synthetic = obs_settings["file"] is None
    if synthetic:
        u_true = truth_problem.solve()
        points = obs_settings["sensors"]
        if isinstance(points, int):
            points = random_points_in_cells(space.mesh, points, obs_settings["seed"] + 1)
        observations = Observations.synthetic(space, u_true, obs_settings["noise"],
                                              obs_settings["seed"], points)
    else:
        values, points = read_observation_file(obs_settings["file"])
        observations = Observations(space, values, points, obs_settings["sigma"])
        u_true = None

    kind = settings["unknown"]
    if kind == "w":
        if family is None:
            raise DfemError("inverse.unknown = \"w\" recovers the parameters of a field family: "
                            "give problem.nu as a field table, e.g. {field = \"lognormal\", "
                            "w = [...]} (its w is the truth for synthetic data).")
        unknown = FamilyParameters(family)
    else:
        unknown = UNKNOWNS[kind](space)
    field_unknown = unknown if kind != "w" else _FamilyField(space, family)
    log_truth = _log_truth(truth_problem, family, w_true) if synthetic else None
    error = None if log_truth is None else (lambda m: log_nu_error(field_unknown, m, log_truth))
    result = identify(
        truth_problem, observations, unknown,
        m0=torch.full((unknown.size,), float(settings["initial"]), dtype=space.dtype),
        regularization=settings["regularization"] if kind != "w" else "none",
        weight=settings["weight"], epsilon=settings["epsilon"],
        bounds=tuple(settings["bounds"]) if settings["bounds"] else None,
        max_iter=settings["max_iter"], gtol=settings["gtol"], error=error, progress=progress,
    )
    report = _report(config, space, unknown, observations, result, error, w_true)
    if out is not None:
        _write(Path(out), config, space, field_unknown, result, report, log_truth, u_true)
    return report


class _FamilyField:
    """``log nu`` of a family's field at the quadrature points, for errors and plots."""

    def __init__(self, space, family):
        self.space, self.family = space, family

    def log_nu_at_quadrature(self, w):
        return self.family.log_field(self.space.geometry().points, w)


def _report(config, space, unknown, observations, result: InverseResult, error, w_true) -> dict:
    last = result.history[-1]
    report = {
        "case": config.name,
        "element": space.element.name,
        "cells": space.mesh.n_cells,
        "unknown": config.inverse["unknown"],
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
        "log_nu_rel_l2_error": error(result.m) if error is not None else None,
    }
    if config.inverse["unknown"] == "w":
        report["w"] = result.m.tolist()
        if w_true is not None and config.observations["file"] is None:
            report["w_true"] = w_true.tolist()
            report["w_max_abs_error"] = float((result.m - w_true).abs().max())
    return report


def _write(out: Path, config, space, field_unknown, result, report, log_truth, u_true) -> None:
    from dfem.fileio import write_json_atomic
    from dfem.mesh import write_mesh
    from dfem.plots import plot_cell_fields, plot_inverse_history

    out.mkdir(parents=True, exist_ok=True)
    recovered = field_unknown.log_nu_at_quadrature(result.m).mean(dim=-1)
    fields = {"recovered log nu": recovered}
    cell_data = {"log_nu": recovered}
    if log_truth is not None:
        truth = log_truth(space.geometry().points).mean(dim=-1)
        fields = {"true log nu": truth, **fields, "recovered - true": recovered - truth}
        cell_data["log_nu_true"] = truth
    point_data = {"u_recovered": space.vertex_values(result.u)}
    if u_true is not None:
        point_data["u_true"] = space.vertex_values(u_true.detach())
    write_mesh(out / "recovered.vtu", space.mesh, point_data=point_data, cell_data=cell_data)
    plot_cell_fields(space.mesh, fields, out / "recovered.png",
                     title=f"{config.name}: {report['unknown']}")
    plot_inverse_history(result.history, report["weight"], out / "history.png",
                         title=f"{config.name}: L-BFGS history")
    write_json_atomic(out / "history.json", result.history)
    write_json_atomic(out / "report.json", report)
