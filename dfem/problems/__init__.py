"""Problems: energies given by a density (the core), Poisson, elasticity, nonlinear diffusion,
transient heat, and case files."""

from dfem.problems.elasticity import LinearElasticity, NeoHookean, lame
from dfem.problems.energy import BoundaryTerm, EnergyProblem, register_kernel
from dfem.problems.gradient_flow import GradientFlow
from dfem.problems.heat import Heat, HeatResult, TransientResult
from dfem.problems.nonlinear import NonlinearPoisson
from dfem.problems.poisson import Poisson

__all__ = [
    "BoundaryTerm",
    "EnergyProblem",
    "GradientFlow",
    "Heat",
    "HeatResult",
    "LinearElasticity",
    "NeoHookean",
    "NonlinearPoisson",
    "Poisson",
    "TransientResult",
    "lame",
    "register_kernel",
]
