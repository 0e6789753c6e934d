"""Solving a steady case, timed phase by phase, into its report.

:func:`solve` builds the problem (``setup_s``), assembles and solves it (``assemble_s``,
``solve_s``), integrates the errors against the exact solution (``error_s``), evaluates
the probes, and with an output folder writes the files (``output_s``, see
:mod:`dfem.problems.case_output`); ``total_s`` is the wall time of all of it, so the
phases account for where a run spends its time. Transient cases are run by
:mod:`dfem.problems.transient_case`.
"""

from __future__ import annotations

import time

import torch

from dfem.validation.error_norms import errors

#: The timed phases of a steady report, in order (``output_s`` only when writing files).
PHASES = ("setup_s", "assemble_s", "solve_s", "error_s", "output_s", "total_s")


def solve(case, out=None, method: str | None = None, show_progress: bool = False) -> dict:
    """Solve ``case``; write ``report.json``, ``solution.vtu`` and ``solution.png`` under
    ``out``. A transient case is run by :func:`dfem.problems.transient_case.solve`
    instead (a time series, with a progress bar over the steps if ``show_progress``).

    ``method`` overrides solver.method (and drops the options of the case's method that
    do not apply to it). Returns the report: case, problem, element, degree, cells, dofs,
    solver, the seconds spent in each phase (setup_s: building the mesh, space and
    problem; assemble_s, solve_s: the linear system or the Newton iterations; error_s:
    the error integration, None without an exact solution; output_s: writing the files,
    only with ``out``; total_s: all of it), l2_error and h1_error (None without an exact
    solution); Newton solves add newton_iterations and load_steps, elastic cases energy,
    compliance, max_displacement, max_von_mises and reactions (see
    :mod:`dfem.problems.elastic_case`), cases with ``[output] probes`` a list of
    ``{"point", "u"}``.
    """
    if case.transient:
        from dfem.problems import transient_case

        return transient_case.solve(case, out, method, show_progress=show_progress)
    from dfem.problems import case_output

    t0 = time.perf_counter()
    problem = case.problem()
    probes = case.probes(problem.space)
    exact = case.exact()
    options = case.solver_options(method)
    # the coefficients at the vertices for the output, evaluated now so that a NaN there
    # is an error before the solve
    fields = case_output.coefficient_fields(case, problem) if out is not None else None
    setup_s = time.perf_counter() - t0
    method = options["method"]
    t1 = time.perf_counter()
    u = problem.solve(**options)
    solve_wall = time.perf_counter() - t1
    space = problem.space
    t2 = time.perf_counter()
    err = errors(space, u, exact) if exact is not None else {}
    error_s = time.perf_counter() - t2 if exact is not None else None
    report = {
        "case": case.name,
        "problem": case.kind,
        "element": space.element.name,
        "degree": space.element.degree,
        "cells": space.mesh.n_cells,
        "dofs": space.n_dofs,
        "solver": method,
        "setup_s": setup_s,
        "assemble_s": problem.last_solve.get("assemble_s"),
        "solve_s": problem.last_solve.get("solve_s", solve_wall),
        "error_s": error_s,
        "l2_error": err.get("l2"),
        "h1_error": err.get("h1"),
    }
    if "newton" in problem.last_solve:
        report["newton_iterations"] = problem.last_solve["newton"].iterations
        report["load_steps"] = len(problem.last_solve.get("load_factors", [1.0]))
    if method == "energy":
        info = problem.last_solve["info"]
        report["optimizer"] = info.optimizer
        report["energy_iterations"] = info.iterations
        report["relative_residual"] = info.residuals[-1][1] if info.residuals else 0.0
    if case.elastic:
        from dfem.problems.elastic_case import elastic_report

        report.update(elastic_report(problem, u))
    if probes is not None:
        report["probes"] = probe_values(probes, case.data["output"]["probes"], u)
    if out is not None:
        t3 = time.perf_counter()
        case_output.write_solution(case, out, problem, u, fields)
        report["output_s"] = time.perf_counter() - t3
    report["total_s"] = time.perf_counter() - t0
    report = ordered_timing(report)
    if out is not None:
        case_output.write_report(out, report)
    return report


def ordered_timing(report: dict) -> dict:
    """``report`` with its timing keys (:data:`PHASES`, ``energy_s``) together, in that
    order, where the first of them is."""
    keys = [k for k in (*PHASES[:-2], "energy_s", *PHASES[-2:]) if k in report]
    rows, placed = {}, False
    for key, value in report.items():
        if key in keys:
            if not placed:
                rows.update((k, report[k]) for k in keys)
                placed = True
            continue
        rows[key] = value
    return rows


def probe_values(probes, points, u) -> list[dict]:
    """``[{"point": [x, y], "u": value or [ux, uy]}, ...]`` at the probe points."""
    with torch.no_grad():
        values = probes(u.detach())
    return [{"point": p, "u": v} for p, v in zip(points, values.tolist(), strict=True)]
