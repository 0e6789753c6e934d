"""Quadrature rules on the reference interval, triangle, square, tetrahedron and cube."""

from dfem.quadrature.rules import (
    cell_rule,
    facet_rule,
    gauss_legendre,
    hexahedron_rule,
    line_rule,
    quad_rule,
    tetrahedron_rule,
    triangle_rule,
)

__all__ = ["cell_rule", "facet_rule", "gauss_legendre", "hexahedron_rule", "line_rule",
           "quad_rule", "tetrahedron_rule", "triangle_rule"]
