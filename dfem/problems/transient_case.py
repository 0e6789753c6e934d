"""Transient case files: a ``[time]`` table makes a case a heat problem.

A transient case solves, with :class:`dfem.Heat`,

.. math:: \\rho_c\\, \\partial_t u - \\nabla\\cdot(\\nu \\nabla u) + c\\,u = f(x, t),
          \\qquad u(x, 0) = u_0(x),

with the boundary conditions of the steady cases, whose values may depend on t::

    [problem]
    nu = 1.0            # the conductivity k
    rho_c = 1.0         # heat capacity per volume (default 1)
    c = 0.0             # reaction (optional)
    f = "0"             # may use t
    [boundary.boundary]
    dirichlet = 0.0     # dirichlet, neumann and the g of robin = [alpha, g] may use t
    [initial]
    u = "sin(pi*x)*sin(pi*y)"   # default 0
    [time]
    t_end = 0.1
    dt = 0.001
    scheme = "crank-nicolson"   # "implicit-euler", "crank-nicolson", "bdf2"; or theta = 0.5
    save_every = 10
    [exact]
    u = "exp(-2*pi**2*t)*sin(pi*x)*sin(pi*y)"   # may use t; compared at t_end
    l2_error_max = 1e-5

``nu``, ``rho_c``, ``c``, a Robin ``alpha`` and the initial state are constant in time:
``t`` in them is an error naming the key. The schema is checked by
:mod:`dfem.problems.case_schema`.

Outputs of :func:`solve` (``dfem solve CASE --out DIR``): ``solution_0000.vtu``, ... (one
VTU file per saved state, ``u`` at the vertices), ``solution.pvd`` (the ParaView
collection of them, with their times), ``solution.png`` (a strip of :data:`STRIP`
states evenly spread over the run) and ``report.json``. They are written into a
temporary folder inside ``DIR`` and renamed into place at the end
(:func:`dfem.fileio.staged_folder`), so an error or an interrupt leaves no part of the
series behind.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dfem.exceptions import DfemError
from dfem.problems.case_schema import poisson_conditions
from dfem.problems.heat import Heat, HeatResult
from dfem.problems.time_data import TimeExpression, time_coefficient

__all__ = ["TransientRun", "energies", "exact_at", "exact_solution", "heat_problem",
           "initial_condition", "report", "run", "solve", "strip_steps", "summary",
           "time_options", "write_outputs"]

#: States drawn in ``solution.png``.
STRIP = 6
#: Lines a progress report over the time steps prints at most off a terminal.
_SERIES = re.compile(r"solution_\d+\.vtu")


@dataclass
class TransientRun:
    """A solved transient case: the problem, the trajectory, the states of the strip
    plot (``(t, u)`` pairs), the seconds spent building the problem and the evaluation
    of ``[output] probes`` (or None)."""

    heat: Heat
    result: HeatResult
    strip: list
    setup_s: float
    probes: object = None


# ----------------------------------------------------------------------------- build
def heat_problem(data: dict, space, cell_tags=None) -> Heat:
    """The :class:`~dfem.Heat` of a checked transient case table on ``space``.

    ``cell_tags`` (``{tag: cell numbers}`` of ``space``'s mesh, or a function returning
    it) serves coefficients given per cell tag (``nu``, ``rho_c``, ``c`` and ``f``)."""
    spec = data.get("problem", {})
    kwargs = {key: time_coefficient(spec[key], f"problem.{key}", time=False,
                                    cell_tags=cell_tags)
              for key in ("nu", "rho_c", "c") if key in spec}
    if "nu" in kwargs:
        kwargs["k"] = kwargs.pop("nu")
    if "f" in spec:
        kwargs["f"] = time_coefficient(spec["f"], "problem.f", cell_tags=cell_tags)
    dirichlet, neumann, robin = poisson_conditions(
        data.get("boundary", {}), time_coefficient,
        alpha=lambda v, label: time_coefficient(v, f"{label} alpha", time=False),
        g=lambda v, label: time_coefficient(v, f"{label} g"))
    return Heat(space, dirichlet=dirichlet, neumann=neumann, robin=robin, **kwargs)


def initial_condition(data: dict):
    """``[initial] u`` (default 0): a number or a callable of x."""
    return time_coefficient(data.get("initial", {}).get("u", 0.0), "initial.u", time=False)


def exact_solution(data: dict):
    """``[exact] u`` as ``fn(x, t)`` (a callable of x alone when it does not use t, a
    constant as such a callable), or None."""
    value = data.get("exact", {}).get("u")
    if value is None:
        return None
    exact = time_coefficient(value, "exact.u")
    if isinstance(exact, float):
        return lambda x: torch.full(x.shape[:-1], exact, dtype=x.dtype, device=x.device)
    return exact


def exact_at(data: dict, t: float):
    """The exact solution at time ``t`` as ``x -> u(x, t)``, or None."""
    exact = exact_solution(data)
    if isinstance(exact, TimeExpression):
        return lambda x: exact(x, t)
    return exact


def time_options(data: dict) -> dict:
    """``t_end``, ``dt``, ``scheme``, ``theta`` and ``save_every`` of the [time] table, as
    keyword arguments of :meth:`dfem.Heat.run`."""
    spec = data["time"]
    options = {"t_end": float(spec["t_end"]), "dt": float(spec["dt"]),
               "save_every": spec.get("save_every", 1)}
    if "theta" in spec:
        options["theta"] = float(spec["theta"])
    else:
        options["scheme"] = spec.get("scheme", "crank-nicolson")
    return options


def strip_steps(n_steps: int, k: int = STRIP) -> list[int]:
    """``k`` step numbers evenly spread over ``0..n_steps`` (all of them if fewer)."""
    return sorted({int(round(s)) for s in np.linspace(0, n_steps, min(k, n_steps + 1))})


# ----------------------------------------------------------------------------- run
def run(case, method: str | None = None, show_progress: bool = False) -> TransientRun:
    """Build and run the case's heat problem; ``method`` overrides ``solver.method``."""
    t0 = time.perf_counter()
    options = case.solver_options(method)
    if options["method"] == "energy":
        raise DfemError(
            'solver.method = "energy" minimises the energy of a steady problem; a transient '
            'case steps with method = "direct", "cg" or "amg".'
        )
    heat = case.problem()
    probes = case.probes(heat.space)  # a probe outside the domain: an error before the run
    u0 = heat.initial_state(initial_condition(case.data))
    steps = time_options(case.data)
    setup_s = time.perf_counter() - t0
    from dfem.solvers.schemes import step_times

    n_steps = len(step_times(steps["t_end"], steps["dt"])) - 1
    wanted = set(strip_steps(n_steps))
    strip = []

    def keep(step, t, u):
        if step in wanted:
            strip.append((t, u.clone()))

    result = heat.run(u0, **steps, callback=keep, show_progress=show_progress, **options)
    return TransientRun(heat=heat, result=result, strip=strip, setup_s=setup_s, probes=probes)


def energies(heat: Heat, result: HeatResult) -> list[float]:
    """``heat.energy`` of every saved state at its time."""
    with torch.no_grad():
        states = result.snapshots.detach()
        if not heat.load_varies:  # one batched evaluation
            return heat.energy(states, result.saved_times[0]).tolist()
        return [float(heat.energy(u, t)) for u, t in zip(states, result.saved_times,
                                                         strict=True)]


def report(case, done: TransientRun, method: str) -> dict:
    """The report of a solved transient case (see :func:`solve`)."""
    from dfem.validation.error_norms import errors

    heat, result = done.heat, done.result
    space = heat.space
    t_end = result.times[-1]
    exact = exact_at(case.data, t_end)
    t0 = time.perf_counter()
    err = errors(space, result.u.detach(), exact) if exact is not None else {}
    t1 = time.perf_counter()
    energy = energies(heat, result)
    t2 = time.perf_counter()
    scale = max(abs(e) for e in energy) if energy else 0.0
    from dfem.solvers.schemes import resolve_scheme

    spec = case.data["time"]
    _, theta = resolve_scheme(spec.get("scheme") if "theta" not in spec else None,
                              spec.get("theta"))
    info = result.info
    rep = {
        "case": case.name,
        "problem": "heat",
        "element": space.element.name,
        "degree": space.element.degree,
        "cells": space.mesh.n_cells,
        "dofs": space.n_dofs,
        "solver": method,
        "scheme": result.scheme,
        "theta": theta,
        "dt": float(case.data["time"]["dt"]),
        "steps": info.steps,
        "t_end": t_end,
        "saved": len(result.saved_times),
        "factorizations": info.factorizations,
        "setup_s": done.setup_s,
        "solve_s": info.forward_s,
        "error_s": t1 - t0 if exact is not None else None,
        "energy_s": t2 - t1,
        "l2_error": err.get("l2"),
        "h1_error": err.get("h1"),
        "energy_non_increasing": all(b <= a + 1e-12 * scale
                                     for a, b in zip(energy, energy[1:], strict=False)),
        "saved_times": list(result.saved_times),
        "energy": energy,
    }
    if done.probes is not None:
        from dfem.problems.case_run import probe_values

        rep["probes"] = probe_values(done.probes, case.data["output"]["probes"], result.u)
    return rep


def solve(case, out=None, method: str | None = None, show_progress: bool = False) -> dict:
    """Run a transient case; with ``out``, write its time series, plot and report.

    Returns the report: case, problem ("heat"), element, degree, cells, dofs, solver,
    scheme, theta (None for BDF2), dt, steps, t_end, saved (states kept), factorizations,
    the seconds of each phase (setup_s; solve_s, the time stepping; error_s, the error
    integration at ``t_end``, None without an exact solution; energy_s, the energies;
    output_s, writing the files, only with ``out``; total_s, all of it), l2_error and
    h1_error at ``t_end`` (None without an exact solution), energy_non_increasing,
    saved_times and energy (the Dirichlet energy :meth:`dfem.Heat.energy` of each saved
    state at its time) and, with ``[output] probes``, the final state at the probes.
    """
    started = time.perf_counter()
    done = run(case, method, show_progress=show_progress)
    rep = report(case, done, case.solver_options(method)["method"])
    if out is not None:
        write_outputs(case, done, rep, out, started=started)
    else:
        rep["total_s"] = time.perf_counter() - started
    from dfem.problems.case_run import ordered_timing

    return ordered_timing(rep)


# ----------------------------------------------------------------------------- outputs
def write_outputs(case, done: TransientRun, rep: dict, out, started=None) -> None:
    """``solution_NNNN.vtu`` (one per saved state), ``solution.pvd``, ``solution.png`` and
    ``report.json`` under ``out``, staged and renamed into place together; VTU files of an
    earlier, longer series are removed afterwards.

    Adds ``output_s`` (and, given the ``time.perf_counter()`` the run ``started`` at,
    ``total_s``) to ``rep`` before writing it."""
    from dfem.fileio import staged_folder, write_json_atomic
    from dfem.problems.case_run import ordered_timing

    t0 = time.perf_counter()
    from dfem.mesh.write import write_mesh, write_pvd
    from dfem.plots import plot_snapshots

    space, result = done.heat.space, done.result
    states = result.snapshots.detach()
    width = max(4, len(str(len(states) - 1)))
    names = [f"solution_{i:0{width}d}.vtu" for i in range(len(states))]
    out = Path(out)
    last = ("solution.png", "solution.pvd", "report.json")
    with staged_folder(out, last=last) as stage:
        with torch.no_grad():
            for name, u in zip(names, states, strict=True):
                write_mesh(stage / name, space.mesh, point_data={"u": space.vertex_values(u)})
        write_pvd(stage / "solution.pvd", list(zip(result.saved_times, names, strict=True)))
        times, shown = zip(*done.strip, strict=True)
        plot_snapshots(space, torch.stack(shown), times, stage / "solution.png",
                       title=f"{case.name}: u ({space.element.name}, {result.scheme})")
        rep["output_s"] = time.perf_counter() - t0
        if started is not None:
            rep["total_s"] = time.perf_counter() - started
        write_json_atomic(stage / "report.json", ordered_timing(rep))
    keep = set(names)
    for path in out.iterdir():
        if _SERIES.fullmatch(path.name) and path.name not in keep:
            path.unlink()


def summary(rep: dict) -> dict:
    """The report without its per-state lists, for printing: the energy at t = 0 and at
    t_end instead."""
    rows = {}
    for key, value in rep.items():
        if key == "energy":
            rows["energy (t = 0)"] = value[0]
            rows["energy (t = t_end)"] = value[-1]
        elif key != "saved_times":
            rows[key] = value
    return rows
