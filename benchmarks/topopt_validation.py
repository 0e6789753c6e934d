"""Topology optimisation validation: dfem's SIMP against the 88-line code, OC against MMA,
the heat sink and the 3D cantilever.

    python benchmarks/topopt_validation.py --json benchmarks/results/topopt_validation.json \
        --figures docs/figures

- MBB beam, the classic settings (60 x 20, volume fraction 0.5, p = 3, density filter
  r_min = 1.5, OC): dfem's compliance history beside the numpy transcription of the
  88-line code (:mod:`dfem.validation.top88`) for 50 iterations, the largest relative
  difference, then both optimisers run to the 88-line stopping rule (change < 0.01, at
  most 300 iterations) and their final compliances;
- the heat sink (40 x 40, volume fraction 0.4) and the 3D cantilever (hexahedra) with their
  time per iteration;
- PNG pictures of the designs (black = solid).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dfem.design import (  # noqa: E402
    DensityFilter,
    TopologyOptimization,
    cantilever_3d,
    heat_sink,
    mbb_beam,
)
from dfem.design.filters import cell_centroids  # noqa: E402
from dfem.fileio import write_json_atomic  # noqa: E402
from dfem.validation import top88  # noqa: E402


def _grid(mesh, values, nx, ny):
    """Per-cell values of a structured nx x ny quad mesh as an image (row 0 at the top)."""
    centres = cell_centroids(mesh)
    h = (centres[:, 0].max() - centres[:, 0].min()) / max(nx - 1, 1) if nx > 1 else 1.0
    i = np.rint((centres[:, 0] - centres[:, 0].min()) / h).astype(int)
    j = np.rint((centres[:, 1] - centres[:, 1].min()) / h).astype(int)
    image = np.zeros((ny, nx))
    image[ny - 1 - j, i] = values
    return image


def _picture(images, titles, path):
    rows, cols = images[0].shape
    width = 7.0 if cols > rows else 4.0
    fig, axes = plt.subplots(len(images), 1, squeeze=False,
                             figsize=(width, len(images) * (width * rows / cols + 0.5)))
    for ax, image, title in zip(axes[:, 0], images, titles, strict=True):
        ax.imshow(1 - image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _run(mesh, objective, fraction, r_min, optimizer, iterations, tolerance=0.01):
    design = TopologyOptimization(objective, mesh, fraction, filter=DensityFilter(mesh, r_min),
                                  optimizer=optimizer)
    t0 = time.perf_counter()
    design.run(iterations, tolerance=tolerance)
    seconds = time.perf_counter() - t0
    rho = design.physical(design.x).detach().numpy()
    return design, rho, seconds


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--figures", default=None, help="folder for the PNG pictures")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args(argv)
    nelx, nely, first = (20, 8, 5) if args.quick else (60, 20, 50)
    max_iterations = 8 if args.quick else 300
    results: dict = {"settings": {"nelx": nelx, "nely": nely, "volume_fraction": 0.5,
                                  "penal": 3.0, "r_min": 1.5, "filter": "density",
                                  "stop": "change < 0.01 or the iteration limit",
                                  "max_iterations": max_iterations}}

    reference = top88.top88(nelx, nely, 0.5, 3.0, 1.5, ft=2, iterations=first)
    mesh, objective = mbb_beam(nelx, nely)
    design, _, seconds = _run(mesh, objective, 0.5, 1.5, "oc", first, tolerance=0.0)
    ours = [row["compliance"] for row in design.history]
    diff = np.abs(np.array(ours) / np.array(reference["compliance"]) - 1)
    results["mbb_vs_top88"] = {"dfem": ours, "top88": reference["compliance"],
                               "max_rel_diff": float(diff.max()),
                               "dfem_s_per_iteration": seconds / first}
    print(f"MBB {nelx}x{nely}: {first} OC iterations, max relative difference from the "
          f"88-line code {diff.max():.2e}", flush=True)

    finals, images = {}, []
    for optimizer in ("oc", "mma"):
        mesh, objective = mbb_beam(nelx, nely)
        design, rho, seconds = _run(mesh, objective, 0.5, 1.5, optimizer, max_iterations)
        last = design.history[-1]
        finals[optimizer] = {"compliance": last["compliance"], "volume": last["volume"],
                             "iterations": len(design.history),
                             "s_per_iteration": seconds / len(design.history)}
        images.append(_grid(mesh, rho, nelx, nely))
        print(f"MBB {optimizer}: c = {last['compliance']:.4f} after {len(design.history)} "
              f"iterations ({seconds / len(design.history):.3f} s each)", flush=True)
    finals["mma_vs_oc"] = finals["mma"]["compliance"] / finals["oc"]["compliance"] - 1
    results["mbb"] = finals

    n = 12 if args.quick else 40
    mesh, objective = heat_sink(n)
    design, rho, seconds = _run(mesh, objective, 0.4, 1.5 / n, "oc", 8 if args.quick else 150)
    results["heat_sink"] = {"n": n, "volume_fraction": 0.4,
                            "compliance_first": design.history[0]["compliance"],
                            "compliance_last": design.history[-1]["compliance"],
                            "iterations": len(design.history),
                            "s_per_iteration": seconds / len(design.history)}
    sink_image = _grid(mesh, rho, n, n)
    print(f"heat sink {n}x{n}: c {design.history[0]['compliance']:.4g} -> "
          f"{design.history[-1]['compliance']:.4g}", flush=True)

    shape = (6, 3, 3) if args.quick else (30, 10, 10)
    mesh, objective = cantilever_3d(*shape)
    design, rho, seconds = _run(mesh, objective, 0.3, 1.5, "oc", 2 if args.quick else 30,
                                tolerance=0.0)
    results["cantilever_3d"] = {"cells": mesh.n_cells, "dofs": objective.space.n_dofs,
                                "iterations": len(design.history),
                                "compliance_first": design.history[0]["compliance"],
                                "compliance_last": design.history[-1]["compliance"],
                                "s_per_iteration": seconds / len(design.history)}
    print(f"3D cantilever {shape}: {mesh.n_cells} cells, "
          f"{seconds / len(design.history):.2f} s per iteration", flush=True)

    if args.figures:
        folder = Path(args.figures)
        folder.mkdir(parents=True, exist_ok=True)
        _picture(images, [f"MBB {nelx}x{nely}, OC: c = {finals['oc']['compliance']:.2f}",
                          f"MMA: c = {finals['mma']['compliance']:.2f}"],
                 folder / "topopt_mbb.png")
        _picture([sink_image], [f"heat sink {n}x{n}, volume 0.4"], folder / "topopt_heat_sink.png")
    write_json_atomic(Path(args.json), results)
    return results


if __name__ == "__main__":
    main()
