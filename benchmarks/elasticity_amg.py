"""AMG-CG iterations for 2D linear elasticity: with and without the rigid-body near-nullspace.

A 4 x 1 cantilever (4n x n quadrilaterals), E = 1, Poisson's ratio 0.3, plane strain,
clamped at x = 0, traction (0, -1) on x = 4. For Q1 (n = 16, 32, 64, 128) and Q2 (n = 8,
16, 32, 64) it solves with

- ``sa_rigid_body``: ``solve("amg")``, dfem's default on a vector space: smoothed
  aggregation on node blocks with the three rigid-body modes of the free dofs;
- ``sa_plain``: ``solve("amg", hierarchy="sa", near_nullspace=None)``: pyamg's default
  candidate (a constant per dof);
- ``rs``: ``solve("amg", hierarchy="rs")``: classical Ruge-Stueben, the scalar default;
- ``direct``: SuperLU, the reference every AMG solution is compared with;
- the peer ``torchfem``: torch-fem's ``sparse_solve(A, b, B=modes, method="cg",
  preconditioner="amg")`` on the same matrix and the same modes (its own smoothed
  aggregation: pyamg set-up, Chebyshev smoothing in torch).

``--problem cook`` runs the same on Cook's membrane (n x n mapped quadrilaterals of the
trapezoid, plane stress; Q1 n = 32..256, Q2 n = 16..128), whose distorted cells and bending
make it harder. All AMG solves stop at the relative residual 1e-10. Records iterations,
set-up and solve seconds, the levels of the hierarchy and the relative max-norm distance to
the direct solve.

    python benchmarks/elasticity_amg.py --json benchmarks/results/elasticity_amg.json
    python benchmarks/elasticity_amg.py --problem cook \
        --json benchmarks/results/elasticity_amg_cook.json
    python benchmarks/elasticity_amg.py --quick --max-coarse 50 --json /tmp/amg.json  # smoke
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing dfem
    sys.path.insert(0, str(ROOT))

import dfem  # noqa: E402
from benchmarks.harness import load_average, machine_info, write_json  # noqa: E402
from dfem.solvers.amg import space_near_nullspace  # noqa: E402
from dfem.solvers.linear import factorize  # noqa: E402
from dfem.validation import cook  # noqa: E402

# the coarsest size of each has a two-level hierarchy at max_coarse=500 (smaller ones are
# solved by the coarse LU alone, in one iteration)
SIZES = {
    "cantilever": {"Q1": (16, 32, 64, 128), "Q2": (8, 16, 32, 64)},
    "cook": {"Q1": (32, 64, 128, 256), "Q2": (16, 32, 64, 128)},
}
QUICK = {"Q1": (4, 8, 16), "Q2": (2, 4, 8)}  # with --max-coarse 50 for a real hierarchy
VARIANTS = {
    "sa_rigid_body": {},
    "sa_plain": {"hierarchy": "sa", "near_nullspace": None},
    "rs": {"hierarchy": "rs"},
}


def cantilever(element: str, n: int) -> dfem.LinearElasticity:
    mesh = dfem.mesh.rectangle(4 * n, n, "quad", x=(0.0, 4.0), y=(0.0, 1.0))
    space = dfem.FunctionSpace(mesh, element, shape=(2,))
    return dfem.LinearElasticity(space, E=1.0, poisson_ratio=0.3, plane="strain",
                                 dirichlet={"left": 0.0}, traction={"right": [0.0, -1.0]})


def cook_membrane(element: str, n: int) -> dfem.LinearElasticity:
    return cook.cook_problem(element, n)


PROBLEMS = {"cantilever": cantilever, "cook": cook_membrane}
DESCRIPTIONS = {
    "cantilever": "4x1 cantilever, 4n x n quads, E=1, nu=0.3, plane strain, clamped left, "
                  "traction (0, -1) right",
    "cook": "Cook's membrane (dfem.validation.cook), n x n mapped quads, plane stress, E=1, "
            "nu=1/3, clamped left, total shear 1 on the right",
}


def levels(problem, options, max_coarse):
    """The level sizes of the hierarchy ``solve`` builds (one more set-up, untimed)."""
    fixed, _ = problem.dirichlet_data()
    restricted = problem.restricted_pattern(fixed)
    opts = problem._amg_options("amg", {**options, "max_coarse": max_coarse},
                                restricted.free_dofs)
    factor = factorize(restricted.pattern, problem.tangent_values()[restricted.ff], "amg",
                       **opts)
    return [int(level.A.shape[0]) for level in factor.hierarchy.levels]


def torchfem_row(problem, direct, rtol):
    """torch-fem's AMG-CG on dfem's matrix and rigid-body modes."""
    try:
        from torchfem.sparse import sparse_solve as tf_solve
    except ImportError:
        return {"error": "torch-fem not installed"}
    fixed, u_fixed = problem.dirichlet_data()
    restricted = problem.restricted_pattern(fixed)
    free = restricted.free_dofs
    values = problem.tangent_values()[restricted.ff]
    p = restricted.pattern
    A = torch.sparse_csr_tensor(p.indptr, p.indices, values, (p.n, p.n),
                                check_invariants=False)
    b = -problem.residual(u_fixed)[free].detach()
    B = torch.as_tensor(space_near_nullspace(problem.space, free).modes)
    t0 = time.perf_counter()
    x, *_, its = tf_solve(A, b, B=B, stol=rtol, method="cg", preconditioner="amg")
    seconds = time.perf_counter() - t0
    ref = direct[free]
    return {"iterations": int(its), "seconds": seconds,
            "rel_diff": float((x - ref).abs().max() / ref.abs().max())}


def run(sizes: dict, rtol: float, max_coarse: int, make=cantilever) -> dict:
    rows = []
    for element, ns in sizes.items():
        for n in ns:
            problem = make(element, n)
            t0 = time.perf_counter()
            direct = problem.solve("direct")
            row = {"element": element, "n": n, "cells": problem.space.mesh.n_cells,
                   "dofs": problem.space.n_dofs,
                   "direct": {"seconds": time.perf_counter() - t0}}
            for name, options in VARIANTS.items():
                try:
                    t0 = time.perf_counter()
                    u = problem.solve("amg", rtol=rtol, max_coarse=max_coarse, **options)
                    seconds = time.perf_counter() - t0
                    info = problem.last_solve["info"]
                    rel = float((u - direct).abs().max() / direct.abs().max())
                    row[name] = {"iterations": info.iterations, "setup_s": info.setup_s,
                                 "solve_s": info.solve_s, "seconds": seconds,
                                 "rel_diff": rel if np.isfinite(rel) else None,
                                 "levels": levels(problem, options, max_coarse)}
                except Exception as exc:  # noqa: BLE001 - RS may fail on elasticity: record it
                    row[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            row["torchfem"] = torchfem_row(problem, direct, rtol)
            rows.append(row)
            print(_line(row), flush=True)
    return {"rows": rows, "summary": _summary(rows)}


def _line(row) -> str:
    parts = [f"{row['element']} n={row['n']:3d} dofs={row['dofs']:6d}"]
    for name in (*VARIANTS, "torchfem"):
        r = row[name]
        parts.append(f"{name}: " + (f"{r['iterations']:4d} it" if "iterations" in r else "fail"))
    return "  ".join(parts)


def _summary(rows) -> dict:
    """Iterations at the finest level over the coarsest, per element and variant."""
    out = {}
    for element in dict.fromkeys(r["element"] for r in rows):
        mine = [r for r in rows if r["element"] == element]
        out[element] = {}
        for name in (*VARIANTS, "torchfem"):
            its = [r[name].get("iterations") for r in mine]
            if None in its:
                out[element][name] = {"iterations": its, "finest_over_coarsest": None}
            else:
                out[element][name] = {"iterations": its,
                                      "finest_over_coarsest": its[-1] / its[0]}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--rtol", type=float, default=1e-10)
    parser.add_argument("--max-coarse", type=int, default=500)
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="cantilever")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    load_before = load_average()
    result = run(QUICK if args.quick else SIZES[args.problem], args.rtol, args.max_coarse,
                 PROBLEMS[args.problem])
    result["settings"] = {"rtol": args.rtol, "max_coarse": args.max_coarse,
                          "problem": DESCRIPTIONS[args.problem],
                          "command": "python benchmarks/elasticity_amg.py "
                                     + " ".join(argv if argv is not None else sys.argv[1:])}
    result["machine"] = machine_info({"pyamg": "pyamg", "scipy": "scipy",
                                      "torchfem": "torch-fem"},
                                     threads=torch.get_num_threads(),
                                     load_average_before=load_before,
                                     load_average_after=load_average())
    result["seconds"] = time.perf_counter() - t0
    for element, variants in result["summary"].items():
        ratios = {k: v["finest_over_coarsest"] for k, v in variants.items()}
        print(element, "finest/coarsest iterations:",
              {k: (round(v, 2) if v is not None else None) for k, v in ratios.items()})
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
