"""3D convergence on the shipped manufactured cube, P1-P3 on perturbed tets, Q1-Q3 on hexes.

Runs ``Case.convergence`` (what ``dfem convergence`` runs) on ``cases/cube_manufactured.toml``
for each element and writes the levels and fitted rates as JSON, atomically::

    python benchmarks/convergence_3d.py --json benchmarks/results/convergence_3d.json

The studies are those of ``tests/problems/test_poisson_3d.py`` (coarse cells per side and
levels below); tetrahedra are perturbed anew at every level (``mesh.perturb = 0.1``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dfem.fileio import write_json_atomic
from dfem.problems.case import Case

ROOT = Path(__file__).resolve().parents[1]
STUDIES = [("P1", "tet", 3, 3), ("P2", "tet", 4, 2), ("P3", "tet", 3, 2),
           ("Q1", "hex", 2, 3), ("Q2", "hex", 2, 2), ("Q3", "hex", 2, 2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="output JSON file")
    args = parser.parse_args()
    results = {}
    for element, cell, n, levels in STUDIES:
        sets = [f'element="{element}"', f'mesh.cell="{cell}"', f"mesh.nx={n}",
                f"mesh.ny={n}", f"mesh.nz={n}"]
        if cell == "tet":
            sets.append("mesh.perturb=0.1")
        case = Case.load(ROOT / "cases" / "cube_manufactured.toml", overrides=sets)
        t0 = time.perf_counter()
        study = case.convergence(levels)
        study["seconds"] = time.perf_counter() - t0
        results[element] = study
        p = int(element[1])
        print(f"| {element} | {cell} | {n} | {levels} | {study['levels'][-1]['dofs']} | "
              f"{study['l2_rate']:.3f} ({p + 1}) | {study['h1_rate']:.3f} ({p}) | "
              f"{study['seconds']:.1f} s |", flush=True)
        write_json_atomic(Path(args.json), results)


if __name__ == "__main__":
    main()
