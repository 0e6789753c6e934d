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

import torch


class CellGeometry:
    """Mapped quadrature data for all cells.

    Attributes
    ----------
    weights : (n_cells, n_q) tensor
        Quadrature weight times ``|det J|``: ``integral f = sum_q f(x_q) weights_q``.
    values : (n_q, n_basis) or (n_cells, n_q, n_basis) tensor
        Basis values: the same on every cell (Lagrange), or per cell (NURBS, whose
        rational basis differs from cell to cell).
    metric : (n_cells, n_q, 3) tensor
        ``|det J| w_q (J^T J)^{-1}`` as its entries (00, 11, 01), so that
        ``int grad phi_a . grad phi_b = sum_q metric_q : (grad_xi phi_a grad_xi phi_b^T)``.
    grads_t : (n_cells, 2, n_q, n_basis) tensor
        Physical gradients ``dphi_a/dx_i (x_q)`` at ``[e, i, q, a]`` (computed on first use).
    grads : (n_cells, n_q, n_basis, 2) tensor
        The same as ``[e, q, a, i]`` (a view).
    points : (n_cells, n_q, 2) tensor
        Physical quadrature points (computed on first use).
    reference_grads : (n_q, n_basis, 2) or (n_cells, n_q, n_basis, 2) tensor
        Basis gradients on the reference cell (per cell when ``values`` is).
    """

    def __init__(self, jacobian, quad_weights, values, reference_grads, vertex_coords,
                 geo_values):
        self.values = values
        self.reference_grads = reference_grads
        j00, j01 = jacobian[:, 0, :, 0], jacobian[:, 0, :, 1]
        j10, j11 = jacobian[:, 1, :, 0], jacobian[:, 1, :, 1]
        self._entries = (j00, j01, j10, j11)
        self.det = j00 * j11 - j01 * j10  # (E, Q), or (E, 1) for affine cells
        self.weights = self.det.abs() * quad_weights
        self._quad_weights = quad_weights
        self._vertex_coords = vertex_coords
        self._geo_values = geo_values
        self._lazy: dict = {}

    @property
    def metric(self) -> torch.Tensor:
        if "metric" not in self._lazy:
            j00, j01, j10, j11 = self._entries
            # (J^T J)^{-1} = adj(J) adj(J)^T / det^2, times |det| w
            scale = self._quad_weights / self.det.abs()
            self._lazy["metric"] = torch.stack(
                [(j11 * j11 + j01 * j01) * scale, (j10 * j10 + j00 * j00) * scale,
                 -(j11 * j10 + j01 * j00) * scale], dim=-1)
        return self._lazy["metric"]

    @property
    def grads_t(self) -> torch.Tensor:
        if "grads_t" not in self._lazy:
            self._lazy["grads_t"] = physical_gradients(self._entries, self.det,
                                                       self.reference_grads)
        return self._lazy["grads_t"]

    @property
    def grads(self) -> torch.Tensor:
        return self.grads_t.permute(0, 2, 3, 1)

    @property
    def per_cell(self) -> bool:
        """Whether the basis tables differ from cell to cell."""
        return self.values.ndim == 3

    @property
    def points(self) -> torch.Tensor:
        if "points" not in self._lazy:
            per_cell = "eqa" if self._geo_values.ndim == 3 else "qa"
            self._lazy["points"] = torch.einsum(f"eai,{per_cell}->eqi", self._vertex_coords,
                                                self._geo_values)
        return self._lazy["points"]


def at_points(local: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``sum_a local[..., e, a] values[(e,) q, a]``: per-cell coefficients at the points.

    ``values`` is (n_q, n_basis), shared by all cells (one GEMM), or (n_cells, n_q,
    n_basis); the result is (..., n_cells, n_q).
    """
    if values.ndim == 2:
        return local @ values.T
    return (local.unsqueeze(-2) @ values.transpose(-1, -2)).squeeze(-2)


def against_basis(at_q: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``sum_q at_q[..., e, q] values[(e,) q, a]`` (..., n_cells, n_basis): the transpose
    of :func:`at_points`, e.g. load vectors from weighted point values."""
    if values.ndim == 2:
        return at_q @ values
    return (at_q.unsqueeze(-2) @ values).squeeze(-2)


def basis_products(values: torch.Tensor) -> torch.Tensor:
    """``values[(e,) q, a] values[(e,) q, b]`` as (..., n_q, n_basis**2) (mass integrands)."""
    products = values[..., :, None] * values[..., None, :]
    return products.reshape(*values.shape[:-1], -1)


def jacobians(vertex_coords: torch.Tensor, geo_grads: torch.Tensor) -> torch.Tensor:
    """``J[e, i, q, j] = sum_a x[e, a, i] dN_a/dxi_j (xi_q)``, shape (n_cells, 2, n_q, 2).

    One GEMM: ``(n_cells * 2, n_vertices) @ (n_vertices, n_q * 2)``.
    """
    n_cells, n_vertices, _ = vertex_coords.shape
    n_q = geo_grads.shape[0]
    left = vertex_coords.transpose(1, 2).reshape(n_cells * 2, n_vertices)
    right = geo_grads.permute(1, 0, 2).reshape(n_vertices, n_q * 2)
    return (left @ right).reshape(n_cells, 2, n_q, 2)


def physical_gradients(entries, det, reference_grads) -> torch.Tensor:
    """``grad_x phi_a (x_q)_i = sum_j J^{-T}[i, j] dphi_a/dxi_j``, laid out as ``[e, i, q, a]``.

    One GEMM over the rows ``(e, i)``; for non-affine cells the reference gradients
    form a matrix that is block-diagonal in the quadrature points.
    """
    j00, j01, j10, j11 = entries
    n_cells, n_q_geo = det.shape
    n_q, n_basis, _ = reference_grads.shape[-3:]
    # J^{-T} = [[j11, -j10], [-j01, j00]] / det, laid out as [e, i, q, j]
    inv_t = torch.stack(
        [torch.stack([j11, -j10], dim=-1), torch.stack([-j01, j00], dim=-1)], dim=1
    ) / det[:, None, :, None]
    if reference_grads.ndim == 4:  # a basis per cell: a batch of small products
        return torch.einsum("eiqj,eqaj->eiqa", inv_t.expand(-1, -1, n_q, -1), reference_grads)
    if n_q_geo == 1:  # affine: one J^{-T} for all quadrature points
        right = reference_grads.permute(2, 0, 1).reshape(2, n_q * n_basis)
        product = inv_t.reshape(n_cells * 2, 2) @ right
    else:
        eye = torch.eye(n_q, dtype=reference_grads.dtype, device=reference_grads.device)
        right = torch.einsum("pq,qaj->pjqa", eye, reference_grads).reshape(
            n_q * 2, n_q * n_basis
        )
        product = inv_t.reshape(n_cells * 2, n_q * 2) @ right
    return product.reshape(n_cells, 2, n_q, n_basis)


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
    J = jacobians(xv, geo_grads[:1] if affine else geo_grads)  # (E, 2, Q or 1, 2)
    return CellGeometry(J, quad_weights, basis_values, basis_grads, xv, geo_values)
