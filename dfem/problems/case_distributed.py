"""A steady case solved by every rank of an MPI run together: ``mpirun -n N dfem solve``.

Each rank builds the whole mesh (it is replicated), keeps its own cells
(:func:`dfem.distributed.distribute`), builds the space, the coefficients and the
element matrices of those cells, and PETSc solves the assembled system
(``method="petsc"``, CG + GAMG unless the case's [solver] says otherwise). The report is
that of :func:`dfem.problems.case_run.solve` with sums and maxima taken over the ranks
(errors, energy, compliance, reactions, largest displacement and stress), the counts of
the whole mesh, and ``ranks``; the probes are evaluated on the solution gathered on rank
0. With an output folder each rank writes ``solution_<rank>.vtu`` (its cells) and rank 0
``solution.pvtu`` (which joins them), ``solution.png`` (of the gathered solution) and
``report.json``, all staged so that a failed run leaves the folder as it was.

Transient, Newton (Neo-Hookean, nonlinear Poisson) and isogeometric cases run on one
process; asking for them under MPI is an error.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from dfem.distributed.comm import allreduce
from dfem.exceptions import DfemError

#: Report entries summed over the ranks; the maxima; the per-tag force vectors summed.
_SUMS = ("energy", "compliance")
_MAXIMA = ("max_displacement", "max_von_mises")


def solve_distributed(case, out=None, method: str | None = None) -> dict:
    """Solve ``case`` on all ranks of ``MPI.COMM_WORLD``; the report (the same on every
    rank). See the module docstring."""
    from dfem.distributed import world
    from dfem.fileio import staged_folder

    if case.transient or case.nonlinear:
        raise DfemError(
            f"{case.name} is a {'transient' if case.transient else 'Newton (nonlinear)'} "
            "case, which runs on one process: run it without mpirun (distributed runs take "
            "steady Poisson and linear-elasticity cases).")
    if method not in (None, "petsc"):
        raise DfemError(f"under mpirun the solve is PETSc's (method petsc); --method {method} "
                        "runs on one process: drop it or run without mpirun.")
    comm = world()
    if out is None:
        return _run(case, None, comm)
    if comm.Get_rank() != 0:
        return _run(case, comm.bcast(None), comm)
    with staged_folder(out, last=("report.json",)) as stage:
        comm.bcast(str(stage))
        return _run(case, stage, comm)


def _run(case, stage, comm) -> dict:
    from dfem.distributed import distribution
    from dfem.distributed.output import gather_solution
    from dfem.problems import case_output
    from dfem.problems.case_run import ordered_timing, probe_values
    from dfem.validation.error_norms import errors

    t0 = time.perf_counter()
    rank, size = comm.Get_rank(), comm.Get_size()
    space = case.space(distributed=True)
    problem = case.problem(space)
    dist = distribution(space)
    probes = case.probes(dist.global_space)  # points outside the domain: an error on all ranks
    exact = case.exact()
    options = case.solver_options("petsc")
    fields = case_output.coefficient_fields(case, problem) if stage is not None else None
    setup_s = allreduce(time.perf_counter() - t0, "max", comm)
    t1 = time.perf_counter()
    u = problem.solve(**options)
    solve_wall = time.perf_counter() - t1
    t2 = time.perf_counter()
    err = {}
    if exact is not None:
        local = errors(space, u, exact)
        err = {k: math.sqrt(comm.allreduce(v * v)) for k, v in local.items()}
    error_s = allreduce(time.perf_counter() - t2, "max", comm) if exact is not None else None
    info = problem.last_solve.get("info")
    report = {
        "case": case.name,
        "problem": case.kind,
        "element": space.element.name,
        "degree": space.element.degree,
        "cells": dist.partition.global_mesh.n_cells,
        "dofs": dist.n_global,
        "solver": "petsc",
        "ranks": size,
        "iterations": getattr(info, "iterations", None),
        "setup_s": setup_s,
        "assemble_s": allreduce(problem.last_solve.get("assemble_s", 0.0), "max", comm),
        "solve_s": allreduce(problem.last_solve.get("solve_s", solve_wall), "max", comm),
        "error_s": error_s,
        "l2_error": err.get("l2"),
        "h1_error": err.get("h1"),
    }
    if case.elastic:
        report.update(_reduced_elastic_report(problem, u, comm))
    u_all = gather_solution(space, u)
    if probes is not None:
        values = probe_values(probes, case.data["output"]["probes"], u_all) if rank == 0 \
            else None
        report["probes"] = comm.bcast(values)
    if stage is not None:
        t3 = time.perf_counter()
        _write(case, stage, problem, u, u_all, fields, comm)
        report["output_s"] = allreduce(time.perf_counter() - t3, "max", comm)
    report["total_s"] = allreduce(time.perf_counter() - t0, "max", comm)
    report = ordered_timing(report)
    if stage is not None and rank == 0:
        case_output.write_report(stage, report)
    comm.Barrier()  # every rank's files are in the stage before rank 0 moves them
    return report


def _reduced_elastic_report(problem, u, comm) -> dict:
    from dfem.problems.elastic_case import elastic_report

    local = elastic_report(problem, u)
    out = {}
    for key, value in local.items():
        if key in _SUMS:
            out[key] = comm.allreduce(value)
        elif key in _MAXIMA:
            out[key] = allreduce(value, "max", comm)
        elif key == "reactions":
            out[key] = {tag: np.sum(comm.allgather(np.asarray(force)), axis=0).tolist()
                        for tag, force in value.items()}
        else:
            out[key] = value
    return out


def _write(case, stage, problem, u, u_all, fields, comm) -> None:
    """Each rank's ``solution_<rank>.vtu``; on rank 0 ``solution.pvtu`` and the PNG."""
    from pathlib import Path

    from dfem.distributed import distribution
    from dfem.distributed.output import gather, write_pvtu
    from dfem.mesh import write_mesh
    from dfem.plots import plot_deformed, plot_solution
    from dfem.problems.case_output import solution_fields

    stage = Path(stage)
    rank, size = comm.Get_rank(), comm.Get_size()
    space = problem.space
    point_data, cell_data = solution_fields(case, problem, u, fields)
    von_mises = cell_data.get("von_mises")
    cell_data = {**cell_data, "rank": torch.full((space.mesh.n_cells,), rank,
                                                  dtype=torch.int64)}
    write_mesh(stage / f"solution_{rank}.vtu", space.mesh, point_data=point_data,
               cell_data=cell_data, vectors=("displacement",) if case.elastic else ())
    dist = distribution(space)
    part = dist.partition
    if case.elastic:
        von_mises = gather(comm, part.cells, von_mises.numpy(), part.global_mesh.n_cells)
    comm.Barrier()  # piece 0 is complete before rank 0 reads its declarations
    if rank != 0:
        return
    write_pvtu(stage / "solution.pvtu", size)
    whole = dist.global_space
    title = f"({whole.element.name}, {size} ranks)"
    if case.elastic:
        plot_deformed(whole, u_all, stage / "solution.png", torch.as_tensor(von_mises),
                      title=f"{case.name} {title}")
    else:
        plot_solution(whole, u_all, stage / "solution.png", title=f"{case.name}: u {title}")
