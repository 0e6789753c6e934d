"""Refinement that leaves the geometry unchanged: knot insertion and degree elevation.

Both act on homogeneous control points ``P^w = (w P, w)`` along one axis of the control
net (``axis=0``: the ``u`` direction of a surface or the only one of a curve; ``axis=1``:
``v``), so they work for B-spline and NURBS curves and surfaces alike; the other axes
ride along as columns.

**Knot insertion** (NURBS Book A5.1). Inserting ``u`` in span ``k`` (``t_k <= u <
t_{k+1}``, existing multiplicity ``s``) ``r`` times keeps ``P^w_0..P^w_{k-p}`` and
``P^w_{k-s}..P^w_{n-1}`` (shifted by ``r``) and replaces the ones in between by convex
combinations, for ``j = 1..r``:

.. math:: R_i \\leftarrow \\alpha_{ij} R_{i+1} + (1 - \\alpha_{ij}) R_i, \\qquad
          \\alpha_{ij} = \\frac{u - t_{L+i}}{t_{i+k+1} - t_{L+i}}, \\quad L = k - p + j,
          \\quad i = 0..p-j-s.

**Degree elevation** from ``p`` to ``p + t``: every distinct knot inside the domain gets
``t`` more copies and the ends become ``p + t + 1``-fold (clamped), so the new space
contains the old spline (continuity ``C^{p-m}`` at a knot of multiplicity ``m`` equals
``C^{(p+t)-(m+t)}``). The new homogeneous control points are the unique solution of the
over-determined collocation problem ``B_new(x) Q = B_old(x) P^w`` at ``p + t + 1`` Gauss
points per non-empty span, solved by least squares (QR): the residual is zero in exact
arithmetic, and the geometry is reproduced to round-off (about ``1e-14`` relative).
An unclamped knot vector comes back clamped on the same domain ``[t_p, t_n]``.
"""

from __future__ import annotations

import numpy as np
import torch

from dfem.basis.nurbs.bspline import basis_matrix
from dfem.basis.nurbs.geometry import check_weights
from dfem.basis.nurbs.knots import as_tensor, check_degree, knot_values, validate_knots
from dfem.exceptions import DfemError

__all__ = ["elevate_degree", "insert_knot"]


def _homogeneous(control_points, weights, knots, degree, axis):
    """(P^w moved to put ``axis`` first and flattened: (n, C), rest shape, knots, p, rational)."""
    cp = as_tensor(control_points)
    net = cp.dim() - 1
    if net < 1:
        raise DfemError(f"control points must have shape (..., dim), got {tuple(cp.shape)}")
    if not -net <= axis < net:
        raise DfemError(f"axis {axis} is out of range for a control net with {net} axes")
    axis = axis % net
    knots = as_tensor(knots, dtype=cp.dtype, device=cp.device)
    p = check_degree(degree)
    validate_knots(knots, p, cp.shape[axis])
    if weights is None:
        X = cp
        rational = False
    else:
        w = as_tensor(weights, dtype=cp.dtype, device=cp.device)
        check_weights(w, cp.shape[:-1])
        w = w.expand(cp.shape[:-1])
        X = torch.cat([cp * w[..., None], w[..., None]], dim=-1)
        rational = True
    X = X.movedim(axis, 0)
    rest = X.shape[1:]
    return X.reshape(X.shape[0], -1), rest, knots, p, rational, axis


def _cartesian(Q, rest, axis, rational):
    X = Q.reshape(Q.shape[0], *rest).movedim(0, axis)
    if not rational:
        return X, None
    w = X[..., -1]
    return X[..., :-1] / w[..., None], w


def _insert_one(Pw, U, p, u, r):
    """A5.1 on rows of ``Pw`` (n, C): insert ``u`` ``r`` times into ``U``."""
    n = Pw.shape[0]
    t = U.detach().cpu().numpy()
    a, b = t[p], t[n]
    if not a < u < b:
        raise DfemError(
            f"a knot to insert must lie strictly inside the domain ({a:g}, {b:g}), got {u:g}"
        )
    k = int(np.searchsorted(t, u, side="right")) - 1
    s = int(np.sum(t == u))
    if s + r > p:
        raise DfemError(
            f"knot {u:g} already has multiplicity {s}; inserting it {r} more time(s) would "
            f"exceed the degree {p} (at most {p - s} more)"
        )
    Q = [None] * (n + r)
    for i in range(k - p + 1):
        Q[i] = Pw[i]
    for i in range(k - s, n):
        Q[i + r] = Pw[i]
    R = [Pw[k - p + i] for i in range(p - s + 1)]
    L = k - p
    for j in range(1, r + 1):
        L = k - p + j
        for i in range(p - j - s + 1):
            alpha = (u - U[L + i]) / (U[i + k + 1] - U[L + i])
            R[i] = alpha * R[i + 1] + (1.0 - alpha) * R[i]
        Q[L] = R[0]
        Q[k + r - j - s] = R[p - j - s]
    for i in range(L + 1, k - s):
        Q[i] = R[i - L]
    new_knots = torch.cat([U[: k + 1], U.new_full((r,), u), U[k + 1 :]])
    return torch.stack(Q), new_knots


def insert_knot(
    control_points, weights, knots, degree: int, value, times: int = 1, *, axis: int = 0
):
    """Insert knot value(s) without changing the curve or surface (NURBS Book A5.1).

    Parameters
    ----------
    control_points : tensor (..., dim)
        Control net: (n, dim) for a curve, (n_u, n_v, dim) for a surface.
    weights : tensor (control_points.shape[:-1]) or None
        Positive weights, or None for a B-spline.
    knots : tensor
        Knot vector of the direction ``axis``.
    degree : int
        Degree in that direction.
    value : float or sequence of floats
        Knot value(s) strictly inside the domain ``(t_p, t_n)``; each is inserted
        ``times`` times, one after the other.
    times : int
        Multiplicity to add; the resulting multiplicity must stay <= ``degree``.
    axis : int
        Axis of the control net the knot vector runs along (surface: 0 = u, 1 = v).

    Returns
    -------
    control_points, weights, knots
        The refined net (one more row along ``axis`` per inserted knot), its weights
        (None for a B-spline) and knot vector. Differentiable in the inputs.
    """
    if isinstance(times, bool) or int(times) != times or times < 1:
        raise DfemError(f"times must be a positive integer, got {times!r}")
    Pw, rest, U, p, rational, axis = _homogeneous(control_points, weights, knots, degree, axis)
    for u in knot_values(value):
        Pw, U = _insert_one(Pw, U, p, u, int(times))
    cp, w = _cartesian(Pw, rest, axis, rational)
    return cp, w, U


def _elevated_knots(t: np.ndarray, p: int, times: int) -> np.ndarray:
    n = len(t) - p - 1
    a, b = t[p], t[n]
    inner = t[(t > a) & (t < b)]
    values, counts = np.unique(inner, return_counts=True)
    q = p + times
    return np.concatenate([np.full(q + 1, a), np.repeat(values, counts + times), np.full(q + 1, b)])


def elevate_degree(control_points, weights, knots, degree: int, times: int = 1, *, axis: int = 0):
    """Raise the degree by ``times`` without changing the curve or surface.

    Parameters
    ----------
    control_points, weights, knots, degree, axis
        As in :func:`insert_knot`.
    times : int
        Degree increase ``t >= 1``.

    Returns
    -------
    control_points, weights, knots
        The elevated net (degree ``degree + times`` along ``axis``), weights (None for a
        B-spline) and the clamped knot vector with each interior knot ``t`` times more
        (a new tensor: gradients flow to the control points and weights, and to the old
        knots through the old basis, not through the new knot values).
    """
    if isinstance(times, bool) or int(times) != times or times < 1:
        raise DfemError(f"times must be a positive integer, got {times!r}")
    times = int(times)
    Pw, rest, U, p, rational, axis = _homogeneous(control_points, weights, knots, degree, axis)
    t = U.detach().cpu().numpy().astype(np.float64)
    q = p + times
    new_t = _elevated_knots(t, p, times)
    # p + t + 1 Gauss-Legendre points in every non-empty span (interior: no knot ambiguity)
    g, _ = np.polynomial.legendre.leggauss(q + 1)
    g = 0.5 * (g + 1.0)
    breaks = np.unique(new_t)
    x = (breaks[:-1, None] + np.diff(breaks)[:, None] * g[None, :]).reshape(-1)
    x = torch.as_tensor(x, dtype=Pw.dtype, device=Pw.device)
    new_U = torch.as_tensor(new_t, dtype=Pw.dtype, device=Pw.device)
    B_old = basis_matrix(U, p, x, check=False)[:, 0]
    B_new = basis_matrix(new_U, q, x, check=False)[:, 0]
    Q = torch.linalg.lstsq(B_new, B_old @ Pw).solution
    cp, w = _cartesian(Q, rest, axis, rational)
    return cp, w, new_U
