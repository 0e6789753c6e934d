"""Pictures of NURBS shapes: von Mises stress, boundary and control net."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dfem.design.shape import ShapeObjective
from dfem.validation import kirsch


# ---------------------------------------------------------------------------- picture
def _field_grid(objective: ShapeObjective, theta: torch.Tensor, n: int = 48):
    """Points (n, 2n, 2) and von Mises stress (n, 2n) of ``theta`` on a parameter grid."""
    problem, u = objective.analysis(theta.detach())
    space = problem.space
    patch = space.scalar.patch
    a = patch.knots_u
    b = patch.knots_v
    us = torch.linspace(float(a[0]), float(a[-1]), n, dtype=theta.dtype)
    vs = torch.linspace(float(b[0]), float(b[-1]), 2 * n, dtype=theta.dtype)
    U, V = torch.meshgrid(us, vs, indexing="ij")
    uv = torch.stack([U.reshape(-1), V.reshape(-1)], -1)
    with torch.no_grad():
        x, grad = kirsch.gradient_at(space, u.detach(), uv)
        mu, lam = (t.reshape(-1)[0] for t in problem.material)
        eps = 0.5 * (grad + grad.transpose(-1, -2))
        tr = eps.diagonal(dim1=-2, dim2=-1).sum(-1)
        sigma = lam * tr[..., None, None] * torch.eye(2, dtype=x.dtype) + 2 * mu * eps
        sxx, syy, sxy = sigma[:, 0, 0], sigma[:, 1, 1], sigma[:, 0, 1]
        vm = torch.sqrt(sxx**2 - sxx * syy + syy**2 + 3 * sxy**2)  # plane stress
    return x.reshape(n, 2 * n, 2).numpy(), vm.reshape(n, 2 * n).numpy()


def plot_shapes(shapes: Sequence[tuple[ShapeObjective, torch.Tensor]], path,
                labels: Sequence[str] = ("initial", "optimised"), title: str = "",
                columns: int | None = None) -> None:
    """Shapes ``(objective, theta)`` side by side (``columns`` per row, default all in one
    row up to 3): the von Mises stress of each (plane stress, one colour scale, on a
    48 x 96 parameter grid), the physical boundary (black) and the design control net
    (grey, the moved points red); the panel titles give the peak stress on the grid.
    Written atomically as a PNG."""
    from matplotlib.collections import LineCollection

    from dfem.plots import pyplot, save_figure

    plt = pyplot()
    fields = [_field_grid(objective, th) for objective, th in shapes]
    top = max(float(vm.max()) for _, vm in fields)
    columns = min(len(shapes), 3) if columns is None else int(columns)
    rows = -(-len(shapes) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns + 1.0, 4.0 * rows),
                             squeeze=False, layout="constrained")
    shading = None
    for ax, (objective, th), (x, vm), label in zip(axes.flat, shapes, fields, labels,
                                                   strict=False):
        design = objective.design
        moved = torch.unique(design.index).numpy()
        shading = ax.pcolormesh(x[..., 0], x[..., 1], vm, shading="gouraud", cmap="viridis",
                                vmin=0.0, vmax=top)
        for edge in (x[0], x[-1], x[:, 0], x[:, -1]):
            ax.plot(edge[:, 0], edge[:, 1], "k-", lw=1.2)
        net = design.design_points(th.detach()).numpy()
        ax.add_collection(LineCollection([*net, *net.transpose(1, 0, 2)], colors="0.85",
                                         linewidths=0.8, linestyles="--"))
        flat = net.reshape(-1, 2)
        ax.plot(flat[:, 0], flat[:, 1], "o", color="0.85", ms=3)
        ax.plot(flat[moved, 0], flat[moved, 1], "o", color="tab:red", ms=4)
        ax.set_aspect("equal")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(f"{label}\nmax von Mises {float(vm.max()):.2f}", fontsize=10)
    for ax in list(axes.flat)[len(shapes):]:
        ax.set_visible(False)
    fig.colorbar(shading, ax=axes, label="von Mises stress", shrink=0.9)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)
