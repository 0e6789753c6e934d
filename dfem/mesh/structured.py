"""Structured meshes of rectangles and boxes."""

from __future__ import annotations

import numpy as np
import torch

from dfem.exceptions import MeshError
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
    nx, ny = _counts(nx=nx, ny=ny)
    _intervals(x=x, y=y)
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


def _counts(**counts) -> list[int]:
    for name, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise MeshError(f"{name} must be a positive integer, got {n!r}.")
    return [int(n) for n in counts.values()]


def _intervals(**sides) -> None:
    for name, side in sides.items():
        ok = isinstance(side, (tuple, list)) and len(side) == 2 and all(
            isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
            and abs(v) < 1e300 for v in side
        )
        if not ok or not side[1] > side[0]:
            raise MeshError(
                f"{name} must be a pair of finite numbers with {name}0 < {name}1, got {side!r}."
            )


# The six tetrahedra of the Kuhn (Freudenthal) split of the unit cube: one per order of
# the axes, each walking from corner 000 to 111 along the axes in that order. Every cube
# split this way has the same face diagonals as its neighbours, so the mesh is
# conforming. Corners are numbered 4 z + 2 y + x; odd orders swap two vertices so that
# every tetrahedron is positively oriented.
_KUHN = np.array([[0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7], [0, 2, 6, 7],
                  [0, 4, 5, 7], [0, 4, 6, 7]])


def _kuhn_tets() -> np.ndarray:
    corner = np.array([[c & 1, (c >> 1) & 1, c >> 2] for c in range(8)], dtype=float)
    tets = _KUHN.copy()
    x = corner[tets]
    det = np.linalg.det(x[:, 1:] - x[:, :1])
    tets[det < 0, 1:3] = tets[det < 0, 2:0:-1]
    return tets


def box(
    nx: int,
    ny: int | None = None,
    nz: int | None = None,
    cell: str = "hex",
    x: tuple[float, float] = (0.0, 1.0),
    y: tuple[float, float] = (0.0, 1.0),
    z: tuple[float, float] = (0.0, 1.0),
    dtype: torch.dtype = torch.float64,
    device=None,
) -> Mesh:
    """A structured mesh of the box ``[x0, x1] x [y0, y1] x [z0, z1]``.

    Node ``(i, j, k)`` has number ``(k * (ny + 1) + j) * (nx + 1) + i`` and sits at
    ``(x0 + i hx, y0 + j hy, z0 + k hz)``.

    Parameters
    ----------
    nx, ny, nz : int
        Cells along x, y and z (``ny`` and ``nz`` default to ``nx``).
    cell : {"hex", "tet"}
        Hexahedra, or six tetrahedra per hexahedron (the Kuhn split, conforming).
    x, y, z : (float, float)
        The interval along each axis.

    Returns
    -------
    Mesh
        With boundary tags ``"left"`` / ``"right"`` (x = x0 / x1), ``"bottom"`` /
        ``"top"`` (y = y0 / y1) and ``"front"`` / ``"back"`` (z = z0 / z1); every
        boundary face carries exactly one of them (and ``"boundary"`` names all).
    """
    ny = nx if ny is None else ny
    nz = nx if nz is None else nz
    nx, ny, nz = _counts(nx=nx, ny=ny, nz=nz)
    _intervals(x=x, y=y, z=z)
    if cell not in ("hex", "tet"):
        raise MeshError(f"cell must be 'hex' or 'tet' for a box, got {cell!r}.")
    axes = [np.linspace(*side, n + 1) for side, n in ((x, nx), (y, ny), (z, nz))]
    Z, Y, X = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    nodes = np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)
    number = np.arange(len(nodes)).reshape(nz + 1, ny + 1, nx + 1)
    # the cube's corners, numbered 4 z + 2 y + x
    corners = np.stack([number[dz:nz + dz, dy:ny + dy, dx:nx + dx].ravel()
                        for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)], axis=1)
    if cell == "hex":
        cells = corners[:, [0, 1, 3, 2, 4, 5, 7, 6]]  # meshio's order
    else:
        cells = corners[:, _kuhn_tets()].reshape(-1, 4)
    mesh = Mesh(torch.as_tensor(nodes, dtype=dtype, device=device), cells)
    # tag the boundary faces by the grid index their vertices share
    faces = mesh.oriented_facets(mesh.boundary_facet_ids("boundary"))
    k, rest = np.divmod(faces, (ny + 1) * (nx + 1))
    j, i = np.divmod(rest, nx + 1)
    sides = {"left": i == 0, "right": i == nx, "bottom": j == 0, "top": j == ny,
             "front": k == 0, "back": k == nz}
    boundaries = {name: faces[on.all(axis=1)] for name, on in sides.items()}
    tagged = Mesh(mesh.nodes, cells, boundaries, check=False)
    for name in Mesh._TABLES:  # the topology is the same: keep the tables built above
        if name in mesh.__dict__:
            tagged.__dict__[name] = mesh.__dict__[name]
    return tagged


def unit_cube(n: int, cell: str = "hex", **kwargs) -> Mesh:
    """``box(n, n, n, cell)`` on ``[0, 1]^3``."""
    return box(n, n, n, cell, **kwargs)


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
    offsets = torch.rand(int(interior.sum()), mesh.dim, generator=generator,
                         dtype=x.dtype) - 0.5
    x[interior] += offsets.to(x.device) * (2 * fraction * shortest)
    return mesh.with_nodes(x)
