"""Sparsity patterns: where each element-matrix entry lands in a CSR matrix.

The pattern of a space is built once; assembling a matrix is then one
``index_add`` of all element entries into the CSR value array, which autograd
differentiates as a gather.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch

from dfem.assembly.cell_pattern import cell_pattern
from dfem.exceptions import DfemError


def add_at(target: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``target[..., index] += values``, out of place, batched and differentiable.

    Repeated indices accumulate (numpy's ``np.add.at``): this is how cell and facet
    contributions assemble into a global vector or into the CSR values of a matrix.

    Parameters
    ----------
    target : (..., n) tensor
    index : int64 tensor of any shape, entries in ``[0, n)``
    values : (..., *index.shape) tensor
        The leading (batch) dimensions broadcast against those of ``target``.

    Returns
    -------
    (batch..., n) tensor
        A new tensor; autograd reaches ``target`` and ``values`` (the backward pass of
        ``values`` is a gather).
    """
    # numpy's broadcast_shapes: torch's imports sympy on first use (~1 s)
    batch = np.broadcast_shapes(
        tuple(target.shape[:-1]), tuple(values.shape[: values.ndim - index.ndim])
    )
    target = target.expand(*batch, target.shape[-1])
    values = values.expand(*batch, *index.shape).reshape(*batch, -1)
    return target.index_add(-1, index.reshape(-1), values)


def compact_index(indptr: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR index arrays as int32 where they fit: torch's CPU (MKL) and CUDA sparse products
    take int32 indices about twice as fast as int64 (2.4M entries: 0.6 against 1.2 ms)."""
    if indices.numel() < 2**31 - 1 and indptr.numel() < 2**31 - 1:
        return indptr.to(torch.int32), indices.to(torch.int32)
    return indptr, indices


def csr_tensor(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor,
               shape: tuple[int, int]) -> torch.Tensor:
    """A torch sparse CSR matrix of trusted index arrays (no invariant checks, no beta
    warning), for products only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(indptr, indices, values, shape, check_invariants=False)


@dataclass
class SparsityPattern:
    """A CSR pattern with the positions of the entries that assemble into it.

    Attributes
    ----------
    n : int
        Matrix size (square).
    indptr, indices : int64 tensors
        CSR structure (columns sorted within each row).
    scatter : int64 tensor or None
        For each element entry ``(e, a, b)`` flattened, its position in the CSR values
        (None for a pattern that was not built from cells).
    locate : callable or None
        ``locate()`` gives :attr:`points`, computed on first use (only a direct solve
        needs them).
    partition : Partition or None
        For a space on one rank's part of a mesh (:mod:`dfem.distributed`): its matrices
        are that rank's parts of a distributed matrix, which only ``method="petsc"``
        solves.
    """

    n: int
    indptr: torch.Tensor
    indices: torch.Tensor
    scatter: torch.Tensor | None = None
    locate: Callable[[], np.ndarray | None] | None = None
    partition: object = None

    @cached_property
    def points(self) -> np.ndarray | None:
        """Where the dof of each row sits, (n, dim) float64, if known: it lets a direct
        solver order the unknowns by nested dissection (:attr:`dissection_order`)."""
        return None if self.locate is None else self.locate()

    #: Below this size the graph's own minimum-degree ordering is as good and costs nothing
    #: to compute; above it nested dissection fills less (see :mod:`dfem.assembly.ordering`).
    DISSECTION_MIN_SIZE = 4096

    @cached_property
    def dissection_order(self) -> np.ndarray | None:
        """A nested-dissection permutation of the rows (computed once), or None where the
        dof positions are unknown or the matrix is small."""
        if self.points is None or self.n < self.DISSECTION_MIN_SIZE:
            return None
        from dfem.assembly.ordering import nested_dissection

        return nested_dissection(self.indptr.cpu().numpy(), self.indices.cpu().numpy(),
                                 self.points)

    @cached_property
    def dissection_csc(self) -> tuple[np.ndarray, ...] | None:
        """``(indptr, indices, take, inverse)``: the CSC structure of ``A[p][:, p]`` for
        the :attr:`dissection_order` ``p``, for each of its entries the position in this
        pattern's CSR values, so that a factorisation permutes a new matrix by one gather
        (``values[take]``) instead of two sparse re-indexings, and the inverse permutation
        (None without an order)."""
        order = self.dissection_order
        if order is None:
            return None
        # the entries carry their CSR positions (+1: an explicit 0 could be dropped)
        numbered = sp.csr_matrix((np.arange(1, self.nnz + 1, dtype=np.float64),
                                  self.indices.cpu().numpy(), self.indptr.cpu().numpy()),
                                 shape=(self.n, self.n))
        permuted = numbered[order][:, order].tocsc()
        permuted.sort_indices()
        take = permuted.data.astype(np.int64) - 1
        return (permuted.indptr.astype(np.int64), permuted.indices.astype(np.int64), take,
                np.argsort(order))

    @classmethod
    def from_cell_dofs(cls, cell_dofs: torch.Tensor, n: int) -> SparsityPattern:
        """The pattern of ``sum_e P_e^T K_e P_e`` for cells with dofs ``cell_dofs`` (E, nb)."""
        dofs = cell_dofs.detach().cpu().numpy().astype(np.int64, copy=False)
        indptr, indices, scatter = cell_pattern(dofs, n)
        device = cell_dofs.device
        return cls(
            n=n,
            indptr=torch.as_tensor(indptr, device=device),
            indices=torch.as_tensor(indices, device=device),
            scatter=torch.as_tensor(scatter, device=device),
        )

    @property
    def nnz(self) -> int:
        return self.indices.numel()

    @cached_property
    def rows(self) -> torch.Tensor:
        """Row of each stored entry."""
        return torch.repeat_interleave(
            torch.arange(self.n, device=self.indptr.device), torch.diff(self.indptr)
        )

    @cached_property
    def transpose(self) -> torch.Tensor | None:
        """For each stored entry ``(r, c)``, the position of ``(c, r)``: the CSR values of
        ``A^T`` are ``values[transpose]``. None when the pattern is not symmetric."""
        wanted = self.indices * self.n + self.rows
        pos = torch.searchsorted(self._keys, wanted).clamp_max(max(self.nnz - 1, 0))
        if self.nnz == 0 or not bool((self._keys[pos] == wanted).all()):
            return None
        return pos

    def csr(self, values: torch.Tensor) -> torch.Tensor:
        """A torch sparse CSR matrix with these (1D) values, for fast products (no autograd:
        see :func:`dfem.assembly.forms.matvec`)."""
        indptr, indices = self._csr_index
        return csr_tensor(indptr, indices, values, (self.n, self.n))

    @cached_property
    def _csr_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        return compact_index(self.indptr, self.indices)

    @cached_property
    def _keys(self) -> torch.Tensor:
        return self.rows * self.n + self.indices

    def positions(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Positions in the CSR values of the entries ``(rows, cols)`` (which must be stored)."""
        wanted = (rows * self.n + cols).reshape(-1)
        pos = torch.searchsorted(self._keys, wanted).clamp_max(self.nnz - 1)
        if not bool((self._keys[pos] == wanted).all()):
            raise DfemError("an entry lies outside the sparsity pattern of the space.")
        return pos.reshape(rows.shape)

    def assemble(self, element_values: torch.Tensor) -> torch.Tensor:
        """CSR values (..., nnz) of ``sum_e P_e^T K_e P_e`` from element matrices
        (..., E, nb, nb) (a leading batch of matrices is allowed), differentiable in them."""
        if self.scatter is None:
            raise DfemError("this pattern was not built from cells: it cannot assemble "
                            "element matrices (use add_blocks with the dofs).")
        flat = element_values.reshape(*element_values.shape[:-3], -1)
        out = torch.zeros(self.nnz, dtype=flat.dtype, device=flat.device)
        return add_at(out, self.scatter, flat)

    def add_blocks(self, values: torch.Tensor, dofs: torch.Tensor,
                   blocks: torch.Tensor) -> torch.Tensor:
        """``values`` plus the blocks ``blocks[..., k, a, b]`` at the entries
        ``(dofs[k, a], dofs[k, b])``: CSR values (..., nnz) of ``A + sum_k P_k^T B_k P_k``.

        For contributions that are not cell matrices (facet terms, a subset of cells);
        every entry must lie in the pattern (:class:`~dfem.exceptions.DfemError`
        otherwise).

        Parameters
        ----------
        values : (..., nnz) tensor
            CSR values of ``A`` in this pattern.
        dofs : (K, m) int64 tensor
            Global dofs of each block.
        blocks : (..., K, m, m) tensor
        """
        m = dofs.shape[-1]
        rows = dofs[:, :, None].expand(-1, -1, m)
        cols = dofs[:, None, :].expand(-1, m, -1)
        return add_at(values, self.positions(rows, cols), blocks)

    def to_scipy(self, values: torch.Tensor) -> sp.csr_matrix:
        """A scipy CSR matrix with these values (detached, on the CPU)."""
        return sp.csr_matrix(
            (
                values.detach().cpu().numpy(),
                self.indices.cpu().numpy(),
                self.indptr.cpu().numpy(),
            ),
            shape=(self.n, self.n),
        )

    def to_torch(self, values: torch.Tensor) -> torch.Tensor:
        """A torch sparse COO matrix with these values; autograd reaches ``values``."""
        index = torch.stack([self.rows, self.indices])
        return torch.sparse_coo_tensor(
            index, values, (self.n, self.n), is_coalesced=True, check_invariants=False
        )

    def to_dense(self, values: torch.Tensor) -> torch.Tensor:
        """Dense matrices (..., n, n) with these CSR values (..., nnz); differentiable."""
        dense = values.new_zeros(*values.shape[:-1], self.n * self.n)
        return dense.index_copy(-1, self._keys, values).unflatten(-1, (self.n, self.n))

    def restrict(self, free: torch.Tensor) -> RestrictedPattern:
        """The pattern of the submatrix on the dofs ``free`` (boolean mask), and its coupling
        to the other (fixed) dofs, for eliminating Dirichlet conditions."""
        return RestrictedPattern.build(self, free)


@dataclass
class RestrictedPattern:
    """Split of a pattern into the free-free block and the free-fixed coupling.

    ``A_ff`` has CSR structure ``pattern`` and values ``values[ff]``;
    ``(A_fd u_d)[fd_rows] += values[fd] * u[fd_cols]`` (``fd_cols`` global dofs).
    """

    free_dofs: torch.Tensor
    fixed_dofs: torch.Tensor
    pattern: SparsityPattern
    ff: torch.Tensor
    fd: torch.Tensor
    fd_rows: torch.Tensor
    fd_cols: torch.Tensor

    @classmethod
    def build(cls, pattern: SparsityPattern, free: torch.Tensor) -> RestrictedPattern:
        free = free.to(device=pattern.indptr.device)
        new_number = torch.cumsum(free.to(torch.int64), 0) - 1
        rows, cols = pattern.rows, pattern.indices
        row_free, col_free = free[rows], free[cols]
        ff = torch.nonzero(row_free & col_free).ravel()
        fd = torch.nonzero(row_free & ~col_free).ravel()
        n_free = int(free.sum())
        indptr = torch.zeros(n_free + 1, dtype=torch.int64, device=free.device)
        indptr[1:] = torch.cumsum(torch.bincount(new_number[rows[ff]], minlength=n_free), 0)
        return cls(
            free_dofs=torch.nonzero(free).ravel(),
            fixed_dofs=torch.nonzero(~free).ravel(),
            pattern=SparsityPattern(
                n=n_free, indptr=indptr, indices=new_number[cols[ff]],
                locate=None if pattern.locate is None else
                functools.partial(_restricted_points, pattern, free.cpu().numpy()),
                partition=pattern.partition),
            ff=ff,
            fd=fd,
            fd_rows=new_number[rows[fd]],
            fd_cols=cols[fd],
        )

    @property
    def n(self) -> int:
        return self.pattern.n

    def lift(self, values: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The Dirichlet lifting ``A_fd u_d`` (..., n_free): the product of the free-fixed
        block of the matrix with CSR values ``values`` (..., nnz) in the full pattern and
        the fixed dofs of ``u`` (..., n_dofs) (its free entries are not read).

        ``A_ff u_f = b_f - lift(values, u)`` is the system of the free dofs once the
        fixed ones are moved to the right-hand side; batched and differentiable in
        ``values`` and ``u``.
        """
        coupling = values[..., self.fd] * u[..., self.fd_cols]
        return add_at(coupling.new_zeros(self.n), self.fd_rows, coupling)


def _restricted_points(pattern: SparsityPattern, free: np.ndarray) -> np.ndarray | None:
    """The :attr:`SparsityPattern.points` of the rows ``free`` (a boolean mask)."""
    points = pattern.points
    return None if points is None else points[free]
