"""NURBS curve and surface layers: control points, weights and knots as parameters.

``NURBSSurface`` (the DSA paper's NURBS layer) holds

- the control net ``P`` (n_u, n_v, dim), a parameter (or a buffer);
- the weights through their logarithm, ``w = exp(log_w)``, so that they stay positive
  under any gradient step;
- the knot vectors as :class:`~dfem.basis.nurbs.knots.OrderedKnots`: fixed, or learnable
  interior knots written as ``a + (b - a) cumsum(softmax(theta))`` so they stay ordered
  inside the fixed domain ``[a, b]``;

and evaluates :func:`~dfem.basis.nurbs.geometry.surface_points` in ``forward``. The knot
gradient is ``knot_grad="exact"`` (autograd in the span) or ``"gaussian"`` (the paper's
Algorithm 1 with bandwidth ``sigma``).
"""

from __future__ import annotations

import torch
from torch import nn

from dfem.basis.nurbs.geometry import check_weights, curve_points, surface_points
from dfem.basis.nurbs.knot_gradient import check_knot_grad
from dfem.basis.nurbs.knots import (
    OrderedKnots,
    as_tensor,
    check_degree,
    clamped_knots,
    greville_points,
    validate_knots,
)
from dfem.exceptions import DfemError

__all__ = ["NURBSCurve", "NURBSSurface"]


def _param_or_buffer(module: nn.Module, name: str, value: torch.Tensor, learn: bool) -> None:
    if learn:
        setattr(module, name, nn.Parameter(value))
    else:
        module.register_buffer(name, value)


def _pair(x, what: str) -> tuple[bool, bool]:
    if isinstance(x, bool):
        return x, x
    if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(b, bool) for b in x):
        return bool(x[0]), bool(x[1])
    raise DfemError(f"{what} must be a bool or a pair of bools (u, v), got {x!r}")


def _parameter_values(x, knots: torch.Tensor, degree: int) -> torch.Tensor:
    """An int N means N equally spaced values over the domain ``[t_p, t_n]``."""
    if isinstance(x, int) and not isinstance(x, bool):
        n = knots.shape[0] - degree - 1
        a, b = knots[degree].detach(), knots[n].detach()
        s = torch.linspace(0.0, 1.0, x, dtype=knots.dtype, device=knots.device)
        return torch.where(s < 1, a + (b - a) * s, b)  # the end value exactly
    return as_tensor(x, dtype=knots.dtype, device=knots.device)


def _log_weights(weights, shape, like: torch.Tensor) -> torch.Tensor:
    if weights is None:
        return torch.zeros(shape, dtype=like.dtype, device=like.device)
    w = as_tensor(weights, dtype=like.dtype, device=like.device).detach().clone()
    check_weights(w, shape)
    if tuple(w.shape) != tuple(shape):
        raise DfemError(f"weights have shape {tuple(w.shape)}, expected {tuple(shape)}")
    return torch.log(w)


class NURBSSurface(nn.Module):
    """A NURBS surface with learnable control points, weights and (optionally) knots.

    Parameters
    ----------
    control_points : tensor (n_u, n_v, dim)
        Initial control net (copied; the dtype and device of the layer).
    weights : tensor (n_u, n_v), optional
        Initial positive weights (default: ones).
    knots_u, knots_v : tensor, optional
        Initial knot vectors (default: clamped uniform on ``[0, 1]``).
    degree_u, degree_v : int
        Degrees ``p`` and ``q`` (default 3).
    learn_control_points, learn_weights : bool
        Whether these are parameters (True) or fixed buffers.
    learn_knots : bool or (bool, bool)
        Learnable interior knots in both / each direction (default False).
    knot_grad : {"exact", "gaussian"}
    sigma : float
        Gaussian bandwidth for ``knot_grad="gaussian"``.

    Calling ``layer(u, v)`` returns the points on the grid ``u x v``, shape
    (len(u), len(v), dim); an int ``u`` means that many equally spaced values over the
    domain. ``layer(u, v, derivatives=True)`` returns ``(S, S_u, S_v)``;
    ``grid=False`` evaluates at pairs ``(u_k, v_k)``.
    """

    def __init__(
        self,
        control_points,
        weights=None,
        knots_u=None,
        knots_v=None,
        degree_u: int = 3,
        degree_v: int = 3,
        *,
        learn_control_points: bool = True,
        learn_weights: bool = True,
        learn_knots=False,
        knot_grad: str = "exact",
        sigma: float = 1e-2,
    ):
        super().__init__()
        cp = as_tensor(control_points).detach().clone()
        if cp.dim() != 3:
            raise DfemError(
                f"NURBSSurface control points must have shape (n_u, n_v, dim), got "
                f"{tuple(cp.shape)}"
            )
        n_u, n_v, _ = cp.shape
        self.degree_u, self.degree_v = check_degree(degree_u), check_degree(degree_v)
        check_knot_grad(knot_grad, sigma)
        self.knot_grad, self.sigma = knot_grad, float(sigma)
        learn_u, learn_v = _pair(learn_knots, "learn_knots")
        kw = {"dtype": cp.dtype, "device": cp.device}
        if knots_u is None:
            knots_u = clamped_knots(n_u, self.degree_u, **kw)
        if knots_v is None:
            knots_v = clamped_knots(n_v, self.degree_v, **kw)
        ku, kv = as_tensor(knots_u, **kw), as_tensor(knots_v, **kw)
        validate_knots(ku, self.degree_u, n_u, name="knots_u")
        validate_knots(kv, self.degree_v, n_v, name="knots_v")
        _param_or_buffer(self, "control_points", cp, learn_control_points)
        _param_or_buffer(self, "log_weights", _log_weights(weights, (n_u, n_v), cp), learn_weights)
        self.knot_vector_u = OrderedKnots(ku, self.degree_u, learnable=learn_u)
        self.knot_vector_v = OrderedKnots(kv, self.degree_v, learnable=learn_v)

    @classmethod
    def planar(
        cls,
        n_u: int,
        n_v: int,
        degree_u: int = 3,
        degree_v: int = 3,
        *,
        x_range=(0.0, 1.0),
        y_range=(0.0, 1.0),
        z: float = 0.0,
        dtype: torch.dtype = torch.float64,
        device=None,
        **kwargs,
    ) -> NURBSSurface:
        """A flat surface ``S(u, v) = (x0 + (x1 - x0) u, y0 + (y1 - y0) v, z)``.

        Control points at the Greville abscissae of clamped uniform knots (linear
        precision), unit weights; ``kwargs`` go to the constructor (``learn_knots``, ...).
        """
        ku = clamped_knots(n_u, degree_u, dtype=dtype, device=device)
        kv = clamped_knots(n_v, degree_v, dtype=dtype, device=device)
        gu, gv = greville_points(ku, degree_u), greville_points(kv, degree_v)
        x = x_range[0] + (x_range[1] - x_range[0]) * gu
        y = y_range[0] + (y_range[1] - y_range[0]) * gv
        X, Y = torch.meshgrid(x, y, indexing="ij")
        cp = torch.stack([X, Y, torch.full_like(X, z)], dim=-1)
        return cls(cp, None, ku, kv, degree_u, degree_v, **kwargs)

    @property
    def weights(self) -> torch.Tensor:
        """The positive weights ``exp(log_weights)``, shape (n_u, n_v)."""
        return torch.exp(self.log_weights)

    @property
    def knots_u(self) -> torch.Tensor:
        return self.knot_vector_u()

    @property
    def knots_v(self) -> torch.Tensor:
        return self.knot_vector_v()

    def forward(self, u, v, *, derivatives: bool = False, grid: bool = True):
        ku, kv = self.knots_u, self.knots_v
        u = _parameter_values(u, ku, self.degree_u)
        v = _parameter_values(v, kv, self.degree_v)
        return surface_points(
            self.control_points,
            self.weights,
            ku,
            kv,
            self.degree_u,
            self.degree_v,
            u,
            v,
            derivatives=derivatives,
            grid=grid,
            knot_grad=self.knot_grad,
            sigma=self.sigma,
        )

    def extra_repr(self) -> str:
        n_u, n_v, dim = self.control_points.shape
        return (
            f"n_u={n_u}, n_v={n_v}, dim={dim}, degree=({self.degree_u}, {self.degree_v}), "
            f"knot_grad={self.knot_grad!r}"
        )


class NURBSCurve(nn.Module):
    """A NURBS curve with learnable control points, weights and (optionally) knots.

    Parameters
    ----------
    control_points : tensor (n, dim)
    weights : tensor (n,), optional
        Default ones.
    knots : tensor (n + p + 1,), optional
        Default clamped uniform on ``[0, 1]``.
    degree : int
    learn_control_points, learn_weights, learn_knots : bool
    knot_grad : {"exact", "gaussian"}
    sigma : float

    ``curve(u)`` returns (len(u), dim); ``curve(u, derivatives=True)`` returns
    ``(C, C')``; an int ``u`` means that many equally spaced values.
    """

    def __init__(
        self,
        control_points,
        weights=None,
        knots=None,
        degree: int = 3,
        *,
        learn_control_points: bool = True,
        learn_weights: bool = True,
        learn_knots: bool = False,
        knot_grad: str = "exact",
        sigma: float = 1e-2,
    ):
        super().__init__()
        cp = as_tensor(control_points).detach().clone()
        if cp.dim() != 2:
            raise DfemError(
                f"NURBSCurve control points must have shape (n, dim), got {tuple(cp.shape)}"
            )
        n = cp.shape[0]
        self.degree = check_degree(degree)
        check_knot_grad(knot_grad, sigma)
        self.knot_grad, self.sigma = knot_grad, float(sigma)
        kw = {"dtype": cp.dtype, "device": cp.device}
        k = clamped_knots(n, self.degree, **kw) if knots is None else as_tensor(knots, **kw)
        validate_knots(k, self.degree, n)
        _param_or_buffer(self, "control_points", cp, learn_control_points)
        _param_or_buffer(self, "log_weights", _log_weights(weights, (n,), cp), learn_weights)
        self.knot_vector = OrderedKnots(k, self.degree, learnable=bool(learn_knots))

    @property
    def weights(self) -> torch.Tensor:
        return torch.exp(self.log_weights)

    @property
    def knots(self) -> torch.Tensor:
        return self.knot_vector()

    def forward(self, u, *, derivatives: bool = False):
        k = self.knots
        u = _parameter_values(u, k, self.degree)
        return curve_points(
            self.control_points,
            self.weights,
            k,
            self.degree,
            u,
            derivatives=derivatives,
            knot_grad=self.knot_grad,
            sigma=self.sigma,
        )

    def extra_repr(self) -> str:
        n, dim = self.control_points.shape
        return f"n={n}, dim={dim}, degree={self.degree}, knot_grad={self.knot_grad!r}"
