"""Nonlinear reaction-diffusion: ``-div(nu(u, x) grad u) + s(u, x) = f``.

The weak residual, per quadrature point a source and a flux,

.. math::
    R_a(u) = \\int \\nu(u)\\, \\nabla u\\cdot\\nabla\\varphi_a + (s(u) - f)\\,\\varphi_a
             - \\int_{\\Gamma_N} g\\,\\varphi_a,

goes through the same assembly as every energy (:mod:`dfem.assembly.density`): the
tangent comes from autograd of the pointwise source and flux, so users give only
``nu(u, x)`` and ``s(u, x)``. When ``nu`` does not depend on u the residual is the
gradient of

.. math:: J(u) = \\int \\tfrac12 \\nu |\\nabla u|^2 + S(u) - f u - \\int_{\\Gamma_N} g u,
          \\qquad S(u) = \\int_0^u s(t)\\,dt,

(``S`` by an 8-point Gauss rule in t, exact for polynomial ``s`` up to degree 15), and
Newton's line search uses it. With ``nu(u)`` the problem has no energy: the line
search works on ``|R|`` and :meth:`energy` says so.
"""

from __future__ import annotations

import numpy as np
import torch

from dfem.basis.space import FunctionSpace
from dfem.exceptions import DfemError
from dfem.problems.energy import BoundaryTerm, EnergyProblem
from dfem.problems.poisson import neumann_density

_GAUSS_T, _GAUSS_W = np.polynomial.legendre.leggauss(8)  # mapped from [-1, 1] to [0, 1]:
_GAUSS_T, _GAUSS_W = 0.5 * (_GAUSS_T + 1.0), 0.5 * _GAUSS_W


def _pointwise(fn, u: torch.Tensor, x: torch.Tensor, name: str) -> torch.Tensor:
    """``fn(u, x)`` at the points, checked to be finite (a constant is broadcast)."""
    value = fn(u, x) if callable(fn) else fn
    value = torch.as_tensor(value, dtype=u.dtype, device=u.device)
    if not bool(torch.isfinite(value.detach()).all()):
        raise DfemError(f"{name}(u, x) returned NaN or infinity at some quadrature points.")
    return value.expand_as(u)


class NonlinearPoisson(EnergyProblem):
    """``-div(nu(u, x) grad u) + s(u, x) = f`` with Dirichlet and Neumann conditions.

    Parameters
    ----------
    space : FunctionSpace or IsogeometricSpace
    nu : callable ``nu(u, x)`` or number
        Diffusivity, positive at the solution.
    reaction : callable ``s(u, x)``, optional
        Nonlinear reaction term.
    f, dirichlet, neumann
        As for :class:`~dfem.problems.poisson.Poisson` (f a coefficient of x).
    """

    def __init__(
        self, space: FunctionSpace, nu=1.0, reaction=None, f=None, dirichlet=None, neumann=None
    ):
        self.nonlinear_nu = nu
        self.reaction = reaction
        self.f = f
        self.neumann = dict(neumann or {})
        super().__init__(space, self._energy_density, dirichlet=dirichlet, quadratic=False)

    @property
    def params(self) -> dict:
        return {"f": self.f}

    @property
    def boundary(self) -> list[BoundaryTerm]:
        return [BoundaryTerm(tag, neumann_density, {"g": g}) for tag, g in self.neumann.items()]

    @property
    def symmetric(self) -> bool:
        """Whether the Newton matrix is symmetric (nu does not depend on u)."""
        return not callable(self.nonlinear_nu)

    @property
    def has_energy(self) -> bool:
        return self.symmetric

    def pointwise_first(self, u, grad_u, x, params):
        """The source ``s(u) - f`` and the flux ``nu(u) grad u`` at the points."""
        nu = _pointwise(self.nonlinear_nu, u, x, "nu")
        if bool((nu.detach() <= 0).any()):
            raise DfemError(
                f"nu(u, x) must stay positive; it reached {float(nu.detach().min()):.3g}. "
                "Start Newton closer to the solution or check nu."
            )
        source = torch.zeros_like(u)
        if self.reaction is not None:
            source = source + _pointwise(self.reaction, u, x, "reaction")
        if params.get("f") is not None:
            source = source - params["f"]
        return source, nu[..., None] * grad_u

    def _energy_density(self, u, grad_u, x, params):
        if not self.has_energy:
            raise DfemError(
                "NonlinearPoisson with nu depending on u is not the gradient of an energy; "
                "it has a residual (problem.residual(u)) but no energy(u)."
            )
        psi = 0.5 * _pointwise(self.nonlinear_nu, u, x, "nu") * (grad_u * grad_u).sum(-1)
        if self.reaction is not None:
            t = torch.as_tensor(_GAUSS_T, dtype=u.dtype, device=u.device)
            w = torch.as_tensor(_GAUSS_W, dtype=u.dtype, device=u.device)
            ut = u[..., None] * t
            s = _pointwise(self.reaction, ut, x[..., None, :].expand(*ut.shape, x.shape[-1]),
                           "reaction")
            psi = psi + u * (s * w).sum(-1)
        if params.get("f") is not None:
            psi = psi - params["f"] * u
        return psi
