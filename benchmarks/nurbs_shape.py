"""NURBS shape optimisation of the plate with a hole (dfem.design.shape).

The shipped Kirsch problem (``cases/plate_hole_iga.toml``: the quarter plate ``[0, 4]^2``
minus the hole ``r < 1``, plane stress, ``E = 1e5``, ``nu = 0.3``, rollers on the symmetry
edges, the far-field traction of uniaxial tension ``T = 10`` on the outer edges). Design:
the hole's control points on the biquadratic design patch with 4 elements around the hole
(6 points: the two ends slide along the symmetry edges, the four others move radially, or
freely in x and y); analysis: that patch elevated to cubic and subdivided into 8 x 16
elements (484 dofs). Constraint: the area at most its initial value. Optimiser: MMA
(mmapy) with the guarded, monotone backtracking of :func:`dfem.design.shape.optimize_shape`.

Runs:

- ``compliance``: minimise ``F . u``, radial moves;
- ``von_mises_pnorm``: minimise the p-norm (p = 8) of the von Mises stress, radial moves;
- ``compliance_free``: ``F . u`` with free moves and the smooth Jacobian constraint
  (``jacobian_bound = 0.3``); ``compliance_free_guard_only`` the same without it, to show
  where the guard alone stops MMA;
- ``slsqp_reference``: scipy's SLSQP on the stress run's problem (no guard), for the choice
  of optimiser.

Usage: python benchmarks/nurbs_shape.py [--json OUT] [--png OUT] [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import (  # noqa: E402
    add_run_options,
    load_average,
    machine_info,
    set_threads,
    write_json,
)
from dfem.design import (  # noqa: E402
    JacobianGuard,
    ShapeObjective,
    optimize_shape,
    plate_with_hole_design,
    plot_shapes,
)

RESULTS = Path(__file__).resolve().parent / "results"

#: name -> (mode, objective, jacobian_bound, max_iter)
RUNS = {
    "compliance": ("radial", "compliance", None, 30),
    "von_mises_pnorm": ("radial", "von_mises_pnorm", None, 40),
    "compliance_free": ("free", "compliance", 0.3, 30),
    "compliance_free_guard_only": ("free", "compliance", None, 30),
}


def _summary(result, design) -> dict:
    first, last = result.history[0], result.history[-1]
    return {
        "objective_initial": result.initial.objective,
        "objective_final": result.final.objective,
        "reduction": result.reduction,
        "area_initial": result.initial.area,
        "area_final": result.final.area,
        "area_max": result.area_max,
        "area_ratio_final": result.final.area / result.area_max,
        "max_von_mises_initial": result.initial.max_von_mises,
        "max_von_mises_final": result.final.max_von_mises,
        "min_jacobian_initial": first["min_jacobian"],
        "min_jacobian_final": result.guard.min_det,
        "min_jacobian_ratio_final": result.guard.min_ratio,
        "min_jacobian_over_run": min(r["min_jacobian"] for r in result.history),
        "guard_points": result.guard.points,
        "guard_valid": result.guard.valid,
        "iterations": last["iteration"],
        "guard_trips": result.guard_trips,
        "rejected_trials": result.rejected,
        "seconds": result.seconds,
        "message": result.message,
        "variables": list(design.names),
        "theta": result.theta.tolist(),
        "history": result.history,
    }


def slsqp_reference(design, objective_name: str, max_iter: int) -> dict:
    """scipy SLSQP on the same scaled problem (objective / J0, A / A0 - 1 <= 0), no guard."""
    from scipy.optimize import minimize

    f = ShapeObjective(design, objective=objective_name)
    lower, width = design.lower, design.upper - design.lower
    cache = {}

    def ev(s):
        key = s.tobytes()
        if key not in cache:
            cache[key] = f.evaluate(lower + width * torch.as_tensor(s))
        return cache[key]

    s0 = (-lower / width).numpy()
    e0 = ev(s0)
    J0, A0 = e0.objective, e0.area
    t0 = time.perf_counter()
    res = minimize(
        lambda s: ev(s).objective / J0, s0, method="SLSQP",
        jac=lambda s: (ev(s).grad_objective * width / J0).numpy(),
        bounds=[(0.0, 1.0)] * design.n, options=dict(maxiter=max_iter),
        constraints=[dict(type="ineq", fun=lambda s: 1.0 - ev(s).area / A0,
                          jac=lambda s: -(ev(s).grad_area * width / A0).numpy())])
    seconds = time.perf_counter() - t0
    e = ev(res.x)
    theta = lower + width * torch.as_tensor(res.x)
    guard = JacobianGuard(design.analysis).check(design.analysis_patch(theta))
    return {"objective_initial": J0, "objective_final": e.objective,
            "reduction": 1 - e.objective / J0, "area_ratio_final": e.area / A0,
            "iterations": int(res.nit), "evaluations": len(cache) - 1,
            "min_jacobian_ratio_final": guard.min_ratio, "guard_valid": guard.valid,
            "seconds": seconds, "message": str(res.message)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(RESULTS / "nurbs_shape.json"))
    parser.add_argument("--png", default=str(RESULTS / "nurbs_shape.png"))
    parser.add_argument("--quick", action="store_true",
                        help="2 x 4 quadratic elements, 4 design variables, 5 iterations")
    add_run_options(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads, argv)
    if args.quick:
        sizes = dict(design_elements=2, degree=2, elements=2)
        runs = {k: (*v[:3], 5) for k, v in RUNS.items()}
    else:
        sizes = dict(design_elements=4, degree=3, elements=8)
        runs = RUNS
    results, thetas = {}, {}
    for name, (mode, objective_name, bound, max_iter) in runs.items():
        design = plate_with_hole_design(mode, **sizes)
        f = ShapeObjective(design, objective=objective_name, p=8.0)
        result = optimize_shape(f, max_iter=max_iter, jacobian_bound=bound)
        results[name] = {"mode": mode, "objective": objective_name, "jacobian_bound": bound,
                         **_summary(result, design)}
        thetas[name] = (f, result.theta)
        if not args.quiet:
            r = results[name]
            print(f"{name:>27}: {objective_name} {r['objective_initial']:.6g} -> "
                  f"{r['objective_final']:.6g} ({100 * r['reduction']:.2f} % lower), area "
                  f"{r['area_initial']:.5f} -> {r['area_final']:.5f} (max {r['area_max']:.5f}), "
                  f"min det J {r['min_jacobian_final']:.4g} (ratio "
                  f"{r['min_jacobian_ratio_final']:.3f}), peak von Mises "
                  f"{r['max_von_mises_initial']:.2f} -> {r['max_von_mises_final']:.2f}, "
                  f"{r['iterations']} iterations, {r['guard_trips']} guard trips, "
                  f"{r['seconds']:.1f} s; {r['message']}")
    design = plate_with_hole_design("radial", **sizes)
    reference = slsqp_reference(design, "von_mises_pnorm", 40 if not args.quick else 5)
    if not args.quiet:
        print(f"{'slsqp_reference':>27}: von_mises_pnorm {100 * reference['reduction']:.2f} % "
              f"lower, {reference['evaluations']} evaluations, {reference['seconds']:.1f} s, "
              f"min det J ratio {reference['min_jacobian_ratio_final']:.3f}")
    # one picture: the initial shape and the three optimised ones (one colour scale)
    f_c, th_c = thetas["compliance"]
    png = Path(args.png)
    plot_shapes([(f_c, torch.zeros_like(th_c)), thetas["compliance"], thetas["von_mises_pnorm"],
                 thetas["compliance_free"]], png, columns=2,
                labels=("initial", "min compliance (radial)", "min von Mises p-norm (radial)",
                        "min compliance (free, Jacobian bound 0.3)"),
                title="Plate with a hole, area <= initial: NURBS shape optimisation")
    report = {
        "problem": "plate with a hole (cases/plate_hole_iga.toml), Kirsch far-field traction",
        "sizes": sizes,
        "dofs": 2 * int(np.prod(design.analysis.shape)),
        "design_variables_radial": design.n,
        "optimizer": "MMA (mmapy) with guarded, monotone backtracking",
        "runs": results,
        "slsqp_reference": reference,
        "png": png.name,
        "machine": machine_info({}, threads=torch.get_num_threads(),
                                load_average=load_average()),
    }
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
