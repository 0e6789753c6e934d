"""Control points of a NURBS patch as design variables: the refinement map from a coarse
design patch to the analysis patch and the design variables on its control points (see
:mod:`dfem.design.shape`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from dfem.basis.nurbs.bspline import basis_matrix
from dfem.basis.nurbs.knots import greville_points
from dfem.basis.nurbs.patch import NURBSPatch
from dfem.basis.nurbs.space import SIDES
from dfem.exceptions import DfemError


# ---------------------------------------------------------------------------- refinement
@dataclass(frozen=True)
class RefinementOperator:
    """The linear map from a coarse patch's control points to those of a refinement.

    ``apply(P)`` returns ``(T_u (w^c P) T_v^T) / w^f`` (module docstring), shape
    ``(n_u^f, n_v^f, 2)`` for ``P`` of shape ``(n_u^c, n_v^c, 2)``.

    Attributes
    ----------
    t_u, t_v : (n^f, n^c) tensors
        The univariate knot-insertion / degree-elevation matrices.
    coarse_weights, fine_weights : tensors
    """

    t_u: torch.Tensor
    t_v: torch.Tensor
    coarse_weights: torch.Tensor
    fine_weights: torch.Tensor

    def apply(self, control_points: torch.Tensor) -> torch.Tensor:
        weighted = self.coarse_weights[..., None] * control_points
        fine = torch.einsum("ik,jl,kld->ijd", self.t_u, self.t_v, weighted)
        return fine / self.fine_weights[..., None]


def _univariate_refinement(coarse_knots, coarse_degree, fine_knots, fine_degree):
    g = greville_points(fine_knots.detach(), fine_degree)
    fine = basis_matrix(fine_knots.detach(), fine_degree, g)[:, 0]
    coarse = basis_matrix(coarse_knots.detach(), coarse_degree, g)[:, 0]
    return torch.linalg.solve(fine, coarse)


def refinement_operator(coarse: NURBSPatch, fine: NURBSPatch, rtol: float = 1e-10):
    """The :class:`RefinementOperator` from ``coarse`` to ``fine``, checked.

    ``fine`` must be a refinement of ``coarse`` (knots inserted, degree raised, the same
    geometry): the operator must reproduce its weights and its control points to
    ``rtol``, otherwise this raises a :class:`~dfem.exceptions.DfemError`.
    """
    t_u = _univariate_refinement(coarse.knots_u, coarse.degree_u, fine.knots_u, fine.degree_u)
    t_v = _univariate_refinement(coarse.knots_v, coarse.degree_v, fine.knots_v, fine.degree_v)
    w_c, w_f = coarse.weights.detach(), fine.weights.detach()
    weights = t_u @ w_c @ t_v.T
    op = RefinementOperator(t_u, t_v, w_c, w_f)
    points = op.apply(coarse.control_points.detach())
    scale = float(fine.control_points.detach().abs().max())
    if float((weights - w_f).abs().max()) > rtol * float(w_f.abs().max()) or \
            float((points - fine.control_points.detach()).abs().max()) > rtol * scale:
        raise DfemError(
            "the analysis patch is not a refinement of the design patch (knot insertion and "
            "degree elevation of the same geometry): refine the design patch with "
            "NURBSPatch.elevate / subdivide / insert."
        )
    return op


# ---------------------------------------------------------------------------- design
@dataclass(frozen=True)
class ControlPointDesign:
    """Design variables: displacements of chosen control points along fixed directions.

    ``P^d = P^d_0 + sum_k theta_k e_(index_k) (x) direction_k`` on the design patch, then
    ``P^a = refinement.apply(P^d)`` on the analysis patch.

    Attributes
    ----------
    patch : NURBSPatch
        The design patch at ``theta = 0``.
    analysis : NURBSPatch
        Its refinement used for the analysis at ``theta = 0``.
    index : (n,) long tensor
        Flat control-point index ``a * n_v + b`` of each variable (a point may carry two).
    direction : (n, 2) tensor
        Unit direction of each variable.
    lower, upper : (n,) tensors
        Bounds of the variables (length units; ``lower < 0 < upper``).
    names : tuple of str
        ``"P[a,b].x"``, ``"P[a,b].r"``, ... for reports.
    """

    patch: NURBSPatch
    analysis: NURBSPatch
    index: torch.Tensor
    direction: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    names: tuple = ()
    refinement: RefinementOperator | None = field(default=None, repr=False)

    def __post_init__(self):
        n = self.index.shape[0]
        if n == 0:
            raise DfemError("a shape design needs at least one design variable.")
        for name in ("direction", "lower", "upper"):
            if getattr(self, name).shape[0] != n:
                raise DfemError(f"{name} needs one entry per design variable ({n}).")
        if not bool(((self.lower < 0) & (self.upper > 0)).all()):
            raise DfemError("design bounds must satisfy lower < 0 < upper (theta = 0 is the "
                            "initial shape, inside the box).")
        if self.refinement is None:
            object.__setattr__(self, "refinement", refinement_operator(self.patch, self.analysis))

    @property
    def n(self) -> int:
        """Number of design variables."""
        return int(self.index.shape[0])

    def zeros(self) -> torch.Tensor:
        """``theta = 0``: the initial shape."""
        return torch.zeros(self.n, dtype=self.direction.dtype, device=self.direction.device)

    def design_points(self, theta: torch.Tensor) -> torch.Tensor:
        """Control points of the design patch, (n_u, n_v, 2)."""
        base = self.patch.control_points.detach().reshape(-1, 2)
        moved = base.index_add(0, self.index, theta[:, None] * self.direction)
        return moved.reshape(base.shape[0] // self.patch.shape[1], self.patch.shape[1], 2)

    def design_patch(self, theta: torch.Tensor) -> NURBSPatch:
        return self.patch.with_control_points(self.design_points(theta))

    def analysis_points(self, theta: torch.Tensor) -> torch.Tensor:
        """Control points of the analysis patch, (n_u^a, n_v^a, 2), differentiable in theta."""
        return self.refinement.apply(self.design_points(theta))

    def analysis_patch(self, theta: torch.Tensor) -> NURBSPatch:
        return self.analysis.with_control_points(self.analysis_points(theta))


def side_design(patch: NURBSPatch, refine: Callable[[NURBSPatch], NURBSPatch] | None = None,
                side: str = "left", mode: str = "radial", center=(0.0, 0.0), ends: str = "slide",
                bounds: tuple[float, float] | None = None, fraction: float = 0.5
                ) -> ControlPointDesign:
    """The control points of one side of ``patch`` as design variables.

    Parameters
    ----------
    patch : NURBSPatch
        The design patch (e.g. :func:`~dfem.basis.nurbs.patch.plate_with_hole`, whose
        ``left`` side is the hole).
    refine : callable, optional
        ``refine(patch)`` the analysis patch (``lambda p: p.elevate(3).subdivide(8, 16)``);
        default: analyse the design patch itself.
    side : {"left", "right", "bottom", "top"}
    mode : {"radial", "free"}
        Interior points of the side move along ``(P - center) / |P - center|`` (one
        variable each) or freely in ``x`` and ``y`` (two).
    ends : {"slide", "fixed"}
        The two end points of the side lie on the neighbouring sides (for the plate: the
        symmetry edges): they slide along those sides' end tangents ``P_1 - P_0`` (which
        keeps them on a straight edge), or stay fixed.
    bounds : (lower, upper), optional
        Bounds of every variable in length units; default ``-/+ fraction`` times the
        distance from the point to the next row of control points into the patch.
    """
    if side not in SIDES:
        raise DfemError(f"side must be one of {', '.join(SIDES)}, got {side!r}.")
    if mode not in ("radial", "free"):
        raise DfemError(f"mode must be 'radial' or 'free', got {mode!r}.")
    if ends not in ("slide", "fixed"):
        raise DfemError(f"ends must be 'slide' or 'fixed', got {ends!r}.")
    axis, end = SIDES[side]
    P = patch.control_points.detach()
    n_u, n_v = patch.shape
    ids = torch.arange(n_u * n_v, device=P.device).reshape(n_u, n_v)
    row = -1 if end else 0
    inner = -2 if end else 1
    side_ids = ids.select(axis, row)
    side_pts = P.select(axis, row)  # (m, 2)
    next_pts = P.select(axis, inner)  # the row into the patch
    m = side_pts.shape[0]
    gap = torch.linalg.vector_norm(next_pts - side_pts, dim=-1)  # distance to the next row
    # the ends are the corners with the neighbouring sides, whose end tangents point to the
    # next control points along them: the first and last points of the next row
    along = torch.tensor([0, m - 1] if ends == "slide" else [], dtype=torch.long,
                         device=P.device)
    interior = torch.arange(1, m - 1, device=P.device)
    tangents = (next_pts - side_pts)[along]
    if mode == "radial":
        radial = side_pts[interior] - torch.as_tensor(center, dtype=P.dtype, device=P.device)
        norm = torch.linalg.vector_norm(radial, dim=-1, keepdim=True)
        if bool((norm == 0).any()):
            raise DfemError("a control point sits on the centre of the radial directions.")
        moved, directions, tags = interior, radial / norm, ["r"] * len(interior)
    else:
        eye = torch.eye(2, dtype=P.dtype, device=P.device)
        moved = torch.cat([interior, interior])
        directions = eye.repeat_interleave(len(interior), dim=0)
        tags = ["x"] * len(interior) + ["y"] * len(interior)
    k = torch.cat([along, moved])  # positions along the side of the variables
    index = side_ids[k]
    direction = torch.cat([tangents / torch.linalg.vector_norm(tangents, dim=-1,
                                                               keepdim=True), directions])
    reach = gap[k]
    names = [f"P[{_label(ids, i)}].{t}" for i, t in zip(index, ["t"] * len(along) + tags,
                                                           strict=True)]
    if bounds is None:
        lower, upper = -float(fraction) * reach, float(fraction) * reach
    else:
        lower = torch.full((len(index),), float(bounds[0]), dtype=P.dtype, device=P.device)
        upper = torch.full((len(index),), float(bounds[1]), dtype=P.dtype, device=P.device)
    analysis = patch if refine is None else refine(patch)
    return ControlPointDesign(patch, analysis, index, direction, lower, upper, tuple(names))


def _label(ids, flat) -> str:
    n_v = ids.shape[1]
    flat = int(flat)
    return f"{flat // n_v},{flat % n_v}"
