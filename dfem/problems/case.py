"""Case files: a PDE problem in TOML, turned into a mesh, a space and a problem, then solved.

A minimal case::

    name = "table5-q2"
    element = "Q2"     # P1-P3 on triangles, Q1-Q3 on quads

    [mesh]
    n = 64             # a rectangle of n x n cells (or nx, ny; or: file = "domain.msh")
    cell = "quad"      # "quad" or "tri"

    [problem]
    nu = 1.0
    f = "2*pi**2*sin(pi*x)*sin(pi*y)"

    [boundary.boundary]  # a tag: "boundary" is the whole boundary; rectangles have
                         # left, right, bottom and top
    dirichlet = 0.0      # or: neumann = g, or: robin = [alpha, g]

    [exact]
    u = "sin(pi*x)*sin(pi*y)"

    [solver]
    method = "direct"    # direct, cg, amg, or energy (with optimizer = "lbfgs" or "adam")

An elastic case sets ``[problem] type = "linear-elasticity"`` (or ``"neo-hookean"``) with
``E``, ``poisson_ratio``, ``plane`` and ``body_force``, and ``[boundary.TAG]`` tables of
``displacement = [ux, uy]``, ``ux``/``uy`` (rollers) and ``traction = [tx, ty]`` (three
components and ``uz`` in 3D); its space has one component per dimension. ``[output] probes =
[[x, y], ...]`` (``[x, y, z]`` in 3D) adds the solution at those points to the report, for
every problem type.

A case with a ``[time]`` table is transient: a heat problem (:class:`dfem.Heat`) with
``[initial] u``, whose source, boundary values and exact solution may use ``t``; it lives
in :mod:`dfem.problems.transient_case`.

Values are numbers or expressions in x, y (and z in 3D; see :mod:`dfem.problems.expressions`). The
schema is checked by :mod:`dfem.problems.case_schema`, the elastic branch lives in
:mod:`dfem.problems.elastic_case`; the full schema is documented in ``docs/cases.md``.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dfem.exceptions import DfemError
from dfem.fileio import apply_overrides, read_toml, write_json_atomic
from dfem.problems.case_schema import (
    check_case,
    poisson_conditions,
    problem_type,
)
from dfem.problems.case_schema import is_elastic as _is_elastic
from dfem.problems.domain import build_mesh, build_space, is_nurbs
from dfem.problems.expressions import SPACE, coefficient
from dfem.problems.nonlinear import NonlinearPoisson
from dfem.problems.poisson import Poisson
from dfem.validation.errors import errors

__all__ = ["Case", "at_vertices", "case_files"]


def case_files(folder) -> list[Path]:
    """The case files among ``folder/*.toml``, sorted. TOML files with a ``[training]``
    table there are surrogate training configs (``dfem surrogate train``), those with an
    ``[inverse]`` table inverse configs (``dfem inverse``), those with ``[noise]`` or
    ``[compare]`` segmentation configs (``dfem segment``), those with ``[optimizer]``
    optimisation configs (``dfem optimize``): not cases."""
    files = []
    for path in sorted(Path(folder).glob("*.toml")):
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
            if not {"training", "inverse", "noise", "compare", "optimizer"} & set(data):
                files.append(path)
    return files


@dataclass
class Case:
    """A parsed case: the raw table and where it came from."""

    data: dict
    path: Path | None = None
    name: str = "case"
    overrides: list = field(default_factory=list)

    @classmethod
    def load(cls, path, overrides=()) -> Case:
        return cls.from_dict(read_toml(path, "case file"), Path(path), overrides)

    @classmethod
    def from_dict(cls, data: dict, path=None, overrides=()) -> Case:
        """A case from a parsed TOML table, after applying ``overrides`` ("key.path=value")."""
        data = apply_overrides(data, overrides)
        check_case(data)
        return cls(
            data=data,
            path=Path(path) if path else None,
            name=str(data.get("name", Path(path).stem if path else "case")),
        )

    @property
    def kind(self) -> str:
        """``problem.type``: "poisson", "linear-elasticity" or "neo-hookean"; "heat" for a
        transient case."""
        return "heat" if self.transient else problem_type(self.data)

    @property
    def transient(self) -> bool:
        """Whether the case has a ``[time]`` table (a heat problem stepped in time)."""
        return "time" in self.data

    @property
    def elastic(self) -> bool:
        return _is_elastic(self.data)

    @property
    def nonlinear(self) -> bool:
        """Whether the problem is solved by Newton."""
        return self.kind == "neo-hookean" or self.data.get("problem", {}).get("nonlinear") is True

    # ------------------------------------------------------------------ build
    def mesh(self):
        """The case's mesh (for ``element = "nurbs"``, the patch's element corners)."""
        if is_nurbs(self.data):
            return self.space().mesh
        return build_mesh(self.data, self.path)

    def space(self, level: int = 0):
        """The function space, refined ``level`` times (see :mod:`dfem.problems.domain`)."""
        return build_space(self.data, self.path, level, vector=self.elastic)

    def problem(self, space=None):
        """The problem on ``space`` (default: :meth:`space`): a :class:`Poisson`,
        :class:`NonlinearPoisson`, :class:`~dfem.LinearElasticity`, :class:`~dfem.NeoHookean`
        or, for a transient case, a :class:`~dfem.Heat`."""
        space = self.space() if space is None else space
        if self.transient:
            from dfem.problems.transient_case import heat_problem

            return heat_problem(self.data, space)
        if self.elastic:
            from dfem.problems.elastic_case import elastic_problem

            return elastic_problem(self.data, space)
        spec = self.data.get("problem", {})
        nonlinear = spec.get("nonlinear", False)
        if not isinstance(nonlinear, bool):
            raise DfemError(f"problem.nonlinear must be true or false, got {nonlinear!r}.")
        in_u = (*SPACE, "u") if nonlinear else SPACE
        kwargs = {k: coefficient(spec[k], f"problem.{k}", in_u if k == "nu" else SPACE)
                  for k in ("nu", "c", "f") if k in spec}
        if "reaction" in spec and not nonlinear:
            raise DfemError("problem.reaction s(u) needs problem.nonlinear = true.")
        dirichlet, neumann, robin = poisson_conditions(self.data.get("boundary", {}),
                                                       coefficient)
        if nonlinear:
            if robin or "c" in kwargs:
                raise DfemError(
                    "nonlinear cases take nu(u), reaction s(u), f, Dirichlet and Neumann "
                    "conditions; write a linear reaction into problem.reaction and drop robin."
                )
            reaction = spec.get("reaction")
            return NonlinearPoisson(
                # expressions are called as fn(u, x), the form NonlinearPoisson takes
                space, nu=kwargs.get("nu", 1.0), f=kwargs.get("f"),
                reaction=None if reaction is None else coefficient(
                    reaction, "problem.reaction", (*SPACE, "u")),
                dirichlet=dirichlet, neumann=neumann,
            )
        return Poisson(space, dirichlet=dirichlet, neumann=neumann, robin=robin, **kwargs)

    def exact(self):
        """The exact solution ``x -> u(x)`` (``(..., dim)`` for elastic cases; at the final
        time for transient cases), or None."""
        text = self.data.get("exact", {}).get("u")
        if text is None:
            return None
        if self.transient:
            from dfem.problems.transient_case import exact_at

            return exact_at(self.data, float(self.data["time"]["t_end"]))
        if self.elastic:
            from dfem.problems.elastic_case import exact_displacement

            return exact_displacement(text, self.mesh().nodes.shape[1])
        if isinstance(text, list):
            raise DfemError(
                "exact.u of a Poisson case is one number or expression; a list [ux, uy] is the "
                'exact displacement of an elastic case (problem.type = "linear-elasticity").'
            )
        value = coefficient(text, "exact.u")
        if isinstance(value, float):  # a constant solution, as a function of x
            return lambda x: torch.full(x.shape[:-1], value, dtype=x.dtype, device=x.device)
        return value

    # ------------------------------------------------------------------ run
    def probes(self, space):
        """The evaluation of ``[output] probes`` on ``space`` (None without probes); a probe
        outside the domain is a :class:`DfemError` here, before any solve."""
        from dfem.basis.probes import PointEvaluation

        points = self.data.get("output", {}).get("probes")
        if points is None:
            return None
        dim = space.mesh.nodes.shape[1]
        rows = "[x, y] pairs" if dim == 2 else "[x, y, z] triples"
        for point in points:
            if len(point) != dim:
                raise DfemError(
                    f"output.probes: the point {point!r} has {len(point)} coordinates; the "
                    f"mesh is {dim}D, so give {rows}."
                )
        try:
            return PointEvaluation(space, points)
        except DfemError as exc:
            raise DfemError(f"output.probes: {exc}") from exc

    def solve(self, out=None, method: str | None = None, show_progress: bool = False) -> dict:
        """Solve the case; write ``report.json``, ``solution.vtu`` and ``solution.png`` under
        ``out``. A transient case is run by :func:`dfem.problems.transient_case.solve`
        instead (a time series, with a progress bar over the steps if ``show_progress``).

        ``method`` overrides solver.method (and drops the options of the case's
        method that do not apply to it). Returns the report: case, problem, element,
        degree, cells, dofs, solver, setup_s, assemble_s, solve_s, l2_error and h1_error
        (None without an exact solution); Newton solves add newton_iterations and
        load_steps, elastic cases energy, compliance, max_displacement, max_von_mises
        and reactions (see :mod:`dfem.problems.elastic_case`), cases with ``[output]
        probes`` a list of ``{"point", "u"}``.
        """
        if self.transient:
            from dfem.problems import transient_case

            return transient_case.solve(self, out, method, show_progress=show_progress)
        t0 = time.perf_counter()
        problem = self.problem()
        probes = self.probes(problem.space)
        exact = self.exact()
        setup_s = time.perf_counter() - t0
        options = self.solver_options(method)
        method = options["method"]
        t1 = time.perf_counter()
        u = problem.solve(**options)
        solve_s = time.perf_counter() - t1
        space = problem.space
        err = errors(space, u, exact) if exact is not None else {}
        report = {
            "case": self.name,
            "problem": self.kind,
            "element": space.element.name,
            "degree": space.element.degree,
            "cells": space.mesh.n_cells,
            "dofs": space.n_dofs,
            "solver": method,
            "setup_s": setup_s,
            "assemble_s": problem.last_solve.get("assemble_s"),
            "solve_s": problem.last_solve.get("solve_s", solve_s),
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
        if self.elastic:
            from dfem.problems.elastic_case import elastic_report

            report.update(elastic_report(problem, u))
        if probes is not None:
            report["probes"] = _probe_values(probes, self.data["output"]["probes"], u)
        if out is not None:
            self.write_outputs(out, problem, u, report)
        return report

    def write_outputs(self, out, problem, u, report) -> None:
        """``solution.vtu``, ``solution.png`` and ``report.json`` under ``out``.

        Poisson: ``u``, ``nu`` and ``f`` at the vertices, and a field plot of u. Elastic:
        the ``displacement`` (3 components, z = 0 in 2D), ``E`` and ``poisson_ratio`` at
        the vertices and ``von_mises`` per cell, and the deformed mesh coloured by the von
        Mises stress (the true displacement for Neo-Hookean, else scaled so that the
        largest is 10 % of the domain size).
        """
        from dfem.mesh import write_mesh
        from dfem.plots import plot_deformed, plot_solution

        out = Path(out)
        space = problem.space
        if self.elastic:
            from dfem.problems.elastic_case import elastic_fields

            point_data, cell_data = elastic_fields(problem, u)
        else:
            point_data = {"u": space.vertex_values(u.detach())}
            for name in ("nu", "f"):
                value = getattr(problem, name, None)
                if value is not None:
                    point_data[name] = at_vertices(value, space.mesh)
            cell_data = None
        out.mkdir(parents=True, exist_ok=True)
        write_mesh(out / "solution.vtu", space.mesh, point_data=point_data, cell_data=cell_data,
                   vectors=("displacement",) if self.elastic else ())
        if self.elastic:
            plot_deformed(space, u, out / "solution.png", cell_data["von_mises"],
                          scale=1.0 if self.kind == "neo-hookean" else None,
                          title=f"{self.name} ({space.element.name})")
        else:
            plot_solution(space, u, out / "solution.png",
                          title=f"{self.name}: u ({space.element.name})")
        write_json_atomic(out / "report.json", report)

    def convergence(self, levels: int, out=None, show_progress: bool = False) -> dict:
        """Errors on the case's mesh refined 0..levels times, and the fitted rates.

        Writes ``convergence.json`` and ``convergence.png`` under ``out``; reports each
        level on stderr when ``show_progress``.
        """
        from dfem.validation.errors import convergence_study

        if self.transient:
            raise DfemError(
                "dfem convergence does not support transient cases (a [time] table) yet; "
                "refine by hand with --set mesh.n=... and --set time.dt=... and compare the "
                "l2_error of dfem solve."
            )
        exact = self.exact()
        if exact is None:
            raise DfemError("a convergence study needs an exact solution: add [exact] u = \"...\".")
        if int(levels) != levels or levels < 1:
            raise DfemError(f"--levels must be a positive integer, got {levels!r}.")
        spaces = []
        perturbed = "perturb" in self.data.get("mesh", {})

        def solve(level):
            problem = self.problem(self.space(level))
            spaces.append(problem.space)
            u = problem.solve(**self.solver_options())
            if not perturbed:
                return problem.space, u
            # h of the mesh before its random perturbation: the longest edge of a perturbed
            # mesh is the extreme of more and more random samples as the mesh grows, which
            # would bias the fitted rates upwards
            from dfem.validation.errors import mesh_size

            plain = {**self.data, "mesh": {k: v for k, v in self.data["mesh"].items()
                                           if k != "perturb"}}
            return problem.space, u, mesh_size(build_mesh(plain, self.path, level))

        steps = range(int(levels) + 1)
        if show_progress:
            from dfem.progress import progress

            steps = progress(steps, f"{self.name} refinement", unit="level")
        study = convergence_study(solve, exact, steps)
        element = spaces[0].element
        study.update(case=self.name, element=element.name, degree=element.degree)
        if out is not None:
            from dfem.plots import plot_convergence

            out = Path(out)
            out.mkdir(parents=True, exist_ok=True)
            plot_convergence(study, out / "convergence.png", element.degree,
                             title=f"{self.name} ({element.name})")
            write_json_atomic(out / "convergence.json", study)
        return study

    def solver_options(self, method: str | None = None) -> dict:
        """``method`` and its options from [solver], checked against each other and
        against the problem type, as keyword arguments of ``problem.solve``.

        A ``method`` given here overrides the case's and drops its energy-only options.
        ``rtol`` is the tolerance of the iterative linear solvers for linear problems and
        Newton's for nonlinear ones (whose ``maxiter`` stays the linear solver's).
        """
        solver = self.data.get("solver", {})
        energy_only = [k for k in ("optimizer", "lr") if k in solver]
        if method is not None and method != "energy":
            energy_only = []
        method = method or solver.get("method", "direct")
        if method == "energy" and self.elastic:
            raise DfemError(
                'solver.method = "energy" (an optimiser) applies to Poisson cases; an elastic '
                'case is solved with method = "direct", "cg" or "amg" (each Newton step for '
                "neo-hookean)."
            )
        if method != "energy" and energy_only:
            raise DfemError(
                f"solver.{energy_only[0]} applies to energy minimisation only; "
                f'set solver.method = "energy" or drop it.'
            )
        if method == "energy" and self.nonlinear:
            raise DfemError(
                'solver.method = "energy" minimises the energy of a linear problem; a '
                "nonlinear case is solved by Newton with a direct, cg or amg linear solver."
            )
        newton_only = [k for k in ("load_steps", "max_iter") if k in solver]
        if newton_only and not self.nonlinear:
            raise DfemError(
                f"solver.{newton_only[0]} applies to Newton solves of nonlinear problems "
                f'(problem.type = "neo-hookean", or problem.nonlinear = true); this linear '
                f"problem is solved in one linear solve: drop it."
            )
        keys = ("rtol", "maxiter", *energy_only, *newton_only)
        options = {k: solver[k] for k in keys if k in solver}
        return {"method": method, **options}


def _probe_values(probes, points, u) -> list[dict]:
    """``[{"point": [x, y], "u": value or [ux, uy]}, ...]`` at the probe points."""
    with torch.no_grad():
        values = probes(u.detach())
    return [{"point": p, "u": v} for p, v in zip(points, values.tolist(), strict=True)]


def at_vertices(value, mesh):
    """A coefficient (number, callable of x or nodal tensor) at the mesh vertices."""
    x = mesh.nodes.detach()
    if callable(value) and not torch.is_tensor(value):
        return value(x)
    v = torch.as_tensor(value, dtype=x.dtype)
    return v.expand(mesh.n_nodes) if v.ndim == 0 else v[: mesh.n_nodes]
