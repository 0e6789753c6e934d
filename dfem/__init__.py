"""dfem: differentiable finite elements on PyTorch.

The data path::

    mesh -> basis (FunctionSpace) -> quadrature + mapping -> assembly (energy, residual,
    matrix) -> solvers (direct / CG / AMG with adjoint backward, energy minimisation,
    Newton) -> solution -> validation (errors, convergence)

Example
-------
>>> import math, torch, dfem
>>> mesh = dfem.mesh.rectangle(32, 32, "quad")
>>> space = dfem.FunctionSpace(mesh, "Q2")
>>> f = lambda x: 2 * math.pi**2 * torch.sin(math.pi * x[..., 0]) * torch.sin(math.pi * x[..., 1])
>>> problem = dfem.Poisson(space, nu=1.0, f=f, dirichlet={"boundary": 0.0})  # doctest: +SKIP
"""

from dfem import mesh
from dfem.assembly import AtQuadrature, Nodal, PerCell, assemble, energy, mass_matrix, residual
from dfem.basis import FunctionSpace, LagrangeElement, VectorSpace, element
from dfem.exceptions import ConvergenceError, DfemError, MeshError
from dfem.problems import (
    BoundaryTerm,
    EnergyProblem,
    GradientFlow,
    Heat,
    LinearElasticity,
    NeoHookean,
    NonlinearPoisson,
    Poisson,
    lame,
    register_kernel,
)
from dfem.solvers import sparse_solve
from dfem.validation import check_gradients, convergence_study, errors

__version__ = "0.1.0"

__all__ = [
    "AtQuadrature",
    "BoundaryTerm",
    "ConvergenceError",
    "DfemError",
    "EnergyProblem",
    "FunctionSpace",
    "GradientFlow",
    "Heat",
    "LagrangeElement",
    "LinearElasticity",
    "MeshError",
    "NeoHookean",
    "NonlinearPoisson",
    "Nodal",
    "PerCell",
    "Poisson",
    "VectorSpace",
    "assemble",
    "check_gradients",
    "convergence_study",
    "element",
    "energy",
    "errors",
    "lame",
    "mass_matrix",
    "mesh",
    "register_kernel",
    "residual",
    "sparse_solve",
]
