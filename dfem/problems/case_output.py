"""The output files of a steady case: ``solution.vtu``, ``solution.png``, ``report.json``.

Poisson: ``u``, ``nu``, ``c`` (if given) and ``f`` at the vertices, and a field plot of u.
Elastic: the ``displacement`` (3 components, z = 0 in 2D), ``E`` and ``poisson_ratio`` at
the vertices and ``von_mises`` per cell, and the deformed mesh coloured by the von Mises stress (the
true displacement for Neo-Hookean, else scaled so that the largest is 10 % of the domain
size). A coefficient given per cell tag (:mod:`dfem.problems.subdomains`) is
discontinuous across the tags, so it is written per cell (its value at the cell's
centroid) instead of at the vertices.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dfem.fileio import write_json_atomic

#: The coefficients written beside the solution, by problem kind.
_COEFFICIENTS = {"poisson": ("nu", "c", "f"), "elastic": ("E", "poisson_ratio")}


def at_vertices(value, mesh):
    """A coefficient (number, callable of x or nodal tensor) at the mesh vertices."""
    x = mesh.nodes.detach()
    if callable(value) and not torch.is_tensor(value):
        return value(x)
    v = torch.as_tensor(value, dtype=x.dtype)
    return v.expand(mesh.n_nodes) if v.ndim == 0 else v[: mesh.n_nodes]


def coefficient_fields(case, problem) -> tuple[dict, dict]:
    """``(point_data, cell_data)``: the problem's coefficients at the vertices (per cell
    for those given per cell tag), as written into ``solution.vtu``.

    An expression that is NaN or inf at a vertex raises a :class:`DfemError` naming it
    (see :class:`dfem.problems.expressions.Expression`).
    """
    from dfem.problems.subdomains import CellwiseCoefficient

    mesh = problem.space.mesh
    if case.elastic:
        params = problem.params
        values = {name: params.get(name) for name in _COEFFICIENTS["elastic"]}
    else:
        values = {name: getattr(problem, name, None) for name in _COEFFICIENTS["poisson"]}
    point, cell = {}, {}
    with torch.no_grad():
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, CellwiseCoefficient):
                cell[name] = value.at_centroids(mesh)
            else:
                point[name] = at_vertices(value, mesh)
    return point, cell


def solution_fields(case, problem, u, fields=None) -> tuple[dict, dict]:
    """``(point_data, cell_data)`` of the output files: the solution (``u``, or the
    ``displacement`` and the ``von_mises`` stress per cell) beside the coefficients
    (``fields``, :func:`coefficient_fields` if already evaluated)."""
    point_data, cell_data = coefficient_fields(case, problem) if fields is None else fields
    u = u.detach()
    if case.elastic:
        from dfem.problems.elastic_case import elastic_fields

        displacement, von_mises = elastic_fields(problem, u)
        return ({"displacement": displacement, **point_data},
                {**cell_data, "von_mises": von_mises})
    return {"u": problem.space.vertex_values(u), **point_data}, cell_data


def write_solution(case, out, problem, u, fields=None) -> None:
    """``solution.vtu`` and ``solution.png`` under ``out`` (created if missing);
    ``fields`` is :func:`coefficient_fields` if already evaluated."""
    from dfem.mesh import write_mesh
    from dfem.plots import plot_deformed, plot_solution

    out = Path(out)
    space = problem.space
    u = u.detach()
    point_data, cell_data = solution_fields(case, problem, u, fields)
    out.mkdir(parents=True, exist_ok=True)
    write_mesh(out / "solution.vtu", space.mesh, point_data=point_data,
               cell_data=cell_data or None, vectors=("displacement",) if case.elastic else ())
    if case.elastic:
        plot_deformed(space, u, out / "solution.png", cell_data["von_mises"],
                      scale=1.0 if case.kind == "neo-hookean" else None,
                      title=f"{case.name} ({space.element.name})")
    else:
        plot_solution(space, u, out / "solution.png",
                      title=f"{case.name}: u ({space.element.name})")


def write_report(out, report: dict) -> None:
    """``report.json`` under ``out`` (written atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "report.json", report)


def write_outputs(case, out, problem, u, report: dict) -> None:
    """``solution.vtu``, ``solution.png`` and ``report.json`` under ``out`` (see the
    module docstring)."""
    write_solution(case, out, problem, u)
    write_report(out, report)
