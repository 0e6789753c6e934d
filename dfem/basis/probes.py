"""Point location and point evaluation of finite element functions.

:func:`locate_points` finds a cell containing each point and the point's reference
coordinates there (reference cells and vertex order of :mod:`dfem.mesh.cells`), on 2D
and 3D meshes alike: a bin grid gives each point its candidate cells, tested in chunks of
bounded memory; a candidate is accepted when the point's reference coordinates in it lie
in the reference cell up to ``tol`` (barycentric coordinates on triangles and tetrahedra,
Newton's method on the bilinear / trilinear map of quadrilaterals and hexahedra). The
search is in :mod:`dfem.basis.location`.

:class:`PointEvaluation` stores the located cells and the basis values there, so that
``u(x_i) = sum_a u[cell_dofs[c_i, a]] phi_a(xi_i)`` is one gather and one sum, batched
over leading dimensions of ``u`` and differentiable in ``u``. :func:`probe_matrix` is the
same map as a sparse matrix; :func:`points_inside` tells which points some cell contains
(no error for the others).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from dfem.basis.lagrange import LagrangeElement
from dfem.basis.location import first_containing
from dfem.exceptions import DfemError
from dfem.mesh.mesh import Mesh

#: Candidate point-cell pairs tested per chunk of the search (quadrilaterals; scaled by
#: ``8 / (n_vertices * dim)`` for the other cells).
_PAIR_BUDGET = 2**22

_AXES = "xyz"
_MAPS = {"quad": "bilinear map of the quadrilateral", "hex": "trilinear map of the hexahedron"}


def _as_points(points, mesh: Mesh) -> torch.Tensor:
    d = mesh.dim
    names = ", ".join(_AXES[:d])
    if torch.is_tensor(points):
        x = points.detach().to(dtype=mesh.dtype, device=mesh.device)
    else:
        try:
            x = torch.as_tensor(np.asarray(points, dtype=np.float64), device=mesh.device)
        except (TypeError, ValueError) as exc:
            raise DfemError(f"points must be an (n, {d}) array of numbers: {exc}.") from None
        x = x.to(mesh.dtype)
    if x.ndim == 2 and x.shape[1] != d and x.shape[1] in (2, 3):
        raise DfemError(
            f"points must have shape (n, {d}) on this {d}D mesh of "
            f"{mesh.reference.long_name}, got {tuple(x.shape)}: give {d} coordinates "
            f"({names}) per point."
        )
    if x.ndim != 2 or x.shape[1] != d:
        raise DfemError(
            f"points must have shape (n, {d}), got {tuple(x.shape)}; give one ({names}) row "
            f"per point (a single point as [[{names}]])."
        )
    bad = torch.nonzero(~torch.isfinite(x).all(dim=1)).ravel()
    if len(bad):
        raise DfemError(
            f"{len(bad)} point(s) have NaN or infinite coordinates, e.g. point(s) "
            f"{bad[:5].tolist()}; give finite coordinates inside the mesh."
        )
    return x


def _check_tol(tol) -> float:
    if not (isinstance(tol, (int, float)) and 0 <= tol < math.inf):
        raise DfemError(f"tol must be a finite number >= 0, got {tol!r}.")
    return float(tol)


def _raise_stuck(mesh: Mesh, stuck: torch.Tensor) -> None:
    bad = torch.nonzero(stuck).ravel()
    if len(bad):
        raise DfemError(
            f"Newton's method did not invert the {_MAPS[mesh.cell_type]} for "
            f"{len(bad)} point(s), e.g. point(s) {bad[:5].tolist()}; the cells there "
            "are nearly degenerate: improve the mesh quality."
        )


def _coordinates(v) -> str:
    return "(" + ", ".join(f"{c:.6g}" for c in v) + ")"


def locate_points(mesh: Mesh, points, tol: float = 1e-10):
    """The cell containing each point and the point's reference coordinates there.

    Parameters
    ----------
    mesh : Mesh
        A 2D (triangles, quadrilaterals) or 3D (tetrahedra, hexahedra) mesh.
    points : (n, dim) tensor or array-like
        Physical points, ``dim = mesh.dim``; converted to the mesh's dtype and device.
    tol : float
        Points whose reference coordinates lie up to ``tol`` outside the reference cell
        count as inside it (so that points on facets, edges and the boundary are found
        despite rounding); in physical terms about ``tol`` times the cell's size.

    Returns
    -------
    cells : (n,) int64 tensor
        A cell containing each point: of the cells that contain it (points on shared
        facets, edges or vertices), the one of smallest number.
    xi : (n, dim) tensor
        Reference coordinates, ``x(xi) = points`` for the cell's P1/Q1 geometry map
        (:func:`dfem.basis.lagrange.geometry_element`), in the reference simplex or
        ``[0, 1]^dim`` (:mod:`dfem.mesh.cells`). Not differentiable in the nodes.

    Raises
    ------
    DfemError
        If ``points`` is not (n, dim) (e.g. 2 coordinates per point on a 3D mesh), has
        NaN or infinite entries, or some points lie outside every cell (the message
        counts them, lists the first few and gives the mesh's bounding box).
    """
    tol = _check_tol(tol)
    x = _as_points(points, mesh)
    cells, xi, stuck = first_containing(mesh, x, tol, _PAIR_BUDGET)
    _raise_stuck(mesh, stuck)
    outside = torch.nonzero(cells < 0).ravel()
    if len(outside):
        shown = ", ".join(f"point {i} at {_coordinates(x[i].tolist())}"
                          for i in outside[:5].tolist())
        lo, hi = mesh.nodes.detach().amin(dim=0).tolist(), mesh.nodes.detach().amax(dim=0).tolist()
        box = " x ".join(f"[{a:.6g}, {b:.6g}]" for a, b in zip(lo, hi, strict=True))
        raise DfemError(
            f"{len(outside)} of {len(x)} point(s) lie outside the mesh, e.g. {shown}. Points "
            f"must lie inside the mesh's domain (its bounding box is {box}): drop or move "
            "the points outside."
        )
    return cells, xi


def points_inside(mesh: Mesh, points, tol: float = 1e-10) -> torch.Tensor:
    """(n,) bool tensor: which points some cell of the mesh contains (as
    :func:`locate_points` decides, without an error for the others), e.g. to keep the
    points of a grid over the bounding box that lie in the domain.

    Raises
    ------
    DfemError
        For points that are not (n, dim) or not finite, or a Newton iteration that does
        not converge (nearly degenerate cells).
    """
    cells, _, stuck = first_containing(
        mesh, _as_points(points, mesh), _check_tol(tol), _PAIR_BUDGET)
    _raise_stuck(mesh, stuck)
    return cells >= 0


class PointEvaluation:
    """Evaluation of functions of a Lagrange space at fixed points.

    Parameters
    ----------
    space : FunctionSpace or VectorSpace
        A Lagrange space (P1-P3, Q1-Q3), scalar or vector-valued: a vector field's values
        come back as (..., n_points, d). An isogeometric space gives an
        :class:`~dfem.basis.nurbs.points.IsogeometricPointEvaluation` (same call).
    points : (n, dim) tensor or array-like
        Points inside the mesh's domain (2D or 3D), located once with :func:`locate_points`.
    tol : float
        Passed to :func:`locate_points`.

    Attributes
    ----------
    cells : (n,) int64 tensor
        The cell of each point.
    xi : (n, dim) tensor
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
