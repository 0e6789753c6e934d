"""Point location and point evaluation on a NURBS patch.

A physical point ``p`` is found in parameter space by Newton's method on the patch map,

.. math:: \\xi_{k+1} = \\xi_k + J(\\xi_k)^{+} \\big(p - x(\\xi_k)\\big), \\qquad
          x(\\xi) = \\frac{\\sum_{ab} N_a(u) M_b(v)\\, w_{ab} P_{ab}}
                          {\\sum_{ab} N_a(u) M_b(v)\\, w_{ab}},

started from the nearest of a grid of samples (a few per element and direction) and kept
inside the parameter domain (``J^+`` the pseudo-inverse: a patch may have a kink or a
degenerate point, where ``J`` is singular); a point that Newton cannot reach to ``tol``
times the patch size lies outside the patch and is an error. The function
``u_h = sum R_ab(xi) c_ab`` is then one product with the rational basis at the located
parameters, batched over all points; the basis is dense (n_points x n_control_points),
meant for probes and sensors.
"""

from __future__ import annotations

import torch

from dfem.basis.nurbs.bspline import basis_matrix
from dfem.exceptions import DfemError

_SAMPLES_PER_ELEMENT = 4
_NEWTON_STEPS = 30


def _rational(patch, uv: torch.Tensor, derivatives: int = 0):
    """``R[n, k, ab]``: the rational basis (k = 0) and, with ``derivatives=1``, its
    parameter derivatives (k = 1: d/du, k = 2: d/dv) at the parameter points ``uv``."""
    Bu = basis_matrix(patch.knots_u, patch.degree_u, uv[:, 0], derivatives=derivatives)
    Bv = basis_matrix(patch.knots_v, patch.degree_v, uv[:, 1], derivatives=derivatives)
    w = patch.weights
    pairs = [(0, 0)] if derivatives == 0 else [(0, 0), (1, 0), (0, 1)]
    # homogeneous products N_a M_b w_ab and their sums W
    H = torch.stack([Bu[:, i, :, None] * Bv[:, j, None, :] * w for i, j in pairs], 1)
    H = H.flatten(-2)  # (n, k, n_u n_v)
    W = H.sum(-1)  # (n, k)
    R = H[:, :1] / W[:, :1, None]
    if derivatives == 0:
        return R
    dR = (H[:, 1:] - R * W[:, 1:, None]) / W[:, :1, None]  # quotient rule
    return torch.cat([R, dR], dim=1)


def locate_parameters(space, points, tol: float = 1e-10) -> torch.Tensor:
    """Parameters ``(u, v)`` (n, 2) of the physical ``points`` (n, 2) on the patch of an
    :class:`~dfem.basis.nurbs.space.IsogeometricSpace`.

    Raises
    ------
    DfemError
        For a point outside the patch (Newton cannot bring it within ``tol`` times the
        patch size).
    """
    patch = space.patch
    like = dict(dtype=space.dtype, device=space.device)
    p = torch.as_tensor(points, **like).reshape(-1, 2)
    if not bool(torch.isfinite(p).all()):
        raise DfemError("the points must be finite numbers.")
    cp = patch.control_points.detach().reshape(-1, 2)
    scale = float(torch.linalg.vector_norm(cp.max(0).values - cp.min(0).values))
    lo_u, hi_u = (float(patch.knots_u[k]) for k in (0, -1))
    lo_v, hi_v = (float(patch.knots_v[k]) for k in (0, -1))
    # samples: a few per element and direction, the nearest one starts Newton
    n_u = _SAMPLES_PER_ELEMENT * (len(patch.breaks(0)) - 1) + 1
    n_v = _SAMPLES_PER_ELEMENT * (len(patch.breaks(1)) - 1) + 1
    su = torch.linspace(lo_u, hi_u, n_u, **like)
    sv = torch.linspace(lo_v, hi_v, n_v, **like)
    grid = torch.stack(torch.meshgrid(su, sv, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        samples = _rational(patch, grid)[:, 0] @ cp
        uv = grid[torch.cdist(p, samples).argmin(dim=1)]
        lower = torch.tensor([lo_u, lo_v], **like)
        upper = torch.tensor([hi_u, hi_v], **like)
        for _ in range(_NEWTON_STEPS):
            R = _rational(patch, uv, derivatives=1)  # (n, 3, n_cp)
            x, J = R[:, 0] @ cp, (R[:, 1:] @ cp).transpose(-1, -2)  # J[n, i, k] = dx_i/dxi_k
            gap = p - x
            step = (torch.linalg.pinv(J) @ gap[..., None])[..., 0]
            done = torch.linalg.vector_norm(gap, dim=-1) <= 1e-3 * tol * scale
            step = torch.where(done[:, None], torch.zeros_like(step), step)
            uv = torch.minimum(torch.maximum(uv + step, lower), upper)
        miss = torch.linalg.vector_norm(_rational(patch, uv)[:, 0] @ cp - p, dim=-1)
    outside = torch.nonzero(miss > tol * scale).ravel()
    if len(outside):
        first = p[outside[0]].tolist()
        raise DfemError(
            f"{len(outside)} point(s) lie outside the NURBS patch (the first: {first}); "
            "give points inside the domain."
        )
    return uv


class IsogeometricPointEvaluation:
    """Evaluation of functions of an isogeometric space (scalar or vector) at fixed points.

    Attributes
    ----------
    uv : (n, 2) tensor
        The located parameters.
    basis : (n, n_control_points) tensor
        The rational basis there: ``u_h(x_i) = basis[i] @ c``.
    """

    def __init__(self, space, points, tol: float = 1e-10):
        self.space = space
        scalar = getattr(space, "scalar", space)
        self.n_components = space.n_components if hasattr(space, "scalar") else 1
        self.uv = locate_parameters(scalar, points, tol)
        with torch.no_grad():
            self.basis = _rational(scalar.patch, self.uv)[:, 0]

    @property
    def n_points(self) -> int:
        return self.uv.shape[0]

    def __repr__(self) -> str:
        return f"IsogeometricPointEvaluation({self.n_points} points, {self.space!r})"

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` (..., n_dofs) at the points: (..., n_points), or (..., n_points, d) for a
        vector space; differentiable in ``u``."""
        u = torch.as_tensor(u, device=self.basis.device)
        if u.ndim == 0 or u.shape[-1] != self.space.n_dofs:
            raise DfemError(
                f"u must have shape (..., {self.space.n_dofs}), one value per dof of "
                f"{self.space!r}, got {tuple(u.shape)}."
            )
        basis = self.basis.to(u.dtype)
        d = self.n_components
        if d > 1:
            return torch.einsum("pa,...ai->...pi", basis, u.unflatten(-1, (-1, d)))
        return u @ basis.T
