"""Point location and point evaluation of finite element functions.

:func:`locate_points` finds a cell containing each point and the point's reference
coordinates there (reference cells and vertex order of :mod:`dfem.basis.lagrange`).
A point's candidate cells are those whose bounding boxes touch its bin of a uniform
grid, tested in chunks so that memory stays bounded; a candidate is accepted when the
point lies on the inner side of every edge of the (convex, counter-clockwise) cell.
Triangles are inverted with one linear solve, quadrilaterals with Newton's method on
the bilinear map

.. math:: x(\\xi) = x_0 + (x_1 - x_0)\\,\\xi_1 + (x_3 - x_0)\\,\\xi_2
          + (x_0 - x_1 + x_2 - x_3)\\,\\xi_1 \\xi_2 .

:class:`PointEvaluation` stores the located cells and the basis values there, so that
``u(x_i) = sum_a u[cell_dofs[c_i, a]] phi_a(xi_i)`` is one gather and one sum, batched
over leading dimensions of ``u`` and differentiable in ``u``. :func:`probe_matrix` is the
same map as a sparse matrix.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import torch

from dfem.basis.lagrange import LagrangeElement
from dfem.errors import DfemError
from dfem.mesh.mesh import Mesh

#: Candidate point-cell pairs tested per chunk of the search.
_PAIR_BUDGET = 2**22
_NEWTON_STEPS = 6  # Newton steps always taken on quadrilaterals ...
_NEWTON_MAX = 40  # ... and the most taken before giving up


def _as_points(points, mesh: Mesh) -> torch.Tensor:
    if torch.is_tensor(points):
        x = points.detach().to(dtype=mesh.dtype, device=mesh.device)
    else:
        try:
            x = torch.as_tensor(np.asarray(points, dtype=np.float64), device=mesh.device)
        except (TypeError, ValueError) as exc:
            raise DfemError(f"points must be an (n, 2) array of numbers: {exc}.") from None
        x = x.to(mesh.dtype)
    if x.ndim != 2 or x.shape[1] != 2:
        raise DfemError(
            f"points must have shape (n, 2), got {tuple(x.shape)}; give one (x, y) row per "
            "point (a single point as [[x, y]])."
        )
    bad = torch.nonzero(~torch.isfinite(x).all(dim=1)).ravel()
    if len(bad):
        raise DfemError(
            f"{len(bad)} point(s) have NaN or infinite coordinates, e.g. point(s) "
            f"{bad[:5].tolist()}; give finite coordinates inside the mesh."
        )
    return x


def _expand(counts: torch.Tensor):
    """Owner and rank within its owner of each of ``counts.sum()`` items (owner i has
    ``counts[i]`` items)."""
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(len(owner), device=counts.device) - first[owner]


def _first_containing(xv: torch.Tensor, x: torch.Tensor, tol: float) -> torch.Tensor:
    """For each point, the containing cell of smallest number, or -1.

    The cells' bounding boxes are binned on a uniform grid of about ``n_cells`` bins;
    the candidates of a point are the cells registered in its bin, tested in chunks of
    at most about ``_PAIR_BUDGET`` point-cell pairs.
    """
    n, n_cells = len(x), len(xv)
    edges = torch.roll(xv, -1, dims=1) - xv  # (E, nv, 2), counter-clockwise
    length = torch.linalg.vector_norm(edges, dim=2)
    slack = tol * length.amax(dim=1)  # distance a point may lie outside, per cell
    lo, hi = xv.amin(dim=1) - slack[:, None], xv.amax(dim=1) + slack[:, None]
    origin, extent = lo.amin(dim=0), hi.amax(dim=0) - lo.amin(dim=0)
    shape = (extent / (extent.prod() / n_cells).sqrt()).ceil().clamp(min=1)
    size, top = extent / shape, shape - 1

    def bin_of(y):  # (m, 2) bin indices, clamped to the grid
        return torch.minimum(((y - origin) / size).floor().clamp(min=0), top).long()

    i0, i1 = bin_of(lo), bin_of(hi)
    width = i1 - i0 + 1
    cell, rank = _expand(width.prod(dim=1))
    nx, n_bins = int(shape[0]), int(shape.prod())
    bins = (i0[cell, 1] + rank // width[cell, 0]) * nx + i0[cell, 0] + rank % width[cell, 0]
    bin_cells = cell[torch.argsort(bins, stable=True)]  # ascending cell numbers in each bin
    start = torch.zeros(n_bins + 1, dtype=torch.int64, device=x.device)
    start[1:] = torch.cumsum(torch.bincount(bins, minlength=n_bins), 0)

    point_bin = bin_of(x) @ torch.tensor([1, nx], device=x.device)
    counts = start[point_bin + 1] - start[point_bin]
    key = (torch.cumsum(counts, 0) - counts) // _PAIR_BUDGET  # chunk of each point
    bounds = torch.searchsorted(key, torch.unique(key)).tolist() + [n]
    cells = torch.full((n,), -1, dtype=torch.int64, device=x.device)
    for a, b in itertools.pairwise(bounds):
        pi, rank = _expand(counts[a:b])  # sorted by point, then cell
        ci = bin_cells[start[point_bin[a:b]][pi] + rank]
        rel = x[a:b][pi, None, :] - xv[ci]  # (K, nv, 2)
        cross = edges[ci, :, 0] * rel[..., 1] - edges[ci, :, 1] * rel[..., 0]
        inside = (cross >= -(slack[ci, None] * length[ci])).all(dim=1)
        pi, ci = pi[inside], ci[inside]
        first = torch.ones_like(pi, dtype=torch.bool)
        first[1:] = pi[1:] != pi[:-1]
        cells[a + pi[first]] = ci[first]
    return cells


def _reference_coordinates(xv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reference coordinates of points ``x`` (n, 2) in cells with vertices ``xv`` (n, nv, 2)."""
    d = x - xv[:, 0]
    a1 = xv[:, 1] - xv[:, 0]
    if xv.shape[1] == 3:  # affine: solve [x1 - x0, x2 - x0] xi = x - x0
        a2 = xv[:, 2] - xv[:, 0]
        det = a1[:, 0] * a2[:, 1] - a1[:, 1] * a2[:, 0]
        return torch.stack(
            [d[:, 0] * a2[:, 1] - d[:, 1] * a2[:, 0], a1[:, 0] * d[:, 1] - a1[:, 1] * d[:, 0]],
            dim=1,
        ) / det[:, None]
    a2 = xv[:, 3] - xv[:, 0]
    a3 = xv[:, 0] - xv[:, 1] + xv[:, 2] - xv[:, 3]
    scale = xv.abs().amax(dim=(1, 2)) + torch.linalg.vector_norm(a1, dim=1)
    limit = 100 * torch.finfo(x.dtype).eps * scale
    xi = torch.full_like(x, 0.5)
    for step in range(_NEWTON_MAX + 1):
        s, t = xi[:, 0:1], xi[:, 1:2]
        r = a1 * s + a2 * t + a3 * (s * t) - d
        converged = torch.linalg.vector_norm(r, dim=1) <= limit
        if step == _NEWTON_MAX or (step >= _NEWTON_STEPS and bool(converged.all())):
            break
        c1, c2 = a1 + a3 * t, a2 + a3 * s  # columns of the Jacobian
        det = c1[:, 0] * c2[:, 1] - c1[:, 1] * c2[:, 0]
        delta = torch.stack(
            [r[:, 0] * c2[:, 1] - r[:, 1] * c2[:, 0], c1[:, 0] * r[:, 1] - c1[:, 1] * r[:, 0]],
            dim=1,
        ) / det[:, None]
        xi = (xi - delta).clamp(-0.5, 1.5)  # the solution lies in [0, 1]^2
    if not bool(converged.all()):
        bad = torch.nonzero(~converged).ravel()[:5].tolist()
        raise DfemError(
            f"Newton's method did not invert the bilinear map of the quadrilateral for "
            f"{int((~converged).sum())} point(s), e.g. point(s) {bad}; the cells there "
            "are nearly degenerate: improve the mesh quality."
        )
    return xi


def locate_points(mesh: Mesh, points, tol: float = 1e-10):
    """The cell containing each point and the point's reference coordinates there.

    Parameters
    ----------
    mesh : Mesh
    points : (n, 2) tensor or array-like
        Physical points; converted to the mesh's dtype and device.
    tol : float
        Points up to ``tol`` times a cell's longest edge outside that cell count as
        inside it (so that points on edges and on the boundary are found despite
        rounding).

    Returns
    -------
    cells : (n,) int64 tensor
        A cell containing each point (for points on shared edges or vertices, any of
        the cells that contain it).
    xi : (n, 2) tensor
        Reference coordinates, ``x(xi) = points`` for the cell's P1/Q1 geometry map
        (:func:`dfem.basis.lagrange.geometry_element`), in the reference triangle
        ``(0,0), (1,0), (0,1)`` or square ``[0, 1]^2``. Not differentiable in the nodes.

    Raises
    ------
    DfemError
        If ``points`` is not (n, 2), has NaN or infinite entries, or some points lie
        outside every cell (the message counts them and lists the first few).
    """
    if not (isinstance(tol, (int, float)) and 0 <= tol < math.inf):
        raise DfemError(f"tol must be a finite number >= 0, got {tol!r}.")
    x = _as_points(points, mesh)
    xv = mesh.nodes.detach()[mesh.cells]  # (E, nv, 2)
    cells = _first_containing(xv, x, float(tol))
    outside = torch.nonzero(cells < 0).ravel()
    if len(outside):
        shown = ", ".join(
            f"point {i} at ({x[i, 0]:.6g}, {x[i, 1]:.6g})" for i in outside[:5].tolist()
        )
        lo, hi = mesh.nodes.detach().amin(dim=0).tolist(), mesh.nodes.detach().amax(dim=0).tolist()
        raise DfemError(
            f"{len(outside)} of {len(x)} point(s) lie outside the mesh, e.g. {shown}. Points "
            f"must lie inside the mesh's domain (its bounding box is [{lo[0]:.6g}, "
            f"{hi[0]:.6g}] x [{lo[1]:.6g}, {hi[1]:.6g}]): drop or move the points outside."
        )
    return cells, _reference_coordinates(xv[cells], x)


class PointEvaluation:
    """Evaluation of functions of a Lagrange space at fixed points.

    Parameters
    ----------
    space : FunctionSpace or VectorSpace
        A Lagrange space (P1-P3, Q1-Q3), scalar or vector-valued: a vector field's values
        come back as (..., n_points, d). An isogeometric space gives an
        :class:`~dfem.basis.nurbs.points.IsogeometricPointEvaluation` (same call).
    points : (n, 2) tensor or array-like
        Points inside the mesh's domain, located once with :func:`locate_points`.
    tol : float
        Passed to :func:`locate_points`.

    Attributes
    ----------
    cells : (n,) int64 tensor
        The cell of each point.
    xi : (n, 2) tensor
        Reference coordinates of each point in its cell.
    dofs : (n, n_basis) int64 tensor
        ``space.cell_dofs[cells]``.
    values : (n, n_basis) tensor
        The element's shape functions at ``xi``.
    """

    def __new__(cls, space=None, points=None, tol: float = 1e-10):
        # an isogeometric space is evaluated by locating the points in parameter space
        from dfem.basis.nurbs.space import IsogeometricSpace

        if isinstance(getattr(space, "scalar", space), IsogeometricSpace):
            from dfem.basis.nurbs.points import IsogeometricPointEvaluation

            return IsogeometricPointEvaluation(space, points, tol)
        return super().__new__(cls)

    def __init__(self, space, points, tol: float = 1e-10):
        self.n_components = getattr(space, "n_components", 1) if hasattr(space, "scalar") else 1
        if not isinstance(getattr(space, "element", None), LagrangeElement):
            raise DfemError(
                f"point evaluation needs a Lagrange FunctionSpace (P1-P3, Q1-Q3), got "
                f"{space!r}; build one with dfem.basis.FunctionSpace(mesh, 'Q1')."
            )
        self.space = space
        self.cells, self.xi = locate_points(space.mesh, points, tol)
        self.dofs = getattr(space, "scalar", space).cell_dofs[self.cells]
        table = space.element.values(self.xi.cpu().numpy())
        self.values = torch.as_tensor(table, dtype=space.dtype, device=space.device)

    @property
    def n_points(self) -> int:
        return len(self.cells)

    def __repr__(self) -> str:
        return f"PointEvaluation({self.n_points} points, {self.space!r})"

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` (..., n_dofs) at the points: a tensor (..., n_points), differentiable in ``u``.

        Raises
        ------
        DfemError
            If the last dimension of ``u`` is not the space's number of dofs.
        """
        u = torch.as_tensor(u, device=self.values.device)
        n_dofs = self.space.n_dofs
        if u.ndim == 0 or u.shape[-1] != n_dofs:
            raise DfemError(
                f"u must have shape (..., {n_dofs}), one value per dof of {self.space!r}, "
                f"got {tuple(u.shape)}."
            )
        if not u.is_floating_point():
            u = u.to(self.values.dtype)
        d = self.n_components
        if d > 1:  # interleaved components: scalar dof s, component i at s * d + i
            u = u.unflatten(-1, (-1, d)).movedim(-1, -2)  # (..., d, n_scalar_dofs)
            values = (u[..., self.dofs] * self.values.to(u.dtype)).sum(dim=-1)
            return values.movedim(-2, -1)  # (..., n_points, d)
        return (u[..., self.dofs] * self.values.to(u.dtype)).sum(dim=-1)

    def matrix(self) -> torch.Tensor:
        """The sparse CSR matrix ``P`` (n_points, n_dofs) with ``P @ u == self(u)`` (of the
        scalar space, for a vector space: apply it to each component)."""
        n, n_basis = self.dofs.shape
        cols, order = torch.sort(self.dofs, dim=1)  # CSR: sorted columns in each row
        crow = torch.arange(0, n * n_basis + 1, n_basis, device=self.dofs.device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                crow, cols.reshape(-1), torch.gather(self.values, 1, order).reshape(-1),
                size=(n, getattr(self.space, "scalar", self.space).n_dofs),
                check_invariants=False,
            )


def probe_matrix(space, points, tol: float = 1e-10) -> torch.Tensor:
    """Sparse CSR matrix ``P`` (n_points, n_dofs), ``P[i, dof]`` the basis function of
    ``dof`` at ``points[i]``, so that ``P @ u`` is the function ``u`` at the points.

    See :class:`PointEvaluation` for the parameters and errors.
    """
    return PointEvaluation(space, points, tol).matrix()
