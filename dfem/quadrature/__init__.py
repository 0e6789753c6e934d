"""Quadrature rules on the reference interval, triangle and square."""

from dfem.quadrature.rules import cell_rule, gauss_legendre, line_rule, quad_rule, triangle_rule

__all__ = ["cell_rule", "gauss_legendre", "line_rule", "quad_rule", "triangle_rule"]
