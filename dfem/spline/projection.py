"""Least-squares polynomial fit on each piece of a fixed partition, and its Jacobian.

For a partition of ``0..n-1`` into contiguous pieces ``I_1, ..., I_p`` the fit

.. math::  h = P x, \\qquad P = \\operatorname{blockdiag}_i\\;
           V_i (V_i^T V_i)^{-1} V_i^T

is linear in ``x``; ``V_i`` is the basis of polynomials of degree ``d`` on the points of
``I_i``. This is the DSA paper's Theorem 1: with the partition held fixed, the Jacobian of the
spline projection is ``P``, and since each block is an orthogonal projection ``P^T = P``, so
``J^T v = P v`` costs O(n d^2) per signal and no n x n matrix is formed.

``V_i`` is taken in Legendre polynomials of the piece's centred coordinate ``u in (-1, 1)``
(:func:`dfem.spline.moments.legendre`), which keeps ``V_i^T V_i`` well conditioned; it is
factorised once by Cholesky and reused in the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dfem.exceptions import DfemError
from dfem.spline.moments import legendre

__all__ = ["PieceGeometry", "fit_pieces", "piece_geometry"]


@dataclass(frozen=True)
class PieceGeometry:
    """What ``P`` needs, built once per partition.

    Attributes
    ----------
    basis : tensor (batch, n, d + 1)
        Legendre values at each point in its piece's coordinate.
    piece : long tensor (batch, n)
        Flat piece index ``b * k + i`` of each point.
    factor : tensor (batch * k, d + 1, d + 1)
        Cholesky factors of ``V_i^T V_i`` (identity for unused pieces).
    """

    basis: torch.Tensor
    piece: torch.Tensor
    factor: torch.Tensor

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """``P v`` for ``v`` of shape (batch, n)."""
        pieces, width = self.factor.shape[0], self.basis.shape[-1]
        rhs = v.new_zeros(pieces, width)
        rhs.index_add_(0, self.piece.reshape(-1), (self.basis * v.unsqueeze(-1)).reshape(-1, width))
        coef = torch.cholesky_solve(rhs.unsqueeze(-1), self.factor).squeeze(-1)
        return (self.basis * coef[self.piece]).sum(-1)


def piece_geometry(breaks: torch.Tensor, n: int, degree: int, dtype) -> PieceGeometry:
    """Build :class:`PieceGeometry` from ``breaks`` (batch, k + 1): piece ``i`` is
    ``[breaks[i], breaks[i + 1])``; trailing pieces may be empty (``breaks`` repeats ``n``)."""
    batch, k = breaks.shape[0], breaks.shape[1] - 1
    lengths = breaks.diff(dim=-1)
    if bool((breaks[:, 0] != 0).any()) or bool((breaks[:, -1] != n).any()):
        raise DfemError(f"breaks must start at 0 and end at n = {n}; got {breaks.tolist()}")
    if bool((lengths < 0).any()):
        raise DfemError("breaks must be non-decreasing")
    used = lengths > 0
    if bool((used & (lengths < degree + 1)).any()):
        raise DfemError(
            f"a piece has fewer than degree + 1 = {degree + 1} points, so its polynomial fit "
            "is not unique; merge it with a neighbour or lower the degree"
        )
    position = torch.arange(n, device=breaks.device).expand(batch, n)
    local = torch.searchsorted(breaks[:, 1:].contiguous(), position.contiguous(), right=True)
    start = breaks.gather(1, local)
    length = lengths.gather(1, local).to(dtype)
    u = (2.0 * (position - start).to(dtype) - (length - 1.0)) / length
    basis = legendre(u, degree)
    piece = local + k * torch.arange(batch, device=breaks.device)[:, None]

    width = degree + 1
    outer = (basis.unsqueeze(-1) * basis.unsqueeze(-2)).reshape(-1, width, width)
    gram = torch.zeros(batch * k, width, width, dtype=dtype, device=breaks.device)
    gram.index_add_(0, piece.reshape(-1), outer)
    eye = torch.eye(width, dtype=dtype, device=breaks.device)
    gram = torch.where(used.reshape(-1, 1, 1), gram, eye)
    return PieceGeometry(basis=basis, piece=piece, factor=torch.linalg.cholesky(gram))


class PiecewiseFit(torch.autograd.Function):
    """``h = P x`` with the block-diagonal backward ``grad_x = P grad_h``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, geometry: PieceGeometry) -> torch.Tensor:
        ctx.geometry = geometry
        return geometry.apply(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.geometry.apply(grad), None


def fit_pieces(x: torch.Tensor, breaks: torch.Tensor, degree: int = 0) -> torch.Tensor:
    """Least-squares fit of ``x`` (..., n) by a polynomial of ``degree`` on each piece of a
    fixed partition ``breaks`` (..., k + 1); differentiable in ``x``.

    This is the spline projection with its knots held fixed: the map whose Jacobian the
    backward pass of :func:`dfem.spline.project_1d` applies.
    """
    n = x.shape[-1]
    flat_x = x.reshape(-1, n)
    breaks = torch.as_tensor(breaks, device=x.device)
    flat_breaks = breaks.reshape(-1, breaks.shape[-1])
    if flat_breaks.shape[0] != flat_x.shape[0]:
        raise DfemError(
            f"breaks have shape {tuple(breaks.shape)} but x has shape {tuple(x.shape)}: "
            "give one row of breaks per signal"
        )
    geometry = piece_geometry(flat_breaks.long(), n, degree, x.dtype)
    return PiecewiseFit.apply(flat_x, geometry).reshape(x.shape)
