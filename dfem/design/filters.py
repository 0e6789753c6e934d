"""Density filters and the Heaviside projection of topology optimisation.

Density filter (Bruns and Tortorelli; Bourdin) of radius ``r_min`` on per-cell densities,

.. math:: \\tilde\\rho_e = \\frac{\\sum_j H_{ej}\\, v_j \\rho_j}{\\sum_j H_{ej}\\, v_j},
          \\qquad H_{ej} = \\max(0,\\ r_{min} - |c_e - c_j|),

with cell centroids ``c`` and volumes ``v`` (on a uniform grid the volumes cancel, which
is the 88-line code's filter). The Helmholtz (PDE) filter (Lazarov and Sigmund) solves

.. math:: -r^2 \\Delta \\tilde\\rho + \\tilde\\rho = \\rho \\ \\text{in } \\Omega,
          \\qquad \\partial_n \\tilde\\rho = 0, \\qquad r = r_{min} / (2\\sqrt 3),

with dfem's own P1/Q1 assembly (one factorisation, reused by every call and by the
adjoint) and returns the cell means of ``rho~``. The projection

.. math:: \\bar\\rho = \\frac{\\tanh(\\beta\\eta) + \\tanh(\\beta(\\tilde\\rho - \\eta))}
          {\\tanh(\\beta\\eta) + \\tanh(\\beta(1 - \\eta))}

sharpens the filtered field towards 0/1 as ``beta`` grows (continuation).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dfem.exceptions import DfemError


def _check_radius(r_min) -> float:
    if isinstance(r_min, bool) or not isinstance(r_min, (int, float)) or not math.isfinite(
            r_min) or r_min <= 0:
        raise DfemError(f"the filter radius r_min must be a positive number, got {r_min!r}.")
    return float(r_min)


class LinearMap:
    """``y = A x`` for a fixed sparse matrix, differentiable in x (``x_bar = A^T y_bar``).

    Held as torch CSR tensors of ``A`` and ``A^T``: one sparse product each way (torch's
    COO product costs tens of milliseconds where this costs a fraction of one).
    """

    def __init__(self, rows, cols, values: torch.Tensor, shape: tuple[int, int]):
        import scipy.sparse as sp

        A = sp.csr_matrix((values.detach().cpu().numpy(), (np.asarray(rows), np.asarray(cols))),
                          shape=shape)
        self.shape = shape
        self.forward_matrix = _csr(A, values)
        self.transpose_matrix = _csr(A.T.tocsr(), values)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _Apply.apply(x, self)

    def to_dense(self) -> torch.Tensor:
        return self.forward_matrix.to_dense()


def _csr(A, like: torch.Tensor) -> torch.Tensor:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.as_tensor(A.indptr, dtype=torch.int64, device=like.device),
            torch.as_tensor(A.indices, dtype=torch.int64, device=like.device),
            torch.as_tensor(A.data, dtype=like.dtype, device=like.device), A.shape,
            check_invariants=False)


class _Apply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, linear_map):
        ctx.linear_map = linear_map
        return linear_map.forward_matrix @ x

    @staticmethod
    def backward(ctx, g):
        return _Apply.apply(g, _Transposed(ctx.linear_map)), None


class _Transposed:
    def __init__(self, linear_map):
        self.forward_matrix = linear_map.transpose_matrix
        self.transpose_matrix = linear_map.forward_matrix


def cell_centroids(mesh) -> np.ndarray:
    """Vertex means of the cells, (n_cells, dim)."""
    return mesh.nodes.detach().cpu().numpy()[mesh.cells_np].mean(axis=1)


class DensityFilter:
    """``rho~ = (H (v rho)) / (H v)`` as one sparse product (see the module docstring).

    Parameters
    ----------
    mesh : Mesh
    r_min : float
        The radius in the mesh's length units (1.5 on unit cells is the classic setting).
    """

    def __init__(self, mesh, r_min: float):
        from scipy.spatial import cKDTree

        self.r_min = _check_radius(r_min)
        centroids = cell_centroids(mesh)
        tree = cKDTree(centroids)
        pairs = tree.sparse_distance_matrix(tree, self.r_min, output_type="coo_matrix")
        off = pairs.row != pairs.col  # the diagonal is added once below, whether or not
        rows, cols, dist = pairs.row[off], pairs.col[off], pairs.data[off]  # it was stored
        n = len(centroids)
        rows = np.concatenate([rows, np.arange(n)])
        cols = np.concatenate([cols, np.arange(n)])
        weights = np.concatenate([self.r_min - dist, np.full(n, self.r_min)])
        keep = weights > 0
        volumes = mesh.volumes().detach().abs().cpu().numpy()
        like = dict(dtype=mesh.nodes.dtype, device=mesh.nodes.device)
        values = torch.as_tensor(weights[keep] * volumes[cols[keep]], **like)
        self.matrix = LinearMap(rows[keep], cols[keep], values, (n, n))
        self.row_sums = torch.zeros(n, **like).index_add(
            0, torch.as_tensor(rows[keep], device=like["device"]), values)
        self.n = n

    def __call__(self, rho: torch.Tensor) -> torch.Tensor:
        if rho.shape != (self.n,):
            raise DfemError(f"the densities have shape {tuple(rho.shape)}; the filter needs one "
                            f"per cell, ({self.n},).")
        return self.matrix(rho) / self.row_sums


class HelmholtzFilter:
    """The PDE filter of the module docstring, solved with dfem on P1/Q1 (see there)."""

    def __init__(self, mesh, r_min: float, method: str = "direct"):
        from dfem.assembly.coefficients import PerCell
        from dfem.assembly.forms import assemble_matrix, element_loads
        from dfem.basis.lagrange import linear_element
        from dfem.basis.space import FunctionSpace
        from dfem.solvers.linear import factorize

        self.r_min = _check_radius(r_min)
        self.radius = self.r_min / (2 * math.sqrt(3))
        space = FunctionSpace(mesh, linear_element(mesh.cell_type))
        self.space, self.n = space, mesh.n_cells
        self.values = assemble_matrix(space, self.radius ** 2, 1.0).detach()
        self.factor = factorize(space.pattern, self.values, method, symmetric=True)
        # the load of a per-cell field, int rho phi_a, and the cell mean of a nodal field
        # are both the cell integrals of the basis: one sparse matrix and its transpose
        unit = element_loads(space, PerCell(torch.ones(self.n, dtype=space.dtype,
                                                       device=space.device))).detach()
        cells = np.repeat(np.arange(self.n), space.cell_dofs.shape[1])
        dofs = space.cell_dofs.reshape(-1).cpu().numpy()
        self.load = LinearMap(dofs, cells, unit.reshape(-1), (space.n_dofs, self.n))
        volumes = unit.sum(1)
        self.mean = LinearMap(cells, dofs, (unit / volumes[:, None]).reshape(-1),
                              (self.n, space.n_dofs))

    def __call__(self, rho: torch.Tensor) -> torch.Tensor:
        from dfem.solvers.linear import sparse_solve

        if rho.shape != (self.n,):
            raise DfemError(f"the densities have shape {tuple(rho.shape)}; the filter needs one "
                            f"per cell, ({self.n},).")
        nodal = sparse_solve(self.space.pattern, self.values, self.load(rho), factor=self.factor)
        return self.mean(nodal)


def heaviside(rho: torch.Tensor, beta: float, eta: float = 0.5) -> torch.Tensor:
    """The smoothed Heaviside projection of the module docstring."""
    beta = torch.as_tensor(beta, dtype=rho.dtype)
    num = torch.tanh(beta * eta) + torch.tanh(beta * (rho - eta))
    return num / (torch.tanh(beta * eta) + torch.tanh(beta * (1 - eta)))


FILTERS = {"density": DensityFilter, "helmholtz": HelmholtzFilter}
