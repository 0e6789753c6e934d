"""NURBS curves and surfaces: points and first derivatives.

Control points are Cartesian, weights separate. With homogeneous coordinates
``P^w_i = (w_i P_i, w_i)`` a NURBS curve (DSA paper eq. 5) is the projection of a B-spline:

.. math:: A(u) = \\sum_i N_{i,p}(u)\\, w_i P_i, \\qquad W(u) = \\sum_i N_{i,p}(u)\\, w_i,
          \\qquad C(u) = A(u) / W(u),

and the derivative follows from the quotient rule (NURBS Book eq. 4.8)

.. math:: C'(u) = \\frac{A'(u) - C(u)\\, W'(u)}{W(u)}.

A surface is the tensor product (DSA appendix C, eqs. 20-23)

.. math:: S(u, v) = \\frac{\\sum_{ij} N_{i,p}(u) N_{j,q}(v)\\, w_{ij} P_{ij}}
                         {\\sum_{ij} N_{i,p}(u) N_{j,q}(v)\\, w_{ij}},
          \\qquad S_u = \\frac{A_u - S W_u}{W}, \\quad S_v = \\frac{A_v - S W_v}{W}.

On a grid of ``len(u) x len(v)`` parameter values the sums are two dense contractions,
``B_u X B_v^T`` per homogeneous coordinate, with the dense basis matrices ``B_u`` (len(u),
n_u) and ``B_v`` (len(v), n_v). ``weights=None`` gives the polynomial B-spline.
Gradients with respect to control points, weights and knots come from autograd (the
knot gradient follows ``knot_grad``, see :mod:`dfem.basis.nurbs.knot_gradient`).
"""

from __future__ import annotations

import torch

from dfem.basis.nurbs.bspline import basis_matrix
from dfem.basis.nurbs.knot_gradient import check_knot_grad
from dfem.basis.nurbs.knots import as_tensor, check_degree, validate_knots
from dfem.exceptions import DfemError

__all__ = ["curve_points", "surface_points", "check_weights"]


def check_weights(
    weights: torch.Tensor,
    shape: tuple[int, ...],
    n_net: int | None = None,
    *,
    name: str = "weights",
):
    """Weights: one per control point, broadcasting over the batch, all positive.

    ``shape`` is ``control_points.shape[:-1]`` (batch + net), ``n_net`` the number of net
    axes (default: all of ``shape``).
    """
    n_net = len(shape) if n_net is None else n_net
    net = tuple(shape[len(shape) - n_net :])
    ok_shape = weights.dim() >= n_net and tuple(weights.shape[weights.dim() - n_net :]) == net
    if ok_shape:
        try:
            ok_shape = torch.broadcast_shapes(weights.shape, shape) == tuple(shape)
        except RuntimeError:
            ok_shape = False
    if not ok_shape:
        raise DfemError(
            f"{name} has shape {tuple(weights.shape)}, but the control net (the control "
            f"points' shape without the coordinate axis) is {tuple(shape)}: give one weight per "
            f"control point, shape {net}" + ("" if net == tuple(shape) else f" or {tuple(shape)}")
        )
    ok = weights > 0  # NaN compares False
    if not bool(ok.all()):
        idx = tuple(int(i) for i in torch.nonzero(~ok)[0])
        raise DfemError(
            f"NURBS {name} must be positive (w > 0); got {float(weights[idx]):g} at index {idx}"
        )


def _control_points(control_points, n_dims: int, what: str) -> torch.Tensor:
    cp = as_tensor(control_points)
    if cp.dim() < n_dims + 1:
        shape = "(n, dim)" if n_dims == 1 else "(n_u, n_v, dim)"
        raise DfemError(
            f"{what} control points must have shape (..., {shape[1:]}, got {tuple(cp.shape)}"
        )
    return cp


def _prepare(knots, degree, n, cp, name):
    knots = as_tensor(knots, dtype=cp.dtype, device=cp.device)
    p = check_degree(degree)
    validate_knots(knots, p, n, name=name)
    return knots, p


def _no_derivative_of_degree0(p: int, direction: str, what: str) -> None:
    if p == 0:
        raise DfemError(
            f"derivatives of a degree-0 (piecewise constant) {what}{direction} are not defined; "
            "use a degree >= 1 or derivatives=False"
        )


def curve_points(
    control_points,
    weights,
    knots,
    degree: int,
    u,
    *,
    derivatives: bool = False,
    knot_grad: str = "exact",
    sigma: float = 1e-2,
):
    """Points (and first derivatives) of a NURBS / B-spline curve.

    Parameters
    ----------
    control_points : tensor (..., n, dim)
        Cartesian control points; leading dimensions are a batch of curves.
    weights : tensor (..., n) or None
        Positive weights (broadcast against the batch); None for a B-spline.
    knots : tensor (n + p + 1,)
        Knot vector shared by the batch.
    degree : int
    u : tensor (N,)
        Parameter values in ``[t_p, t_n]``.
    derivatives : bool
        Also return ``dC/du``.
    knot_grad : {"exact", "gaussian"}, sigma : float
        Knot gradient method and Gaussian bandwidth.

    Returns
    -------
    points : tensor (..., N, dim)
    du : tensor (..., N, dim)
        Only when ``derivatives=True`` (then a tuple ``(points, du)`` is returned).
    """
    cp = _control_points(control_points, 1, "curve")
    n = cp.shape[-2]
    knots, p = _prepare(knots, degree, n, cp, "knot vector")
    check_knot_grad(knot_grad, sigma)
    if derivatives:
        _no_derivative_of_degree0(p, "", "curve")
    u = as_tensor(u, dtype=cp.dtype, device=cp.device)
    if u.dim() != 1:
        raise DfemError(f"curve parameter values must be 1-D, got shape {tuple(u.shape)}")
    B = basis_matrix(
        knots, p, u, int(derivatives), knot_grad=knot_grad, sigma=sigma, check=False
    )  # (N, K + 1, n)
    if weights is None:
        points = B[:, 0] @ cp
        return (points, B[:, 1] @ cp) if derivatives else points
    w = as_tensor(weights, dtype=cp.dtype, device=cp.device)
    check_weights(w, cp.shape[:-1], 1)
    wc = w[..., None]
    A = B[:, 0] @ (cp * wc)  # (..., N, dim)
    W = B[:, 0] @ wc  # (..., N, 1)
    points = A / W
    if not derivatives:
        return points
    dA = B[:, 1] @ (cp * wc)
    dW = B[:, 1] @ wc
    return points, (dA - points * dW) / W


def surface_points(
    control_points,
    weights,
    knots_u,
    knots_v,
    degree_u: int,
    degree_v: int,
    u,
    v,
    *,
    derivatives: bool = False,
    grid: bool = True,
    knot_grad: str = "exact",
    sigma: float = 1e-2,
):
    """Points (and first derivatives) of a NURBS / B-spline surface.

    Parameters
    ----------
    control_points : tensor (..., n_u, n_v, dim)
        Cartesian control net; leading dimensions are a batch of surfaces.
    weights : tensor (..., n_u, n_v) or None
        Positive weights; None for a B-spline surface.
    knots_u, knots_v : tensor (n_u + p + 1,), (n_v + q + 1,)
    degree_u, degree_v : int
        ``p`` and ``q``.
    u, v : tensor (N_u,), (N_v,)
        Parameter values in the two knot ranges.
    derivatives : bool
        Also return ``dS/du`` and ``dS/dv``.
    grid : bool
        True: evaluate on the tensor grid ``u x v``. False: at the pairs ``(u_k, v_k)``
        (``u`` and ``v`` of equal length N).
    knot_grad : {"exact", "gaussian"}, sigma : float

    Returns
    -------
    points : tensor (..., N_u, N_v, dim) (grid) or (..., N, dim) (pairs)
    du, dv : tensors of the same shape
        Only when ``derivatives=True``: then ``(points, du, dv)`` is returned.
    """
    cp = _control_points(control_points, 2, "surface")
    n_u, n_v, dim = cp.shape[-3:]
    knots_u, p = _prepare(knots_u, degree_u, n_u, cp, "knots_u")
    knots_v, q = _prepare(knots_v, degree_v, n_v, cp, "knots_v")
    check_knot_grad(knot_grad, sigma)
    if derivatives:
        _no_derivative_of_degree0(p, " in u", "surface")
        _no_derivative_of_degree0(q, " in v", "surface")
    u = as_tensor(u, dtype=cp.dtype, device=cp.device)
    v = as_tensor(v, dtype=cp.dtype, device=cp.device)
    if u.dim() != 1 or v.dim() != 1:
        raise DfemError(
            f"surface parameter values must be 1-D, got shapes {tuple(u.shape)}, {tuple(v.shape)}"
        )
    if not grid and u.shape != v.shape:
        raise DfemError(
            f"grid=False evaluates at pairs (u_k, v_k): u and v need the same length, got "
            f"{u.shape[0]} and {v.shape[0]}"
        )
    K = int(derivatives)
    Bu = basis_matrix(knots_u, p, u, K, knot_grad=knot_grad, sigma=sigma, check=False)
    Bv = basis_matrix(knots_v, q, v, K, knot_grad=knot_grad, sigma=sigma, check=False)
    # numerator sum N_i N_j w_ij P_ij per coordinate (..., dim, n_u, n_v) and denominator
    # sum N_i N_j w_ij (..., 1, n_u, n_v): the channel axis sits before the net axes
    if weights is None:
        num, den = cp.movedim(-1, -3), None
    else:
        w = as_tensor(weights, dtype=cp.dtype, device=cp.device)
        check_weights(w, cp.shape[:-1], 2)
        num, den = (cp * w[..., None]).movedim(-1, -3), w[..., None, :, :]

    def contract(x, bu, bv):
        if grid:  # B_u X B_v^T -> (..., c, N_u, N_v)
            return bu @ x @ bv.transpose(0, 1)
        return ((bu @ x) * bv).sum(-1)  # pairs -> (..., c, N)

    def cartesian(x):  # channel axis last
        return x.movedim(-3 if grid else -2, -1)

    S = contract(num, Bu[:, 0], Bv[:, 0])
    if den is not None:
        inv_w = 1.0 / contract(den, Bu[:, 0], Bv[:, 0])
        S = S * inv_w
    if not derivatives:
        return cartesian(S)
    Su = contract(num, Bu[:, 1], Bv[:, 0])
    Sv = contract(num, Bu[:, 0], Bv[:, 1])
    if den is not None:  # quotient rule
        Su = (Su - S * contract(den, Bu[:, 1], Bv[:, 0])) * inv_w
        Sv = (Sv - S * contract(den, Bu[:, 0], Bv[:, 1])) * inv_w
    return cartesian(S), cartesian(Su), cartesian(Sv)
