"""Isogeometric analysis against the analytic solutions (issue: NURBS, IGA items).

1. Quarter annulus (radii 1 and 2, exact rational geometry), -Δu = 13 u* with
   u* = sin(2x) sin(3y), Dirichlet on all sides: L2/H1 errors of NURBS degree p = 2, 3
   under knot insertion (n x n elements) and the fitted rates.
2. The DSA paper's Table 5 problem on the unit square: Q2 Lagrange at 128² against IGA
   with p = 2 at several element counts: errors, dofs and times.

Usage: python benchmarks/iga_convergence.py [--json OUT] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import torch

from dfem.basis.nurbs.patch import quarter_annulus, unit_square
from dfem.basis.nurbs.space import IsogeometricSpace
from dfem.basis.space import FunctionSpace
from dfem.mesh.structured import rectangle
from dfem.problems.poisson import Poisson
from dfem.validation.error_norms import errors, fitted_rate


def annulus_study(p: int, levels) -> dict:
    exact = lambda x: torch.sin(2 * x[..., 0]) * torch.sin(3 * x[..., 1])  # noqa: E731
    base = quarter_annulus().elevate(p)
    rows = []
    for n in levels:
        space = IsogeometricSpace(base.subdivide(n))
        u = Poisson(space, f=lambda x: 13 * exact(x), dirichlet={"boundary": exact}).solve()
        e = errors(space, u, exact)
        rows.append({"elements": n, "dofs": space.n_dofs, "l2_error": e["l2"],
                     "h1_error": e["h1"]})
    h = [1.0 / r["elements"] for r in rows]
    last = slice(-3, None)  # the asymptotic range
    return {"degree": p, "levels": rows,
            "l2_rate": fitted_rate(h[last], [r["l2_error"] for r in rows][last]),
            "h1_rate": fitted_rate(h[last], [r["h1_error"] for r in rows][last])}


def table5(space) -> dict:
    exact = lambda x: torch.sin(math.pi * x[..., 0]) * torch.sin(math.pi * x[..., 1])  # noqa: E731
    t0 = time.perf_counter()
    problem = Poisson(space, f=lambda x: 2 * math.pi**2 * exact(x), dirichlet={"boundary": 0.0})
    u = problem.solve()
    seconds = time.perf_counter() - t0
    return {"element": space.element.name, "dofs": space.n_dofs,
            "l2_error": errors(space, u, exact)["l2"], "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="coarser levels (seconds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    levels = (4, 8, 16, 32) if args.quick else (4, 8, 16, 32, 64, 128)
    result = {"machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "threads": 1,
              "annulus": [annulus_study(p, levels) for p in (2, 3)]}
    for study in result["annulus"]:
        print(f"quarter annulus, NURBS degree {study['degree']}")
        for r in study["levels"]:
            print(f"  {r['elements']:>4}^2 elements {r['dofs']:>6} dofs  L2 {r['l2_error']:.3e}  "
                  f"H1 {r['h1_error']:.3e}")
        print(f"  rates (last three levels): L2 {study['l2_rate']:.3f}, H1 {study['h1_rate']:.3f}")
    n_q2 = 32 if args.quick else 128
    counts = (32, 36) if args.quick else (128, 132, 160)
    rows = [table5(FunctionSpace(rectangle(n_q2, n_q2, "quad"), "Q2"))]
    rows[0]["elements"] = n_q2
    for n in counts:
        rows.append({**table5(IsogeometricSpace(unit_square().elevate(2).subdivide(n))),
                     "elements": n})
    result["table5"] = rows
    print("Table 5 problem on the unit square")
    for r in rows:
        print(f"  {r['element']:<7} {r['elements']:>4}^2 {r['dofs']:>6} dofs  "
              f"L2 {r['l2_error']:.3e}  {r['seconds']:.2f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
