"""Spline projection layers (the DSA paper's first contribution).

- :func:`project_1d` / :class:`SplineProjection1d`: best least-squares fit of a signal by
  ``k`` pieces of degree ``d`` with free knots (exact dynamic program or a fast merging
  approximation); backward = the block-diagonal Jacobian of the paper's Theorem 1.
- :func:`fit_pieces`: the same fit with the knots given (the map whose Jacobian that is).
- :func:`project_2d` / :class:`PiecewiseConstant2d`: each connected component of a
  thresholded map replaced by its mean; backward = the mean of the gradient per component.

See ``docs/spline.md``.
"""

from dfem.spline.one_d import SplineFit, SplineProjection1d, project_1d, spline_fit_1d
from dfem.spline.projection import fit_pieces
from dfem.spline.two_d import (
    PiecewiseConstant2d,
    connected_components,
    project_2d,
    project_on_label_map,
)

__all__ = [
    "PiecewiseConstant2d",
    "SplineFit",
    "SplineProjection1d",
    "connected_components",
    "fit_pieces",
    "project_1d",
    "project_2d",
    "project_on_label_map",
    "spline_fit_1d",
]
