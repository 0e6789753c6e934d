"""Cook's membrane with Q1, Q2, Q3: the vertical displacement of the loaded edge, against
scikit-fem on the same meshes, and the converged value by Richardson extrapolation.

Plane stress, E = 1, Poisson's ratio 1/3, clamped at x = 0, total shear 1 on x = 48
(:mod:`dfem.validation.cook`), on the n x n mapped quadrilateral mesh. For every element and
n it records ``u_y`` at the tip ``(48, 60)`` and at the mid-edge point ``(48, 52)`` (where
FinEtools tracks its converged 23.97), the dofs and the seconds of a direct solve (mesh,
space, assembly, SuperLU; best of ``--repeats``). scikit-fem solves the same problems
(``ElementQuad1``, ``ElementQuad2``, ``ElementQuadP(3)``, the same Gauss order, ``solve`` of
the condensed system) in the same run; the JSON holds both values, their difference and
the time ratio. The reference: Richardson extrapolation of the Q3 sequence, from n = 8,
16, 32 and, as a check, from 16, 32, 64 (the Q3 run at n = 64 is for that check only).

    python benchmarks/cook_membrane.py --json benchmarks/results/cook_membrane.json
    python benchmarks/cook_membrane.py --quick --json /tmp/cook.json   # smoke sizes
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

from benchmarks.harness import best_of, load_average, machine_info, write_json  # noqa: E402
from dfem.validation import cook  # noqa: E402

SIZES = {"Q1": (2, 4, 8, 16, 32, 64), "Q2": (2, 4, 8, 16, 32), "Q3": (2, 4, 8, 16, 32, 64)}
QUICK = {"Q1": (2, 4, 8), "Q2": (2, 4, 8), "Q3": (2, 4, 8)}
POINTS = {"tip": cook.TIP, "mid_edge": cook.MID_EDGE}


def dfem_solve(element: str, n: int):
    problem = cook.cook_problem(element, n)
    with torch.no_grad():
        u = problem.solve()
    values = cook.vertical_displacement(problem, u, list(POINTS.values()))
    return problem.space.n_dofs, [float(v) for v in values]


def skfem_solve(element: str, n: int):
    """The same problem in scikit-fem (independent assembly and load)."""
    import skfem
    from skfem.models.elasticity import lame_parameters, linear_elasticity

    mesh = cook.cook_mesh(n)
    sk_mesh = skfem.MeshQuad(mesh.nodes.numpy().T.copy(), mesh.cells_np.T.copy())
    scalar = {"Q1": skfem.ElementQuad1, "Q2": skfem.ElementQuad2,
              "Q3": lambda: skfem.ElementQuadP(3)}[element]()
    e = skfem.ElementVector(scalar)
    order = 2 * int(element[1]) + 1
    basis = skfem.Basis(sk_mesh, e, intorder=order)
    lam, mu = lame_parameters(cook.E, cook.POISSON_RATIO)
    lam = 2 * lam * mu / (lam + 2 * mu)  # plane stress
    K = skfem.asm(linear_elasticity(lam, mu), basis)
    right = sk_mesh.facets_satisfying(lambda x: np.isclose(x[0], 48.0))
    facets = skfem.FacetBasis(sk_mesh, e, facets=right, intorder=order)

    @skfem.LinearForm
    def shear(v, w):
        return v[1] * cook.SHEAR / cook.LOADED_EDGE

    f = skfem.asm(shear, facets)
    clamped = basis.get_dofs(lambda x: np.isclose(x[0], 0.0)).all()
    u = skfem.solve(*skfem.condense(K, f, D=clamped))
    points = np.array(list(POINTS.values()))
    values = (basis.probes(points.T) @ u)[len(points):]  # x of every point, then y
    return K.shape[0], [float(v) for v in values]


def run(sizes: dict, repeats: int) -> dict:
    try:
        import skfem  # noqa: F401

        peer = True
    except ImportError:
        peer = False
    rows = []
    for element, ns in sizes.items():
        for n in ns:
            seconds, (dofs, values) = best_of(repeats, lambda e=element, n=n: dfem_solve(e, n))
            row = {"element": element, "n": n, "dofs": dofs, "seconds": seconds,
                   **{name: v for name, v in zip(POINTS, values, strict=True)}}
            if peer:
                sk_seconds, (sk_dofs, sk_values) = best_of(
                    repeats, lambda e=element, n=n: skfem_solve(e, n))
                row["skfem"] = {"dofs": sk_dofs, "seconds": sk_seconds,
                                **{name: v for name, v in zip(POINTS, sk_values, strict=True)}}
                row["max_abs_diff_vs_skfem"] = max(abs(a - b) for a, b in
                                                   zip(values, sk_values, strict=True))
                row["time_ratio_vs_skfem"] = seconds / sk_seconds
            rows.append(row)
            print(f"{element} n={n:3d} dofs={dofs:6d} tip={values[0]:.6f} "
                  f"mid={values[1]:.6f} {seconds:.3f}s"
                  + (f"  |diff skfem|={row['max_abs_diff_vs_skfem']:.1e} "
                     f"ratio={row['time_ratio_vs_skfem']:.2f}" if peer else ""), flush=True)
    return {"rows": rows, "reference": reference(rows)}


def reference(rows) -> dict:
    """Richardson extrapolation of the Q3 sequence at both points."""
    q3 = {r["n"]: r for r in rows if r["element"] == "Q3"}
    out = {}
    for name in POINTS:
        out[name] = {}
        for levels in ((8, 16, 32), (16, 32, 64), (2, 4, 8)):
            if all(n in q3 for n in levels):
                key = "q3_" + "_".join(map(str, levels))
                out[name][key] = cook.richardson([q3[n][name] for n in levels])
    out["literature"] = {"value": cook.LITERATURE["value"], "point": cook.LITERATURE["point"],
                         "source": cook.LITERATURE["source"]}
    mid = out["mid_edge"].get("q3_8_16_32")
    if mid is not None:
        out["literature"]["relative_difference_to_q3_8_16_32_mid_edge"] = (
            (mid["value"] - cook.LITERATURE["value"]) / cook.LITERATURE["value"])
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    load_before = load_average()
    dfem_solve("Q1", 2)  # warm-up: imports and first-call costs out of the table
    result = run(QUICK if args.quick else SIZES, args.repeats)
    result["settings"] = {
        "problem": "Cook's membrane, plane stress, E=1, nu=1/3, clamped x=0, traction "
                   "(0, 1/16) on x=48, n x n bilinearly mapped quads",
        "repeats": args.repeats,
        "command": "python benchmarks/cook_membrane.py "
                   + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    result["machine"] = machine_info({"scikit-fem": "scikit-fem", "scipy": "scipy"},
                                     threads=torch.get_num_threads(),
                                     load_average_before=load_before,
                                     load_average_after=load_average())
    result["seconds"] = time.perf_counter() - t0
    for name, fits in result["reference"].items():
        if name != "literature":
            for key, fit in fits.items():
                print(f"{name} {key}: {fit['value']:.5f} (order {fit['order']:.2f})")
    print("literature:", result["reference"]["literature"])
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
