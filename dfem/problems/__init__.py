"""PDE problems: the Poisson / reaction-diffusion problem and its nonlinear variant."""

from dfem.problems.nonlinear import NonlinearPoisson
from dfem.problems.poisson import Poisson

__all__ = ["NonlinearPoisson", "Poisson"]
