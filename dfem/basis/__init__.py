"""Bases: Lagrange elements, dof maps, reference-to-cell mapping, function spaces and
point evaluation."""

from dfem.basis.dofmap import DofMap, build_dofmap
from dfem.basis.lagrange import LagrangeElement, element
from dfem.basis.mapping import CellGeometry
from dfem.basis.probes import PointEvaluation, locate_points, points_inside, probe_matrix
from dfem.basis.space import FacetGeometry, FunctionSpace
from dfem.basis.vector import VectorSpace

__all__ = [
    "CellGeometry",
    "DofMap",
    "FacetGeometry",
    "FunctionSpace",
    "LagrangeElement",
    "PointEvaluation",
    "VectorSpace",
    "build_dofmap",
    "element",
    "locate_points",
    "points_inside",
    "probe_matrix",
]
