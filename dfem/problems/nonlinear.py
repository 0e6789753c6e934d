"""Nonlinear reaction-diffusion: ``-div(nu(u, x) grad u) + s(u, x) = f``.

Weak residual and its Jacobian (the Newton matrix), per cell and batched:

.. math::
    R_a(u) = \\int \\nu(u)\\, \\nabla u\\cdot\\nabla\\varphi_a + s(u)\\,\\varphi_a - f\\varphi_a
             - \\int_{\\Gamma_N} g\\,\\varphi_a,

    \\frac{\\partial R_a}{\\partial u_b} = \\int \\nu(u)\\, \\nabla\\varphi_b\\cdot\\nabla\\varphi_a
        + \\nu'(u)\\,\\varphi_b\\, \\nabla u\\cdot\\nabla\\varphi_a + s'(u)\\,\\varphi_a\\varphi_b .

``nu'`` and ``s'`` are obtained by autograd of the pointwise functions, so users give
only ``nu(u, x)`` and ``s(u, x)``. With ``s(u) = u^3`` (a ``u^4/4`` energy) or any
``nu(u)`` the problem is not quadratic; :func:`dfem.solvers.newton.newton` solves it.
"""

from __future__ import annotations

import torch

from dfem.assembly.forms import _add_at, cell_coefficient, element_matrices, facet_coefficient
from dfem.basis.space import FunctionSpace
from dfem.errors import DfemError
from dfem.problems.poisson import Poisson


def _pointwise(fn, u: torch.Tensor, x: torch.Tensor, name: str):
    """``fn(u, x)`` and ``d fn / d u`` at quadrature points (zero derivative for constants)."""
    if fn is None:
        return None, None
    if not callable(fn):
        value = torch.as_tensor(fn, dtype=u.dtype, device=u.device)
        return value, torch.zeros_like(value)
    with torch.enable_grad():
        u_ = u.detach().requires_grad_(True)
        value = torch.as_tensor(fn(u_, x), dtype=u.dtype, device=u.device)
        if value.shape != u_.shape:
            value = value.expand_as(u_)
        if not value.requires_grad:
            return value.detach(), torch.zeros_like(value)
        (deriv,) = torch.autograd.grad(value.sum(), u_)
    if not torch.isfinite(value).all():
        raise DfemError(f"{name}(u, x) returned NaN or infinity at some quadrature points.")
    return value.detach(), deriv


class NonlinearPoisson(Poisson):
    """``-div(nu(u, x) grad u) + s(u, x) = f`` with Dirichlet and Neumann conditions.

    Parameters
    ----------
    space : FunctionSpace
    nu : callable ``nu(u, x)`` or number
        Diffusivity, positive at the solution.
    reaction : callable ``s(u, x)``, optional
        Nonlinear reaction term.
    f, dirichlet, neumann
        As for :class:`~dfem.problems.poisson.Poisson`.
    """

    def __init__(
        self, space: FunctionSpace, nu=1.0, reaction=None, f=None, dirichlet=None, neumann=None
    ):
        super().__init__(space, nu=1.0, f=f, dirichlet=dirichlet, neumann=neumann)
        self.nonlinear_nu = nu
        self.reaction = reaction

    def residual_and_jacobian(self, u: torch.Tensor, jacobian: bool = True):
        """The residual R(u) (n_dofs,) and the Jacobian's CSR values in ``space.pattern``."""
        space = self.space
        g = space.geometry()
        uq, grad_u = space.at_quadrature(u.detach(), g)
        nu, dnu = _pointwise(self.nonlinear_nu, uq, g.points, "nu")
        if bool((nu <= 0).any()):
            raise DfemError(
                f"nu(u, x) must stay positive; it reached {float(nu.min()):.3g}. "
                "Start Newton closer to the solution or check nu."
            )
        s, ds = _pointwise(self.reaction, uq, g.points, "reaction")
        w = g.weights
        # R_e[a] = sum_q w (nu grad u . grad phi_a + (s - f) phi_a)
        flux = (nu * w)[..., None] * grad_u  # (E, Q, 2)
        Re = torch.einsum("eqi,eqai->ea", flux, g.grads)
        source = torch.zeros_like(uq)
        if s is not None:
            source = source + s
        if self.f is not None:
            source = source - cell_coefficient(space, self.f, "f", g)
        Re = Re + (source * w) @ g.values
        R = _add_at(torch.zeros(space.n_dofs, dtype=u.dtype, device=u.device), space.cell_dofs, Re)
        for tag, value in self.neumann.items():
            fg = space.facet_geometry(tag)
            gq = facet_coefficient(space, value, f"Neumann g on {tag!r}", fg)
            R = _add_at(R, fg.dofs, -(gq * fg.weights) @ fg.values)
        if not jacobian:
            return R, None
        Ke = element_matrices(space, nu=nu)  # nu at the points (or a constant): the fast path
        # nu'(u) phi_b grad u . grad phi_a: not symmetric in (a, b)
        Ke = Ke + torch.einsum(
            "eq,eqa,qb->eab", dnu * w, torch.einsum("eqi,eqai->eqa", grad_u, g.grads), g.values
        )
        if ds is not None:
            Ke = Ke + torch.einsum("eq,qa,qb->eab", ds * w, g.values, g.values)
        return R, space.pattern.assemble(Ke)

    @property
    def symmetric(self) -> bool:
        """Whether the Newton matrix is symmetric (nu does not depend on u)."""
        return not callable(self.nonlinear_nu)

    def solve(self, method: str = "direct", **options) -> torch.Tensor:
        """Solve by Newton's method (see :func:`dfem.solvers.newton.newton`); ``last_solve``
        holds the residual history."""
        from dfem.solvers.newton import newton

        u, info = newton(self, method=method, **options)
        self.last_solve = {"newton": info}
        return u
