"""Structured meshes of rectangles."""

from __future__ import annotations

import numpy as np
import torch

from dfem.errors import MeshError
from dfem.mesh.mesh import Mesh


def rectangle(
    nx: int,
    ny: int | None = None,
    cell: str = "quad",
    x: tuple[float, float] = (0.0, 1.0),
    y: tuple[float, float] = (0.0, 1.0),
    dtype: torch.dtype = torch.float64,
    device=None,
    diagonal: str = "right",
) -> Mesh:
    """A structured mesh of the rectangle ``[x0, x1] x [y0, y1]``.

    Node ``(i, j)`` (``0 <= i <= nx``, ``0 <= j <= ny``) has number ``j * (nx + 1) + i``
    and sits at ``(x0 + i hx, y0 + j hy)``.

    Parameters
    ----------
    nx, ny : int
        Cells along x and y (``ny`` defaults to ``nx``).
    cell : {"quad", "tri"}
        Quadrilaterals, or triangles made by cutting each quad along a diagonal.
    x, y : (float, float)
        The interval along each axis.
    diagonal : {"right", "left", "alternate"}
        For triangles: cut from lower-left to upper-right ("right"), from
        lower-right to upper-left ("left"), or alternate in a checkerboard.

    Returns
    -------
    Mesh
        With boundary tags ``"left"`` (x = x0), ``"right"`` (x = x1),
        ``"bottom"`` (y = y0) and ``"top"`` (y = y1).
    """
    ny = nx if ny is None else ny
    for name, n in (("nx", nx), ("ny", ny)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise MeshError(f"{name} must be a positive integer, got {n!r}.")
    nx, ny = int(nx), int(ny)
    for name, side in (("x", x), ("y", y)):
        ok = isinstance(side, (tuple, list)) and len(side) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e300
            for v in side
        )
        if not ok or not side[1] > side[0]:
            raise MeshError(
                f"{name} must be a pair of finite numbers with {name}0 < {name}1, got {side!r}."
            )
    if cell not in ("quad", "tri"):
        raise MeshError(f"cell must be 'quad' or 'tri', got {cell!r}.")

    xs = np.linspace(x[0], x[1], nx + 1)
    ys = np.linspace(y[0], y[1], ny + 1)
    X, Y = np.meshgrid(xs, ys)  # (ny+1, nx+1): row j, column i
    nodes = np.stack([X.ravel(), Y.ravel()], axis=1)

    number = np.arange((nx + 1) * (ny + 1)).reshape(ny + 1, nx + 1)
    v0 = number[:-1, :-1].ravel()  # lower-left corner of each square
    v1 = number[:-1, 1:].ravel()
    v2 = number[1:, 1:].ravel()
    v3 = number[1:, :-1].ravel()
    if cell == "quad":
        cells = np.stack([v0, v1, v2, v3], axis=1)
    else:
        right = np.stack([np.stack([v0, v1, v2], 1), np.stack([v0, v2, v3], 1)], axis=1)
        left = np.stack([np.stack([v0, v1, v3], 1), np.stack([v1, v2, v3], 1)], axis=1)
        if diagonal == "right":
            use_left = np.zeros(nx * ny, dtype=bool)
        elif diagonal == "left":
            use_left = np.ones(nx * ny, dtype=bool)
        elif diagonal == "alternate":
            i, j = np.meshgrid(np.arange(nx), np.arange(ny))
            use_left = ((i + j) % 2 == 1).ravel()
        else:
            raise MeshError(f"diagonal must be 'right', 'left' or 'alternate', got {diagonal!r}.")
        cells = np.where(use_left[:, None, None], left, right).reshape(-1, 3)

    def side(vertices):
        return np.stack([vertices[:-1], vertices[1:]], axis=1)

    boundaries = {
        "bottom": side(number[0, :]),
        "right": side(number[:, -1]),
        "top": side(number[-1, ::-1]),
        "left": side(number[::-1, 0]),
    }
    return Mesh(torch.as_tensor(nodes, dtype=dtype, device=device), cells, boundaries)


def unit_square(n: int, cell: str = "quad", **kwargs) -> Mesh:
    """``rectangle(n, n, cell)`` on ``[0, 1]^2``."""
    return rectangle(n, n, cell, **kwargs)


def perturb_interior(mesh: Mesh, fraction: float = 0.2, seed: int = 0) -> Mesh:
    """The mesh with every node off the boundary moved by a uniform random offset of at
    most ``fraction`` times the shortest edge in each coordinate (seeded); the boundary
    is unchanged. For ``fraction`` < 1/4 the cells of a structured mesh stay valid: a
    quick distorted mesh for tests and robustness checks."""
    if not 0 <= fraction < 0.5:
        raise MeshError(f"fraction must lie in [0, 0.5) to keep cells valid, got {fraction!r}.")
    x = mesh.nodes.detach().clone()
    interior = torch.ones(mesh.n_nodes, dtype=torch.bool, device=x.device)
    interior[torch.as_tensor(mesh.boundary_nodes, device=x.device)] = False
    edges = torch.as_tensor(mesh.edge_table.edges, device=x.device)
    shortest = float(torch.linalg.vector_norm(x[edges[:, 1]] - x[edges[:, 0]], dim=1).min())
    generator = torch.Generator().manual_seed(int(seed))
    offsets = torch.rand(int(interior.sum()), 2, generator=generator, dtype=x.dtype) - 0.5
    x[interior] += offsets.to(x.device) * (2 * fraction * shortest)
    return mesh.with_nodes(x)
