"""The CSR pattern of ``sum_e P_e^T K_e P_e`` and the position of every element entry in it,
built by counting sorts rather than a comparison sort.

Two dofs couple when they share a cell, so the pattern is symmetric: only the pairs
``a < b`` of each cell's dofs are sorted (6 of the 16 entries of a P1 tetrahedron, 28 of
the 64 of a Q1 hexahedron), and each sort is a stable counting sort over the dof numbers,
linear in the number of pairs (:func:`dfem.mesh.unique_rows.unique_rows`). The lower
triangle and the diagonal follow from the upper one.
"""

from __future__ import annotations

import numpy as np
import torch

from dfem.mesh.unique_rows import by_column, index_type, unique_rows


def _symmetric_csr(pair_lo, pair_hi, pair_starts, used, n):
    """The sorted CSR structure of the symmetric pattern with the distinct pairs
    ``lo <= hi`` (sorted, ``pair_starts`` their rows' starts), their mirror images and the
    diagonal of the ``used`` dofs; and the positions of each pair's (lo, hi) and (hi, lo)
    entries, interleaved (2 * n_pairs)."""
    # a dof repeated in a cell gives a pair on the diagonal, which is the diagonal entry
    off = pair_lo != pair_hi
    if off.all():
        upper_starts, upper_lo, upper_hi = pair_starts.astype(np.int64), pair_lo, pair_hi
    else:
        upper_lo, upper_hi = pair_lo[off], pair_hi[off]
        upper_starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(upper_lo, minlength=n), out=upper_starts[1:])
    upper_count = np.diff(upper_starts)
    # the lower triangle is the upper one by columns, each column's rows in order
    n_upper = len(upper_hi)
    lower = by_column(upper_hi, n, np.arange(n_upper, dtype=index_type(n_upper)))
    lower_starts = lower.indptr.astype(np.int64)
    lower_count = np.diff(lower_starts)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(upper_count + lower_count + used, out=indptr[1:])
    # each row: its lower columns, the diagonal, its upper columns, each part sorted
    diagonal_at = indptr[:-1] + lower_count
    upper_at = np.repeat(diagonal_at + used - upper_starts[:-1], upper_count)
    upper_at += np.arange(n_upper)
    lower_at = np.empty(n_upper, dtype=np.int64)
    lower_at[lower.data] = np.repeat(indptr[:-1] - lower_starts[:-1], lower_count) + \
        np.arange(n_upper)
    indices = np.empty(indptr[-1], dtype=np.int64)
    indices[upper_at] = upper_hi
    indices[lower_at] = upper_lo
    indices[diagonal_at[used]] = np.flatnonzero(used)
    at = np.empty((len(pair_hi), 2), dtype=np.int64)
    at[:, 0] = diagonal_at[pair_lo]
    at[off, 0] = upper_at
    at[:, 1] = at[:, 0]
    at[off, 1] = lower_at
    return indptr, indices, diagonal_at, at.reshape(-1)


def cell_pattern(dofs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR ``(indptr, indices)`` of ``sum_e P_e^T K_e P_e`` for the cells' dofs ``dofs``
    (E, nb) among ``n``, columns sorted in each row, and ``scatter`` (E * nb * nb): the
    position in the CSR values of each element entry ``(e, a, b)``, flattened.

    A row holds its diagonal when its dof is in some cell, and the columns of the dofs that
    share a cell with it. The large arrays are numpy's, which asks the kernel for huge
    pages where torch's allocator does not: page faults on fresh memory cost 0.16 s per GB
    from numpy against 0.66 s from torch on a virtual machine where they are slow.
    """
    n_cells, nb = dofs.shape
    cells = dofs.astype(index_type(n), copy=False)
    a, b = np.triu_indices(nb, 1)
    n_pairs = len(a)
    dof_a, dof_b = cells[:, a], cells[:, b]  # (E, m): pair j of cell e
    swapped = dof_a > dof_b
    lo = np.minimum(dof_a, dof_b).reshape(-1)
    hi = np.maximum(dof_a, dof_b, out=dof_b).reshape(-1)
    del dof_a, dof_b
    pairs = unique_rows([lo, hi], n)
    del lo, hi
    used = np.bincount(cells.reshape(-1), minlength=n) > 0
    indptr, indices, diagonal_at, at = _symmetric_csr(*pairs.columns, pairs.starts, used, n)
    # each cell's entries by part: (a, b) for a < b, which is (lo, hi) unless swapped,
    # (b, a), and the diagonal (a, a); then gathered into (a, b) order
    pair_of = pairs.inverse.astype(index_type(len(at)), copy=False)
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
    torch.gather(parts, 1, torch.from_numpy(local).reshape(1, -1).expand(n_cells, -1),
                 out=torch.from_numpy(scatter).view(n_cells, nb * nb))
    return indptr, indices, scatter
