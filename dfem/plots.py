"""Plots of solutions and convergence studies (matplotlib, written atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfem.fileio import write_atomically

# Mesh edges are drawn only when they would not hide the field.
MAX_CELLS_WITH_EDGES = 4096


def pyplot():
    """``matplotlib.pyplot``, imported on first use with the non-interactive Agg backend
    (unless a backend was chosen already), for writing figures to files."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> None:
    """Write ``fig`` to ``path`` (format from the suffix, 120 dpi) atomically: a reader
    never sees a half-written file."""
    path = Path(path)
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120), suffix=path.suffix)


def _finish_axes(ax, xlabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()


def _finish_line_plot(plt, fig, ax, xlabel: str, title: str, path) -> None:
    _finish_axes(ax, xlabel)
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_solution(space, u, path, title: str = "") -> None:
    """Field plot of the dof vector ``u`` at the mesh vertices (linear interpolation on a
    triangulation of the cells), with the mesh edges on small meshes and a colour bar.

    On a 3D mesh: the boundary surface, each face coloured by the mean of ``u`` at its
    vertices, beside the slice ``z = `` mid-height of the bounding box, where ``u`` is
    evaluated on a regular grid of points (:class:`~dfem.basis.probes.PointEvaluation`,
    the element's own interpolation). Grid points outside the mesh (holes, non-box
    domains) are found with :func:`~dfem.basis.probes.points_inside` and left blank
    (grey); a vector field is shown by its magnitude. One colour scale serves both.
    """
    if space.mesh.dim == 3:
        from dfem.plots3d import plot_solution_3d

        plot_solution_3d(space, u, path, title)
        return
    plt = pyplot()
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
    save_figure(fig, path)
    plt.close(fig)


def plot_snapshots(space, states, times, path, title: str = "") -> None:
    """A strip of field plots of the dof vectors ``states`` (k, n_dofs) at ``times``, one
    panel per state on one colour scale (so that a decay or a growth shows), each
    titled with its time. On a 3D mesh each panel is the slice ``z = `` mid-height of
    the bounding box (:func:`dfem.plots3d.plot_snapshots_3d`)."""
    if space.mesh.dim == 3:
        from dfem.plots3d import plot_snapshots_3d

        plot_snapshots_3d(space, states, times, path, title)
        return
    plt = pyplot()
    values = np.stack([space.vertex_values(u.detach()).cpu().numpy() for u in states])
    from matplotlib.colors import Normalize

    mesh = space.mesh
    x = mesh.nodes.detach().cpu().numpy()
    cells = mesh.cells_np
    triangles = cells if mesh.cell_type == "tri" else np.concatenate(
        [cells[:, [0, 1, 2]], cells[:, [0, 2, 3]]]
    )
    low, high = float(values.min()), float(values.max())
    norm = Normalize(low, high) if high > low else Normalize(low - 0.5, high + 0.5)
    lo, hi = x.min(axis=0), x.max(axis=0)
    aspect = float((hi[1] - lo[1]) / (hi[0] - lo[0]))
    k = len(values)
    fig, axes = plt.subplots(1, k, figsize=(2.4 * k + 1.0, 2.4 * min(max(aspect, 0.3), 2.0)
                                            + 0.7), squeeze=False, layout="constrained")
    for ax, v, t in zip(axes[0], values, times, strict=True):
        shading = ax.tripcolor(x[:, 0], x[:, 1], triangles, v, shading="gouraud",
                               cmap="viridis", norm=norm)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_title(f"t = {float(t):.4g}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shading, ax=axes[0].tolist(), label="u", shrink=0.9)
    fig.suptitle(title or f"{space.element.name}, {mesh.n_cells} cells, {space.n_dofs} dofs",
                 fontsize=10)
    save_figure(fig, path)
    plt.close(fig)


def deformation_scale(mesh, displacement, fraction: float = 0.1) -> float:
    """The factor ``s`` that makes ``s max_i |u_i|`` equal to ``fraction`` times the domain
    size (the longer side of the mesh's bounding box); 1 for a zero displacement."""
    x = mesh.nodes.detach().cpu().numpy()
    size = float((x.max(axis=0) - x.min(axis=0)).max())
    largest = float(np.linalg.norm(np.asarray(displacement), axis=1).max())
    return fraction * size / largest if largest > 0 else 1.0


def plot_deformed(space, u, path, cell_values, scale=None, title: str = "",
                  label: str = "von Mises stress") -> None:
    """The mesh moved to ``x + s u(x)`` (vertices; cells drawn straight-sided), each cell
    coloured by ``cell_values`` (n_cells,), over the outline of the undeformed boundary.
    On a 3D mesh: the moved boundary surface, each face coloured by the value of its cell,
    over the undeformed boundary's edges (the bounding box's on large meshes).

    ``scale=None`` picks ``s`` by :func:`deformation_scale` (the largest displacement
    drawn as 10 % of the domain size) for small-strain solutions; ``scale=1`` draws the
    true deformation (large-deformation problems). The title says which.
    """
    plt = pyplot()
    from matplotlib.collections import LineCollection, PolyCollection

    mesh = space.mesh
    x = mesh.nodes.detach().cpu().numpy()
    disp = space.vertex_values(u.detach()).cpu().numpy()
    if scale is None:
        scale = deformation_scale(mesh, disp)
        how = f"displacement x {scale:.3g} (largest = 10 % of the domain size)"
    elif scale == 1:
        how = "true displacement"
    else:
        how = f"displacement x {scale:.3g}"
    moved = x + scale * disp
    values = np.asarray(cell_values.detach().cpu() if hasattr(cell_values, "detach")
                        else cell_values, dtype=float)
    if mesh.dim == 3:
        from dfem.plots3d import plot_deformed_3d

        plot_deformed_3d(mesh, x, moved, values, path, title, how, label)
        return
    both = np.concatenate([x, moved])
    lo, hi = both.min(axis=0), both.max(axis=0)
    pad = 0.03 * float((hi - lo).max())
    aspect = float((hi[1] - lo[1] + 2 * pad) / (hi[0] - lo[0] + 2 * pad))
    wide = aspect < 0.6  # a slender domain: the colour bar goes below it
    fig, ax = plt.subplots(figsize=(8.0, 2.4 + 6.0 * aspect) if wide else (6.4, 5.2))
    ax.add_collection(LineCollection(x[mesh.boundary_edges], colors="0.6", linewidths=0.8,
                                     linestyles="--", label="undeformed"))
    edges = "k" if mesh.n_cells <= MAX_CELLS_WITH_EDGES else "face"
    cells = PolyCollection(moved[mesh.cells_np], array=values, cmap="viridis",
                           edgecolors=edges, linewidths=0.2)
    ax.add_collection(cells)
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    fig.colorbar(cells, ax=ax, label=f"{label} (per cell)",
                 orientation="horizontal" if wide else "vertical", fraction=0.08, pad=0.15
                 if wide else 0.04)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"{title}\n{how}" if title else how, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_convergence(study: dict, path, degree: int, title: str = "") -> None:
    """Log-log L2 and H1-seminorm errors against h, with reference slopes h^(p+1) and h^p."""
    plt = pyplot()
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
    ax.set_ylabel("error")
    _finish_line_plot(plt, fig, ax, "h (longest edge)", title, path)


def plot_surrogate_comparison(rows, path) -> None:
    """One row per sample: ``log10 nu``, surrogate ``u``, FEM ``u`` and their difference.

    ``rows`` is a list of ``(label, log_nu, u_surrogate, u_fem)`` with (m, m) arrays whose
    row ``j``, column ``i`` is the node at ``(x_i, y_j)``.
    """
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), 4, figsize=(13, 3.2 * len(rows)), squeeze=False)
    extent = (0.0, 1.0, 0.0, 1.0)
    for ax_row, (label, log_nu, pred, ref) in zip(axes, rows, strict=True):
        log_nu, pred, ref = (np.asarray(a, dtype=float) for a in (log_nu, pred, ref))
        low, high = min(pred.min(), ref.min()), max(pred.max(), ref.max())
        panels = [
            (log_nu / np.log(10.0), "log10 nu", "viridis", None),
            (pred, "surrogate u", "coolwarm", (low, high)),
            (ref, "FEM u", "coolwarm", (low, high)),
            (pred - ref, f"difference (max {np.abs(pred - ref).max():.2e})", "RdBu_r", None),
        ]
        for ax, (image, title, cmap, limits) in zip(ax_row, panels, strict=True):
            vmin, vmax = limits if limits else (None, None)
            if title.startswith("difference"):
                bound = float(np.abs(image).max()) or 1.0
                vmin, vmax = -bound, bound
            shown = ax.imshow(image, origin="lower", extent=extent, cmap=cmap, vmin=vmin,
                              vmax=vmax)
            fig.colorbar(shown, ax=ax, fraction=0.046)
            ax.set_title(f"{label}: {title}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_nurbs_fit(grid, fixed, learned, path, x_range, y_range) -> None:
    """2 x 2 figure of a NURBS surface fit (:mod:`dfem.basis.nurbs.fitting`): target,
    learnable-knot fit, its error, and the knot positions of both fits."""
    plt = pyplot()
    x, y, z = grid.x.numpy(), grid.y.numpy(), grid.z.numpy()
    fit = learned.surface(grid.u, grid.v)[..., 0].detach().numpy()
    fig, axes = plt.subplots(2, 2, figsize=(10, 8), constrained_layout=True)
    err = float(np.abs(fit - z).max())
    panels = [(z, "target z (Bukin N.6)", "viridis", z.min(), z.max()),
              (fit, f"fit: {learned.setting}", "viridis", z.min(), z.max()),
              (fit - z, f"error z_fit - z (MSE {learned.mse:.3g})", "RdBu_r", -err, err)]
    for ax, (data, title, cmap, lo, hi) in zip(axes.flat, panels, strict=False):
        image = ax.imshow(data.T, origin="lower", extent=[*x_range, *y_range], aspect="auto",
                          cmap=cmap, vmin=lo, vmax=hi)
        fig.colorbar(image, ax=ax)
        ax.set(title=title, xlabel="x", ylabel="y")
    ax = axes[1, 1]
    ax.contour(x, y, z.T, levels=12, colors="0.75", linewidths=0.6)
    ax.plot(x, 0.01 * x**2, "k-", lw=1, label="trough y = 0.01 x²")
    for result, style in ((fixed, ":"), (learned, "-")):
        s = result.surface
        for axis, knots, d, color, lo, hi in (
            ("u", s.knots_u, s.degree_u, "tab:red", *x_range),
            ("v", s.knots_v, s.degree_v, "tab:blue", *y_range),
        ):
            draw = ax.axvline if axis == "u" else ax.axhline
            for k, t in enumerate(knots.detach().numpy()[d + 1 : -(d + 1)]):
                draw(lo + (hi - lo) * t, color=color, ls=style, lw=1,
                     label=f"{axis} knots, {result.setting}" if k == 0 else None)
    ax.set(title="interior knots (dotted: fixed, solid: learned)", xlabel="x", ylabel="y",
           xlim=x_range, ylim=y_range)
    ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path)
    plt.close(fig)


def plot_cell_fields(mesh, fields: dict, path, title: str = "") -> None:
    """Side-by-side plots of per-cell fields ``{name: (n_cells,) values}`` on the mesh; a
    name containing ``" - "`` is drawn as a difference (symmetric colour range). On a 3D
    mesh each panel shows the boundary surface, each face coloured by its cell's value."""
    plt = pyplot()
    from matplotlib.collections import PolyCollection

    fields = {name: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=float)
              for name, v in fields.items()}
    shared = [v for name, v in fields.items() if " - " not in name]
    low = min(v.min() for v in shared) if shared else None
    high = max(v.max() for v in shared) if shared else None

    def limits_and_map(name, values):
        if " - " in name:
            bound = float(np.abs(values).max()) or 1.0
            return (-bound, bound), "RdBu_r"
        return (low, high), "viridis"

    if mesh.dim == 3:
        from dfem.plots3d import plot_cell_fields_3d

        plot_cell_fields_3d(mesh, fields, limits_and_map, path, title)
        return
    corners = mesh.nodes.detach().cpu().numpy()[mesh.cells_np]
    fig, axes = plt.subplots(1, len(fields), figsize=(4.6 * len(fields), 4.2), squeeze=False)
    for ax, (name, values) in zip(axes[0], fields.items(), strict=True):
        limits, cmap = limits_and_map(name, values)
        cells = PolyCollection(corners, array=values, cmap=cmap, edgecolors="face")
        cells.set_clim(*limits)
        ax.add_collection(cells)
        ax.autoscale_view()
        ax.set_aspect("equal")
        ax.set_title(name, fontsize=10)
        fig.colorbar(cells, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_inverse_history(history: list, weight: float, path, title: str = "",
                         error_label: str | None = None) -> None:
    """Misfit, weighted regularisation and (when recorded) the error against the truth per
    L-BFGS iteration, on a log scale; ``error_label`` names the error (default: the
    relative L2 error of log nu)."""
    plt = pyplot()
    iterations = [row["iteration"] for row in history]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.semilogy(iterations, [row["misfit"] for row in history], label="misfit M(u)")
    if weight > 0:
        ax.semilogy(iterations, [weight * row["regularization"] for row in history],
                    label="weight x regularisation")
    if all("error" in row for row in history):
        ax.semilogy(iterations, [row["error"] for row in history], "k--",
                    label=error_label or "relative L2 error of log nu")
    _finish_line_plot(plt, fig, ax, "L-BFGS iteration", title, path)


def plot_sensor_histories(times, observed, predicted, names, path, title: str = "") -> None:
    """Sensor histories against time: the data ``observed`` (n_levels, k) as markers and
    the fitted histories ``predicted`` (n_levels, k) as lines, one colour per sensor,
    labelled with ``names`` (k strings)."""
    plt = pyplot()
    times = np.asarray(times, dtype=float)
    observed = np.asarray(observed.detach().cpu() if hasattr(observed, "detach") else observed,
                          dtype=float)
    predicted = np.asarray(predicted.detach().cpu() if hasattr(predicted, "detach")
                           else predicted, dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for j, name in enumerate(names):
        colour = f"C{j % 10}"
        ax.plot(times, observed[:, j], "o", color=colour, markersize=3.5, alpha=0.7,
                label=f"data at {name}")
        ax.plot(times, predicted[:, j], "-", color=colour, label="fit" if j == 0 else None)
    ax.set_ylabel("u")
    _finish_line_plot(plt, fig, ax, "t", title, path)


def plot_segmentation_curves(summary: dict, path) -> None:
    """Validation Dice against epoch: one panel per label setting, one curve per model (mean
    over seeds, band of ± one standard deviation)."""
    plt = pyplot()
    settings = sorted({run["labels"] for run in summary["runs"]})
    fig, axes = plt.subplots(1, len(settings), figsize=(5.6 * len(settings), 4.2),
                             squeeze=False, sharey=True)
    for ax, labels in zip(axes[0], settings, strict=True):
        models = sorted({r["model"] for r in summary["runs"] if r["labels"] == labels})
        for model in models:
            curves = np.array([[row["val_dice_mean"] for row in r["history"]]
                               for r in summary["runs"]
                               if r["labels"] == labels and r["model"] == model])
            epochs = np.arange(1, curves.shape[1] + 1)
            mean, std = curves.mean(axis=0), curves.std(axis=0)
            ax.plot(epochs, 100 * mean, label=f"{model} ({len(curves)} seeds)")
            ax.fill_between(epochs, 100 * (mean - std), 100 * (mean + std), alpha=0.2)
        ax.set_title(f"trained on {labels} labels")
        ax.set_ylabel("validation Dice (clean labels, %)")
        _finish_axes(ax, "epoch")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_segmentation_grid(columns: dict, num_classes: int, path) -> None:
    """A grid of images and label maps: one row per sample, one column per entry of
    ``columns`` ({title: (n, C, H, W) images or (n, H, W) label maps})."""
    plt = pyplot()
    rows = len(next(iter(columns.values())))
    fig, axes = plt.subplots(rows, len(columns), figsize=(2.3 * len(columns), 2.3 * rows),
                             squeeze=False)
    for col, (title, values) in enumerate(columns.items()):
        values = values.detach().cpu()
        for row in range(rows):
            ax = axes[row, col]
            if values.ndim == 4:
                ax.imshow(values[row].permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray")
            else:
                ax.imshow(values[row].numpy(), cmap="viridis", vmin=0, vmax=num_classes - 1,
                          interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_table5(table5: dict, paper: dict, path) -> None:
    """Bar chart (log scale) of the Table 5 L2 errors: the paper's methods and dfem's, one
    group of bars per grid."""
    plt = pyplot()
    sizes = table5["sizes"]
    methods = next(iter(paper.values()))
    labels = [f"paper {m}" for m in methods]
    values = {f"paper {m}": [paper.get(n, {}).get(m, np.nan) for n in sizes] for m in methods}
    for row in table5["rows"]:
        label = row["method"] + (f" {row['element']}" if "element" in row else "")
        if label not in values:
            labels.append(label)
            values[label] = [np.nan] * len(sizes)
        values[label][sizes.index(row["n"])] = row["l2_error"]
    fig, ax = plt.subplots(figsize=(max(7.0, 0.55 * len(labels) * len(sizes)), 4.6))
    width = 0.8 / len(sizes)
    x = np.arange(len(labels))
    for k, n in enumerate(sizes):
        ax.bar(x + k * width, [values[label][k] for label in labels], width, label=f"{n}x{n}")
    ax.set_yscale("log")
    ax.set_xticks(x + width * (len(sizes) - 1) / 2)
    ax.set_xticklabels(labels, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("L2 error of u")
    ax.set_title("Table 5: -Δu = 2π² sin(πx) sin(πy)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_density(mesh, density, path, title: str = "") -> None:
    """A topology optimisation design: the physical density per cell on a grey scale from
    white (0, void) to black (1, solid), as in the classic pictures. A 2D mesh is drawn
    cell by cell without axes; a 3D mesh as the surface of its solid cells (density >=
    0.5) beside the density on the mid-plane slice (:func:`dfem.plots3d.plot_density_3d`).

    Parameters
    ----------
    mesh : Mesh
    density : (n_cells,) array or tensor
        Values in [0, 1].
    path : path-like
        The PNG file (written atomically).
    title : str
    """
    density = np.asarray(density.detach().cpu() if hasattr(density, "detach") else density,
                         dtype=float)
    if mesh.dim == 3:
        from dfem.plots3d import plot_density_3d

        plot_density_3d(mesh, density, path, title)
        return
    plt = pyplot()
    from matplotlib.collections import PolyCollection

    corners = mesh.nodes.detach().cpu().numpy()[mesh.cells_np]
    lo, hi = corners.reshape(-1, 2).min(axis=0), corners.reshape(-1, 2).max(axis=0)
    aspect = float((hi[1] - lo[1]) / max(hi[0] - lo[0], 1e-300))
    width = min(7.0, 5.5 / max(aspect, 1e-300))  # at most 7 wide and 5.5 high
    height = width * aspect
    fig = plt.figure(figsize=(width + 0.2, height + (0.5 if title else 0.2)))
    ax = fig.add_axes((0.1 / (width + 0.2), 0.1 / fig.get_figheight(), width / (width + 0.2),
                       height / fig.get_figheight()))
    cells = PolyCollection(corners, array=density, cmap="gray_r", edgecolors="face",
                           linewidths=0.5)
    cells.set_clim(0.0, 1.0)
    ax.add_collection(cells)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.05 / fig.get_figheight(), va="top")
    save_figure(fig, path)
    plt.close(fig)


def plot_design_history(history: list, volume_fraction: float, path, title: str = "") -> None:
    """The convergence of a topology optimisation: the compliance (log scale) and the
    volume fraction (with the allowed one dashed) against the iteration, from the rows of
    :attr:`dfem.design.TopologyOptimization.history`."""
    plt = pyplot()
    iterations = [row["iteration"] for row in history]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True)
    top.semilogy(iterations, [row["compliance"] for row in history], label="compliance")
    top.set_ylabel("compliance")
    top.grid(True, which="both", alpha=0.3)
    top.legend()
    bottom.plot(iterations, [row["volume"] for row in history], label="volume fraction")
    bottom.axhline(volume_fraction, color="k", linestyle="--", linewidth=1,
                   label=f"allowed {volume_fraction:g}")
    volumes = [row["volume"] for row in history] + [volume_fraction]
    bottom.set_ylim(min(min(volumes), volume_fraction - 0.05),  # changes of 1e-4 stay flat
                    max(max(volumes), volume_fraction + 0.05))
    bottom.set_ylabel("volume fraction")
    _finish_axes(bottom, "iteration")
    if title:
        top.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
