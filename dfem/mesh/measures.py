"""Cell measures from vertex coordinates: signed areas, volumes and the Jacobian
determinants at the corners, batched over cells and differentiable in the coordinates.

Each function takes the vertices of the cells, ``x`` (n_cells, n_vertices, dim), in the
vertex order of :mod:`dfem.mesh.cells`; :class:`~dfem.mesh.Mesh` calls them with
``nodes[cells]``.
"""

from __future__ import annotations

import numpy as np
import torch

from dfem.mesh.cells import ReferenceCell


def shoelace_areas(x: torch.Tensor) -> torch.Tensor:
    """Signed area (n_cells,) of each polygon ``x`` (n_cells, n_vertices, 2) by the shoelace
    formula: positive for counter-clockwise vertices.

    Coordinates are taken relative to each cell's first vertex, so the areas of small
    cells far from the origin keep their precision.
    """
    x = x - x[:, :1, :]
    xn = torch.roll(x, -1, dims=1)
    return 0.5 * (x[..., 0] * xn[..., 1] - xn[..., 0] * x[..., 1]).sum(dim=1)


def cell_volumes(x: torch.Tensor, cell: ReferenceCell) -> torch.Tensor:
    """Signed measure (n_cells,) of each cell: area in 2D, volume in 3D.

    Exact for straight-sided cells: the shoelace formula in 2D, ``det/6`` for
    tetrahedra, and for hexahedra the 2x2x2 Gauss rule, exact for the Jacobian
    determinant of a trilinear map (degree 2 in each variable).
    """
    if x.shape[-1] == 2:
        return shoelace_areas(x)
    if cell.simplex:
        return _det3(*(x[:, 1:] - x[:, :1]).transpose(1, 2).unbind(-1)) / 6.0
    g = (3 - 3**0.5) / 6
    points = np.array(np.meshgrid(*[[g, 1 - g]] * 3, indexing="ij")).reshape(3, -1).T
    return _det3(*_trilinear_jacobian(x, cell, points).unbind(-1)).sum(-1) / 8.0


def corner_jacobians(x: torch.Tensor, cell: ReferenceCell) -> torch.Tensor:
    """Jacobian determinant of the cell map at each corner, (n_cells, n_vertices).

    For simplices the map is affine (every corner has the same value: twice the area,
    six times the volume); for quadrilaterals and hexahedra the value at a corner is the
    determinant of its edges along the reference axes, the Jacobian there. A cell is
    valid when every corner value is positive.
    """
    if cell.simplex:
        det = determinant((x[:, 1:] - x[:, :1]).transpose(1, 2))
        return det[:, None].expand(-1, cell.n_vertices)
    # the neighbour of vertex v along axis j, and the sign that makes it d x / d xi_j
    neighbour, r = cell.axis_neighbours, cell.vertices
    sign = torch.as_tensor(1.0 - 2.0 * r, dtype=x.dtype, device=x.device)  # (nv, dim)
    columns = (x[:, neighbour] - x[:, :, None]) * sign[None, :, :, None]  # (E, nv, j, i)
    return determinant(columns.transpose(-1, -2))


def determinant(m: torch.Tensor) -> torch.Tensor:
    """Determinants of (..., d, d) matrices for d = 2, 3 in closed form (batched, exact
    enough for the orientation test and cheaper than an LU per cell)."""
    if m.shape[-1] == 2:
        return m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0]
    return _det3(m[..., :, 0], m[..., :, 1], m[..., :, 2])


def _det3(a, b, c) -> torch.Tensor:
    """``det [a b c]`` of column vectors (..., 3), as the triple product ``a . (b x c)``."""
    return (a * torch.linalg.cross(b, c, dim=-1)).sum(-1)


def _trilinear_jacobian(x: torch.Tensor, cell: ReferenceCell, points: np.ndarray) -> torch.Tensor:
    """``dx/dxi`` (E, n_points, 3, 3) of the trilinear maps of hexahedra ``x`` (E, 8, 3)
    at reference points (n_points, 3)."""
    r = cell.vertices  # (8, 3) in {0, 1}
    factors = r[None] * points[:, None] + (1 - r[None]) * (1 - points[:, None])
    grads = np.empty((len(points), 8, 3))
    for j in range(3):  # the three reference axes
        others = [k for k in range(3) if k != j]
        grads[:, :, j] = (2 * r[None, :, j] - 1) * factors[:, :, others].prod(-1)
    table = torch.as_tensor(grads, dtype=x.dtype, device=x.device)
    return torch.einsum("eai,qaj->eqij", x, table)
