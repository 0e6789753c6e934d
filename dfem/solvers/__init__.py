"""Solvers: differentiable sparse linear solves, energy minimisation, Newton, the implicit
adjoint of a converged solve, and time stepping with the discrete adjoint through time."""

from dfem.solvers.amg import NearNullspace, rigid_body_modes, translation_modes
from dfem.solvers.implicit import implicit_solution
from dfem.solvers.linear import METHODS, SolveInfo, dense_solve, factorize, sparse_solve
from dfem.solvers.minimize import MinimizeInfo, minimize_energy
from dfem.solvers.newton_method import NewtonInfo, newton
from dfem.solvers.schemes import SCHEMES, Step, scheme_steps, step_times
from dfem.solvers.trajectory import LinearDynamics, TrajectoryInfo, integrate

__all__ = [
    "METHODS",
    "SCHEMES",
    "LinearDynamics",
    "MinimizeInfo",
    "NearNullspace",
    "NewtonInfo",
    "SolveInfo",
    "Step",
    "TrajectoryInfo",
    "dense_solve",
    "factorize",
    "implicit_solution",
    "integrate",
    "minimize_energy",
    "newton",
    "rigid_body_modes",
    "scheme_steps",
    "sparse_solve",
    "step_times",
    "translation_modes",
]
