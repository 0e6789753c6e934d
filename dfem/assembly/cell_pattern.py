"""The CSR pattern of ``sum_e P_e^T K_e P_e`` and the position of every element entry in it,
built by counting sorts rather than a comparison sort.

Two dofs couple when they share a cell, so the pattern is symmetric: only the pairs
``a < b`` of each cell's dofs are sorted (6 of the 16 entries of a P1 tetrahedron, 28 of
the 64 of a Q1 hexahedron), and each sort is a stable counting sort over the dof numbers,
linear in the number of pairs. The lower triangle and the diagonal follow from the upper
one. This avoids the comparison sort of every entry, whose speed varies several times
between machines (a vectorised integer sort where numpy has one, a scalar one elsewhere).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def _index_type(*sizes: int) -> type:
    """The smaller integer type that numbers ``0 .. max(sizes)``: scipy's sparse kernels
    and the passes over the pairs run faster on int32."""
    return np.int32 if max(sizes) < np.iinfo(np.int32).max else np.int64


def _pairs_by_row(lo: np.ndarray, hi: np.ndarray, n: int):
    """The pairs ``(lo, hi)`` sorted by ``lo`` then ``hi``, equal pairs in their given order,
    as the CSR structure ``(starts, columns)`` of rows ``lo`` with duplicates, and
    ``order``, the given index of each sorted pair.

    A radix sort of two counting sorts, each one of scipy's CSR/CSC transpositions, which
    visit the entries in order and append each to its column (the result's indices are
    sorted within every column, as scipy records): the pairs as the rows of a (count, n)
    matrix with one entry each, at column ``hi`` and carrying ``lo``, transpose into the
    CSC matrix of the pairs, carrying the pair numbers; its transposition orders them by
    ``lo``, keeping the order by ``hi`` within each row.
    """
    count = len(lo)
    index_type = _index_type(count, n)
    by_hi = sp.csr_matrix((lo, hi, np.arange(count + 1, dtype=index_type)),
                          shape=(count, n)).tocsc()
    by_row = sp.csc_matrix((by_hi.indices, by_hi.data, by_hi.indptr), shape=(n, n)).tocsr()
    return by_row.indptr, by_row.indices, by_row.data


def cell_pattern(dofs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR ``(indptr, indices)`` of ``sum_e P_e^T K_e P_e`` for the cells' dofs ``dofs``
    (E, nb) among ``n``, columns sorted in each row, and ``scatter`` (E * nb * nb): the
    position in the CSR values of each element entry ``(e, a, b)``, flattened.

    A row holds its diagonal when its dof is in some cell, and the columns of the dofs that
    share a cell with it. The large arrays are numpy's, which asks the kernel for huge
    pages (torch's allocator does not): on a virtual machine whose page faults are slow
    this halves the time.
    """
    n_cells, nb = dofs.shape
    cells = dofs.astype(_index_type(n), copy=False)
    a, b = np.triu_indices(nb, 1)
    n_pairs = len(a)
    dof_a, dof_b = cells[:, a], cells[:, b]  # (E, m): pair j of cell e
    swapped = dof_a > dof_b
    lo = np.minimum(dof_a, dof_b).reshape(-1)
    hi = np.maximum(dof_a, dof_b, out=dof_b).reshape(-1)
    del dof_a, dof_b
    starts, columns, order = _pairs_by_row(lo, hi, n)
    del lo, hi
    # the distinct pairs: the first of each run of equal columns within a row
    first = np.empty(len(columns), dtype=bool)
    first[:1] = True
    np.not_equal(columns[1:], columns[:-1], out=first[1:])
    first[starts[:-1][starts[:-1] < starts[1:]]] = True
    n_before = np.zeros(len(columns) + 1, dtype=starts.dtype)
    np.cumsum(first, out=n_before[1:])
    distinct_starts = n_before[starts]
    pair_hi = columns[first]
    pair_lo = np.repeat(np.arange(n, dtype=pair_hi.dtype), np.diff(distinct_starts))
    rank = n_before[1:]
    rank -= 1
    pair_of = np.empty(len(order), dtype=_index_type(2 * len(pair_hi)))
    pair_of[order] = rank
    del starts, columns, order, first, n_before
    # a dof repeated in a cell gives a pair on the diagonal, which is the diagonal entry
    off = pair_lo != pair_hi
    if off.all():
        upper_starts, upper_lo, upper_hi = distinct_starts.astype(np.int64), pair_lo, pair_hi
    else:
        upper_lo, upper_hi = pair_lo[off], pair_hi[off]
        upper_starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(upper_lo, minlength=n), out=upper_starts[1:])
    upper_count = np.diff(upper_starts)
    # the lower triangle is the upper one by columns, each column's rows in order
    n_upper = len(upper_hi)
    lower = sp.csr_matrix((np.arange(n_upper, dtype=_index_type(n_upper)), upper_hi,
                           upper_starts), shape=(n, n)).tocsc()
    lower_starts = lower.indptr.astype(np.int64)
    lower_count = np.diff(lower_starts)
    has_diagonal = np.bincount(cells.reshape(-1), minlength=n) > 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(upper_count + lower_count + has_diagonal, out=indptr[1:])
    # each row: its lower columns, the diagonal, its upper columns, each part sorted
    diagonal_at = indptr[:-1] + lower_count
    upper_at = np.repeat(diagonal_at + has_diagonal - upper_starts[:-1], upper_count)
    upper_at += np.arange(n_upper)
    lower_at = np.empty(n_upper, dtype=np.int64)
    lower_at[lower.data] = np.repeat(indptr[:-1] - lower_starts[:-1], lower_count) + \
        np.arange(n_upper)
    indices = np.empty(indptr[-1], dtype=np.int64)
    indices[upper_at] = upper_hi
    indices[lower_at] = upper_lo
    indices[diagonal_at[has_diagonal]] = np.flatnonzero(has_diagonal)
    # positions of the distinct pairs' (lo, hi) and (hi, lo) entries, interleaved
    at = np.empty((len(pair_hi), 2), dtype=np.int64)
    at[:, 0] = diagonal_at[pair_lo]
    at[off, 0] = upper_at
    at[:, 1] = at[:, 0]
    at[off, 1] = lower_at
    at = at.reshape(-1)
    # each cell's entries by part: (a, b) for a < b, which is (lo, hi) unless swapped,
    # (b, a), and the diagonal (a, a); then gathered into (a, b) order
    pair_of <<= 1
    pair_of += swapped.reshape(-1)
    by_part = np.empty((n_cells, 2 * n_pairs + nb), dtype=np.int64)
    parts = torch.from_numpy(by_part)  # torch copies into the strided parts faster
    parts[:, :n_pairs] = torch.from_numpy(at[pair_of]).view(n_cells, n_pairs)
    pair_of ^= 1
    parts[:, n_pairs:2 * n_pairs] = torch.from_numpy(at[pair_of]).view(n_cells, n_pairs)
    parts[:, 2 * n_pairs:] = torch.from_numpy(diagonal_at[cells])
    local = np.empty((nb, nb), dtype=np.int64)
    local[a, b] = np.arange(n_pairs)
    local[b, a] = np.arange(n_pairs, 2 * n_pairs)
    local[np.arange(nb), np.arange(nb)] = np.arange(2 * n_pairs, 2 * n_pairs + nb)
    scatter = np.empty(n_cells * nb * nb, dtype=np.int64)
    torch.gather(parts, 1,
                 torch.from_numpy(local).reshape(1, -1).expand(n_cells, -1),
                 out=torch.from_numpy(scatter).view(n_cells, nb * nb))
    return indptr, indices, scatter
