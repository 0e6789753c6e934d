"""Solvers: differentiable sparse linear solves, energy minimisation, Newton."""

from dfem.solvers.linear import METHODS, SolveInfo, dense_solve, factorize, sparse_solve
from dfem.solvers.minimize import MinimizeInfo, minimize_energy
from dfem.solvers.newton import NewtonInfo, newton

__all__ = [
    "METHODS",
    "MinimizeInfo",
    "NewtonInfo",
    "SolveInfo",
    "dense_solve",
    "factorize",
    "minimize_energy",
    "newton",
    "sparse_solve",
]
