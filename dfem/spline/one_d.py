"""The 1D spline projection of the DSA paper: best fit by k pieces with free knots.

.. math::  F(x) = \\arg\\min_{h \\in S_{k,d}} \\|x - h\\|_2^2 ,

where ``S_{k,d}`` holds the vectors that are a polynomial of degree ``d`` on each of at most
``k`` contiguous pieces of ``0..n-1`` (each piece at least ``d + 1`` points long). The forward
pass finds the knots (exactly, :mod:`dfem.spline.exact`, or approximately,
:mod:`dfem.spline.merging`); the backward pass holds them fixed and applies the
block-diagonal Jacobian of Theorem 1 (:mod:`dfem.spline.projection`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from dfem.exceptions import DfemError
from dfem.spline.exact import best_partition
from dfem.spline.merging import approximate_partition
from dfem.spline.projection import PiecewiseFit, piece_geometry

__all__ = ["MODES", "SplineFit", "SplineProjection1d", "project_1d", "spline_fit_1d"]

MODES = ("exact", "approximate")
MAX_DEGREE = 5


class SplineFit(NamedTuple):
    """The result of :func:`spline_fit_1d`.

    Attributes
    ----------
    values : tensor (..., n)
        The fit ``h`` (differentiable in ``x``).
    breaks : long tensor (..., k + 1)
        Piece ``i`` is ``[breaks[i], breaks[i + 1])``; after the last piece the entries
        repeat ``n``.
    pieces : long tensor (...)
        Number of pieces used (fewer than ``k`` when more would not lower the error).
    error : tensor (...)
        ``||x - h||^2``.
    """

    values: torch.Tensor
    breaks: torch.Tensor
    pieces: torch.Tensor
    error: torch.Tensor


def _check_settings(k, degree, mode) -> None:
    if isinstance(degree, bool) or not isinstance(degree, int) or not 0 <= degree <= MAX_DEGREE:
        raise DfemError(f"degree must be an integer from 0 to {MAX_DEGREE}, got {degree!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DfemError(f"k (the number of pieces) must be an integer >= 1, got {k!r}")
    if mode not in MODES:
        raise DfemError(f"mode must be one of {MODES}, got {mode!r}")


def _check(x, k, degree, mode) -> None:
    _check_settings(k, degree, mode)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1:
        raise DfemError(
            "x must be a floating-point tensor of shape (..., n); convert with "
            "torch.as_tensor(x, dtype=torch.float64)"
        )
    n = x.shape[-1]
    if k * (degree + 1) > n:
        raise DfemError(
            f"k * (degree + 1) = {k * (degree + 1)} is more than the signal length n = {n}: "
            f"each piece needs at least degree + 1 = {degree + 1} points; use k <= "
            f"{n // (degree + 1)} or a lower degree"
        )
    if not bool(torch.isfinite(x).all()):
        raise DfemError("x has NaN or infinite values; the spline fit needs finite input")


def spline_fit_1d(
    x: torch.Tensor,
    k: int,
    degree: int = 0,
    mode: str = "exact",
    candidates: int | None = None,
) -> SplineFit:
    """Best least-squares fit of each signal in ``x`` (..., n) by at most ``k`` pieces,
    each a polynomial of ``degree``; returns the fit and its knots.

    Parameters
    ----------
    x : tensor (..., n)
        Signals (any floating dtype and device); the knots are found in float64.
    k : int
        Most pieces.
    degree : int
        Polynomial degree on each piece (0 = piecewise constant, a k-histogram).
    mode : {"exact", "approximate"}
        ``"exact"``: the dynamic program, O(k n^2) per signal, the global optimum.
        ``"approximate"``: merging rounds then the program on ``candidates`` boundaries,
        for long signals; its error is never below the optimum.
    candidates : int, optional
        For ``mode="approximate"``: boundaries kept (default ``max(8 k, 32)``).

    Examples
    --------
    >>> import torch
    >>> from dfem.spline import spline_fit_1d
    >>> x = torch.tensor([0.0, 0.1, -0.1, 5.0, 5.2, 4.8, 1.0, 1.0])
    >>> fit = spline_fit_1d(x, k=3)
    >>> fit.breaks.tolist()
    [0, 3, 6, 8]
    """
    _check(x, k, degree, mode)
    shape, n = x.shape, x.shape[-1]
    flat = x.reshape(-1, n)
    if flat.shape[0] == 0:  # an empty batch
        empty = torch.zeros(*shape[:-1], k + 1, dtype=torch.long, device=x.device)
        return SplineFit(x * 1, empty, empty[..., 0], x.sum(-1))
    with torch.no_grad():
        signal = flat.detach().to(torch.float64)
        signal = signal - signal.mean(dim=-1, keepdim=True)  # the fit error ignores offsets
        if mode == "exact":
            breaks, pieces = best_partition(signal, k, degree)
        else:
            breaks, pieces = approximate_partition(signal, k, degree, candidates)
    geometry = piece_geometry(breaks, n, degree, flat.dtype)
    values = PiecewiseFit.apply(flat, geometry)
    error = (flat - values).square().sum(-1)
    return SplineFit(
        values=values.reshape(shape),
        breaks=breaks.reshape(*shape[:-1], k + 1),
        pieces=pieces.reshape(shape[:-1]),
        error=error.reshape(shape[:-1]),
    )


def project_1d(
    x: torch.Tensor,
    k: int,
    degree: int = 0,
    mode: str = "exact",
    candidates: int | None = None,
) -> torch.Tensor:
    """The spline projection ``h = F(x)`` of :func:`spline_fit_1d`, shape of ``x``.

    Its backward pass is ``grad_x = P grad_h`` with ``P`` the block-diagonal projection onto
    polynomials of ``degree`` on each piece found in the forward pass (for ``degree = 0``:
    the mean of ``grad_h`` over each piece).
    """
    return spline_fit_1d(x, k, degree, mode, candidates).values


class SplineProjection1d(nn.Module):
    """:func:`project_1d` over the last axis, as a layer (no parameters).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from dfem.spline import SplineProjection1d
    >>> net = nn.Sequential(nn.Linear(16, 64), SplineProjection1d(k=4, degree=1))
    >>> net(torch.randn(8, 16)).shape
    torch.Size([8, 64])
    """

    def __init__(self, k: int, degree: int = 0, mode: str = "exact", candidates: int | None = None):
        super().__init__()
        _check_settings(k, degree, mode)
        self.k, self.degree, self.mode, self.candidates = k, degree, mode, candidates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return project_1d(x, self.k, self.degree, self.mode, self.candidates)

    def extra_repr(self) -> str:
        return f"k={self.k}, degree={self.degree}, mode={self.mode!r}"
