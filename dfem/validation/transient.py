"""Convergence studies of :class:`dfem.Heat` on manufactured solutions.

Temporal: ``u = exp(t) (x^2 + y^2 + x y)`` on the unit square lies in Q2 at every t,
so on Q2 the error is the time discretisation's alone. Its data exercise every kind of
time-dependent condition: Dirichlet on ``left`` and ``bottom``, the flux
``du/dn = e^t (2 + x)`` on ``top`` and the Robin condition ``du/dn + u = g_R(t)`` on
``right``, with the source ``f = u - 4 e^t``.

Spatial: ``u = (1 + t) sin(pi x) sin(pi y)`` is linear in t, which Crank-Nicolson
integrates without time error once the start-up transient (the initial interpolant
against the discrete solution) has decayed, so the L2 error shows the rate p + 1.

Decay: ``u = exp(-2 pi^2 t) sin(pi x) sin(pi y)`` with ``u = 0`` on the boundary.
"""

from __future__ import annotations

import math

import torch

from dfem.basis.space import FunctionSpace
from dfem.mesh.structured import rectangle
from dfem.problems.heat import Heat
from dfem.validation.error_norms import errors


def _temporal_exact(x, t):
    X, Y = x[..., 0], x[..., 1]
    return torch.exp(torch.as_tensor(t, dtype=x.dtype)) * (X ** 2 + Y ** 2 + X * Y)


def temporal_problem(space) -> Heat:
    """The temporal manufactured problem on ``space`` (unit square)."""
    return Heat(
        space, f=lambda x, t: _temporal_exact(x, t) - 4 * torch.exp(t),
        dirichlet={"left": _temporal_exact, "bottom": _temporal_exact},
        neumann={"top": lambda x, t: torch.exp(t) * (2 + x[..., 0])},
        robin={"right": (1.0, lambda x, t: torch.exp(t) * (2 + x[..., 1])
                         + _temporal_exact(x, t))})


def rates(values) -> list[float]:
    """``log2`` of the ratios of consecutive errors (halved steps or cells)."""
    return [math.log2(a / b) for a, b in zip(values, values[1:], strict=False)]


def temporal_study(scheme: str, steps=(10, 20, 40, 80), t_end: float = 1.0, n: int = 3) -> dict:
    """L2 errors at ``t_end`` for ``steps`` equal steps each (Q2 on n x n quads)."""
    space = FunctionSpace(rectangle(n, n, "quad"), "Q2")
    heat = temporal_problem(space)
    errs = []
    for count in steps:
        result = heat.run(lambda x: _temporal_exact(x, 0.0), t_end=t_end, dt=t_end / count,
                          scheme=scheme)
        errs.append(errors(space, result.u, lambda x: _temporal_exact(x, t_end))["l2"])
    return {"scheme": scheme, "dt": [t_end / c for c in steps], "l2": errs,
            "rates": rates(errs)}


def _spatial_exact(x, t):
    return (1 + torch.as_tensor(t, dtype=x.dtype)) * torch.sin(math.pi * x[..., 0]) * \
        torch.sin(math.pi * x[..., 1])


def spatial_study(cell: str, element: str, levels=(4, 8, 16), dt: float = 0.02,
                  t_end: float = 0.2) -> dict:
    """L2 and H1 errors at ``t_end`` on n x n meshes (Crank-Nicolson, fixed ``dt``)."""
    l2, h1 = [], []
    for n in levels:
        space = FunctionSpace(rectangle(n, n, cell), element)
        heat = Heat(space, dirichlet={"boundary": 0.0},
                         f=lambda x, t: _spatial_exact(x, t) / (1 + t)
                         * (1 + 2 * math.pi ** 2 * (1 + t)))
        result = heat.run(lambda x: _spatial_exact(x, 0.0), t_end=t_end, dt=dt,
                          scheme="crank-nicolson")
        err = errors(space, result.u, lambda x: _spatial_exact(x, t_end))
        l2.append(err["l2"])
        h1.append(err["h1"])
    return {"cell": cell, "element": element, "n": list(levels), "dt": dt, "l2": l2, "h1": h1,
            "l2_rates": rates(l2), "h1_rates": rates(h1)}


def decay(n: int = 16, element: str = "Q2", dt: float = 1e-3, t_end: float = 0.1,
          scheme: str = "crank-nicolson") -> dict:
    """The separable decay: the L2 error at ``t_end`` and the Dirichlet energy at every
    saved level (checked to decrease monotonically)."""
    space = FunctionSpace(rectangle(n, n, "quad"), element)
    heat = Heat(space, dirichlet={"boundary": 0.0})

    def mode(x):
        return torch.sin(math.pi * x[..., 0]) * torch.sin(math.pi * x[..., 1])

    result = heat.run(mode, t_end=t_end, dt=dt, scheme=scheme, save_every=10)
    decayed = math.exp(-2 * math.pi ** 2 * t_end)
    energy = heat.energy(result.snapshots)
    return {"n": n, "element": element, "dt": dt, "scheme": scheme, "dofs": space.n_dofs,
            "l2": errors(space, result.u, lambda x: decayed * mode(x))["l2"],
            "energy": energy.tolist(), "times": result.saved_times,
            "energy_monotone": bool((energy[1:] < energy[:-1]).all()),
            "seconds": result.info.forward_s}
