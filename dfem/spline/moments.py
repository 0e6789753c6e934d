"""Sufficient statistics of a least-squares polynomial fit on a run of equally spaced points.

A run of ``L`` consecutive samples ``x_s, ..., x_{s+L-1}`` is described in its own centred,
scaled coordinate

.. math::  u_\\tau = \\frac{2\\tau - (L - 1)}{L}, \\qquad \\tau = 0, \\dots, L - 1,

so that every run lies in ``(-1, 1)`` whatever its length or position. The best fit by a
polynomial of degree ``d`` then has the squared error

.. math::  E = \\sum_\\tau x_\\tau^2 - \\nu^T G^{-1} \\nu, \\qquad
           \\nu_r = \\sum_\\tau x_\\tau u_\\tau^r, \\quad
           G_{rl} = g_{r+l} = \\sum_\\tau u_\\tau^{r+l},

and ``(sum x^2, nu_0..nu_d, g_0..g_2d)`` are enough to know it. Moments taken in one affine
coordinate ``v = alpha u + beta`` follow from those in ``u`` by the binomial theorem
(:func:`reexpand`); with ``|alpha|, |beta| <= 1`` that loses at most a constant factor
``3^r`` of precision, unlike prefix sums of ``x t^r`` in a global coordinate, which lose all
digits of a short run far from the origin. Both the exact dynamic program (moments of every
run, by cumulative sums) and the merging approximation (moments of merged runs) use this.
"""

from __future__ import annotations

import math

import torch

__all__ = ["fit_error", "legendre", "reexpand", "run_coordinate", "whitening"]


def reexpand(moments: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r"""Moments in the coordinate ``v = alpha u + beta`` from moments in ``u``.

    .. math::  \sum x v^r = \sum_{j \le r} \binom{r}{j} \alpha^j \beta^{r-j}
               \sum x u^j .

    Parameters
    ----------
    moments : tensor (..., R + 1)
        ``sum x u^j`` for j = 0..R.
    alpha, beta : tensors broadcastable to ``moments.shape[:-1]``
    """
    order = moments.shape[-1] - 1
    shape = torch.broadcast_shapes(moments.shape[:-1], alpha.shape, beta.shape)
    moments = moments.expand(*shape, order + 1)
    scaled, power = [moments[..., 0]], torch.ones_like(alpha)
    for j in range(1, order + 1):
        power = power * alpha
        scaled.append(power * moments[..., j])  # alpha^j nu_j
    beta_powers = [torch.ones_like(beta)]
    for _ in range(order):
        beta_powers.append(beta_powers[-1] * beta)
    out = []
    for r in range(order + 1):
        term = scaled[r]
        for j in range(r):
            term = term + math.comb(r, j) * beta_powers[r - j] * scaled[j]
        out.append(term)
    return torch.stack(out, dim=-1)


def run_coordinate(length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alpha, beta)`` with ``u = alpha tau + beta`` the centred coordinate of a run of
    ``length`` points indexed ``tau = 0..length-1``: ``alpha = 2/L``, ``beta = -(L-1)/L``.

    ``length`` is a floating tensor (the dtype of the moments)."""
    return 2.0 / length, -(length - 1.0) / length


def whitening(gram: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``W = R^{-1}`` with ``G = R R^T`` the Cholesky factor of ``G_{rl} = g_{r+l}``, so that
    ``nu^T G^{-1} nu = |W nu|^2``; identity for runs that are not ``valid``.

    Parameters
    ----------
    gram : tensor (..., 2d + 1)
        ``g_m = sum u^m``.
    valid : bool tensor (...)
        Runs with at least ``d + 1`` points (``G`` is singular otherwise).
    """
    degree = (gram.shape[-1] - 1) // 2
    index = torch.arange(degree + 1, device=gram.device)
    hankel = gram[..., index[:, None] + index[None, :]]  # (..., d+1, d+1)
    eye = torch.eye(degree + 1, dtype=gram.dtype, device=gram.device)
    hankel = torch.where(valid[..., None, None], hankel, eye)
    factor = torch.linalg.cholesky(hankel)
    return torch.linalg.solve_triangular(factor, eye.expand_as(factor), upper=False)


def fit_error(
    sum_sq: torch.Tensor, nu: torch.Tensor, white: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Squared error ``sum x^2 - |W nu|^2`` of the best polynomial fit of each run.

    Parameters
    ----------
    sum_sq : tensor (...)
    nu : tensor (..., d + 1)
    white : tensor broadcastable to (..., d + 1, d + 1)
        From :func:`whitening`.
    valid : bool tensor broadcastable to ``sum_sq``
        Runs with at least ``d + 1`` points; the others get ``+inf``.
    """
    coef = torch.einsum("...rj,...j->...r", white, nu)
    error = (sum_sq - coef.square().sum(-1)).clamp(min=0.0)
    return torch.where(valid, error, torch.full_like(error, math.inf))


def legendre(u: torch.Tensor, degree: int) -> torch.Tensor:
    """Legendre polynomials ``P_0(u) .. P_degree(u)`` stacked on a new last axis.

    On the equally spaced points of a run they are nearly orthogonal, so the normal
    equations of the within-piece fit stay well conditioned (a monomial Vandermonde
    does not).
    """
    values = [torch.ones_like(u)]
    if degree >= 1:
        values.append(u)
    for r in range(1, degree):
        values.append(((2 * r + 1) * u * values[r] - r * values[r - 1]) / (r + 1))
    return torch.stack(values, dim=-1)
