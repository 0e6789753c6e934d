"""The problem of Table 5 of the DSA paper, shared by the Table 5 driver
(:mod:`dfem.validation.table5`) and the network baselines trained on it
(:mod:`dfem.validation.baselines`):

.. math:: -\\Delta u = f = 2\\pi^2 \\sin(\\pi x)\\sin(\\pi y) \\text{ on } [0,1]^2, \\qquad
          u = 0 \\text{ on the boundary}, \\qquad u = \\sin(\\pi x)\\sin(\\pi y).
"""

from __future__ import annotations

import math

import torch

PI = math.pi


def exact(x: torch.Tensor) -> torch.Tensor:
    """The exact solution ``u = sin(pi x) sin(pi y)`` at points x (..., 2), shape (...,)."""
    return torch.sin(PI * x[..., 0]) * torch.sin(PI * x[..., 1])


def source(x: torch.Tensor) -> torch.Tensor:
    """The forcing ``f = -Δu = 2 pi^2 sin(pi x) sin(pi y)`` at points x (..., 2), shape (...,)."""
    return 2 * PI**2 * exact(x)
