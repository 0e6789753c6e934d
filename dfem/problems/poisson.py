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
"""

from __future__ import annotations

import dataclasses
import time

import torch

from dfem.assembly.forms import (
    _add_at,
    assemble,
    assemble_matrix,
    assemble_vector,
    energy,
    residual,
)
from dfem.basis.space import FunctionSpace
from dfem.errors import DfemError
from dfem.solvers.linear import sparse_solve


class Poisson:
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
        self.space = space
        self.nu, self.c, self.f = nu, c, f
        self.dirichlet = dict(dirichlet or {})
        self.neumann = dict(neumann or {})
        self.robin = dict(robin or {})
        for tag in [*self.dirichlet, *self.neumann, *self.robin]:
            space.mesh.boundary_edge_ids(tag)  # raises MeshError naming the known tags
        self.last_solve: dict = {}

    # ------------------------------------------------------------------ pieces
    @property
    def coefficients(self) -> dict:
        return dict(nu=self.nu, c=self.c, f=self.f, neumann=self.neumann, robin=self.robin)

    def dirichlet_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The Dirichlet dofs (sorted) and a full vector holding their values (zero elsewhere)."""
        space = self.space
        full = torch.zeros(space.n_dofs, dtype=space.dtype, device=space.device)
        mask = torch.zeros(space.n_dofs, dtype=torch.bool, device=space.device)
        for tag, value in self.dirichlet.items():
            dofs = space.boundary_dofs(tag)
            full = full.index_put((dofs,), self._dirichlet_values(tag, value, dofs))
            mask[dofs] = True
        return torch.nonzero(mask).ravel(), full

    def _dirichlet_values(self, tag, value, dofs) -> torch.Tensor:
        space = self.space
        like = dict(dtype=space.dtype, device=space.device)
        if callable(value) and not torch.is_tensor(value):
            v = torch.as_tensor(space.boundary_interpolant(tag, value, dofs), **like)
        else:
            v = torch.as_tensor(value, **like) if not torch.is_tensor(value) else value.to(**like)
        if not bool(torch.isfinite(v.detach()).all()):
            raise DfemError(f"the Dirichlet values for {tag!r} are not all finite (inf or NaN).")
        if v.ndim == 0:
            return v.expand(len(dofs))
        if v.shape == (len(dofs),):
            return v
        if v.shape == (space.n_dofs,):
            return v[dofs]
        raise DfemError(
            f"the Dirichlet values for {tag!r} have shape {tuple(v.shape)}; give a number, a "
            f"callable of x, or an array with one value per dof of the tag ({len(dofs)}, in the "
            f"order of space.boundary_dofs({tag!r})) or per dof of the space ({space.n_dofs})."
        )

    def energy(self, u: torch.Tensor) -> torch.Tensor:
        """The energy J(u) (batched over leading dimensions of u)."""
        return energy(self.space, u, **self.coefficients)

    def residual(self, u: torch.Tensor) -> torch.Tensor:
        """``K u - F`` at every dof (Dirichlet rows included)."""
        return residual(self.space, u, **self.coefficients)

    def assemble(self, format: str = "torch"):
        """``(K, F)`` without boundary elimination; see :func:`dfem.assembly.assemble`."""
        return assemble(self.space, format=format, **self.coefficients)

    def restricted_pattern(self, fixed: torch.Tensor):
        """The free/fixed split of the space's pattern for these Dirichlet dofs (cached)."""
        space = self.space
        cache = space._shared.setdefault("restricted", {})
        key = fixed.cpu().numpy().tobytes()
        if key not in cache:
            free = torch.ones(space.n_dofs, dtype=torch.bool, device=space.device)
            free[fixed] = False
            cache.clear()  # keep one: the Dirichlet set rarely changes between solves
            cache[key] = space.pattern.restrict(free)
        return cache[key]

    # ------------------------------------------------------------------ solve
    def solve(self, method: str = "direct", **options) -> torch.Tensor:
        """The finite element solution: dof vector of shape (n_dofs,).

        Differentiable with respect to nu, c, f, the boundary data and the node
        coordinates; the backward pass is one adjoint solve with the forward
        solve's factorisation (see :func:`dfem.solvers.sparse_solve`).

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
            :class:`~dfem.errors.ConvergenceError`.

        Notes
        -----
        ``self.last_solve`` holds ``assemble_s``, ``solve_s`` and the solver's
        :class:`~dfem.solvers.SolveInfo` afterwards.
        """
        if method == "energy":
            return self._minimize(**options)
        t0 = time.perf_counter()
        values = assemble_matrix(self.space, self.nu, self.c, self.robin)
        F = assemble_vector(self.space, self.f, self.neumann, self.robin)
        restricted, u_fixed, b = self.eliminate(values, F)
        t1 = time.perf_counter()
        info: dict = {}
        x = sparse_solve(restricted.pattern, values[restricted.ff], b, method, info=info, **options)
        t2 = time.perf_counter()
        # a snapshot: the adjoint solve in backward() adds to the live info object
        self.last_solve = dict(
            assemble_s=t1 - t0,
            solve_s=t2 - t1,
            info=dataclasses.replace(info["solve"]),
            dofs=self.space.n_dofs,
            free_dofs=restricted.n,
        )
        return u_fixed.index_put((restricted.free_dofs,), x)

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
        coupling = values[..., restricted.fd] * u_fixed[restricted.fd_cols]
        lifted = _add_at(F.new_zeros(restricted.n), restricted.fd_rows, coupling)
        return restricted, u_fixed, F[..., restricted.free_dofs] - lifted

    def _check_unique(self, fixed: torch.Tensor) -> None:
        if len(fixed) == 0 and not self.robin and self.c is None:
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
