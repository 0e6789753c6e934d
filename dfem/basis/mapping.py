"""The map from the reference cell to each mesh cell, batched over cells.

Cells are straight-sided: the map is the P1 (affine) or Q1 (bilinear)
interpolation of the cell's vertices,

.. math:: x(\\xi) = \\sum_a N_a(\\xi)\\, x_a, \\qquad
          J_{ij} = \\partial x_i / \\partial \\xi_j = \\sum_a x_{a,i}\\, \\partial_j N_a(\\xi),

and physical gradients are ``grad_x phi = J^{-T} grad_xi phi``. Every quantity
is a torch expression of the node coordinates, so it is differentiable with
respect to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class CellGeometry:
    """Mapped quadrature data for all cells.

    Attributes
    ----------
    points : (n_cells, n_q, 2) tensor
        Physical quadrature points.
    weights : (n_cells, n_q) tensor
        Quadrature weight times ``|det J|``: ``integral f = sum_q f(x_q) weights_q``.
    grads : (n_cells, n_q, n_basis, 2) tensor
        Physical gradients of the basis functions.
    values : (n_q, n_basis) tensor
        Basis values (the same on every cell).
    """

    points: torch.Tensor
    weights: torch.Tensor
    grads: torch.Tensor
    values: torch.Tensor


def jacobians(vertex_coords: torch.Tensor, geo_grads: torch.Tensor) -> torch.Tensor:
    """``J[e, q, i, j] = sum_a x[e, a, i] dN_a/dxi_j (xi_q)``, shape (n_cells, n_q, 2, 2)."""
    return torch.einsum("eai,qaj->eqij", vertex_coords, geo_grads)


def map_cells(
    nodes: torch.Tensor,
    cells: torch.Tensor,
    geo_values: torch.Tensor,
    geo_grads: torch.Tensor,
    basis_values: torch.Tensor,
    basis_grads: torch.Tensor,
    quad_weights: torch.Tensor,
    affine: bool,
) -> CellGeometry:
    """Map reference quadrature data onto every cell.

    Parameters
    ----------
    nodes : (n_nodes, 2) tensor
    cells : (n_cells, n_vertices) int64 tensor
    geo_values, geo_grads : (n_q, n_vertices), (n_q, n_vertices, 2)
        The geometry element (P1/Q1) at the reference quadrature points.
    basis_values, basis_grads : (n_q, n_basis), (n_q, n_basis, 2)
        The space's element at the reference quadrature points.
    quad_weights : (n_q,)
    affine : bool
        True for triangles: the Jacobian is constant on a cell and is computed once.
    """
    xv = nodes[cells]  # (E, nv, 2)
    points = torch.einsum("eai,qa->eqi", xv, geo_values)
    J = jacobians(xv, geo_grads[:1] if affine else geo_grads)
    det = J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]
    # Inverse transpose of a 2x2 matrix, written out: J^{-T} = [[d, -c], [-b, a]] / det
    inv_t = (
        torch.stack(
            [
                torch.stack([J[..., 1, 1], -J[..., 1, 0]], dim=-1),
                torch.stack([-J[..., 0, 1], J[..., 0, 0]], dim=-1),
            ],
            dim=-2,
        )
        / det[..., None, None]
    )
    if affine:
        grads = torch.einsum("eij,qaj->eqai", inv_t[:, 0], basis_grads)
    else:
        grads = torch.einsum("eqij,qaj->eqai", inv_t, basis_grads)
    weights = det.abs() * quad_weights[None, :]  # det is (E, 1) when affine
    return CellGeometry(points=points, weights=weights, grads=grads, values=basis_values)
