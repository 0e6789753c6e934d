"""B-spline basis functions and their derivatives, vectorised over parameter values.

Cox-de Boor recursion (NURBS Book eq. 2.5, A2.2) for the basis of degree ``q``:

.. math:: N_{i,0}(u) = \\mathbf 1[t_i \\le u < t_{i+1}], \\qquad
          N_{i,q}(u) = \\frac{u - t_i}{t_{i+q} - t_i} N_{i,q-1}(u)
                     + \\frac{t_{i+q+1} - u}{t_{i+q+1} - t_{i+1}} N_{i+1,q-1}(u),

and derivatives (NURBS Book eq. 2.9, the recursion behind A2.3):

.. math:: N^{(k)}_{i,q} = q \\left( \\frac{N^{(k-1)}_{i,q-1}}{t_{i+q} - t_i}
                        - \\frac{N^{(k-1)}_{i+1,q-1}}{t_{i+q+1} - t_{i+1}} \\right),

with the convention ``0/0 = 0``: a quotient whose denominator is zero multiplies a
basis function with an empty support, which is identically zero.

For ``u`` in span ``s`` only ``N_{s-p..s, p}`` are non-zero. The default path runs the
triangular scheme of A2.2/A2.3 on those alone, where every denominator is positive (it
spans the non-empty span), so no guard is needed. The ``"gaussian"`` knot-gradient path
also carries the neighbouring, zero-valued functions, whose denominators can vanish;
there the guard is exact (``torch.where(d > 0, x / d, 0)``), not an epsilon. Both run on
``(N, width)`` tensors over all points at once, with a loop over the degree only.
Everything is plain torch, so when ``knots`` requires grad autograd differentiates the
recursion for the span fixed at the forward pass: the *exact* knot gradient, the true
derivative of ``N_{i,p}(u)`` with respect to the knots wherever ``u`` is not a knot.
``knot_grad="gaussian"`` adds the paper's smoothed box derivative, see
:mod:`dfem.basis.nurbs.knot_gradient`.
"""

from __future__ import annotations

import torch

from dfem.basis.nurbs.knot_gradient import check_knot_grad, smoothed_boxes
from dfem.basis.nurbs.knots import as_tensor, check_degree, find_spans, validate_knots
from dfem.exceptions import DfemError

__all__ = ["basis_functions", "basis_matrix"]


def _div0(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` where ``den > 0``, exactly 0 where ``den == 0`` (knots are ordered)."""
    pos = den > 0
    return torch.where(pos, num / torch.where(pos, den, torch.ones_like(den)), 0.0)


def _knot_slices(T: torch.Tensor, p: int, offset: int, q: int, width: int):
    """Knots ``t_i, t_{i+1}, t_{i+q}, t_{i+q+1}`` for ``i = s + offset + r``, ``r < width``.

    ``T[:, p + j] = t_{s + j}`` for ``j = -p .. p + 1``.
    """
    c = p + offset
    return (
        T[:, c : c + width],
        T[:, c + 1 : c + 1 + width],
        T[:, c + q : c + q + width],
        T[:, c + q + 1 : c + q + 1 + width],
    )


def _value_step(prev, offset, q, T, p, u):
    """Degree ``q`` functions ``i = s + offset + r`` from degree ``q - 1`` (``r = 0..W-2``)."""
    width = prev.shape[1] - 1
    ti, ti1, tiq, tiq1 = _knot_slices(T, p, offset, q, width)
    left = _div0(u - ti, tiq - ti)
    right = _div0(tiq1 - u, tiq1 - ti1)
    return left * prev[:, :-1] + right * prev[:, 1:]


def _deriv_step(prev, offset, q, T, p):
    """Derivative of one order higher of the degree ``q`` functions (eq. 2.9)."""
    width = prev.shape[1] - 1
    ti, ti1, tiq, tiq1 = _knot_slices(T, p, offset, q, width)
    return q * (_div0(prev[:, :-1], tiq - ti) - _div0(prev[:, 1:], tiq1 - ti1))


def _basis_exact(T, p, u, derivatives):
    """Triangular scheme of A2.2/A2.3 for ``N_{s-q..s, q}``: no zero denominators.

    The degree-``q`` step, for ``i = s - q + r`` (``r = 0..q``), is

    .. math:: \\tau_r = \\frac{N_{s-q+1+r, q-1}}{t_{s+1+r} - t_{s+1-q+r}}, \\qquad
              N_{i, q} = (u - t_i)\\, \\tau_{r-1} + (t_{i+q+1} - u)\\, \\tau_r

    (``tau_{-1} = tau_q = 0``), and the denominators ``t_{s+1+r} - t_{s+1-q+r}``
    (``r = 0..q-1``) contain ``[t_s, t_{s+1}]``, a non-empty span, so they are positive.
    The derivative step (eq. 2.9) reuses them: ``N^{(k)}_{i, q} = q (tau_{r-1} - tau_r)``
    with ``tau`` built from the order ``k - 1`` functions of degree ``q - 1``.
    """
    N = u.shape[0]
    left = u - T  # left[:, p + j] = u - t_{s+j}
    right = T - u  # right[:, p + j] = t_{s+j} - u
    layers = [torch.ones(N, 1, dtype=T.dtype, device=T.device)]
    denoms = [None]
    for q in range(1, p + 1):
        den = T[:, p + 1 : p + 1 + q] - T[:, p + 1 - q : p + 1]  # t_{s+1+r} - t_{s+1-q+r}
        tau = _pad(layers[-1] / den)  # tau_{-1}, tau_0 .. tau_{q-1}, tau_q = 0
        layers.append(
            left[:, p - q : p + 1] * tau[:, :-1] + right[:, p + 1 : p + q + 2] * tau[:, 1:]
        )
        denoms.append(den)
    out = [layers[p]]
    for k in range(1, derivatives + 1):
        if k > p:
            out.append(torch.zeros_like(out[0]))
            continue
        cur = layers[p - k]
        for q in range(p - k + 1, p + 1):
            tau = _pad(cur / denoms[q])
            cur = q * (tau[:, :-1] - tau[:, 1:])
        out.append(cur)
    return torch.stack(out, dim=1)


def _pad(x: torch.Tensor) -> torch.Tensor:
    """A zero column on both sides."""
    return torch.nn.functional.pad(x, (1, 1))


def _basis_gaussian(T, p, u, derivatives, sigma):
    """General recursion over the ``2p + 1`` boxes ``s-p..s+p`` (guarded ``0/0``)."""
    layers = [(smoothed_boxes(T, p, u[:, 0], sigma), -p)]
    for q in range(1, p + 1):
        prev, off = layers[-1]
        layers.append((_value_step(prev, off, q, T, p, u), off))
    out = [layers[p][0]]
    for k in range(1, derivatives + 1):
        if k > p:
            out.append(torch.zeros_like(out[0]))
            continue
        cur, off = layers[p - k]
        for q in range(p - k + 1, p + 1):
            cur = _deriv_step(cur, off, q, T, p)
        out.append(cur)
    return torch.stack(out, dim=1)


def _basis_from_spans(knots, p, u, spans, derivatives, knot_grad, sigma):
    """Values (N, derivatives + 1, p + 1) of ``N_{s-p..s}`` and their u-derivatives."""
    offsets = torch.arange(-p, p + 2, device=spans.device)
    T = knots[spans[:, None] + offsets]  # (N, 2p + 2), T[:, p + j] = t_{s+j}
    if knot_grad == "gaussian" and T.requires_grad:
        # values bit for bit those of the exact path; gradients those of the gaussian one
        with torch.no_grad():
            values = _basis_exact(T, p, u[:, None], derivatives)
        smooth = _basis_gaussian(T, p, u[:, None], derivatives, sigma)
        return values + (smooth - smooth.detach())
    return _basis_exact(T, p, u[:, None], derivatives)


def basis_functions(
    knots,
    degree: int,
    u,
    derivatives: int = 0,
    *,
    knot_grad: str = "exact",
    sigma: float = 1e-2,
    spans: torch.Tensor | None = None,
    check: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``p + 1`` non-zero B-spline basis functions at ``u`` and their derivatives.

    For ``u`` in span ``s`` (:func:`find_spans`) returns ``N_{s-p+r, p}^{(k)}(u)`` for
    ``r = 0..p`` and ``k = 0..derivatives`` (NURBS Book A2.2 / A2.3, vectorised over
    ``u``). Derivatives of order ``k > p`` are zero.

    Parameters
    ----------
    knots : tensor (n + p + 1,)
        Knot vector; may require grad (see ``knot_grad``). Clamped, unclamped and repeated
        interior knots are fine.
    degree : int
        ``p >= 0``.
    u : tensor or array-like, shape (N,) (any shape is accepted, see Returns)
        Parameter values in ``[t_p, t_n]``; converted to the knots' dtype and device.
    derivatives : int
        Highest derivative order ``K`` with respect to ``u``.
    knot_grad : {"exact", "gaussian"}
        Gradient with respect to the knots: ``"exact"`` differentiates the recursion for the
        span fixed at the forward pass; ``"gaussian"`` adds the DSA paper's Gaussian
        smoothed box derivative with bandwidth ``sigma`` (Algorithm 1). Forward values are
        identical.
    sigma : float
        Bandwidth of the Gaussian for ``knot_grad="gaussian"`` (parameter units).
    spans : LongTensor, optional
        Precomputed spans (skips the search).
    check : bool
        Validate the knot vector and the range of ``u``.

    Returns
    -------
    spans : LongTensor, shape ``u.shape`` (``(N,)`` for 1-D ``u``)
        Span index ``s`` of each value; the non-zero functions are ``N_{s-p}..N_s``, i.e.
        control points ``s - p + r``.
    values : tensor, shape ``u.shape + (derivatives + 1, p + 1)``
        ``values[..., k, r] = d^k/du^k N_{s-p+r, p}(u)``.
    """
    knots = as_tensor(knots)
    p = check_degree(degree)
    if isinstance(derivatives, bool) or int(derivatives) != derivatives or derivatives < 0:
        raise DfemError(f"derivatives must be a non-negative integer, got {derivatives!r}")
    derivatives = int(derivatives)
    check_knot_grad(knot_grad, sigma)
    if check:
        validate_knots(knots, p)
    u = as_tensor(u, dtype=knots.dtype, device=knots.device)
    if spans is None:
        spans = find_spans(knots, p, u, check=False)
    elif check:
        from dfem.basis.nurbs.knots import check_range

        check_range(knots.detach(), p, u.detach())
    shape = u.shape
    values = _basis_from_spans(
        knots, p, u.reshape(-1), spans.reshape(-1), derivatives, knot_grad, sigma
    )
    return spans, values.reshape(*shape, derivatives + 1, p + 1)


def basis_matrix(
    knots,
    degree: int,
    u,
    derivatives: int = 0,
    *,
    knot_grad: str = "exact",
    sigma: float = 1e-2,
    check: bool = True,
) -> torch.Tensor:
    """Dense basis matrix ``B[j, k, i] = d^k/du^k N_{i,p}(u_j)``.

    Parameters
    ----------
    knots, degree, u, derivatives, knot_grad, sigma, check
        As in :func:`basis_functions`; ``u`` is 1-D of length ``N``.

    Returns
    -------
    tensor (N, derivatives + 1, n)
        ``n = len(knots) - p - 1`` columns, at most ``p + 1`` non-zeros per row
        (``B[:, 0]`` is the collocation matrix: ``curve = B[:, 0] @ control_points``).
    """
    knots = as_tensor(knots)
    p = check_degree(degree)
    n = knots.shape[0] - p - 1
    u = as_tensor(u, dtype=knots.dtype, device=knots.device)
    if u.dim() != 1:
        raise DfemError(f"basis_matrix needs 1-D parameter values, got shape {tuple(u.shape)}")
    spans, values = basis_functions(
        knots, p, u, derivatives, knot_grad=knot_grad, sigma=sigma, check=check
    )
    cols = spans[:, None] - p + torch.arange(p + 1, device=spans.device)
    cols = cols[:, None, :].expand(-1, values.shape[1], -1)
    out = torch.zeros(u.shape[0], values.shape[1], n, dtype=values.dtype, device=values.device)
    return out.scatter(2, cols, values)
