"""The paper's route (minimise the Galerkin energy with an optimiser) against the direct solve.

Table 5 problem (-Δu = 2π² sin(πx) sin(πy), u = 0 on the boundary) and a variable-nu problem
with a non-eigenfunction load, on an n x n Q1 mesh. For each optimiser: iterations, energy
evaluations, seconds, relative max-norm distance to the direct solution.

    python benchmarks/energy_minimisation.py --n 32 --json benchmarks/results/energy_min.json
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch

import dfem
from dfem.fileio import write_json_atomic
from dfem.solvers import minimize_energy

PI = math.pi


def problems(n: int) -> dict:
    space = dfem.FunctionSpace(dfem.mesh.rectangle(n, n, "quad"), "Q1")
    return {
        "table5": dfem.Poisson(
            space,
            f=lambda x: 2 * PI**2 * torch.sin(PI * x[..., 0]) * torch.sin(PI * x[..., 1]),
            dirichlet={"boundary": 0.0},
        ),
        "variable_nu": dfem.Poisson(
            space,
            nu=lambda x: 1 + x[..., 0] ** 2,
            f=lambda x: 1 + x[..., 0] * x[..., 1],
            dirichlet={"boundary": 0.0},
        ),
    }


def run(n: int, budget: dict) -> dict:
    out = {
        "n": n,
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "problems": {},
    }
    for name, problem in problems(n).items():
        t0 = time.perf_counter()
        direct = problem.solve()
        rows = {
            "direct": {
                "seconds": time.perf_counter() - t0,
                "iterations": 0,
                "rel_diff": 0.0,
                "converged": True,
            }
        }
        for optimizer, max_iter in budget.items():
            u, info = minimize_energy(problem, optimizer, rtol=1e-11, max_iter=max_iter)
            rows[optimizer] = {
                "seconds": info.seconds,
                "iterations": info.iterations,
                "evaluations": info.evaluations,
                "final_relative_residual": info.residuals[-1][1] if info.residuals else None,
                "converged": info.converged,
                "rel_diff": float((u - direct).abs().max() / direct.abs().max()),
            }
        out["problems"][name] = rows
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--budget", type=int, default=2000, help="iterations for Adam/torch L-BFGS")
    args = parser.parse_args(argv)
    budget = {"lbfgs": 5000, "torch-lbfgs": args.budget, "adam": args.budget}
    result = run(args.n, budget)
    print(f"{'problem':<12} {'method':<12} {'iters':>6} {'seconds':>8} {'rel. diff to direct':>20}")
    for name, rows in result["problems"].items():
        for method, r in rows.items():
            print(
                f"{name:<12} {method:<12} {r['iterations']:>6} {r['seconds']:>8.3f} "
                f"{r['rel_diff']:>20.2e}"
            )
    if args.json:
        write_json_atomic(args.json, result)
    return result


if __name__ == "__main__":
    main()
