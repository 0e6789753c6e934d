"""The Poisson (reaction-diffusion) problem with Dirichlet, Neumann and Robin conditions.

Find u with

.. math:: -\\nabla\\cdot(\\nu \\nabla u) + c\\,u = f \\ \\text{in } \\Omega, \\quad
          u = u_D \\ \\text{on } \\Gamma_D, \\quad
          \\nu\\, \\partial_n u = g \\ \\text{on } \\Gamma_N, \\quad
          \\nu\\, \\partial_n u + \\alpha u = g_R \\ \\text{on } \\Gamma_R,

as the minimiser of the energy of :mod:`dfem.assembly.forms` over functions with
``u = u_D`` at the Dirichlet dofs. Dirichlet conditions are imposed exactly: the
Dirichlet dofs are fixed (nodal interpolation of ``u_D``), their columns are
moved to the right-hand side (lifting) and their rows dropped (elimination).

The problem is an :class:`~dfem.problems.energy.EnergyProblem` with the density
:func:`reaction_diffusion` (and :func:`neumann_density`, :func:`robin_density` on
the boundary); the closed-form kernels of :mod:`dfem.assembly.forms` are registered
for that density, so ``EnergyProblem(space, reaction_diffusion, ...)`` uses them too
(``kernel=False`` takes the generic autograd path, equal to 1e-12).
"""

from __future__ import annotations

import torch

from dfem.assembly.forms import (
    assemble,
    assemble_matrix,
    assemble_vector,
    energy,
    residual,
)
from dfem.basis.space import FunctionSpace
from dfem.distributed.dofs import distribution
from dfem.exceptions import DfemError
from dfem.problems.energy import BoundaryTerm, EnergyProblem, register_kernel


def reaction_diffusion(u, grad_u, x, params):
    """``psi = nu/2 |grad u|^2 + c/2 u^2 - f u`` (``c`` and ``f`` may be None)."""
    psi = 0.5 * params["nu"] * (grad_u * grad_u).sum(-1)
    if params.get("c") is not None:
        psi = psi + 0.5 * params["c"] * u * u
    if params.get("f") is not None:
        psi = psi - params["f"] * u
    return psi


def neumann_density(u, x, n, params):
    """``psi_N = -g u``: the flux ``nu du/dn = g``."""
    return -params["g"] * u


def robin_density(u, x, n, params):
    """``psi_R = alpha/2 u^2 - g_R u``: ``nu du/dn + alpha u = g_R``."""
    return (0.5 * params["alpha"] * u - params["g"]) * u


def _closed_form(problem):
    """``(K, F)`` of a reaction-diffusion problem by the kernels of :mod:`dfem.assembly.forms`."""
    space = problem.space
    if hasattr(space, "scalar"):
        return None
    neumann, robin = {}, {}
    for term in problem.boundary:
        if term.load and problem.load_factor != 1.0:
            return None
        if term.density is neumann_density and term.tag not in neumann:
            neumann[term.tag] = term.params["g"]
        elif term.density is robin_density and term.tag not in robin:
            robin[term.tag] = (term.params["alpha"], term.params["g"])
        else:
            return None
    params = problem.params
    values = assemble_matrix(space, params.get("nu", 1.0), params.get("c"), robin)
    F = assemble_vector(space, params.get("f"), neumann, robin)
    if "f" in problem.loads and problem.load_factor != 1.0:
        return None
    return values, F


register_kernel(reaction_diffusion, _closed_form)


class Poisson(EnergyProblem):
    """A reaction-diffusion problem on a :class:`FunctionSpace`.

    Parameters
    ----------
    space : FunctionSpace
    nu, c, f
        Diffusivity (> 0), reaction and source: numbers, callables of x, or tensors
        (nodal, per cell, at quadrature points; see :mod:`dfem.assembly.coefficients`).
    dirichlet : dict {tag: u_D}
        ``u_D`` a number, a callable of x (evaluated at the tag's dof coordinates),
        or a tensor with one value per dof of the tag (in the order of
        ``space.boundary_dofs(tag)``) or per dof of the space. Where tags meet, the
        tag listed later wins.
    neumann : dict {tag: g}
    robin : dict {tag: (alpha, g_R)}
    """

    def __init__(
        self, space: FunctionSpace, nu=1.0, c=None, f=None, dirichlet=None, neumann=None, robin=None
    ):
        if hasattr(space, "scalar"):
            raise DfemError(
                f"Poisson solves for a scalar field, but {space!r} is vector-valued; use "
                "dfem.LinearElasticity or dfem.EnergyProblem with a density of your own."
            )
        self.nu, self.c, self.f = nu, c, f
        self.neumann = dict(neumann or {})
        self.robin = dict(robin or {})
        for tag, pair in self.robin.items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise DfemError(
                    f"Robin condition on {tag!r} must be a pair (alpha, g_R) for "
                    f"nu du/dn + alpha u = g_R, got {pair!r}."
                )
        super().__init__(space, reaction_diffusion, dirichlet=dirichlet, quadratic=True)

    @property
    def params(self) -> dict:
        return dict(nu=self.nu, c=self.c, f=self.f)

    @property
    def boundary(self) -> list[BoundaryTerm]:
        terms = [BoundaryTerm(tag, neumann_density, {"g": g}) for tag, g in self.neumann.items()]
        terms += [BoundaryTerm(tag, robin_density, {"alpha": a, "g": g})
                  for tag, (a, g) in self.robin.items()]
        return terms

    # ------------------------------------------------------------------ pieces
    @property
    def coefficients(self) -> dict:
        return dict(nu=self.nu, c=self.c, f=self.f, neumann=self.neumann, robin=self.robin)

    def energy(self, u: torch.Tensor) -> torch.Tensor:
        """The energy J(u) (batched over leading dimensions of u)."""
        return energy(self.space, u, **self.coefficients)

    def residual(self, u: torch.Tensor) -> torch.Tensor:
        """``K u - F`` at every dof (Dirichlet rows included)."""
        return residual(self.space, u, **self.coefficients)

    def assemble(self, format: str = "torch"):
        """``(K, F)`` without boundary elimination; see :func:`dfem.assembly.assemble`."""
        return assemble(self.space, format=format, **self.coefficients)

    # ------------------------------------------------------------------ solve
    def solve(self, method: str = "direct", **options) -> torch.Tensor:
        """The finite element solution: dof vector of shape (n_dofs,).

        Differentiable with respect to nu, c, f, the boundary data and the node
        coordinates; the backward pass is one adjoint solve with the forward
        solve's factorisation (:mod:`dfem.solvers.implicit`).

        Parameters
        ----------
        method : {"direct", "cg", "amg", "energy"}
            ``"energy"`` minimises the energy with an optimiser
            (:func:`dfem.solvers.minimize_energy`, the paper's route); its result is
            detached (use a linear solver to differentiate through the solution).
        **options
            ``rtol``, ``atol``, ``maxiter`` for the iterative methods; for
            ``"energy"``: ``optimizer`` ("lbfgs", "torch-lbfgs", "adam"), ``rtol``,
            ``maxiter``, ``lr``. A solve that stops short raises
            :class:`~dfem.exceptions.ConvergenceError`.

        Notes
        -----
        ``self.last_solve`` holds ``assemble_s``, ``solve_s`` and the solver's
        :class:`~dfem.solvers.SolveInfo` afterwards.
        """
        if method == "energy":
            return self._minimize(**options)
        return self._solve_linear(method, options)

    def eliminate(self, values: torch.Tensor, F: torch.Tensor):
        """Lift and drop the Dirichlet dofs of ``K u = F``: ``K_ff u_f = F_f - K_fd u_D``.

        Parameters
        ----------
        values : (..., nnz) tensor
            CSR values of ``K`` (a batch of matrices is allowed).
        F : (..., n_dofs) tensor

        Returns
        -------
        restricted : RestrictedPattern
            ``values[..., restricted.ff]`` are the values of ``K_ff``.
        u_fixed : (n_dofs,) tensor
            ``u_D`` at the Dirichlet dofs, zero elsewhere.
        b : (..., n_free) tensor
            The lifted right-hand side.
        """
        fixed, u_fixed = self.dirichlet_data()
        self._check_unique(fixed)
        restricted = self.restricted_pattern(fixed)
        lifted = restricted.lift(values, u_fixed)
        return restricted, u_fixed, F[..., restricted.free_dofs] - lifted

    def _check_unique(self, fixed: torch.Tensor) -> None:
        dist = distribution(self.space)
        n_fixed = len(fixed) if dist is None else dist.partition.comm.allreduce(len(fixed))
        if n_fixed == 0 and not self.robin and self.c is None:
            raise DfemError(
                "this problem has no Dirichlet or Robin condition and no reaction term c, so "
                "its solution is defined only up to a constant (the matrix is singular). "
                "Add a Dirichlet condition on some boundary tag, a Robin condition or c > 0."
            )

    def _minimize(self, optimizer="lbfgs", rtol=1e-10, maxiter=20000, lr=None) -> torch.Tensor:
        from dfem.solvers.minimize import minimize_energy

        self._check_unique(self.dirichlet_data()[0])

        u, info = minimize_energy(self, optimizer=optimizer, rtol=rtol, max_iter=maxiter, lr=lr,
                                  raise_on_failure=True)
        self.last_solve = dict(solve_s=info.seconds, info=info, dofs=self.space.n_dofs)
        return u
