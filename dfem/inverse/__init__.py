"""Inverse problems and design through the differentiable solver.

- :func:`identify`: recover a diffusivity (per cell, nodal ``log nu``, or the
  parameters of a field family) from observations by L-BFGS, one forward and one
  adjoint solve per evaluation; in time (:mod:`dfem.inverse.transient`), a
  conductivity or an initial condition from sensor histories of a heat run;
- :func:`optimize_nodes`: move mesh nodes to lower an objective of the solution, with
  a guard against inverted cells;
- :func:`check_gradients`: the Taylor test of a gradient.
"""

from dfem.inverse.identification import InverseResult, identify
from dfem.inverse.observations import Observations
from dfem.inverse.shape import ShapeResult, corner_jacobians, optimize_nodes
from dfem.inverse.transient import InitialCondition, SensorHistories, TransientForward
from dfem.inverse.unknowns import (
    CellLogDiffusivity,
    FamilyParameters,
    NodalLogDiffusivity,
    log_nu_error,
)
from dfem.validation.taylor import TaylorTest, check_gradients

__all__ = [
    "CellLogDiffusivity",
    "FamilyParameters",
    "InitialCondition",
    "InverseResult",
    "NodalLogDiffusivity",
    "Observations",
    "SensorHistories",
    "ShapeResult",
    "TaylorTest",
    "TransientForward",
    "check_gradients",
    "corner_jacobians",
    "identify",
    "log_nu_error",
    "optimize_nodes",
]
