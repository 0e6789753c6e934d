"""Inverse evolution layers (Liu et al., *Inverse Evolution Layers*, seed 004).

An evolution ``u_t = F(u)`` stepped by forward Euler is ``u <- u + dt F(u)`` (eq. 3).
An inverse evolution layer takes the step backwards (eq. 4),

.. math:: L(u) = u - \\Delta t \\, F(u),

so it *amplifies* what the forward evolution removes: the heat IEL (eq. 7, ``F`` the
5-point Laplacian) multiplies a Fourier mode with Laplacian eigenvalue ``lambda <= 0``
by ``1 - dt lambda = 1 + dt |lambda|``, up to ``1 + 8 dt`` for the checkerboard. Put
after a network's output (the logits) and before the loss, the layers punish rough
outputs; they have no parameters and are the identity in eval mode (paper, sec. 2.2).

Operators ``F`` act on a batch ``u`` of shape (N, C, H, W), per channel, grid
spacing 1, with ``u`` padded by one pixel outside the image by the ``boundary`` rule:

- ``"zero"``: values outside are 0 (``F.pad`` constant; the authors' choice);
- ``"replicate"``: the edge value repeated (zero-flux / Neumann); constants are
  stationary;
- ``"reflect"``: mirrored without repeating the edge (torch's ``"reflect"``,
  ``u[-1] = u[1]``; needs H, W >= 2); constants are stationary.

Scaling decision. :func:`laplacian` returns ``scale * Delta_h u`` with the unscaled
stencil ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` by default (``scale=1``), which is the
paper's eq. 7 as written. The authors' code instead convolves the logits with that
kernel divided by 4, with zero padding, and ``dt = 0.1``: their step is
``u - 0.1 * Delta_h u / 4``. To reproduce it exactly use ``HeatIEL(dt=0.1, steps=20,
boundary="zero", scale=0.25)`` or, equal up to rounding, ``HeatIEL(dt=0.025,
steps=20)`` (only the product ``dt * scale`` matters). Table 1's ``dt = 0.1`` with ``scale=1`` is a
4 times stronger layer (checkerboard gain about 1.8 per layer instead of 1.2).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dfem.exceptions import DfemError

BOUNDARIES = ("zero", "replicate", "reflect")
_TORCH_MODE = {"zero": "constant", "replicate": "replicate", "reflect": "reflect"}


def _check_u(u, what: str = "u") -> None:
    if not isinstance(u, torch.Tensor) or u.dim() != 4:
        shape = tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__
        raise DfemError(
            f"{what} must be a 4-D tensor of shape (N, C, H, W), got {shape}; "
            f"add the missing batch/channel axes, e.g. u[None, None] for one H x W map."
        )
    if not u.is_floating_point():
        raise DfemError(
            f"{what} must be a floating-point tensor, got dtype {u.dtype}; "
            f"convert it with u.float() (or u.double())."
        )


def _check_boundary(boundary) -> None:
    if boundary not in BOUNDARIES:
        raise DfemError(f"unknown boundary {boundary!r}; use one of {', '.join(BOUNDARIES)}.")


def _check_positive(value, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise DfemError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def _pad(u: torch.Tensor, boundary: str) -> torch.Tensor:
    """``u`` (checked) padded by one pixel on each side by the ``boundary`` rule."""
    _check_u(u)
    _check_boundary(boundary)
    if boundary == "reflect" and min(u.shape[-2:]) < 2:
        raise DfemError(
            f"boundary 'reflect' needs H and W >= 2 (it mirrors u[1] to u[-1]), got "
            f"H x W = {u.shape[-2]} x {u.shape[-1]}; use boundary='replicate' for thin maps."
        )
    return F.pad(u, (1, 1, 1, 1), mode=_TORCH_MODE[boundary])


def _neighbour_differences(u: torch.Tensor, boundary: str):
    """The four directed differences u[neighbour] - u[i, j] (up, down, left, right)."""
    p = _pad(u, boundary)
    return (
        p[..., :-2, 1:-1] - u,
        p[..., 2:, 1:-1] - u,
        p[..., 1:-1, :-2] - u,
        p[..., 1:-1, 2:] - u,
    )


def laplacian(u: torch.Tensor, boundary: str = "zero", scale: float = 1.0) -> torch.Tensor:
    """The 5-point Laplacian, per channel, grid spacing 1 (the paper's eq. 7).

    .. math:: F(u)_{ij} = s\\,(u_{i+1,j} + u_{i-1,j} + u_{i,j+1} + u_{i,j-1} - 4u_{ij})

    Parameters
    ----------
    u : torch.Tensor
        Float tensor (N, C, H, W), any device.
    boundary : {"zero", "replicate", "reflect"}
        How values outside the image are filled (module docstring).
    scale : float
        The factor ``s``; 1 is eq. 7, 0.25 is the authors' code (kernel / 4).

    Returns
    -------
    torch.Tensor
        ``F(u)``, same shape, dtype and device as ``u``.
    """
    scale = _check_positive(scale, "scale")
    up, down, left, right = _neighbour_differences(u, boundary)
    out = (up + down) + (left + right)
    return out if scale == 1.0 else scale * out


def perona_malik(u: torch.Tensor, kappa: float = 1.0, boundary: str = "zero") -> torch.Tensor:
    """Perona–Malik anisotropic diffusion ``div(g(|grad u|) grad u)``, 4-neighbour form.

    With the directed differences ``d_n = u_n - u_ij`` to the four neighbours ``n``
    (Perona & Malik 1990: the conduction ``g`` evaluated on each difference):

    .. math:: F(u)_{ij} = \\sum_{n \\in \\{N,S,E,W\\}} g(|d_n|)\\, d_n, \\qquad
              g(s) = \\frac{1}{1 + (s/\\kappa)^2}.

    Small jumps (``|d| << kappa``) diffuse as the Laplacian; edges (``|d| >> kappa``)
    are kept. ``g(|d|) d = d / (1 + d^2/kappa^2)`` is smooth in ``d``.

    Parameters
    ----------
    u : torch.Tensor
        Float tensor (N, C, H, W), any device.
    kappa : float
        Edge threshold, > 0, in the units of ``u``.
    boundary : {"zero", "replicate", "reflect"}
        As in :func:`laplacian`.
    """
    kappa = _check_positive(kappa, "kappa")
    inv_k2 = 1.0 / (kappa * kappa)
    diffs = _neighbour_differences(u, boundary)
    flux = [d / (1.0 + d * d * inv_k2) for d in diffs]
    return (flux[0] + flux[1]) + (flux[2] + flux[3])


def tv_flow(u: torch.Tensor, epsilon: float = 0.1, boundary: str = "zero") -> torch.Tensor:
    """Total-variation flow ``div(grad u / sqrt(|grad u|^2 + epsilon^2))``.

    Isotropic scheme: forward differences for the gradient, backward differences for
    the divergence, on ``u`` padded by one pixel (``p``, corners filled as ``F.pad``
    does). With ``D_x p_ij = p_{i,j+1} - p_ij``, ``D_y p_ij = p_{i+1,j} - p_ij`` and
    ``q = D p / sqrt(|D p|^2 + epsilon^2)`` on the padded grid,

    .. math:: F(u)_{ij} = q^x_{ij} - q^x_{i,j-1} + q^y_{ij} - q^y_{i-1,j}.

    With ``boundary="replicate"`` the flux through the image border is zero.

    Parameters
    ----------
    u : torch.Tensor
        Float tensor (N, C, H, W), any device.
    epsilon : float
        Regularisation of ``|grad u|``, > 0; the flow is the Laplacian / epsilon where
        ``|grad u| << epsilon``.
    boundary : {"zero", "replicate", "reflect"}
        As in :func:`laplacian`.
    """
    eps2 = _check_positive(epsilon, "epsilon") ** 2
    p = _pad(u, boundary)
    base = p[..., :-1, :-1]  # padded rows/cols 0..H, 0..W
    gx = p[..., :-1, 1:] - base
    gy = p[..., 1:, :-1] - base
    inv_norm = torch.rsqrt(gx * gx + gy * gy + eps2)
    qx, qy = gx * inv_norm, gy * inv_norm
    return (qx[..., 1:, 1:] - qx[..., 1:, :-1]) + (qy[..., 1:, 1:] - qy[..., :-1, 1:])


def _describe(operator) -> str:
    if isinstance(operator, functools.partial):
        args = ", ".join(f"{k}={v!r}" for k, v in operator.keywords.items())
        return f"{_describe(operator.func)}({args})"
    return getattr(operator, "__name__", None) or type(operator).__name__


class InverseEvolution(nn.Module):
    """``steps`` inverse evolution layers ``u <- u - dt * operator(u)`` (eq. 4).

    In training mode the update is applied ``steps`` times (differentiably); in eval
    mode the input is returned unchanged (the same tensor): the layers regularise
    training only (paper, sec. 2.2 and Figure 1).

    Parameters
    ----------
    operator : callable
        The discrete evolution ``F``, mapping a (N, C, H, W) tensor to one of the same
        shape, e.g. :func:`laplacian`, :func:`perona_malik`, :func:`tv_flow` (use
        ``functools.partial`` to fix their options).
    dt : float
        Time step, > 0.
    steps : int
        Number of layers, >= 1.
    name : str, optional
        A label shown in the repr.
    """

    def __init__(self, operator: Callable, dt: float, steps: int, name: str | None = None):
        super().__init__()
        if not callable(operator):
            raise DfemError(
                f"operator must be callable (e.g. dfem.iel.laplacian), got "
                f"{type(operator).__name__}."
            )
        self.operator = operator
        self.dt = _check_positive(dt, "dt")
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
            raise DfemError(
                f"steps must be a positive integer (the number of layers), got {steps!r}."
            )
        self.steps = int(steps)
        self.name = name

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        _check_u(u, "the input of an inverse evolution layer")
        if not self.training:
            return u
        for _ in range(self.steps):
            f = self.operator(u)
            if not isinstance(f, torch.Tensor) or f.shape != u.shape:
                shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
                raise DfemError(
                    f"the operator {_describe(self.operator)} returned {shape} for an input of "
                    f"shape {tuple(u.shape)}; it must return a tensor of the same shape."
                )
            u = u - self.dt * f
        return u

    def extra_repr(self) -> str:
        name = f"name={self.name!r}, " if self.name is not None else ""
        return f"{name}dt={self.dt}, steps={self.steps}, operator={_describe(self.operator)}"


class HeatIEL(InverseEvolution):
    """Heat-diffusion IELs: :class:`InverseEvolution` with :func:`laplacian` (eqs. 6-7).

    Defaults are Table 1's U-Net/WBC setting with eq. 7 as written; the authors' code
    is ``scale=0.25`` (see the module docstring).
    """

    def __init__(
        self, dt: float = 0.1, steps: int = 20, boundary: str = "zero", scale: float = 1.0
    ):
        _operator_layer(self, laplacian, "heat", dt, steps, boundary, scale=scale)


class PeronaMalikIEL(InverseEvolution):
    """Inverse Perona–Malik diffusion: :class:`InverseEvolution` with :func:`perona_malik`."""

    def __init__(
        self, dt: float = 0.1, steps: int = 20, kappa: float = 1.0, boundary: str = "zero"
    ):
        _operator_layer(self, perona_malik, "perona-malik", dt, steps, boundary, kappa=kappa)


class TVFlowIEL(InverseEvolution):
    """Inverse total-variation flow: :class:`InverseEvolution` with :func:`tv_flow`."""

    def __init__(
        self, dt: float = 0.1, steps: int = 20, epsilon: float = 0.1, boundary: str = "zero"
    ):
        _operator_layer(self, tv_flow, "tv-flow", dt, steps, boundary, epsilon=epsilon)


def _operator_layer(layer, function, name, dt, steps, boundary, **parameters) -> None:
    """Initialise ``layer`` with ``function`` bound to its checked boundary and parameters."""
    _check_boundary(boundary)
    checked = {key: float(_check_positive(value, key)) for key, value in parameters.items()}
    operator = functools.partial(function, boundary=boundary, **checked)
    InverseEvolution.__init__(layer, operator, dt, steps, name=name)


__all__ = [
    "BOUNDARIES",
    "HeatIEL",
    "InverseEvolution",
    "PeronaMalikIEL",
    "TVFlowIEL",
    "laplacian",
    "perona_malik",
    "tv_flow",
]
