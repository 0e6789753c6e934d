"""Parametric surrogates: diffusivity samplers, the FEM energy on a grid, networks.

The data path: a sampler draws ``w`` and evaluates ``nu(x; w)`` at the grid nodes (the
network input) and at the quadrature points (the loss); a network of
:mod:`dfem.surrogates.networks` inside a :class:`Surrogate` predicts the solution image
with the Dirichlet values imposed exactly; :class:`GridProblem` evaluates the Galerkin
energy with the FEM core's assembly, batched over samples, and solves reference samples.
"""

from dfem.problems.random_fields import (
    FIELDS,
    KarhunenLoeve,
    LogNormalDiffusivity,
    exponential_covariance_roots,
    sample_parameters,
)
from dfem.surrogates.grid import GridProblem
from dfem.surrogates.model import Surrogate, relative_l2
from dfem.surrogates.networks import (
    FNO,
    NETWORKS,
    UNet,
    build_network,
    for_inference,
    zero_output_layer,
)
from dfem.surrogates.prior import CoarseSolve

__all__ = [
    "CoarseSolve",
    "FIELDS",
    "FNO",
    "GridProblem",
    "KarhunenLoeve",
    "LogNormalDiffusivity",
    "NETWORKS",
    "Surrogate",
    "UNet",
    "build_network",
    "exponential_covariance_roots",
    "for_inference",
    "relative_l2",
    "sample_parameters",
    "zero_output_layer",
]
