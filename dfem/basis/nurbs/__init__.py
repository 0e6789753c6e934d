"""NURBS: B-spline basis, rational curves and surfaces, knot gradients, refinement, layers.

Modules
-------
knots
    Knot-vector validation, exact span search, clamped knots, Greville abscissae,
    learnable ordered knots.
bspline
    Basis functions and derivatives (Cox-de Boor), dense basis matrices.
knot_gradient
    ``knot_grad="exact" | "gaussian"`` (the DSA paper's Algorithm 1).
geometry
    Curve and surface points and first derivatives.
refine
    Knot insertion and degree elevation.
layer
    ``NURBSCurve`` and ``NURBSSurface`` modules.
patch
    ``NURBSPatch``: the geometry of isogeometric analysis, its h- and p-refinement, and the
    shipped geometries (square, quarter annulus).
space
    ``IsogeometricSpace``: a patch's NURBS basis as a function space for the assembly.
"""

from dfem.basis.nurbs.bspline import basis_functions, basis_matrix
from dfem.basis.nurbs.geometry import curve_points, surface_points
from dfem.basis.nurbs.knot_gradient import KNOT_GRADS
from dfem.basis.nurbs.knots import (
    OrderedKnots,
    clamped_knots,
    domain,
    find_spans,
    greville_points,
    validate_knots,
)
from dfem.basis.nurbs.layer import NURBSCurve, NURBSSurface
from dfem.basis.nurbs.patch import GEOMETRIES, NURBSPatch, quarter_annulus, unit_square
from dfem.basis.nurbs.refine import elevate_degree, insert_knot
from dfem.basis.nurbs.space import IsogeometricSpace, NURBSElement

__all__ = [
    "GEOMETRIES",
    "IsogeometricSpace",
    "KNOT_GRADS",
    "NURBSElement",
    "NURBSPatch",
    "quarter_annulus",
    "unit_square",
    "NURBSCurve",
    "NURBSSurface",
    "OrderedKnots",
    "basis_functions",
    "basis_matrix",
    "clamped_knots",
    "curve_points",
    "domain",
    "elevate_degree",
    "find_spans",
    "greville_points",
    "insert_knot",
    "surface_points",
    "validate_knots",
]
