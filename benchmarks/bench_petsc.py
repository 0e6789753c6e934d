"""Distributed solves on PETSc: 1 vs 2 MPI ranks, and PETSc's GAMG vs dfem's own AMG-CG.

The problem (as in ``bench_3d.py``'s large solve): ``-div(nu grad u) = 1`` in a box of
``nx x ny x nz`` trilinear hexahedra (Q1), ``u = 0`` on the face x = 0, natural
conditions elsewhere, per-cell ``nu = 1 + 0.5 sin(2 pi x) sin(2 pi y) sin(2 pi z)``
(centroids); the objective ``J = sum_i u_i^2`` and its gradient with respect to the
per-cell nu (one adjoint solve; ``J`` is not the energy, so the adjoint is a solve of its
own). Every run is a fresh process (its peak memory is its own):

- ``serial``, one process, no MPI: ``Poisson(...).solve(method)`` with ``method="amg"``
  (dfem's CG + V-cycle in torch on pyamg's coarsening) and ``method="petsc"``
  (CG + GAMG), both ``rtol`` 1e-10;
- ``mpi``: ``mpirun -n R`` of the distributed path (:func:`dfem.distributed.distribute`,
  ``method="petsc"``), R = 1 and 2, on the same mesh (strong scaling), and a weak-scaling
  pair: R = 1 on ``m x m x m`` cells and R = 2 on ``2m x m x m``;
- ``elasticity``: the same distributed path, R = 1 and 2, for 3D linear elasticity (Q1,
  E per cell as nu above, poisson_ratio 0.3, clamped at x = 0, a traction (0, 0, -1e-3) on
  x = x1) on ``2k x k x k`` cells: CG + GAMG with the rigid-body modes; the per-dof costs
  that ``docs/distributed.md`` scales up to a cluster.

Each run reports the phases (``build_s``: mesh, partition, spaces and problem;
``forward_s``: assembly, PETSc set-up and the solve; ``backward_s``: the adjoint solve
and the gradient), the Krylov iterations, and the peak resident memory of every rank
(``ru_maxrss``) with the resident memory after the imports (``baseline_gb``), from which
the memory per dof. ``J`` of every run is compared with the serial ``method="amg"`` run's.

Run: ``python benchmarks/bench_petsc.py --json benchmarks/results/bench_petsc_cpu.json``
(about 10 minutes on 2 cores at the default n = 99: 1.0M dofs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing dfem
    sys.path.insert(0, str(ROOT))


def worker(args) -> None:
    """One run (see the module docstring); prints one JSON line (rank 0)."""
    import torch

    import dfem
    from benchmarks.harness import peak_rss_gb, rss_gb, solve_factor

    baseline = rss_gb()
    torch.set_default_dtype(torch.float64)
    from dfem.mesh import box

    distributed = args.worker == "mpi"
    t0 = time.perf_counter()
    mesh = box(args.nx, args.ny, args.nz, "hex", x=(0.0, args.nx / args.nz))
    if distributed:
        from mpi4py import MPI

        from dfem.distributed import Partition, allreduce_sum, distribution

        comm = MPI.COMM_WORLD
        part = Partition(mesh, comm)
        space = dfem.FunctionSpace(part.mesh, "Q1")
        cells = torch.as_tensor(part.cells)
    else:
        comm = None
        space = dfem.FunctionSpace(mesh, "Q1")
        cells = torch.arange(mesh.n_cells)
    c = mesh.nodes[mesh.cells].mean(1)
    nu_all = 1.0 + 0.5 * torch.prod(torch.sin(2 * math.pi * c), dim=-1)
    nu = nu_all[cells].clone().requires_grad_()
    if args.physics == "elasticity":
        space = dfem.FunctionSpace(space.mesh, "Q1", shape=(3,))
        problem = dfem.LinearElasticity(space, E=nu, poisson_ratio=0.3, dirichlet={"left": 0.0},
                                        traction={"right": [0.0, 0.0, -1e-3]})
    else:
        problem = dfem.Poisson(space, nu=nu, f=1.0, dirichlet={"left": 0.0})
    owned = distribution(space).owned if distributed else None
    n_dofs = distribution(space).n_global if distributed else space.n_dofs
    build_s = time.perf_counter() - t0
    if distributed:
        comm.Barrier()
    t1 = time.perf_counter()
    u = problem.solve(method=args.method, rtol=1e-10)
    forward_s = time.perf_counter() - t1
    info = problem.last_solve["info"]  # a snapshot of the forward solve
    factor = solve_factor(u)  # its live info counts the adjoint solve too
    t2 = time.perf_counter()
    if distributed:
        J = allreduce_sum((u[owned] ** 2).sum())
    else:
        J = (u**2).sum()
    J.backward()
    backward_s = time.perf_counter() - t2
    result = {
        "build_s": build_s,
        "forward_s": forward_s,
        "assemble_s": problem.last_solve["assemble_s"],
        "solver_setup_s": info.setup_s,
        "backward_s": backward_s,
        "iterations_forward": info.iterations,
        "iterations_adjoint": factor.info.iterations - info.iterations,
        "adjoint_solve_s": factor.info.solve_s - info.solve_s,
        "objective": float(J),
        "grad_finite": bool(torch.isfinite(nu.grad).all()),
        "local_cells": len(cells),
        "local_dofs": space.n_dofs,
        "baseline_gb": baseline,
        "peak_gb": peak_rss_gb(),
    }
    if distributed:
        ranks = comm.gather(result, root=0)
        if comm.Get_rank() != 0:
            return
        slowest = {k: max(r[k] for r in ranks) for k in ("build_s", "forward_s", "assemble_s",
                                                         "solver_setup_s", "backward_s")}
        result = {**result, **slowest, "per_rank": ranks, "ranks": len(ranks)}
    result.update(n_cells=mesh.n_cells, n_dofs=n_dofs, total_s=result["forward_s"]
                  + result["backward_s"])
    print("RESULT " + json.dumps(result), flush=True)


def _launch(kind, method, nx, ny, nz, ranks=1, physics="poisson", threads=1,
            timeout=3600) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--method",
               method, "--nx", str(nx), "--ny", str(ny), "--nz", str(nz), "--physics", physics]
    if kind == "mpi":
        command = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                   "-n", str(ranks), *command]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - t0
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    if run.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command)} failed ({run.returncode}):\n"
                           f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["process_wall_s"] = wall
    result["per_dof_bytes"] = {
        "peak_above_baseline": max(
            (r["peak_gb"] - r["baseline_gb"]) for r in result.get("per_rank", [result]))
        * 2**30 / result["n_dofs"] * result.get("ranks", 1)}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--n", type=int, default=99, help="cells per side (default 99: 1.0M "
                        "dofs)")
    parser.add_argument("--weak-n", type=int, default=64,
                        help="cells per side of the 1-rank weak-scaling box (2 ranks: twice "
                             "as long in x)")
    parser.add_argument("--elasticity-k", type=int, default=32,
                        help="the elastic box has 2k x k x k cells (default 32: 212k dofs)")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--physics", default="poisson", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["serial", "mpi"], help=argparse.SUPPRESS)
    parser.add_argument("--method", default="petsc", help=argparse.SUPPRESS)
    parser.add_argument("--nx", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ny", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nz", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if shutil.which("mpirun") is None:
        print("bench_petsc: mpirun is not installed (see docs/distributed.md)", file=sys.stderr)
        return 2
    from benchmarks.harness import git_state, machine_info, write_json

    n, m, R, k = args.n, args.weak_n, args.ranks, args.elasticity_k
    runs = {}
    plan = [
        ("serial_amg", ("serial", "amg", n, n, n)),
        ("serial_petsc", ("serial", "petsc", n, n, n)),
        ("mpi_1", ("mpi", "petsc", n, n, n, 1)),
        (f"mpi_{R}", ("mpi", "petsc", n, n, n, R)),
        ("weak_1", ("mpi", "petsc", m, m, m, 1)),
        (f"weak_{R}", ("mpi", "petsc", R * m, m, m, R)),
        ("elasticity_1", ("mpi", "petsc", 2 * k, k, k, 1, "elasticity")),
        (f"elasticity_{R}", ("mpi", "petsc", 2 * k, k, k, R, "elasticity")),
    ]
    for name, spec in plan:
        print(f"{name}: {spec}", flush=True)
        runs[name] = _launch(*spec)
        r = runs[name]
        print(f"  {r['n_dofs']} dofs: forward {r['forward_s']:.2f} s, backward "
              f"{r['backward_s']:.2f} s, {r['iterations_forward']} + "
              f"{r['iterations_adjoint']} iterations, peak {r['peak_gb']:.2f} GB per rank",
              flush=True)
    reference = runs["serial_amg"]["objective"]
    for name in ("serial_petsc", "mpi_1", f"mpi_{R}"):
        r = runs[name]
        r["objective_rel_diff_vs_serial_amg"] = abs(r["objective"] - reference) / abs(reference)
    one, many = runs["elasticity_1"]["objective"], runs[f"elasticity_{R}"]["objective"]
    runs[f"elasticity_{R}"]["objective_rel_diff_vs_1_rank"] = abs(many - one) / abs(one)
    summary = {
        "gamg_vs_pyamg_total_ratio": runs["serial_petsc"]["total_s"]
        / runs["serial_amg"]["total_s"],
        f"speedup_{R}_ranks": runs["mpi_1"]["total_s"] / runs[f"mpi_{R}"]["total_s"],
        f"weak_scaling_efficiency_{R}_ranks": runs["weak_1"]["total_s"]
        / runs[f"weak_{R}"]["total_s"],
        f"elasticity_speedup_{R}_ranks": runs["elasticity_1"]["total_s"]
        / runs[f"elasticity_{R}"]["total_s"],
        "peak_gb_per_rank": {k: max(p["peak_gb"] for p in r.get("per_rank", [r]))
                             for k, r in runs.items()},
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        write_json(args.json, {
            "machine": machine_info({"petsc4py": "petsc4py", "mpi4py": "mpi4py",
                                     "pyamg": "pyamg"}, git=git_state(ROOT)),
            "settings": {"problem": "Q1 Poisson, per-cell nu, u = 0 on x = 0, J = sum u^2",
                         "rtol": 1e-10, "threads_per_rank": 1, "n": n, "weak_n": m,
                         "ranks": R},
            "runs": runs,
            "summary": summary,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
