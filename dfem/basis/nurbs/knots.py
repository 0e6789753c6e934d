"""Knot vectors: validation, span search, clamped knots, Greville abscissae, learnable knots.

A B-spline of degree ``p`` with ``n`` control points lives on a knot vector
``t_0 <= t_1 <= ... <= t_{n+p}`` of ``n + p + 1`` entries. Its parameter domain is
``[t_p, t_n]``; on the non-empty *span* ``[t_s, t_{s+1})`` (``p <= s <= n - 1``)
exactly the ``p + 1`` basis functions ``N_{s-p}, ..., N_s`` are non-zero.

Conventions used throughout :mod:`dfem.basis.nurbs`:

- the span of ``u`` is the index ``s`` with ``t_s <= u < t_{s+1}``, found exactly by
  binary search (:func:`torch.searchsorted`), with no tolerance;
- ``u = t_n`` (the right end of the domain) belongs to the last non-empty span, so that
  the curve is evaluated there by continuity from the left;
- parameter values outside ``[t_p, t_n]`` are an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dfem.exceptions import DfemError

__all__ = [
    "OrderedKnots",
    "as_tensor",
    "clamped_knots",
    "domain",
    "find_spans",
    "greville_points",
    "validate_knots",
]


def as_tensor(x, *, dtype=None, device=None) -> torch.Tensor:
    """``x`` as a floating tensor: tensors keep dtype/device unless given; arrays become float64."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            x = x.to(torch.float64 if dtype is None else dtype)
        return x.to(dtype=dtype or x.dtype, device=device or x.device)
    return torch.as_tensor(
        np.asarray(x, dtype=np.float64), dtype=dtype or torch.float64, device=device
    )


def check_degree(degree) -> int:
    """``degree`` as an int, checked to be a non-negative integer (a DfemError otherwise)."""
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 0:
        raise DfemError(f"degree must be a non-negative integer, got {degree!r}")
    return int(degree)


def validate_knots(
    knots: torch.Tensor, degree: int, n_ctrl: int | None = None, *, name: str = "knot vector"
) -> int:
    """Check a knot vector for a B-spline of degree ``p`` and return the control-point count.

    Requirements: a 1-D finite sequence of ``n + p + 1`` non-decreasing values with
    ``n >= p + 1``; no value repeated more than ``p + 1`` times (a basis function whose
    knots all coincide would vanish identically); a non-empty domain ``t_p < t_n``.

    Parameters
    ----------
    knots : tensor (n + p + 1,)
    degree : int
        ``p >= 0``.
    n_ctrl : int, optional
        The number of control points ``n``; when given, the length must be ``n + p + 1``.
    name : str
        How the error messages call the knot vector (e.g. ``"knots_u"``).

    Returns
    -------
    int
        ``n = len(knots) - p - 1``.

    Raises
    ------
    DfemError
        Naming the violated requirement and the fix.
    """
    p = check_degree(degree)
    if knots.dim() != 1:
        raise DfemError(f"{name} must be 1-D, got shape {tuple(knots.shape)}")
    m = knots.shape[0]
    if n_ctrl is not None:
        if n_ctrl < p + 1:
            raise DfemError(
                f"{n_ctrl} control points are too few for degree {p}: need at least p + 1 = "
                f"{p + 1}; lower the degree or add control points"
            )
        if m != n_ctrl + p + 1:
            raise DfemError(
                f"{name} has {m} entries, but {n_ctrl} control points of degree {p} need "
                f"{n_ctrl + p + 1} (n + p + 1)"
            )
    elif m < 2 * (p + 1):
        raise DfemError(
            f"{name} has {m} entries, too few for degree {p}: need at least 2 (p + 1) = "
            f"{2 * (p + 1)} (n + p + 1 with n >= p + 1 control points)"
        )
    t = knots.detach().to("cpu", torch.float64).numpy()
    if not np.all(np.isfinite(t)):
        raise DfemError(f"{name} contains non-finite values: {t.tolist()}")
    dt = np.diff(t)
    if np.any(dt < 0):
        i = int(np.argmax(dt < 0))
        raise DfemError(
            f"{name} decreases at index {i + 1} ({t[i]:g} -> {t[i + 1]:g}); knots must be "
            "non-decreasing: sort them"
        )
    # longest run of equal values
    breaks = np.flatnonzero(np.concatenate([[True], dt != 0, [True]]))
    runs = np.diff(breaks)
    k = int(np.argmax(runs))
    if runs[k] > p + 1:
        extra = int(runs[k] - p - 1)
        raise DfemError(
            f"{name}: knot {t[breaks[k]]:g} is repeated {runs[k]} times, more than degree + 1 "
            f"= {p + 1}; remove {extra} {'copy' if extra == 1 else 'copies'}"
        )
    n = m - p - 1
    if not t[p] < t[n]:
        raise DfemError(
            f"{name} has an empty parameter domain [t_p, t_n] = [{t[p]:g}, {t[n]:g}]; the "
            f"knots t_{p} and t_{n} must differ"
        )
    return n


def domain(knots: torch.Tensor, degree: int) -> tuple[float, float]:
    """The parameter domain ``(t_p, t_n)`` of a valid knot vector, as Python floats."""
    n = knots.shape[0] - degree - 1
    return float(knots[degree]), float(knots[n])


def find_spans(knots: torch.Tensor, degree: int, u, *, check: bool = True) -> torch.Tensor:
    """Knot-span indices of the parameter values ``u`` (NURBS Book A2.1, vectorised).

    .. math:: s(u) = \\max\\{\\, i : t_i \\le u \\,\\}, \\quad p \\le s \\le n - 1,

    found by :func:`torch.searchsorted` on the knot vector (exact comparisons, no
    tolerance). ``u = t_n`` is assigned the last non-empty span
    ``max{i : t_i < t_n}``.

    Parameters
    ----------
    knots : tensor (n + p + 1,)
        Non-decreasing knot vector (gradients are ignored here).
    degree : int
    u : tensor or array-like, any shape
        Parameter values in ``[t_p, t_n]``.
    check : bool
        Validate the knot vector first (set False when the caller already did).

    Returns
    -------
    spans : LongTensor, same shape as ``u``, values in ``[p, n - 1]``.

    Raises
    ------
    DfemError
        If a value lies outside ``[t_p, t_n]`` or is NaN.
    """
    knots = as_tensor(knots)
    p = check_degree(degree)
    n = validate_knots(knots, p) if check else knots.shape[0] - p - 1
    u = as_tensor(u, dtype=knots.dtype, device=knots.device).detach()
    t = knots.detach().contiguous()
    check_range(t, p, u)
    flat = u.reshape(-1).contiguous()
    spans = torch.searchsorted(t, flat, right=True) - 1
    # right end: the last non-empty span, i.e. the last i with t_i < t_n
    last = torch.searchsorted(t, t[n : n + 1], right=False) - 1
    spans = torch.where(flat >= t[n], last, spans)
    return spans.reshape(u.shape)


def check_range(knots: torch.Tensor, degree: int, u: torch.Tensor) -> None:
    """Raise a :class:`DfemError` if some ``u`` is NaN or outside ``[t_p, t_n]``."""
    if u.numel() == 0:
        return
    n = knots.shape[0] - degree - 1
    a, b = float(knots[degree]), float(knots[n])
    lo, hi = (float(x) for x in torch.aminmax(u.reshape(-1)))
    if not (lo >= a and hi <= b):  # NaN compares False
        if bool(torch.isnan(u).any()):
            raise DfemError("parameter values contain NaN")
        raise DfemError(
            f"parameter values must lie in the knot range [t_p, t_n] = [{a:g}, {b:g}]; got "
            f"values in [{lo:g}, {hi:g}] (clip them or extend the knot vector)"
        )


def clamped_knots(
    n_ctrl: int,
    degree: int,
    *,
    start: float = 0.0,
    end: float = 1.0,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> torch.Tensor:
    """Clamped (open) uniform knot vector for ``n_ctrl`` control points of degree ``p``.

    ``p + 1`` copies of ``start``, ``n - p - 1`` equally spaced interior knots and
    ``p + 1`` copies of ``end``: ``n + p + 1`` entries. The curve interpolates its end
    control points. End knots are exactly ``start`` and ``end`` (no epsilon shifts).

    Returns
    -------
    tensor (n_ctrl + degree + 1,)
    """
    p = check_degree(degree)
    if n_ctrl < p + 1:
        raise DfemError(
            f"{n_ctrl} control points are too few for degree {p}: need at least p + 1 = {p + 1}"
        )
    if not start < end:
        raise DfemError(f"clamped_knots needs start < end, got [{start:g}, {end:g}]")
    n_inner = n_ctrl - p - 1
    inner = torch.linspace(start, end, n_inner + 2, dtype=dtype, device=device)[1:-1]
    head = torch.full((p + 1,), start, dtype=dtype, device=device)
    tail = torch.full((p + 1,), end, dtype=dtype, device=device)
    return torch.cat([head, inner, tail])


def greville_points(knots: torch.Tensor, degree: int) -> torch.Tensor:
    """Greville abscissae ``xi_i = (t_{i+1} + ... + t_{i+p}) / p``, ``i = 0..n-1``.

    The knot averages: a B-spline with control points ``xi_i`` reproduces the identity
    ``u`` (linear precision), and interpolation at them is well posed. For ``p = 0``
    the span midpoints ``(t_i + t_{i+1}) / 2`` are returned.

    Returns
    -------
    tensor (n,)
    """
    knots = as_tensor(knots)
    p = check_degree(degree)
    validate_knots(knots, p)
    if p == 0:
        return 0.5 * (knots[:-1] + knots[1:])
    return knots[1:-1].unfold(0, p, 1).mean(dim=-1)


class OrderedKnots(nn.Module):
    """A knot vector as a module: fixed, or learnable with its order guaranteed.

    Learnable knots keep the ``p + 1`` first and last knots fixed (so the domain
    ``[a, b] = [t_p, t_n]`` and, for clamped vectors, the clamping stay put) and write
    the ``m = n - p - 1`` interior knots through ``m + 1`` unconstrained logits
    ``theta``:

    .. math:: g = \\operatorname{softmax}(\\theta) = \\frac{e^{\\theta}}{\\sum_j e^{\\theta_j}},
              \\qquad t_{p+k} = a + (b - a) \\sum_{j<k} g_j, \\quad k = 1..m,

    i.e. positive increments normalised by their sum: the interior knots stay strictly
    increasing and inside ``(a, b)`` for every ``theta``. The initial logits are
    ``log`` of the given knot gaps, which must therefore be positive (distinct interior
    knots).

    Parameters
    ----------
    knots : tensor (n + p + 1,)
    degree : int
    learnable : bool
        If False the knots are a buffer and ``forward`` returns them unchanged.

    Calling the module returns the full knot vector (a tensor of the original length).
    """

    def __init__(self, knots, degree: int, *, learnable: bool = True):
        super().__init__()
        knots = as_tensor(knots).detach().clone()
        self.degree = check_degree(degree)
        n = validate_knots(knots, self.degree)
        self.n_ctrl = n
        self.learnable = bool(learnable)
        p = self.degree
        if not self.learnable:
            self.register_buffer("fixed", knots)
            self.logits = None
            return
        gaps = knots[p + 1 : n + 1] - knots[p:n]  # m + 1 gaps between t_p .. t_n
        if bool((gaps <= 0).any()):
            raise DfemError(
                "learnable knots need distinct interior knots (each gap t_{i+1} - t_i > 0 "
                f"inside the domain); got {knots.tolist()}: use learnable=False or spread them"
            )
        self.register_buffer("fixed", knots)
        self.logits = nn.Parameter(torch.log(gaps / gaps.sum()))

    def forward(self) -> torch.Tensor:
        if self.logits is None:
            return self.fixed
        p, n = self.degree, self.n_ctrl
        t = self.fixed
        a, b = t[p], t[n]
        g = torch.softmax(self.logits, dim=0)
        inner = a + (b - a) * torch.cumsum(g, dim=0)[:-1]
        return torch.cat([t[: p + 1], inner, t[n:]])

    def extra_repr(self) -> str:
        return f"degree={self.degree}, n_ctrl={self.n_ctrl}, learnable={self.learnable}"


def knot_values(values) -> list[float]:
    """A scalar or sequence of knot values as a list of floats."""
    if isinstance(values, torch.Tensor):
        return [float(x) for x in values.detach().reshape(-1).cpu()]
    if isinstance(values, Sequence) or isinstance(values, np.ndarray):
        return [float(x) for x in np.asarray(values, dtype=np.float64).reshape(-1)]
    x = float(values)
    if math.isnan(x):
        raise DfemError("knot value is NaN")
    return [x]
