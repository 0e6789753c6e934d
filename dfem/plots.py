"""Plots of solutions and convergence studies (matplotlib, written atomically)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dfem.fileio import temporary_beside

# Mesh edges are drawn only when they would not hide the field.
MAX_CELLS_WITH_EDGES = 4096


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    path = Path(path)
    tmp = temporary_beside(path, suffix=path.suffix)
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def plot_solution(space, u, path, title: str = "") -> None:
    """Field plot of the dof vector ``u`` at the mesh vertices (linear interpolation on a
    triangulation of the cells), with the mesh edges on small meshes and a colour bar."""
    plt = _figure()
    mesh = space.mesh
    x = mesh.nodes.detach().cpu().numpy()
    cells = mesh.cells_np
    triangles = cells if mesh.cell_type == "tri" else np.concatenate(
        [cells[:, [0, 1, 2]], cells[:, [0, 2, 3]]]
    )
    values = space.vertex_values(u.detach()).cpu().numpy()
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    shading = ax.tripcolor(x[:, 0], x[:, 1], triangles, values, shading="gouraud", cmap="viridis")
    if mesh.n_cells <= MAX_CELLS_WITH_EDGES:
        from matplotlib.collections import LineCollection

        edges = mesh.edge_table.edges
        ax.add_collection(LineCollection(x[edges], colors="k", linewidths=0.3, alpha=0.6))
    fig.colorbar(shading, ax=ax, label="u")
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title or f"{space.element.name}, {mesh.n_cells} cells, {space.n_dofs} dofs")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_convergence(study: dict, path, degree: int, title: str = "") -> None:
    """Log-log L2 and H1-seminorm errors against h, with reference slopes h^(p+1) and h^p."""
    plt = _figure()
    rows = study["levels"]
    h = np.array([r["h"] for r in rows])
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for key, rate, slope, marker in (("l2_error", study["l2_rate"], degree + 1, "o"),
                                     ("h1_error", study["h1_rate"], degree, "s")):
        err = np.array([r[key] for r in rows])
        label = "L2" if key == "l2_error" else "H1 seminorm"
        ax.loglog(h, err, marker=marker, label=f"{label} (rate {rate:.2f})")
        ref = err[-1] * (h / h[-1]) ** slope * 0.5
        ax.loglog(h, ref, ":", color="gray")
        ax.annotate(f"h^{slope}", (h[0], ref[0]), fontsize=8, color="gray")
    ax.set_xlabel("h (longest edge)")
    ax.set_ylabel("error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
