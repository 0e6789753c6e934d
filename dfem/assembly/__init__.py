"""Assembly: coefficients at quadrature points, the Galerkin energy, residual and matrix."""

from dfem.assembly.coefficients import AtQuadrature, Nodal, PerCell
from dfem.assembly.forms import (
    assemble,
    assemble_matrix,
    assemble_vector,
    element_loads,
    element_matrices,
    energy,
    matvec,
    residual,
)
from dfem.assembly.mass import element_mass, mass_matrix
from dfem.assembly.sparsity import RestrictedPattern, SparsityPattern, add_at

__all__ = [
    "AtQuadrature",
    "Nodal",
    "PerCell",
    "RestrictedPattern",
    "SparsityPattern",
    "add_at",
    "assemble",
    "assemble_matrix",
    "assemble_vector",
    "element_loads",
    "element_mass",
    "element_matrices",
    "energy",
    "mass_matrix",
    "matvec",
    "residual",
]
