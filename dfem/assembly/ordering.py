"""Fill-reducing orderings of finite element matrices from the positions of their dofs.

A direct factorisation of a stiffness matrix fills in between the nonzeros; the order
of the unknowns decides how much. SuperLU's own symmetric orderings (minimum degree on
``A^T + A``) look at the graph alone. Nested dissection uses what a finite element
matrix also has, where each dof sits: cut the dofs by a plane through the median of
their longest extent, number the two halves first (each cut again, recursively) and the
*separator* between them last, so that eliminating one half never fills into the other.
On meshes (2D and 3D) that ordering fills less than minimum degree and factors faster,
often by a factor of 2 (2D) to 8 (3D, P2 tetrahedra); it depends only on the pattern,
so it is computed once and reused for every factorisation on it (Newton steps, time
steps, design iterations).

The separator of a part is one-sided: the dofs below the median plane that couple (have a
matrix entry) to a dof above it. Removing them disconnects the two halves for any mesh
and any element, since every coupling between the halves starts at one of them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nested_dissection"]


def nested_dissection(indptr: np.ndarray, indices: np.ndarray, points: np.ndarray,
                      leaf: int = 16) -> np.ndarray:
    """A nested-dissection permutation of the dofs of a symmetric CSR pattern.

    All parts of one level of the dissection tree are cut at once (vectorised over
    parts, dofs and matrix entries; a Python loop over the tree's levels only).

    Parameters
    ----------
    indptr, indices : int arrays
        The CSR structure of a structurally symmetric matrix of size ``n``.
    points : (n, dim) float array
        Where each dof sits (the coordinates of its node).
    leaf : int
        Parts of at most this many dofs are not cut further.

    Returns
    -------
    perm : (n,) int64 array
        The new order: ``A[perm][:, perm]`` has the dofs of each part before its
        separator, in the post-order of the dissection tree.
    """
    n = len(indptr) - 1
    points = np.asarray(points, dtype=np.float64).reshape(n, -1)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    cols = np.asarray(indices, dtype=np.int64)
    coupled = rows != cols
    rows, cols = rows[coupled], cols[coupled]

    code = np.zeros(n, dtype=np.int64)     # the part of each dof at the current depth
    done_depth = np.full(n, -1, dtype=np.int64)  # where in the tree each dof was numbered
    done_code = np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    depth = 0
    while active.any() and depth < 48:
        dofs = np.flatnonzero(active)
        parts, local, counts = np.unique(code[dofs], return_inverse=True, return_counts=True)
        small = counts[local] <= leaf
        _finish(dofs[small], depth, code, done_depth, done_code, active)
        dofs, local = dofs[~small], local[~small]
        if not len(dofs):
            break
        m = len(parts)
        # each part is cut across its longest extent, at the median
        lo = np.full((m, points.shape[1]), np.inf)
        hi = np.full((m, points.shape[1]), -np.inf)
        np.minimum.at(lo, local, points[dofs])
        np.maximum.at(hi, local, points[dofs])
        axis = np.argmax(hi - lo, axis=1)
        value = points[dofs, axis[local]]
        order = np.lexsort((value, local))
        starts = np.searchsorted(local[order], np.arange(m))
        sizes = np.bincount(local, minlength=m)
        median = np.full(m, np.nan)
        present = sizes > 0
        median[present] = value[order][starts[present] + sizes[present] // 2]
        upper = value > median[local]
        # a part whose dofs all share the median cannot be cut: numbered as it is
        cut = np.zeros(m, dtype=bool)
        np.logical_or.at(cut, local, upper)
        uncut = ~cut[local]
        _finish(dofs[uncut], depth, code, done_depth, done_code, active)
        dofs, upper = dofs[~uncut], upper[~uncut]
        side = np.full(n, -1, dtype=np.int8)  # 0 below, 1 above, -1 numbered already
        side[dofs] = upper
        crossing = (side[rows] == 0) & (side[cols] == 1) & (code[rows] == code[cols])
        separator = np.zeros(n, dtype=bool)
        separator[rows[crossing]] = True
        _finish(np.flatnonzero(separator), depth, code, done_depth, done_code, active)
        rest = dofs[~separator[dofs]]
        code[rest] = 2 * code[rest] + side[rest]
        depth += 1
    if active.any():  # never reached for real meshes: a safety net for degenerate points
        _finish(np.flatnonzero(active), depth, code, done_depth, done_code, active)
    # post-order position of tree node (d, c) in a complete binary tree of height D:
    # its subtree covers [c * size, (c + 1) * size) with the node itself last
    height = int(done_depth.max())
    size = np.left_shift(np.int64(1), height - done_depth + 1) - 1
    position = (done_code + 1) * size - 1
    return np.lexsort((np.arange(n), position)).astype(np.int64)


def _finish(dofs, depth, code, done_depth, done_code, active) -> None:
    """Number ``dofs`` at tree node (``depth``, their part's code)."""
    done_depth[dofs] = depth
    done_code[dofs] = code[dofs]
    active[dofs] = False
