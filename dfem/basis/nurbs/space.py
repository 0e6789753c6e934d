"""Isogeometric analysis: the NURBS basis of a patch as a function space.

Each non-empty knot span ``[t_i, t_{i+1}] x [s_j, s_{j+1}]`` is an element; on it the
``(p + 1)(q + 1)`` rational functions ``R_ab`` that do not vanish there are the local
basis, and the geometry is the patch map ``x = sum_ab R_ab P_ab`` itself. With the
element parametrised by ``xi in [0, 1]^2``,

.. math:: \\frac{\\partial R}{\\partial \\xi} = \\frac{\\partial R}{\\partial u}\\,(t_{i+1} - t_i),
          \\qquad J = \\sum_{ab} P_{ab} \\otimes \\frac{\\partial R_{ab}}{\\partial \\xi},

and :class:`~dfem.basis.mapping.CellGeometry` holds per-cell basis tables, so the
energy, the matrices and the solvers of :mod:`dfem.assembly` and :mod:`dfem.solvers`
are the same code as for Lagrange elements. The dofs are the control values
``u_ab`` (``u_h = sum R_ab u_ab``), numbered ``a * n_v + b``.

The space's :attr:`mesh` is the "Bezier mesh" of element corners (mapped to the
physical domain), with the tags ``left`` (``u = u_min``), ``right`` (``u = u_max``),
``bottom`` (``v = v_min``), ``top`` (``v = v_max``) and ``boundary``: boundary
conditions refer to these, and outputs (VTU, plots) show the solution at its nodes.
Dirichlet data are imposed by interpolation at the Greville points of each side.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from dfem.basis.mapping import CellGeometry
from dfem.basis.nurbs.bspline import basis_functions, basis_matrix
from dfem.basis.nurbs.knots import greville_points
from dfem.basis.nurbs.patch import NURBSPatch
from dfem.basis.space import FacetGeometry, Space
from dfem.exceptions import DfemError
from dfem.mesh.mesh import Mesh
from dfem.quadrature.rules import line_rule

#: Patch sides: tag -> (axis that is fixed, which end: 0 = min, 1 = max).
SIDES = {"left": (0, 0), "right": (0, 1), "bottom": (1, 0), "top": (1, 1)}


@dataclass(frozen=True)
class NURBSElement:
    """Name and degree of an isogeometric space (what reports and rates need)."""

    degree_u: int
    degree_v: int
    cell_type: str = "quad"

    @property
    def degree(self) -> int:
        return min(self.degree_u, self.degree_v)

    @property
    def name(self) -> str:
        p, q = self.degree_u, self.degree_v
        return f"NURBS{p}" if p == q else f"NURBS{p}x{q}"


class IsogeometricSpace(Space):
    """The NURBS functions of a patch, as a space for :mod:`dfem.assembly`.

    Parameters
    ----------
    patch : NURBSPatch
        Geometry and basis (refine it first: :meth:`NURBSPatch.subdivide`,
        :meth:`NURBSPatch.elevate`).
    quadrature_degree : int, optional
        Gauss rule per direction exact to this degree; default ``2 max(p, q) + 1``
        (``max(p, q) + 1`` points per direction).
    shape : tuple, optional
        ``(d,)`` for a vector field: d interleaved copies of the space
        (:class:`~dfem.basis.vector.VectorSpace`).

    Notes
    -----
    Geometry is cached while the control points do not require grad; with
    ``requires_grad`` it is recomputed on each call, so gradients reach the control
    points (shape derivatives). :meth:`with_control_points` moves them.
    """

    def __init__(self, patch: NURBSPatch, quadrature_degree: int | None = None, shape=()):
        if not isinstance(patch, NURBSPatch):
            raise DfemError(f"IsogeometricSpace needs a NURBSPatch, got {type(patch).__name__}.")
        self.patch = patch
        p, q = patch.degree_u, patch.degree_v
        self.element = NURBSElement(p, q)
        self.quadrature_degree = (
            2 * max(p, q) + 1 if quadrature_degree is None else int(quadrature_degree)
        )
        self._geometry_cache: dict = {}
        self._shared: dict = {}
        self._spans = tuple(self._element_spans(axis) for axis in (0, 1))

    def _element_spans(self, axis: int) -> torch.Tensor:
        """Span index of each element of a direction: ``t_s < t_{s+1}``."""
        knots = (self.patch.knots_u if axis == 0 else self.patch.knots_v).detach()
        degree = self.patch.degree_u if axis == 0 else self.patch.degree_v
        n = len(knots) - degree - 1
        s = torch.arange(degree, n, device=knots.device)
        return s[knots[s] < knots[s + 1]]

    # ------------------------------------------------------------------ basics
    @property
    def n_dofs(self) -> int:
        n_u, n_v = self.patch.shape
        return n_u * n_v

    @property
    def n_elements(self) -> tuple[int, int]:
        return len(self._spans[0]), len(self._spans[1])

    def __repr__(self) -> str:
        e_u, e_v = self.n_elements
        return f"IsogeometricSpace({self.element.name}, {e_u}x{e_v} elements, {self.n_dofs} dofs)"

    @cached_property
    def cell_dofs(self) -> torch.Tensor:
        """(n_elements, (p+1)(q+1)): control points ``(s_u - p + a) n_v + (s_v - q + b)``."""
        p, q = self.patch.degree_u, self.patch.degree_v
        n_v = self.patch.shape[1]
        rows = self._spans[0][:, None] - p + torch.arange(p + 1, device=self.device)
        cols = self._spans[1][:, None] - q + torch.arange(q + 1, device=self.device)
        dofs = rows[:, None, :, None] * n_v + cols[None, :, None, :]
        return dofs.reshape(rows.shape[0] * cols.shape[0], -1)

    @cached_property
    def mesh(self) -> Mesh:
        """The element corners mapped to the domain, as a quad mesh with the side tags."""
        bu, bv = (self._table(self.patch.breaks(axis)) for axis in (0, 1))
        corners = self._evaluate_grid(bu, bv, self.patch.control_points.detach())
        n_u, n_v = len(bu), len(bv)
        ids = np.arange(n_u * n_v).reshape(n_u, n_v)
        cells = np.stack([ids[:-1, :-1], ids[1:, :-1], ids[1:, 1:], ids[:-1, 1:]], -1)
        cells = cells.reshape(-1, 4)
        x = corners.reshape(-1, 2).cpu().numpy()
        a, b, c = x[cells[:, 0]], x[cells[:, 1]], x[cells[:, 3]]
        orientation = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
        if np.all(orientation < 0):  # a left-handed parametrisation: list corners anticlockwise
            cells = cells[:, ::-1].copy()
        sides = {
            "left": np.stack([ids[0, :-1], ids[0, 1:]], 1),
            "right": np.stack([ids[-1, :-1], ids[-1, 1:]], 1),
            "bottom": np.stack([ids[:-1, 0], ids[1:, 0]], 1),
            "top": np.stack([ids[:-1, -1], ids[1:, -1]], 1),
        }
        return Mesh(corners.reshape(-1, 2), cells, sides)

    @property
    def device(self) -> torch.device:
        return self.patch.control_points.device

    @property
    def dtype(self) -> torch.dtype:
        return self.patch.control_points.dtype

    def _geometry_is_cacheable(self) -> bool:
        return self.cache_moving_geometry or not self.patch.control_points.requires_grad

    def with_control_points(self, control_points: torch.Tensor,
                            cache_geometry: bool = False) -> IsogeometricSpace:
        """The same space on moved control points (dof numbering and patterns shared);
        ``cache_geometry`` as for :meth:`FunctionSpace.with_nodes`."""
        return self._moved(("mesh",), patch=self.patch.with_control_points(control_points),
                           cache_moving_geometry=bool(cache_geometry))

    # ------------------------------------------------------------------ tables
    def _univariate(self, axis: int, spans: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """Values and xi-derivatives (n_el, n_xi, 2, p+1) on the elements of ``spans``."""
        knots = self.patch.knots_u if axis == 0 else self.patch.knots_v
        degree = self.patch.degree_u if axis == 0 else self.patch.degree_v
        lo, hi = knots[spans], knots[spans + 1]
        u = lo[:, None] + (hi - lo)[:, None] * xi[None, :]
        _, values = basis_functions(
            knots, degree, u, derivatives=1, spans=spans[:, None].expand_as(u), check=False
        )
        # values as they are; d/dxi = (t_{s+1} - t_s) d/du
        scale = torch.stack([torch.ones_like(lo), hi - lo], dim=-1)
        return values * scale[:, None, :, None]

    def _rational(self, Nu, Nv, dofs):
        """Rational basis ``R`` (E, Q, nb) and its xi-gradients (E, Q, nb, 2) from the
        univariate tables of the elements' two directions (tensor product, element-major)."""
        N = torch.einsum("iqa,jrb->ijqrab", Nu[:, :, 0], Nv[:, :, 0])
        dN1 = torch.einsum("iqa,jrb->ijqrab", Nu[:, :, 1], Nv[:, :, 0])
        dN2 = torch.einsum("iqa,jrb->ijqrab", Nu[:, :, 0], Nv[:, :, 1])
        n_el = N.shape[0] * N.shape[1]
        n_q = N.shape[2] * N.shape[3]
        N = N.reshape(n_el, n_q, -1)
        dN = torch.stack([dN1.reshape(n_el, n_q, -1), dN2.reshape(n_el, n_q, -1)], dim=-1)
        w = self.patch.weights.reshape(-1)[dofs][:, None, :]  # (E, 1, nb)
        W = (N * w).sum(-1)  # (E, Q)
        dW = (dN * w[..., None]).sum(-2)  # (E, Q, 2)
        R = N * w / W[..., None]
        dR = (
            w[..., None]
            * (dN * W[..., None, None] - N[..., None] * dW[:, :, None, :])
            / (W * W)[..., None, None]
        )
        return R, dR

    def _mapped(self, R, dR, dofs):
        """Points, tangents ``dx/dxi`` (E, Q, 2, 2) of the patch map on the elements."""
        X = self.patch.control_points.reshape(-1, 2)[dofs]  # (E, nb, 2)
        points = torch.einsum("eqa,eai->eqi", R, X)
        tangents = torch.einsum("eqaj,eai->eqij", dR, X)
        return X, points, tangents

    # ------------------------------------------------------------------ cells
    def geometry(self, degree: int | None = None) -> CellGeometry:
        """Per-element rational basis, its gradients and the mapped quadrature weights."""
        degree = self.quadrature_degree if degree is None else int(degree)
        cacheable = self._geometry_is_cacheable()
        if cacheable and degree in self._geometry_cache:
            return self._geometry_cache[degree]
        s, w = line_rule(degree)
        xi = self._table(s[:, 0])
        Nu = self._univariate(0, self._spans[0], xi)
        Nv = self._univariate(1, self._spans[1], xi)
        R, dR = self._rational(Nu, Nv, self.cell_dofs)
        X, _, tangents = self._mapped(R, dR, self.cell_dofs)
        jacobian = tangents.permute(0, 2, 1, 3)  # J[e, i, q, j] = dx_i / dxi_j
        weights = self._table(np.outer(w, w).ravel())
        result = CellGeometry(jacobian, weights, R, dR, X, R)
        if cacheable:
            self._geometry_cache[degree] = result
        return result

    # ------------------------------------------------------------------ boundary
    @staticmethod
    def _side_names(tags) -> list[str]:
        tags = [tags] if isinstance(tags, str) else list(tags)
        names = []
        for tag in tags:
            if tag == "boundary":
                names += list(SIDES)
            elif tag in SIDES:
                names.append(tag)
            else:
                raise DfemError(
                    f"boundary tag {tag!r} does not exist on a NURBS patch; its tags are "
                    f"{', '.join(SIDES)} and boundary."
                )
        return list(dict.fromkeys(names))

    def _side_dofs(self, side: str) -> torch.Tensor:
        axis, end = SIDES[side]
        n_u, n_v = self.patch.shape
        ids = torch.arange(n_u * n_v, device=self.device).reshape(n_u, n_v)
        return (ids[-1 if end else 0, :] if axis == 0 else ids[:, -1 if end else 0]).contiguous()

    def boundary_dofs(self, tags) -> torch.Tensor:
        """Sorted control values on the given sides (clamped knots: the boundary rows)."""
        sides = self._side_names(tags)
        return torch.unique(torch.cat([self._side_dofs(side) for side in sides]))

    def _facet_geometry(self, tags, degree: int) -> FacetGeometry:
        parts = [self._side_geometry(side, degree) for side in self._side_names(tags)]
        return FacetGeometry(
            *(
                torch.cat(items)
                for items in zip(
                    *((f.dofs, f.points, f.weights, f.values, f.normals) for f in parts),
                    strict=True,
                )
            )
        )

    def _side_geometry(self, side: str, degree: int) -> FacetGeometry:
        """Quadrature on the elements along one side; values are (F, Q, nb) per facet and
        normals (F, Q, 2) per point (the side may be curved)."""
        axis, end = SIDES[side]
        s, w = line_rule(degree)
        xi = self._table(s[:, 0])
        fixed = self._table([float(end)])
        spans = [self._spans[0], self._spans[1]]
        spans[axis] = spans[axis][-1:] if end else spans[axis][:1]
        tables = [self._univariate(k, spans[k], fixed if k == axis else xi) for k in (0, 1)]
        n_v_el = len(self._spans[1])
        el_u = torch.arange(len(self._spans[0]), device=self.device)
        el_v = torch.arange(n_v_el, device=self.device)
        if axis == 0:
            el_u = el_u[-1:] if end else el_u[:1]
        else:
            el_v = el_v[-1:] if end else el_v[:1]
        elements = (el_u[:, None] * n_v_el + el_v[None, :]).reshape(-1)
        dofs = self.cell_dofs[elements]
        R, dR = self._rational(tables[0], tables[1], dofs)
        _, points, tangents = self._mapped(R, dR, dofs)
        along = tangents[..., 1 - axis]  # dx/dxi along the side, (F, Q, 2)
        inward = tangents[..., axis] * (-1.0 if end else 1.0)
        length = torch.linalg.vector_norm(along, dim=-1)
        normals = torch.stack([along[..., 1], -along[..., 0]], dim=-1) / length[..., None]
        sign = torch.where((normals * inward).sum(-1) > 0, -1.0, 1.0).to(normals.dtype)
        return FacetGeometry(
            dofs=dofs,
            points=points,
            weights=length * self._table(w),
            values=R,
            normals=normals * sign.detach()[..., None],
        )

    def boundary_interpolant(self, tag, fn, dofs: torch.Tensor) -> torch.Tensor:
        """Dirichlet values of ``fn(x)`` for the control values ``dofs`` on ``tag``: on each
        side the trace ``sum_k R_k(s) c_k`` interpolates ``fn`` at the side's Greville
        points (where sides meet, the last side listed sets the corner value)."""
        values = torch.zeros(self.n_dofs, dtype=self.dtype, device=self.device)
        for side in self._side_names(tag):
            axis, end = SIDES[side]
            along = 1 - axis
            knots = self.patch.knots_v if along == 1 else self.patch.knots_u
            degree = self.patch.degree_v if along == 1 else self.patch.degree_u
            cp = self.patch.control_points.select(axis, -1 if end else 0)  # (n_side, 2)
            w = self.patch.weights.select(axis, -1 if end else 0)
            s = greville_points(knots.detach(), degree)
            B = basis_matrix(knots, degree, s)[:, 0] * w  # (n_side, n_side)
            R = B / B.sum(-1, keepdim=True)
            x = R @ cp
            target = torch.as_tensor(fn(x), dtype=self.dtype, device=self.device)
            coefficients = torch.linalg.solve(R, target.expand(len(s)))
            values = values.index_put((self._side_dofs(side),), coefficients)
        return values[dofs]

    def interpolate(self, fn) -> torch.Tensor:
        """Control values ``c`` whose NURBS function interpolates ``fn(x)`` at the images of
        the tensor Greville points ``(g_i, h_j)``.

        With ``W_ij = sum_ab N_a(g_i) M_b(h_j) w_ab`` the conditions ``sum_ab R_ab c_ab =
        f_ij`` read ``N (w * c) M^T = W * f``: two small dense solves. Functions in the
        space (e.g. linear functions of x, as the geometry is) are reproduced exactly.
        """
        patch = self.patch
        g_u = greville_points(patch.knots_u.detach(), patch.degree_u)
        g_v = greville_points(patch.knots_v.detach(), patch.degree_v)
        N = basis_matrix(patch.knots_u, patch.degree_u, g_u)[:, 0]
        M = basis_matrix(patch.knots_v, patch.degree_v, g_v)[:, 0]
        x = self._evaluate_grid(g_u, g_v, patch.control_points)  # (n_u, n_v, 2)
        W = N @ patch.weights @ M.T
        f = torch.as_tensor(fn(x), dtype=self.dtype, device=self.device).expand(W.shape)
        weighted = torch.linalg.solve(N, W * f) @ torch.linalg.inv(M).T
        return (weighted / patch.weights).reshape(self.n_dofs)

    # ------------------------------------------------------------------ output
    def _evaluate_grid(self, u: torch.Tensor, v: torch.Tensor, coefficients: torch.Tensor):
        """``sum_ab R_ab(u_i, v_j) c_ab`` on a parameter grid: (len(u), len(v), ...)."""
        Bu = basis_matrix(self.patch.knots_u, self.patch.degree_u, u)[:, 0]
        Bv = basis_matrix(self.patch.knots_v, self.patch.degree_v, v)[:, 0]
        w = self.patch.weights
        W = Bu @ w @ Bv.T
        n_u, n_v = self.patch.shape
        weighted = w[..., None] * coefficients.reshape(n_u, n_v, -1)  # (a, b, k)
        # two GEMMs: contract a with Bu, then b with Bv
        along_u = (Bu @ weighted.reshape(n_u, -1)).reshape(len(u), n_v, -1)  # (i, b, k)
        num = torch.matmul(Bv, along_u)  # (i, j, k): Bv (j, b) @ along_u[i] (b, k)
        return (num / W[..., None]).reshape(len(u), len(v), *coefficients.shape[2:])

    def vertex_values(self, u: torch.Tensor) -> torch.Tensor:
        """``u_h`` at the nodes of :attr:`mesh` (the element corners)."""
        bu, bv = (self._table(self.patch.breaks(axis)) for axis in (0, 1))
        batch = u.shape[:-1]
        c = u.reshape(-1, self.n_dofs).T.reshape(*self.patch.shape, -1)
        values = self._evaluate_grid(bu, bv, c).reshape(-1, c.shape[-1])
        return values.T.reshape(*batch, -1)

    def refined(self, elements: int) -> IsogeometricSpace:
        """The space on the patch subdivided to ``elements`` per direction (same degree)."""
        return IsogeometricSpace(self.patch.subdivide(elements), self.quadrature_degree)


__all__ = ["SIDES", "IsogeometricSpace", "NURBSElement"]
