"""The mesh-quality guard of shape optimisation: Jacobian determinants of the geometry map
at quadrature points, element corners and Greville points, the guarded backtracking of a
step, and a smooth lower bound of the Jacobian ratios (see :mod:`dfem.design.shape`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from dfem.basis.nurbs.geometry import surface_points
from dfem.basis.nurbs.knots import greville_points
from dfem.basis.nurbs.patch import NURBSPatch
from dfem.basis.nurbs.space import IsogeometricSpace
from dfem.exceptions import DfemError


# ---------------------------------------------------------------------------- guard
@dataclass
class GuardReport:
    """What :meth:`JacobianGuard.check` found.

    Attributes
    ----------
    valid : bool
        Every checked point keeps ``det J >= min_ratio * det J_0`` (and ``det J > 0``).
    min_det : float
        Smallest oriented ``det J`` over the checked points (> 0 for a valid map).
    min_ratio : float
        Smallest ``det J / det J_0``.
    points : int
        Points checked (quadrature points, element corners, Greville points).
    excluded : int
        Points where the initial map is already degenerate (``det J_0 = 0``, e.g. the
        kinked corner of the plate with a hole), left out of the ratio.
    """

    valid: bool
    min_det: float
    min_ratio: float
    points: int
    excluded: int


class JacobianGuard:
    """The mesh-quality guard: no element of the moved patch may invert or collapse.

    The oriented determinant ``s det J(xi)`` (``s`` the sign of the initial map,
    ``det J = x_u y_v - x_v y_u`` in parameter coordinates) is evaluated at

    - every quadrature point of the analysis space (where the integrals see it),
    - the element corners (the tensor grid of distinct knots) and the tensor grid of
      Greville points (where the control net acts),

    and a patch passes if ``s det J >= min_ratio |det J_0|`` at every point where the
    initial determinant ``det J_0`` is not degenerate (``|det J_0| > degenerate *
    max |det J_0|``), and ``s det J > 0`` at every quadrature point. On a knot line the
    grid takes the derivatives of the span to the right (at the last knot, the left), so a
    ``C^0`` knot line is checked from one side there and from both at the quadrature
    points next to it.

    Parameters
    ----------
    patch : NURBSPatch
        The initial analysis patch (reference values).
    min_ratio : float in (0, 1)
    degenerate : float
        Relative size below which an initial determinant counts as degenerate.
    quadrature_degree : int, optional
        As for :class:`IsogeometricSpace`.
    """

    def __init__(self, patch: NURBSPatch, min_ratio: float = 0.1, degenerate: float = 1e-9,
                 quadrature_degree: int | None = None):
        if not 0 < min_ratio < 1:
            raise DfemError(f"min_jacobian_ratio must lie in (0, 1), got {min_ratio!r}.")
        self.min_ratio = float(min_ratio)
        self.quadrature_degree = quadrature_degree
        grids = []
        for axis in (0, 1):
            knots = (patch.knots_u if axis == 0 else patch.knots_v).detach()
            degree = patch.degree_u if axis == 0 else patch.degree_v
            values = torch.cat([torch.as_tensor(patch.breaks(axis), dtype=knots.dtype,
                                                device=knots.device),
                                greville_points(knots, degree)])
            grids.append(torch.unique(values))
        self.grid_u, self.grid_v = grids
        with torch.no_grad():
            det0 = self.determinants(patch)
        self.sign = 1.0 if float(det0.median()) > 0 else -1.0
        self.reference = (self.sign * det0).abs()
        self.active = self.reference > degenerate * float(self.reference.max())
        self.n_quadrature = self._quadrature_dets(patch).numel()
        self.report_initial = self.check(patch)

    def _quadrature_dets(self, patch: NURBSPatch) -> torch.Tensor:
        return IsogeometricSpace(patch, self.quadrature_degree).geometry().det.reshape(-1)

    def determinants(self, patch: NURBSPatch) -> torch.Tensor:
        """``det J`` at the quadrature points, then on the corner/Greville grid, flat."""
        _, xu, xv = surface_points(patch.control_points, patch.weights, patch.knots_u,
                                   patch.knots_v, patch.degree_u, patch.degree_v, self.grid_u,
                                   self.grid_v, derivatives=True)
        grid = xu[..., 0] * xv[..., 1] - xu[..., 1] * xv[..., 0]
        return torch.cat([self._quadrature_dets(patch), grid.reshape(-1)])

    def check(self, patch: NURBSPatch) -> GuardReport:
        """Evaluate the guard on a (moved) patch with the same knots and weights."""
        with torch.no_grad():
            det = self.sign * self.determinants(patch)
        ratio = det[self.active] / self.reference[self.active]
        quadrature = det[: self.n_quadrature]
        min_ratio = float(ratio.min())
        valid = bool(min_ratio >= self.min_ratio) and bool((quadrature > 0).all()) and \
            bool(torch.isfinite(det).all())
        return GuardReport(valid, float(det[self.active].min()), min_ratio, int(det.numel()),
                           int((~self.active).sum()))


# ---------------------------------------------------------------------------- backtracking
@dataclass
class Backtrack:
    """The outcome of :func:`backtrack`.

    Attributes
    ----------
    accepted : bool
    trial : tensor or None
        The accepted point ``x + scale * step``.
    scale : float
        The accepted step fraction (0 if none).
    refused : dict
        ``{check name: number of trials it refused}``.
    """

    accepted: bool
    trial: torch.Tensor | None
    scale: float
    refused: dict


def backtrack(x: torch.Tensor, step: torch.Tensor,
              checks: Sequence[tuple[str, Callable[[torch.Tensor], bool]]],
              scale: float = 1.0, shrink: float = 0.5, max_trials: int = 30) -> Backtrack:
    """Shorten a step until every check accepts it.

    Tries ``x + a step`` for ``a = scale, shrink scale, shrink^2 scale, ...`` (at most
    ``max_trials`` times); the checks run in order (put the cheap guard first and an
    expensive decrease test, e.g. Armijo's ``J(x + a d) <= J(x) + c a g.d``, after it)
    and the first one that fails refuses the trial. This is the inner loop of
    :func:`dfem.inverse.shape.optimize_nodes` (guard, then Armijo) and of
    :func:`optimize_shape` (guard, then a decrease of the merit function).
    """
    refused = {name: 0 for name, _ in checks}
    for _ in range(int(max_trials)):
        trial = x + scale * step
        for name, check in checks:
            if not check(trial):
                refused[name] += 1
                break
        else:
            return Backtrack(True, trial, scale, refused)
        scale *= shrink
    return Backtrack(False, None, 0.0, refused)


def soft_min_ratio(det: torch.Tensor, reference: torch.Tensor, rho: float = 50.0):
    """A smooth lower bound of ``min_q r_q``, ``r_q = det J_q / det J_q^0``:

    .. math:: m_{KS} = r_0 - \\frac1\\rho \\ln \\sum_q e^{-\\rho (r_q - r_0)}
              \\in [\\min r - \\ln(N)/\\rho,\\ \\min r],

    with ``r_0 = min r`` (detached; the shift changes no value and no gradient).
    """
    r = (det / reference).reshape(-1)
    shift = r.detach().min()
    return shift - torch.log(torch.exp(-rho * (r - shift)).sum()) / rho
