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

Values are numbers or expressions in x, y (see :mod:`dfem.problems.expressions`).
The full schema is documented in ``docs/cases.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import tomllib
import torch

from dfem.errors import DfemError
from dfem.fileio import read_toml, write_json_atomic
from dfem.problems.domain import NURBS_KEYS, build_mesh, build_space, is_nurbs
from dfem.problems.expressions import coefficient
from dfem.problems.nonlinear import NonlinearPoisson
from dfem.problems.poisson import Poisson
from dfem.validation.errors import errors

_KNOWN = {
    "": {"name", "description", "mesh", "element", "nurbs", "problem", "boundary", "exact",
         "solver"},
    "mesh": {"n", "nx", "ny", "cell", "x", "y", "file", "diagonal"},
    "nurbs": NURBS_KEYS,
    "problem": {"nu", "c", "f", "nonlinear", "reaction"},
    "exact": {"u", "l2_error_max"},
    "solver": {"method", "rtol", "maxiter", "optimizer", "lr"},
}


def case_files(folder) -> list[Path]:
    """The case files among ``folder/*.toml``, sorted. TOML files with a ``[training]``
    table there are surrogate training configs (``dfem surrogate train``), those with an
    ``[inverse]`` table inverse configs (``dfem inverse``), those with ``[noise]`` or
    ``[compare]`` segmentation configs (``dfem segment``): not cases."""
    files = []
    for path in sorted(Path(folder).glob("*.toml")):
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
            if not {"training", "inverse", "noise", "compare"} & set(data):
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
        for section, keys in _KNOWN.items():
            table = data if section == "" else data.get(section, {})
            if not isinstance(table, dict):
                raise DfemError(f"[{section}] must be a table in the case file.")
            unknown = set(table) - keys
            if unknown:
                where = f"[{section}]" if section else "the top level"
                raise DfemError(
                    f"unknown key(s) {', '.join(sorted(unknown))} in {where} of the case file; "
                    f"known keys: {', '.join(sorted(keys))}."
                )
        _check_types(data)
        return cls(
            data=data,
            path=Path(path) if path else None,
            name=str(data.get("name", Path(path).stem if path else "case")),
        )

    # ------------------------------------------------------------------ build
    def mesh(self):
        """The case's mesh (for ``element = "nurbs"``, the patch's element corners)."""
        if is_nurbs(self.data):
            return self.space().mesh
        return build_mesh(self.data, self.path)

    def space(self, level: int = 0):
        """The function space, refined ``level`` times (see :mod:`dfem.problems.domain`)."""
        return build_space(self.data, self.path, level)

    def problem(self, space=None) -> Poisson:
        """The problem on ``space`` (default: :meth:`space`)."""
        space = self.space() if space is None else space
        spec = self.data.get("problem", {})
        nonlinear = spec.get("nonlinear", False)
        if not isinstance(nonlinear, bool):
            raise DfemError(f"problem.nonlinear must be true or false, got {nonlinear!r}.")
        in_u = ("x", "y", "u") if nonlinear else ("x", "y")
        kwargs = {k: coefficient(spec[k], f"problem.{k}", in_u if k == "nu" else ("x", "y"))
                  for k in ("nu", "c", "f") if k in spec}
        if "reaction" in spec and not nonlinear:
            raise DfemError("problem.reaction s(u) needs problem.nonlinear = true.")
        dirichlet, neumann, robin = {}, {}, {}
        for tag, conditions in self.data.get("boundary", {}).items():
            if not isinstance(conditions, dict) or len(conditions) != 1:
                raise DfemError(
                    f"[boundary.{tag}] must hold exactly one of dirichlet, neumann or robin."
                )
            ((kind, value),) = conditions.items()
            label = f"boundary.{tag}.{kind}"
            if kind == "dirichlet":
                dirichlet[tag] = coefficient(value, label)
            elif kind == "neumann":
                neumann[tag] = coefficient(value, label)
            elif kind == "robin":
                if not isinstance(value, list) or len(value) != 2:
                    raise DfemError(f"{label} must be [alpha, g] for nu du/dn + alpha u = g.")
                robin[tag] = (coefficient(value[0], label), coefficient(value[1], label))
            else:
                raise DfemError(f"[boundary.{tag}] has {kind!r}; use dirichlet, neumann or robin.")
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
                    reaction, "problem.reaction", ("x", "y", "u")),
                dirichlet=dirichlet, neumann=neumann,
            )
        return Poisson(space, dirichlet=dirichlet, neumann=neumann, robin=robin, **kwargs)

    def exact(self):
        text = self.data.get("exact", {}).get("u")
        if text is None:
            return None
        value = coefficient(text, "exact.u")
        if isinstance(value, float):  # a constant solution, as a function of x
            return lambda x: torch.full(x.shape[:-1], value, dtype=x.dtype, device=x.device)
        return value

    # ------------------------------------------------------------------ run
    def solve(self, out=None, method: str | None = None) -> dict:
        """Solve the case; write ``report.json`` (and ``solution.vtu``) under ``out``.

        ``method`` overrides solver.method (and drops the options of the case's
        method that do not apply to it). Returns the report: case, element, degree,
        cells, dofs, solver, assemble_s, solve_s, l2_error and h1_error (None without
        an exact solution).
        """
        t0 = time.perf_counter()
        problem = self.problem()
        setup_s = time.perf_counter() - t0
        options = self.solver_options(method)
        method = options["method"]
        t1 = time.perf_counter()
        u = problem.solve(**options)
        solve_s = time.perf_counter() - t1
        space = problem.space
        exact = self.exact()
        err = errors(space, u, exact) if exact is not None else {}
        report = {
            "case": self.name,
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
        if method == "energy":
            info = problem.last_solve["info"]
            report["optimizer"] = info.optimizer
            report["energy_iterations"] = info.iterations
            report["relative_residual"] = info.residuals[-1][1] if info.residuals else 0.0
        if out is not None:
            self.write_outputs(out, problem, u, report)
        return report

    def write_outputs(self, out, problem, u, report) -> None:
        """``report.json``, ``solution.vtu`` (u, nu and f at the vertices) and ``solution.png``."""
        from dfem.mesh import write_mesh
        from dfem.plots import plot_solution

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        space = problem.space
        point_data = {"u": space.vertex_values(u.detach())}
        for name in ("nu", "f"):
            value = getattr(problem, name)
            if value is not None:
                point_data[name] = _at_vertices(value, space.mesh)
        write_mesh(out / "solution.vtu", space.mesh, point_data=point_data)
        title = f"{self.name}: u ({space.element.name})"
        plot_solution(space, u, out / "solution.png", title=title)
        write_json_atomic(out / "report.json", report)

    def convergence(self, levels: int, out=None, show_progress: bool = False) -> dict:
        """Errors on the case's mesh refined 0..levels times, and the fitted rates.

        Writes ``convergence.json`` and ``convergence.png`` under ``out``; reports each
        level on stderr when ``show_progress``.
        """
        from dfem.validation.errors import convergence_study

        exact = self.exact()
        if exact is None:
            raise DfemError("a convergence study needs an exact solution: add [exact] u = \"...\".")
        if int(levels) != levels or levels < 1:
            raise DfemError(f"--levels must be a positive integer, got {levels!r}.")
        spaces = []

        def solve(level):
            problem = self.problem(self.space(level))
            spaces.append(problem.space)
            return problem.space, problem.solve(**self.solver_options())

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
        """``method`` and its options from [solver], checked against each other.

        A ``method`` given here overrides the case's and drops its energy-only options.
        """
        solver = self.data.get("solver", {})
        energy_only = [k for k in ("optimizer", "lr") if k in solver]
        if method is not None and method != "energy":
            energy_only = []
        method = method or solver.get("method", "direct")
        if method != "energy" and energy_only:
            raise DfemError(
                f"solver.{energy_only[0]} applies to energy minimisation only; "
                f'set solver.method = "energy" or drop it.'
            )
        if method == "energy" and self.data.get("problem", {}).get("nonlinear", False):
            raise DfemError(
                'solver.method = "energy" minimises the energy of a linear problem; a '
                "nonlinear case is solved by Newton with a direct, cg or amg linear solver."
            )
        options = {k: solver[k] for k in ("rtol", "maxiter", *energy_only) if k in solver}
        return {"method": method, **options}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e300


def _positive_int(v) -> bool:
    return _is_int(v) and 0 < v < 2**31


def _pair(v) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(map(_is_number, v))


#: The type each scalar key must have: (check, what to say when it fails).
_TYPES = {
    ("", "name"): (lambda v: isinstance(v, str), "a string"),
    ("", "description"): (lambda v: isinstance(v, str), "a string"),
    ("", "element"): (lambda v: isinstance(v, str), 'a string such as "Q2" or "P1"'),
    ("mesh", "n"): (_positive_int, "a positive integer"),
    ("mesh", "nx"): (_positive_int, "a positive integer"),
    ("mesh", "ny"): (_positive_int, "a positive integer"),
    ("mesh", "cell"): (lambda v: v in ("quad", "tri"), '"quad" or "tri"'),
    ("mesh", "diagonal"): (
        lambda v: v in ("right", "left", "alternate"),
        '"right", "left" or "alternate"',
    ),
    ("mesh", "file"): (lambda v: isinstance(v, str), "a path (string)"),
    ("mesh", "x"): (_pair, "a pair of numbers [lo, hi]"),
    ("mesh", "y"): (_pair, "a pair of numbers [lo, hi]"),
    ("nurbs", "geometry"): (lambda v: isinstance(v, str), 'a string such as "quarter-annulus"'),
    ("nurbs", "degree"): (lambda v: _is_int(v) and 1 <= v <= 10, "an integer from 1 to 10"),
    ("nurbs", "degree_u"): (lambda v: _is_int(v) and 1 <= v <= 10, "an integer from 1 to 10"),
    ("nurbs", "degree_v"): (lambda v: _is_int(v) and 1 <= v <= 10, "an integer from 1 to 10"),
    ("nurbs", "radii"): (_pair, "a pair of numbers [r_inner, r_outer]"),
    ("exact", "l2_error_max"): (lambda v: _is_number(v) and v > 0, "a positive number"),
    ("solver", "method"): (
        lambda v: v in ("direct", "cg", "amg", "energy"),
        '"direct", "cg", "amg" or "energy"',
    ),
    ("solver", "optimizer"): (
        lambda v: v in ("lbfgs", "torch-lbfgs", "adam"),
        '"lbfgs", "torch-lbfgs" or "adam"',
    ),
    ("solver", "lr"): (lambda v: _is_number(v) and v > 0, "a positive number"),
    ("solver", "rtol"): (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("solver", "maxiter"): (_positive_int, "a positive integer"),
}


def _check_types(data: dict) -> None:
    """Raise :class:`DfemError` naming the first key whose value has the wrong type."""
    for (section, key), (check, what) in _TYPES.items():
        table = data if section == "" else data.get(section, {})
        if key in table and not check(table[key]):
            where = f"{section}.{key}" if section else key
            raise DfemError(f"{where} must be {what}, got {table[key]!r}.")
    boundary = data.get("boundary", {})
    if not isinstance(boundary, dict) or not all(isinstance(v, dict) for v in boundary.values()):
        raise DfemError("[boundary] must hold tables [boundary.TAG] with one condition each.")


def _at_vertices(value, mesh):
    x = mesh.nodes.detach()
    if callable(value) and not torch.is_tensor(value):
        return value(x)
    v = torch.as_tensor(value, dtype=x.dtype)
    return v.expand(mesh.n_nodes) if v.ndim == 0 else v[: mesh.n_nodes]


def apply_overrides(data: dict, overrides) -> dict:
    """Apply ``key.path=value`` overrides (values parsed as TOML, else kept as text)."""
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise DfemError(f"--set takes key=value (e.g. mesh.n=128), got {item!r}.")
        key, text = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        *parents, leaf = key.strip().split(".")
        table = data
        for part in parents:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise DfemError(f"--set {key}: {part!r} is not a table in the case file.")
        table[leaf] = value
    return data
