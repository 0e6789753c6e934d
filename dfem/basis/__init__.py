"""Bases: Lagrange elements, dof maps, reference-to-cell mapping and function spaces."""

from dfem.basis.dofmap import DofMap, build_dofmap
from dfem.basis.lagrange import LagrangeElement, element
from dfem.basis.mapping import CellGeometry
from dfem.basis.space import FacetGeometry, FunctionSpace

__all__ = [
    "CellGeometry",
    "DofMap",
    "FacetGeometry",
    "FunctionSpace",
    "LagrangeElement",
    "build_dofmap",
    "element",
]
