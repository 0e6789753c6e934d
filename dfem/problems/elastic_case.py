"""The elastic branch of case files: ``problem.type = "linear-elasticity"`` or ``"neo-hookean"``.

Builds :class:`~dfem.LinearElasticity` / :class:`~dfem.NeoHookean` from ``[problem]`` (``E``,
``poisson_ratio``, ``plane``, ``body_force``) and the ``[boundary.TAG]`` tables
(``displacement = [ux, uy]``, single components ``ux``/``uy``, ``traction = [tx, ty]``,
``stress = [[sxx, sxy], [syx, syy]]`` whose traction sigma.n loads the side), and
gives the figures the report adds for them:

.. math:: J(u) = \\int_\\Omega \\psi(\\nabla u) - b\\cdot u - \\int_{\\Gamma_t} t\\cdot u,
          \\qquad C(u) = \\int_\\Omega b\\cdot u + \\int_{\\Gamma_t} t\\cdot u,
          \\qquad \\max_i |u(x_i)|,

(``energy``, ``compliance`` and ``max_displacement``, the last over the nodes of the
space), the largest per-cell von Mises stress and the reaction of every support,

.. math:: r_{tag, i} = \\sum_{a \\in D_{tag, i}} R_{a i}(u), \\qquad R(u) = f_{int} - f_{ext},

the force the support exerts on the body, where ``D_{tag, i}`` are the nodes whose component
``i`` the tag's condition fixes. A node fixed by two tags (a corner) counts for the one listed
later, as its Dirichlet value does, so the reactions of all supports add up to minus the
applied load.
"""

from __future__ import annotations

import torch

from dfem.exceptions import DfemError
from dfem.problems.case_schema import COMPONENTS
from dfem.problems.expressions import coefficient


def _vector(value, label: str, dim: int, letter: str) -> list:
    """A list of ``dim`` coefficients (numbers or expressions) from a case value."""
    if not isinstance(value, list) or len(value) != dim:
        n = len(value) if isinstance(value, list) else "not a list"
        names = ", ".join(f"{letter}{c}" for c in "xyz"[:dim])
        raise DfemError(
            f"{label} must be a list [{names}] of {dim} numbers or expressions (one per "
            f"component of this {dim}D problem), got {value!r} ({n} entries)."
        )
    return [coefficient(v, f"{label}[{i}]") for i, v in enumerate(value)]


def elastic_problem(data: dict, space, cell_tags=None):
    """The :class:`LinearElasticity` or :class:`NeoHookean` problem of a checked case table.

    ``cell_tags`` (``{tag: cell numbers}`` of ``space``'s mesh, or a function returning
    it) serves ``E`` and ``poisson_ratio`` given per cell tag."""
    from dfem.problems.elasticity import LinearElasticity, NeoHookean

    spec = data.get("problem", {})
    dim = space.mesh.nodes.shape[1]
    kwargs = {k: coefficient(spec[k], f"problem.{k}", cell_tags=cell_tags)
              for k in ("E", "poisson_ratio") if k in spec}
    if "body_force" in spec:
        kwargs["body_force"] = _vector(spec["body_force"], "problem.body_force", dim, "b")
    dirichlet, traction, stress = {}, {}, {}
    for tag, conditions in data.get("boundary", {}).items():
        label = f"boundary.{tag}"
        if "displacement" in conditions:
            value = conditions["displacement"]
            if isinstance(value, list):
                dirichlet[tag] = _vector(value, f"{label}.displacement", dim, "u")
            else:
                dirichlet[tag] = coefficient(value, f"{label}.displacement")
        beyond = [c for c in COMPONENTS[dim:] if c in conditions]
        if beyond:
            raise DfemError(
                f"unknown key(s) {', '.join(beyond)} in [{label}]: the mesh is {dim}D, so a "
                f"displacement has the components {', '.join(COMPONENTS[:dim])}."
            )
        parts = {c: conditions[c] for c in COMPONENTS[:dim] if c in conditions}
        if parts:
            dirichlet[tag] = {c: coefficient(v, f"{label}.{c}") for c, v in parts.items()}
        if "traction" in conditions:
            traction[tag] = _vector(conditions["traction"], f"{label}.traction", dim, "t")
        if "stress" in conditions:
            rows = conditions["stress"]
            if len(rows) != dim:
                raise DfemError(f"{label}.stress has {len(rows)} rows; this {dim}D problem "
                                f"needs {dim} x {dim}.")
            stress[tag] = [[coefficient(v, f"{label}.stress[{i}][{j}]")
                            for j, v in enumerate(row)] for i, row in enumerate(rows)]
    if not dirichlet:
        raise DfemError(
            "an elastic case needs a displacement condition on some boundary tag (e.g. "
            "[boundary.left] displacement = [0, 0]); without one the body can move freely "
            "and the problem has no unique solution."
        )
    cls = NeoHookean if spec.get("type") == "neo-hookean" else LinearElasticity
    if cls is NeoHookean and spec.get("plane") == "stress":
        raise DfemError(
            'problem.plane = "stress" applies to linear elasticity; the Neo-Hookean model in '
            'dfem is plane strain in 2D: drop problem.plane or set it to "strain".'
        )
    return cls(space, plane=spec.get("plane"), dirichlet=dirichlet,
               traction=traction, boundary_stress=stress, **kwargs)


def exact_displacement(value, dim: int):
    """``[exact] u = [ux, uy]`` as a callable ``x -> (..., dim)``."""
    parts = _vector(value, "exact.u", dim, "u")

    def exact(x):
        columns = [p(x) if callable(p) else torch.full(x.shape[:-1], p, dtype=x.dtype,
                                                       device=x.device) for p in parts]
        return torch.stack(columns, dim=-1)

    return exact


def elastic_report(problem, u: torch.Tensor) -> dict:
    """``energy``, ``compliance``, ``max_displacement``, ``max_von_mises`` and the support
    ``reactions`` (:func:`dfem.problems.stresses.reactions`) of an elastic solution ``u``."""
    u = u.detach()
    with torch.no_grad():
        nodal = problem.space.components(u)
        report = {
            "energy": float(problem.energy(u)),
            "compliance": float(problem.compliance(u)),
            "max_displacement": float(torch.linalg.vector_norm(nodal, dim=-1).max()),
            "max_von_mises": float(problem.von_mises(u, per_cell=True).max()),
        }
        report["reactions"] = {tag: force.tolist()
                               for tag, force in problem.reactions(u).items()}
    return report


def elastic_fields(problem, u: torch.Tensor):
    """The fields of the output files beside the coefficients: the displacement at the
    vertices and the von Mises stress per cell."""
    space, u = problem.space, u.detach()
    with torch.no_grad():
        return space.vertex_values(u), problem.von_mises(u, per_cell=True)
