"""SIMP material interpolation and the compliance objectives of topology optimisation.

Modified SIMP (Sigmund 2007): a cell of physical density ``rho`` has

.. math:: E(\\rho) = E_{min} + \\rho^p (E_0 - E_{min})

(``k(rho)`` alike for heat conduction). The objectives are compliances, the work of the
loads at equilibrium,

.. math:: c(\\rho) = F \\cdot u(\\rho), \\qquad K(\\rho)\\, u = F,

structural (plane stress or strain in 2D, 3D elasticity) or thermal (``u`` the
temperature, ``F`` the heat load). ``c`` is self-adjoint: its gradient needs no second
solve (the adjoint load is ``F``, so the adjoint solution is ``u`` itself, which
:class:`dfem.solvers` returns from the forward solve), and autograd carries
``dc/drho = -u^T (dK/drho) u`` through the SIMP law, the projection and the filter.
"""

from __future__ import annotations

import abc
import math

import torch

from dfem.assembly.coefficients import PerCell
from dfem.exceptions import DfemError


def simp(rho: torch.Tensor, E0: float, E_min: float, penal: float) -> torch.Tensor:
    """``E_min + rho^p (E0 - E_min)``."""
    return E_min + rho.clamp(min=0.0) ** penal * (E0 - E_min)


def check_simp(E0, E_min, penal) -> None:
    """Raise :class:`DfemError` for a non-positive modulus or ``p < 1``."""
    for name, value in (("E0", E0), ("E_min", E_min), ("penal", penal)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            raise DfemError(f"{name} must be a number, got {value!r}.")
    if not 0 < E_min < E0:
        raise DfemError(f"SIMP needs 0 < E_min < E0, got E_min={E_min!r}, E0={E0!r}.")
    if penal < 1:
        raise DfemError(f"the SIMP penalty p must be >= 1 (3 is the classic choice), got "
                        f"{penal!r}.")


class _Compliance(abc.ABC):
    """``c(rho) = F . u(rho)`` for a problem rebuilt with the SIMP coefficient; a subclass
    says which problem (:meth:`problem`)."""

    method = "direct"

    def __init__(self, space, E0, E_min, penal, method, solver_options):
        check_simp(E0, E_min, penal)
        self.space, self.E0, self.E_min, self.penal = space, float(E0), float(E_min), \
            float(penal)
        self.method, self.solver_options = method, dict(solver_options or {})
        self.n_cells = space.mesh.n_cells
        probe = self.problem(torch.full((self.n_cells,), 1.0, dtype=space.dtype,
                                        device=space.device))
        zero = torch.zeros(space.n_dofs, dtype=space.dtype, device=space.device)
        with torch.no_grad():
            self.load = -probe.residual(zero)  # F: the loads do not depend on rho
        if not bool(self.load.abs().max() > 0):
            raise DfemError("the problem has no load: give a traction, a point load, a body "
                            "force (structural) or a heat source (thermal).")
        self.last_solution = None

    @abc.abstractmethod
    def problem(self, modulus: torch.Tensor):
        """The problem with the per-cell SIMP ``modulus``."""

    def modulus(self, rho: torch.Tensor) -> torch.Tensor:
        return simp(rho, self.E0, self.E_min, self.penal)

    def __call__(self, rho: torch.Tensor) -> torch.Tensor:
        if rho.shape != (self.n_cells,):
            raise DfemError(f"the densities have shape {tuple(rho.shape)}; one per cell, "
                            f"({self.n_cells},), is needed.")
        problem = self.problem(self.modulus(rho))
        u = problem.solve(method=self.method, **self.solver_options)
        self.last_solution, self.last_solve = u.detach(), problem.last_solve
        return (self.load * u).sum()


class StructuralCompliance(_Compliance):
    """The compliance of a linear elastic structure with SIMP stiffness per cell.

    Parameters
    ----------
    space : VectorSpace
        Q1 (or any Lagrange) with one component per dimension.
    E0, E_min, penal : float
        The SIMP law (defaults 1, 1e-9, 3).
    poisson_ratio : float
    plane : {"stress", "strain"}, optional
        2D only (default "stress", the classic setting).
    dirichlet, traction, point_loads, body_force
        As for :class:`dfem.LinearElasticity` (point tags: :meth:`Mesh.tag_points`).
    method : {"direct", "cg", "amg"}
    """

    def __init__(self, space, E0=1.0, E_min=1e-9, penal=3.0, poisson_ratio=0.3, plane=None,
                 dirichlet=None, traction=None, point_loads=None, body_force=None,
                 method="direct", **solver_options):
        self.poisson_ratio = poisson_ratio
        self.plane = ("stress" if space.mesh.dim == 2 else None) if plane is None else plane
        self.dirichlet, self.traction = dirichlet, traction
        self.point_loads, self.body_force = point_loads, body_force
        super().__init__(space, E0, E_min, penal, method, solver_options)

    def problem(self, modulus):
        from dfem.problems.elasticity import LinearElasticity

        return LinearElasticity(self.space, E=PerCell(modulus), poisson_ratio=self.poisson_ratio,
                                plane=self.plane, dirichlet=self.dirichlet,
                                traction=self.traction, point_loads=self.point_loads,
                                body_force=self.body_force)


class ThermalCompliance(_Compliance):
    """The thermal compliance ``int f u`` of heat conduction with SIMP conductivity.

    Parameters
    ----------
    space : FunctionSpace
        Scalar (Q1 or any Lagrange).
    k0, k_min, penal : float
        The conductivity law ``k_min + rho^p (k0 - k_min)`` (defaults 1, 1e-3, 3).
    f : coefficient
        The heat source (default a uniform 1).
    dirichlet : dict {tag: temperature}
        The heat sink(s).
    neumann : dict, optional
    """

    def __init__(self, space, k0=1.0, k_min=1e-3, penal=3.0, f=1.0, dirichlet=None,
                 neumann=None, method="direct", **solver_options):
        if not dirichlet:
            raise DfemError("thermal compliance needs a heat sink: a Dirichlet condition on "
                            "some tag (e.g. dirichlet={'sink': 0.0}).")
        self.f, self.dirichlet, self.neumann = f, dirichlet, neumann
        super().__init__(space, k0, k_min, penal, method, solver_options)

    def problem(self, modulus):
        from dfem.problems.poisson import Poisson

        return Poisson(self.space, nu=PerCell(modulus), f=self.f, dirichlet=self.dirichlet,
                       neumann=self.neumann)
