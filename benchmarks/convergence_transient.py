"""Convergence of dfem.Heat in time and space, and the separable decay.

Runs the studies of :mod:`dfem.validation.transient` (the ones ``tests/problems/test_heat.py``
checks at smaller size) and writes them as JSON, atomically::

    python benchmarks/convergence_transient.py --json benchmarks/results/convergence_transient.json

- temporal: implicit Euler, Crank-Nicolson and BDF2 on a solution that Q2 holds exactly in
  space, with time-dependent Dirichlet, Neumann and Robin data; dt = 1/10 ... 1/160;
- spatial: P1-P3 on triangles and Q1-Q3 on quads at a fixed dt = 0.02 (Crank-Nicolson);
- decay: exp(-2 pi^2 t) sin(pi x) sin(pi y) with Q2 on 16 x 16 quads and Crank-Nicolson,
  dt = 1e-3 to t = 0.1, its L2 error and the Dirichlet energy at every tenth step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dfem.fileio import write_json_atomic
from dfem.validation import transient

SPATIAL = [("tri", "P1", (8, 16, 32)), ("tri", "P2", (4, 8, 16)), ("tri", "P3", (4, 8, 16)),
           ("quad", "Q1", (8, 16, 32)), ("quad", "Q2", (4, 8, 16)), ("quad", "Q3", (2, 4, 8))]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="output JSON file")
    parser.add_argument("--quick", action="store_true", help="small studies (smoke test)")
    args = parser.parse_args(argv)
    steps = (10, 20) if args.quick else (10, 20, 40, 80, 160)
    results = {"temporal": [], "spatial": [], "decay": None}
    for scheme in ("implicit-euler", "crank-nicolson", "bdf2"):
        study = transient.temporal_study(scheme, steps)
        results["temporal"].append(study)
        print(f"| {scheme} | " + " | ".join(f"{e:.2e}" for e in study["l2"]) + " | "
              + ", ".join(f"{r:.3f}" for r in study["rates"]) + " |", flush=True)
    spatial = SPATIAL[:1] if args.quick else SPATIAL
    for cell, element, levels in spatial:
        study = transient.spatial_study(cell, element, levels[:2] if args.quick else levels,
                                        dt=0.02 if not args.quick else 0.05)
        results["spatial"].append(study)
        print(f"| {element} | {cell} | " + ", ".join(map(str, study["n"])) + " | "
              + ", ".join(f"{r:.3f}" for r in study["l2_rates"]) + " | "
              + ", ".join(f"{r:.3f}" for r in study["h1_rates"]) + " |", flush=True)
    decay = transient.decay(n=4, dt=0.01) if args.quick else transient.decay()
    results["decay"] = decay
    print(f"decay: Q2 {decay['n']}x{decay['n']}, dt {decay['dt']}: L2 {decay['l2']:.3e}, "
          f"energy monotone {decay['energy_monotone']}", flush=True)
    write_json_atomic(Path(args.json), results)
    return results


if __name__ == "__main__":
    main()
