"""The map from the reference cell to each mesh cell, batched over cells.

Cells are straight-sided: the map is the P1 (affine) or Q1 (bi- or trilinear)
interpolation of the cell's vertices,

.. math:: x(\\xi) = \\sum_a N_a(\\xi)\\, x_a, \\qquad
          J_{ij} = \\partial x_i / \\partial \\xi_j = \\sum_a x_{a,i}\\, \\partial_j N_a(\\xi),

and physical gradients are ``grad_x phi = J^{-T} grad_xi phi``. Every quantity
is a torch expression of the node coordinates, so it is differentiable with
respect to them.
"""

from __future__ import annotations

import torch


def metric_pairs(dim: int) -> list[tuple[int, int]]:
    """The entries ``(j, k)``, ``j <= k``, of a symmetric dim x dim matrix in the order the
    metric stores them: the diagonal first, then ``(0, 1), (0, 2), (1, 2)``."""
    return [(j, j) for j in range(dim)] + [(j, k) for j in range(dim) for k in range(j + 1, dim)]


class CellGeometry:
    """Mapped quadrature data for all cells.

    Attributes
    ----------
    weights : (n_cells, n_q) tensor
        Quadrature weight times ``|det J|``: ``integral f = sum_q f(x_q) weights_q``.
    values : (n_q, n_basis) or (n_cells, n_q, n_basis) tensor
        Basis values: the same on every cell (Lagrange), or per cell (NURBS, whose
        rational basis differs from cell to cell).
    det : (n_cells, n_q) or (n_cells, 1) tensor
        ``det J`` (one value per cell for affine cells).
    inverse_transpose : (n_cells, dim, n_q or 1, dim) tensor
        ``J^{-T}`` at ``[e, i, q, j]``, from the cofactors (computed on first use).
    metric : (n_cells, n_q, dim (dim + 1) / 2) tensor
        ``|det J| w_q (J^T J)^{-1}`` as its entries in :func:`metric_pairs` order, so that
        ``int grad phi_a . grad phi_b = sum_q metric_q : (grad_xi phi_a grad_xi phi_b^T)``.
    grads_t : (n_cells, dim, n_q, n_basis) tensor
        Physical gradients ``dphi_a/dx_i (x_q)`` at ``[e, i, q, a]`` (computed on first use).
    grads : (n_cells, n_q, n_basis, dim) tensor
        The same as ``[e, q, a, i]`` (a view).
    points : (n_cells, n_q, dim) tensor
        Physical quadrature points (computed on first use).
    reference_grads : (n_q, n_basis, dim) or (n_cells, n_q, n_basis, dim) tensor
        Basis gradients on the reference cell (per cell when ``values`` is).
    """

    def __init__(self, jacobian, quad_weights, values, reference_grads, vertex_coords,
                 geo_values):
        self.values = values
        self.reference_grads = reference_grads
        self.jacobian = jacobian  # J[e, i, q, j] = dx_i / dxi_j
        self.dim = jacobian.shape[1]
        self._cofactors = cofactor_entries(jacobian)  # C[i][j], each (E, Q)
        self.det = sum(jacobian[:, 0, :, j] * self._cofactors[0][j] for j in range(self.dim))
        self.weights = self.det.abs() * quad_weights
        self._quad_weights = quad_weights
        self._vertex_coords = vertex_coords
        self._geo_values = geo_values
        self._lazy: dict = {}

    @property
    def inverse_transpose(self) -> torch.Tensor:
        if "inv_t" not in self._lazy:
            self._lazy["inv_t"] = _stack_entries(self._cofactors) / self.det[:, None, :, None]
        return self._lazy["inv_t"]

    @property
    def affine(self) -> bool:
        """Whether the Jacobian is one per cell (simplices)."""
        return self.jacobian.shape[2] == 1

    @property
    def cell_metric(self) -> torch.Tensor:
        """Affine cells: ``|det J| (J^T J)^{-1}`` (n_cells, dim (dim + 1) / 2), the metric
        without the quadrature weights, which then factor out of element integrals."""
        if "cell_metric" not in self._lazy:
            C = self._cofactors
            inverse_det = 1.0 / self.det.abs()
            self._lazy["cell_metric"] = torch.stack(
                [sum(C[i][j] * C[i][k] for i in range(self.dim)) * inverse_det
                 for j, k in metric_pairs(self.dim)], dim=-1)[:, 0]
        return self._lazy["cell_metric"]

    @property
    def metric(self) -> torch.Tensor:
        if "metric" not in self._lazy:
            # (J^T J)^{-1} = J^{-1} J^{-T}; the cofactors are C = det J^{-T}, so
            # |det| w J^{-1} J^{-T} = w C^T C / |det|
            C = self._cofactors
            scale = self._quad_weights / self.det.abs()
            self._lazy["metric"] = torch.stack(
                [sum(C[i][j] * C[i][k] for i in range(self.dim)) * scale
                 for j, k in metric_pairs(self.dim)], dim=-1)
        return self._lazy["metric"]

    @property
    def grads_t(self) -> torch.Tensor:
        if "grads_t" not in self._lazy:
            self._lazy["grads_t"] = physical_gradients(self.inverse_transpose,
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


def cofactor_entries(J: torch.Tensor) -> list[list[torch.Tensor]]:
    """The cofactors ``C[i][j]`` (each shaped like ``J[..., i, :, j]``) of Jacobians laid
    out as ``[..., i, q, j]`` (dim 2 or 3): ``C = det(J) J^{-T}``.

    Each entry is a product of contiguous per-entry tensors, cheaper than cross products
    of strided columns: in 3D ``C_ij = J_{i+1, j+1} J_{i+2, j+2} - J_{i+1, j+2} J_{i+2, j+1}``
    (indices mod 3); in 2D ``[[j11, -j10], [-j01, j00]]``.
    """
    d = J.shape[-3]
    e = [[J[..., i, :, j].contiguous() for j in range(d)] for i in range(d)]
    if d == 2:
        return [[e[1][1], -e[1][0]], [-e[0][1], e[0][0]]]
    return [[e[(i + 1) % 3][(j + 1) % 3] * e[(i + 2) % 3][(j + 2) % 3]
             - e[(i + 1) % 3][(j + 2) % 3] * e[(i + 2) % 3][(j + 1) % 3] for j in range(3)]
            for i in range(3)]


def _stack_entries(entries: list[list[torch.Tensor]]) -> torch.Tensor:
    """``[i][j]`` lists of (..., Q) tensors as one tensor laid out as ``[..., i, q, j]``."""
    return torch.stack([torch.stack(row, dim=-1) for row in entries], dim=-3)


def determinant(J: torch.Tensor) -> torch.Tensor:
    """``det J`` of Jacobians laid out as ``[..., i, q, j]`` (dim 2 or 3), in closed form."""
    C = cofactor_entries(J)
    return sum(J[..., 0, :, j] * C[0][j] for j in range(J.shape[-3]))


def cofactors(J: torch.Tensor) -> torch.Tensor:
    """The cofactor matrix ``det(J) J^{-T}`` laid out as ``[..., i, q, j]`` like ``J``."""
    return _stack_entries(cofactor_entries(J))


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
    return products.flatten(-2)


def jacobians(vertex_coords: torch.Tensor, geo_grads: torch.Tensor) -> torch.Tensor:
    """``J[e, i, q, j] = sum_a x[e, a, i] dN_a/dxi_j (xi_q)``, shape (n_cells, dim, n_q, dim).

    One GEMM: ``(n_cells * dim, n_vertices) @ (n_vertices, n_q * dim)``.
    """
    n_cells, n_vertices, dim = vertex_coords.shape
    n_q = geo_grads.shape[0]
    left = vertex_coords.transpose(1, 2).reshape(n_cells * dim, n_vertices)
    right = geo_grads.permute(1, 0, 2).reshape(n_vertices, n_q * dim)
    return (left @ right).reshape(n_cells, dim, n_q, dim)


def physical_gradients(inv_t, reference_grads) -> torch.Tensor:
    """``grad_x phi_a (x_q)_i = sum_j J^{-T}[i, j] dphi_a/dxi_j``, laid out as ``[e, i, q, a]``.

    ``inv_t`` is ``J^{-T}`` as ``[e, i, q, j]`` (one q for affine cells). One GEMM over the
    rows ``(e, i)``; for non-affine cells with few points the reference gradients form a
    matrix that is block-diagonal in the quadrature points, otherwise one batched product
    per point.
    """
    n_cells, dim, n_q_geo, _ = inv_t.shape
    n_q, n_basis = reference_grads.shape[-3:-1]
    if reference_grads.ndim == 4:  # a basis per cell: a batch of small products
        return torch.einsum("eiqj,eqaj->eiqa", inv_t.expand(-1, -1, n_q, -1), reference_grads)
    if n_q_geo == 1:  # affine: one J^{-T} for all quadrature points
        right = reference_grads.permute(2, 0, 1).reshape(dim, n_q * n_basis)
        product = inv_t.reshape(n_cells * dim, dim) @ right
    elif n_q <= 16:
        eye = torch.eye(n_q, dtype=reference_grads.dtype, device=reference_grads.device)
        right = torch.einsum("pq,qaj->pjqa", eye, reference_grads).reshape(
            n_q * dim, n_q * n_basis
        )
        product = inv_t.reshape(n_cells * dim, n_q * dim) @ right
    else:  # the block-diagonal matrix would multiply mostly zeros
        left = inv_t.permute(2, 0, 1, 3).reshape(n_q, n_cells * dim, dim)
        product = torch.bmm(left, reference_grads.transpose(1, 2))  # (Q, E dim, nb)
        return product.reshape(n_q, n_cells, dim, n_basis).permute(1, 2, 0, 3)
    return product.reshape(n_cells, dim, n_q, n_basis)


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
    nodes : (n_nodes, dim) tensor
    cells : (n_cells, n_vertices) int64 tensor
    geo_values, geo_grads : (n_q, n_vertices), (n_q, n_vertices, dim)
        The geometry element (P1/Q1) at the reference quadrature points.
    basis_values, basis_grads : (n_q, n_basis), (n_q, n_basis, dim)
        The space's element at the reference quadrature points.
    quad_weights : (n_q,)
    affine : bool
        True for simplices: the Jacobian is constant on a cell and is computed once.
    """
    xv = nodes[cells]  # (E, nv, dim)
    J = jacobians(xv, geo_grads[:1] if affine else geo_grads)  # (E, dim, Q or 1, dim)
    return CellGeometry(J, quad_weights, basis_values, basis_grads, xv, geo_values)
