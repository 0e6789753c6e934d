"""The search behind :func:`dfem.basis.probes.locate_points`, for 2D and 3D meshes alike.

A point's candidate cells are those registered in its bin of a uniform grid of about
``n_cells`` bins over the mesh (each cell in every bin its bounding box touches) whose
bounding boxes contain the point. The candidates are tested in chunks of at most about
``budget * 8 / (n_vertices * dim)`` point-cell pairs, so that memory stays bounded; a
candidate is accepted when the point's reference coordinates ``xi`` in it lie in the
reference cell up to ``tol``:

* triangles and tetrahedra: the affine map ``x = x_0 + J xi`` is inverted in closed
  form (``J^{-1}`` by the adjugate, once per cell); ``xi_k >= -tol`` and
  ``sum_k xi_k <= 1 + tol``;
* quadrilaterals and hexahedra: the bilinear / trilinear map of the geometry element
  (:func:`dfem.basis.lagrange.geometry_element`, vertex ``a`` at reference vertex
  ``r_a`` in ``{0, 1}^dim``)

  .. math:: x(\\xi) = \\sum_a x_a \\prod_k \\big(r_{ak} \\xi_k + (1 - r_{ak})(1 - \\xi_k)\\big)
            = \\sum_{S \\subseteq \\{1..dim\\}} c_S \\prod_{k \\in S} \\xi_k

  is inverted by Newton's method from the cell centre, batched over the candidate
  pairs: ``_NEWTON_STEPS`` steps always, then each pair until its residual is at
  rounding level (or its iterate has left the cell's neighbourhood by more than
  ``_NEWTON_REACH``: a point outside) up to ``_NEWTON_MAX`` steps;
  ``xi in [-tol, 1 + tol]^dim``.

All arithmetic is elementwise on (…, K) arrays (coordinates first), so a pair's result
does not depend on the other pairs of its chunk: the chunking does not change the cells
or the reference coordinates found.
"""

from __future__ import annotations

import itertools
import math

import torch

from dfem.mesh.mesh import Mesh

_NEWTON_STEPS = 6  # Newton steps always taken on quadrilaterals and hexahedra ...
_NEWTON_MAX = 40  # ... and the most taken before giving up
_NEWTON_REACH = 0.25  # iterates this far outside [0, 1]^dim after _NEWTON_STEPS: outside


def expand(counts: torch.Tensor):
    """Owner and rank within its owner of each of ``counts.sum()`` items (owner i has
    ``counts[i]`` items)."""
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(len(owner), device=counts.device) - first[owner]


def _inverse(columns: list[torch.Tensor]) -> torch.Tensor:
    """(d, d, K) inverses of the matrices with columns ``columns`` (d tensors (d, K)),
    d = 2 or 3, by the adjugate (inf / nan, no error, where singular)."""
    if len(columns) == 2:
        a, b = columns
        rows = [torch.stack([b[1], -b[0]]), torch.stack([-a[1], a[0]])]
    else:
        a, b, c = columns
        rows = [torch.linalg.cross(b, c, dim=0), torch.linalg.cross(c, a, dim=0),
                torch.linalg.cross(a, b, dim=0)]
    det = sum(a[i] * rows[0][i] for i in range(len(columns)))
    return torch.stack(rows) / det


def _apply(matrix: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``matrix @ v`` for (d, d, K) matrices and (d, K) vectors."""
    return sum(matrix[:, j] * v[j] for j in range(len(v)))


def _monomial_coefficients(r: torch.Tensor, xv: torch.Tensor) -> torch.Tensor:
    """(2^d, d, E): the Q1 maps of cells with vertex coordinates ``xv`` (d, nv, E) as
    ``x(xi) = sum_S c_S prod_{k in S} xi_k`` over the subsets S of the axes (bit masks);
    ``r`` (nv, d) bool are the reference vertices."""
    d = r.shape[1]
    code = (r.long() << torch.arange(d, device=r.device)).sum(dim=1)  # vertex -> subset
    by_subset = xv[:, torch.argsort(code)].movedim(1, 0)  # x_T: the vertex with ones on T
    c = torch.zeros_like(by_subset)
    for s in range(2**d):  # Moebius inversion: c_S = sum_{T in S} (-1)^{|S - T|} x_T
        for t in range(2**d):
            if t & ~s == 0:
                c[s] += (-1.0) ** bin(s ^ t).count("1") * by_subset[t]
    return c


def _multilinear(c: torch.Tensor, xi: torch.Tensor):
    """``x(xi)`` (d, K) and the columns ``dx/dxi_j`` (d tensors (d, K)) of the maps of
    coefficients ``c`` (2^d, d, K) at ``xi`` (d, K)."""
    d = len(xi)
    prod = [None] * 2**d  # prod[S]: the product of xi_k over k in S
    for s in range(1, 2**d):
        low = s & -s
        prod[s] = xi[low.bit_length() - 1] * (prod[s ^ low] if s != low else 1)
    x = c[0].clone()
    columns = [c[1 << j].clone() for j in range(d)]
    for s in range(1, 2**d):
        x.addcmul_(c[s], prod[s])
        for j in range(d):
            if s >> j & 1 and s != 1 << j:
                columns[j].addcmul_(c[s], prod[s ^ (1 << j)])
    return x, columns


def _newton(c: torch.Tensor, x: torch.Tensor):
    """Reference coordinates (d, K) of points ``x`` (d, K) in tensor cells of map
    coefficients ``c`` (2^d, d, K), and (K,) masks ``converged`` and ``stuck`` (still
    iterating near the cell at ``_NEWTON_MAX``: a nearly degenerate cell)."""
    K = x.shape[1]
    converged = torch.zeros(K, dtype=torch.bool, device=x.device)
    stuck = torch.zeros_like(converged)
    xi = torch.full_like(x, 0.5)
    if K == 0:
        return xi, converged, stuck
    limit = 100 * torch.finfo(x.dtype).eps * (c[0].abs().amax(dim=0)
                                              + c[1:].abs().amax(dim=(0, 1)))
    active = torch.arange(K, device=x.device)
    xa, xia = x, xi  # the active pairs' points and iterates
    for step in range(_NEWTON_MAX + 1):
        y, columns = _multilinear(c, xia)
        res = y - xa
        if step >= _NEWTON_STEPS:
            xi[:, active] = xia
            done = torch.linalg.vector_norm(res, dim=0) <= limit
            converged[active[done]] = True
            away = ((xia < -_NEWTON_REACH) | (xia > 1 + _NEWTON_REACH)).any(dim=0)
            keep = ~(done | away)
            if step == _NEWTON_MAX:
                stuck[active[keep]] = True
                break
            if not bool(keep.any()):
                break
            if not bool(keep.all()):
                active, c, limit, xa, xia = (active[keep], c[..., keep], limit[keep],
                                             xa[:, keep], xia[:, keep])
                res, columns = res[:, keep], [col[:, keep] for col in columns]
        # the solution lies in [0, 1]^d
        xia = (xia - _apply(_inverse(columns), res)).clamp(-0.5, 1.5)
    return xi, converged, stuck


def first_containing(mesh: Mesh, x: torch.Tensor, tol: float, budget: int):
    """For each point of ``x`` (n, dim): the containing cell of smallest number (-1 where
    none), the point's reference coordinates there (n, dim; nan where none), and whether
    Newton's method got stuck on a candidate of a point that no cell contains."""
    n, d, ref = len(x), mesh.dim, mesh.reference
    xt = x.T.contiguous()  # (d, n)
    xv = mesh.nodes.detach()[mesh.cells].permute(2, 1, 0).contiguous()  # (d, nv, E)
    nv, n_cells = xv.shape[1:]
    lo, hi = xv.amin(dim=1), xv.amax(dim=1)  # (d, E) bounding boxes
    slack = (tol * d) * (hi - lo).amax(dim=0)
    lo, hi = lo - slack, hi + slack
    if ref.simplex:
        origin = xv[:, 0]
        inverse = _inverse([xv[:, k + 1] - origin for k in range(d)])  # (d, d, E)
    else:
        r = torch.as_tensor(ref.vertices == 1.0, device=x.device)
        coefficients = _monomial_coefficients(r, xv)  # (2^d, d, E)

    # the bins: a grid of about n_cells boxes over the cells' bounding boxes
    corner, extent = lo.amin(dim=1), hi.amax(dim=1) - lo.amin(dim=1)
    shape = (extent / (extent.prod() / n_cells) ** (1 / d)).ceil().clamp(min=1)
    size, top = extent / shape, shape - 1
    stride = torch.cumprod(torch.cat([shape.new_ones(1), shape[:-1]]), 0).long()

    def bin_of(y):  # (d, m) bin indices, clamped to the grid
        return torch.minimum(((y - corner[:, None]) / size[:, None]).floor().clamp(min=0),
                             top[:, None]).long()

    i0, i1 = bin_of(lo), bin_of(hi)
    width = i1 - i0 + 1
    cell, rest = expand(width.prod(dim=0))
    bins = torch.zeros_like(cell)
    for k in range(d):
        bins += (i0[k, cell] + rest % width[k, cell]) * stride[k]
        rest = rest // width[k, cell]
    n_bins = int(shape.prod())
    bin_cells = cell[torch.argsort(bins, stable=True)]  # ascending cell numbers in each bin
    start = torch.zeros(n_bins + 1, dtype=torch.int64, device=x.device)
    start[1:] = torch.cumsum(torch.bincount(bins, minlength=n_bins), 0)

    point_bin = (bin_of(xt) * stride[:, None]).sum(dim=0)  # (no integer matmul on GPUs)
    order = torch.argsort(point_bin)  # points of a bin together: local gathers below
    xt, point_bin = xt[:, order], point_bin[order]
    counts = start[point_bin + 1] - start[point_bin]
    key = (torch.cumsum(counts, 0) - counts) // max(1, budget * 8 // (nv * d))
    bounds = torch.searchsorted(key, torch.unique_consecutive(key)).tolist() + [n]
    cells = torch.full((n,), -1, dtype=torch.int64, device=x.device)
    xi_out = torch.full_like(x, math.nan)
    stuck_out = torch.zeros(n, dtype=torch.bool, device=x.device)
    for a, b in itertools.pairwise(bounds):
        pi, rank = expand(counts[a:b])  # sorted by point, then cell
        pi += a
        ci = bin_cells[start[point_bin[pi]] + rank]
        near = torch.ones_like(pi, dtype=torch.bool)
        for k in range(d):  # the point lies in the cell's bounding box
            yk = xt[k, pi]
            near &= (yk >= lo[k, ci]) & (yk <= hi[k, ci])
        pi, ci = pi[near], ci[near]
        if ref.simplex:
            xi = _apply(inverse[..., ci], xt[:, pi] - origin[:, ci])
            inside = (xi >= -tol).all(dim=0) & (xi.sum(dim=0) <= 1 + tol)
        else:
            xi, inside, stuck = _newton(coefficients[..., ci], xt[:, pi])
            inside &= ((xi >= -tol) & (xi <= 1 + tol)).all(dim=0)
            stuck_out[pi[stuck]] = True
        pi, ci, xi = pi[inside], ci[inside], xi[:, inside]
        first = torch.ones_like(pi, dtype=torch.bool)
        first[1:] = pi[1:] != pi[:-1]
        cells[pi[first]] = ci[first]
        xi_out[pi[first]] = xi[:, first].T
    unsorted = torch.empty_like(order)
    unsorted[order] = torch.arange(n, device=x.device)
    return cells[unsorted], xi_out[unsorted], (stuck_out & (cells < 0))[unsorted]
