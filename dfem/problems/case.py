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

Values are numbers, expressions in x, y (and z in 3D; see :mod:`dfem.problems.expressions`)
or, for coefficients on a mesh file with cell tags, tables of one value per tag
(:mod:`dfem.problems.subdomains`). The schema is checked by
:mod:`dfem.problems.case_schema`.

This module parses a case and builds its parts (:class:`Case`); the Poisson, elastic and
transient branches build their problems in :mod:`~dfem.problems.poisson_case`,
:mod:`~dfem.problems.elastic_case` and :mod:`~dfem.problems.transient_case`. Solving and
the timed report are :mod:`dfem.problems.case_run`, the output files
:mod:`dfem.problems.case_output`, convergence studies
:mod:`dfem.problems.case_convergence`. The full schema is documented in ``docs/cases.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from dfem.exceptions import DfemError
from dfem.fileio import apply_overrides, read_toml
from dfem.problems.case_output import at_vertices
from dfem.problems.case_schema import check_case, problem_type
from dfem.problems.case_schema import is_elastic as _is_elastic
from dfem.problems.domain import build_mesh, build_space, is_nurbs, space_cell_tags
from dfem.problems.expressions import coefficient

__all__ = ["Case", "at_vertices", "case_files"]


def case_files(folder) -> list[Path]:
    """The case files among ``folder/*.toml``, sorted: every file but the surrogate,
    segmentation, inverse and optimisation configs (told apart by
    :func:`dfem.shipped.config_kind`; a file of no known kind is left to :meth:`Case.load`
    to judge)."""
    from dfem.shipped import SOLVE, file_kind

    return [p for p in sorted(Path(folder).glob("*.toml")) if file_kind(p) in (SOLVE, None)]


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

    def space(self, level: int = 0, distributed: bool = False):
        """The function space, refined ``level`` times (see :mod:`dfem.problems.domain`);
        with ``distributed``, on this MPI rank's part of the mesh."""
        return build_space(self.data, self.path, level, vector=self.elastic,
                           distributed=distributed)

    def cell_tags(self, space) -> dict:
        """``{tag: cell numbers}`` of ``space``'s mesh: the mesh file's cell tags (gmsh
        physical surfaces in 2D, volumes in 3D), carried through the refinement that
        made ``space`` (see :func:`dfem.problems.domain.space_cell_tags`)."""
        return space_cell_tags(self.data, self.path, space)

    def problem(self, space=None):
        """The problem on ``space`` (default: :meth:`space`): a :class:`~dfem.Poisson`,
        :class:`~dfem.NonlinearPoisson`, :class:`~dfem.LinearElasticity`,
        :class:`~dfem.NeoHookean` or, for a transient case, a :class:`~dfem.Heat`."""
        space = self.space() if space is None else space
        # read only when a coefficient is a table of cell tags
        tags = lambda: self.cell_tags(space)  # noqa: E731
        if self.transient:
            from dfem.problems.transient_case import heat_problem

            return heat_problem(self.data, space, tags)
        if self.elastic:
            from dfem.problems.elastic_case import elastic_problem

            return elastic_problem(self.data, space, tags)
        from dfem.problems.poisson_case import poisson_problem

        return poisson_problem(self.data, space, tags)

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
        petsc_only = [k for k in ("ksp_type", "pc_type", "petsc_options") if k in solver]
        if petsc_only and method != "petsc":
            raise DfemError(f'solver.{petsc_only[0]} applies to method = "petsc" only; set '
                            f'solver.method = "petsc" or drop it.')
        keys = ("rtol", "maxiter", *energy_only, *newton_only, *petsc_only)
        options = {k: solver[k] for k in keys if k in solver}
        if "petsc_options" in options:
            options["options"] = options.pop("petsc_options")
        return {"method": method, **options}

    # ------------------------------------------------------------------ run
    def solve(self, out=None, method: str | None = None, show_progress: bool = False) -> dict:
        """Solve the case and return its report; with ``out``, write ``report.json``,
        ``solution.vtu`` and ``solution.png`` there. See :func:`dfem.problems.case_run.solve`
        (a transient case: :func:`dfem.problems.transient_case.solve`)."""
        from dfem.problems.case_run import solve

        return solve(self, out, method, show_progress=show_progress)

    def write_outputs(self, out, problem, u, report) -> None:
        """``solution.vtu``, ``solution.png`` and ``report.json`` under ``out`` (see
        :func:`dfem.problems.case_output.write_outputs`)."""
        from dfem.problems.case_output import write_outputs

        write_outputs(self, out, problem, u, report)

    def convergence(self, levels: int, out=None, show_progress: bool = False) -> dict:
        """Errors on the case's mesh refined 0..levels times, and the fitted rates (see
        :func:`dfem.problems.case_convergence.convergence`)."""
        from dfem.problems.case_convergence import convergence

        return convergence(self, levels, out, show_progress=show_progress)
