"""Knot gradients: ``"exact"`` (autograd in the span) or ``"gaussian"`` (DSA Algorithm 1).

The B-spline basis depends on the knots in two ways. Write it through the degree-0 boxes

.. math:: N_{i,p}(u) = \\sum_{j=i}^{i+p} c_{ij}(u; t)\\, N_{j,0}(u), \\qquad
          N_{j,0}(u) = H(u - t_j) - H(u - t_{j+1}),

with ``H`` the unit step and ``c_{ij}`` the products of the Cox-de Boor factors (rational
in the knots). Then

.. math:: \\frac{\\partial N_{i,p}}{\\partial t_k}
          = \\sum_j \\frac{\\partial c_{ij}}{\\partial t_k} N_{j,0}
          + \\sum_j c_{ij} \\frac{\\partial N_{j,0}}{\\partial t_k}.

- ``"exact"``: the first sum only. This is what autograd gives through the recursion
  with the span fixed, and it is *the* derivative of ``N_{i,p}(u)`` for every ``u`` that is
  not a knot (the boxes are locally constant in the knots there). At ``u = t_k`` the
  basis is only one-sided differentiable in ``t_k``; autograd returns the derivative of
  the piece of the span that contains ``u``.
- ``"gaussian"`` (the DSA paper, appendix C.3 and Algorithm 1): the box derivative, a
  difference of Dirac deltas, is replaced by Gaussians of bandwidth ``sigma``: the box
  is smoothed as ``Phi((u - t_j)/sigma) - Phi((u - t_{j+1})/sigma)`` (``Phi`` the normal
  CDF), so

  .. math:: \\frac{\\partial N_{j,0}}{\\partial t_j} \\approx -G_\\sigma(u - t_j), \\qquad
            \\frac{\\partial N_{j,0}}{\\partial t_{j+1}} \\approx G_\\sigma(u - t_{j+1}),
            \\qquad G_\\sigma(x) = \\frac{e^{-x^2 / 2\\sigma^2}}{\\sqrt{2\\pi}\\,\\sigma},

  and the second sum is kept, propagated through the same recursion. The forward values
  stay exact: the smoothed boxes enter as a straight-through term
  ``box + (smooth - smooth.detach())``, which is exactly zero in value.

  As ``sigma -> 0`` the extra term vanishes like ``G_sigma(d)`` (``d`` the distance from
  ``u`` to the nearest knot), so the gaussian gradient tends to the exact one at every
  ``u`` that is not a knot. For finite ``sigma`` it spreads the effect of moving a knot
  over a band of width about ``sigma`` around it, which makes the gradient felt by
  points on both sides of a knot.

The derivative with respect to ``u`` is the exact one in both modes.
"""

from __future__ import annotations

import math

import torch

from dfem.exceptions import DfemError

__all__ = ["KNOT_GRADS", "check_knot_grad", "smoothed_boxes"]

KNOT_GRADS = ("exact", "gaussian")


def check_knot_grad(knot_grad: str, sigma: float) -> None:
    """Validate the knot-gradient option and the Gaussian bandwidth."""
    if knot_grad not in KNOT_GRADS:
        raise DfemError(f"knot_grad must be one of {KNOT_GRADS}, got {knot_grad!r}")
    if knot_grad == "gaussian" and not (
        isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)
    ):
        raise DfemError(f"sigma (the Gaussian bandwidth) must be a positive number, got {sigma!r}")


def smoothed_boxes(T: torch.Tensor, p: int, u: torch.Tensor, sigma: float) -> torch.Tensor:
    """Degree-0 boxes ``N_{s-p..s+p, 0}(u)`` with Gaussian-smoothed knot derivatives.

    Parameters
    ----------
    T : tensor (N, 2p + 2)
        Gathered knots, ``T[:, p + j] = t_{s+j}`` for ``j = -p..p+1``.
    p : int
    u : tensor (N,)
    sigma : float

    Returns
    -------
    tensor (N, 2p + 1)
        Exactly the one-hot indicator of the span ``s`` (column ``p``); its gradient with
        respect to ``T`` is that of the smoothed boxes.
    """
    N = T.shape[0]
    box = torch.zeros(N, 2 * p + 1, dtype=T.dtype, device=T.device)
    box[:, p] = 1.0
    if not T.requires_grad:
        return box
    x = u.detach()[:, None]
    left, right = T[:, : 2 * p + 1], T[:, 1 : 2 * p + 2]
    smooth = torch.special.ndtr((x - left) / sigma) - torch.special.ndtr((x - right) / sigma)
    return box + (smooth - smooth.detach())
