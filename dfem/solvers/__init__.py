"""Solvers: differentiable sparse linear solves, energy minimisation, Newton, and the implicit
adjoint of a converged solve."""

from dfem.solvers.amg import NearNullspace, rigid_body_modes, translation_modes
from dfem.solvers.implicit import implicit_solution
from dfem.solvers.linear import METHODS, SolveInfo, dense_solve, factorize, sparse_solve
from dfem.solvers.minimize import MinimizeInfo, minimize_energy
from dfem.solvers.newton import NewtonInfo, newton

__all__ = [
    "METHODS",
    "MinimizeInfo",
    "NearNullspace",
    "NewtonInfo",
    "SolveInfo",
    "dense_solve",
    "factorize",
    "implicit_solution",
    "minimize_energy",
    "newton",
    "rigid_body_modes",
    "sparse_solve",
    "translation_modes",
]
