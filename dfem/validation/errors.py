"""Errors against exact solutions and convergence studies.

.. math:: \\|u - u_h\\|_{L^2} = \\Big(\\int (u - u_h)^2\\Big)^{1/2}, \\qquad
          |u - u_h|_{H^1} = \\Big(\\int |\\nabla u - \\nabla u_h|^2\\Big)^{1/2},

integrated with a cell rule of degree ``2 p + 4`` (higher than the basis needs),
so the quadrature error stays far below the discretisation error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import torch

from dfem.basis.space import FunctionSpace


def exact_gradient(exact: Callable, points: torch.Tensor) -> torch.Tensor:
    """``grad exact`` at ``points`` (..., dim), by autograd of the torch callable ``exact``:
    (..., dim) for a scalar field, (..., d, dim) for a vector field of shape (..., d)."""
    with torch.enable_grad():
        x = points.detach().requires_grad_(True)
        value = torch.as_tensor(exact(x), dtype=x.dtype, device=x.device)
        scalar = value.shape == x.shape[:-1] or value.ndim == 0
        if not value.requires_grad:  # a constant: it does not depend on x
            shape = x.shape if scalar else (*value.shape, x.shape[-1])
            return torch.zeros(shape, dtype=x.dtype, device=x.device)
        if scalar:
            (grad,) = torch.autograd.grad(value.sum(), x, allow_unused=True)
            return torch.zeros_like(x) if grad is None else grad
        rows = [
            torch.autograd.grad(value[..., i].sum(), x, retain_graph=True, allow_unused=True)[0]
            for i in range(value.shape[-1])
        ]
    rows = [torch.zeros_like(x) if r is None else r for r in rows]
    return torch.stack(rows, dim=-2)


def errors(
    space: FunctionSpace,
    u: torch.Tensor,
    exact: Callable,
    exact_grad: Callable | None = None,
    degree: int | None = None,
) -> dict[str, float]:
    """L2 error and H1-seminorm error of the dof vector ``u`` against ``exact(x)``.

    Parameters
    ----------
    exact : callable
        ``exact(x)`` for points x of shape (..., dim), written with torch functions;
        on a vector space it returns (..., d) and the errors are those of the vector
        field (``|u - u_h|^2`` summed over components, ``|grad u - grad u_h|`` the
        Frobenius norm).
    exact_grad : callable, optional
        ``grad exact``; by default obtained from ``exact`` by autograd.
    degree : int, optional
        Quadrature degree; default ``2 p + 4``.

    Returns
    -------
    dict
        ``{"l2": ..., "h1": ..., "l2_norm": ...}`` (``h1`` is the H1 seminorm of the error,
        ``l2_norm`` the L2 norm of the exact solution).
    """
    degree = 2 * space.element.degree + 4 if degree is None else int(degree)
    g = space.geometry(degree)
    with torch.no_grad():
        uq, grad_uq = space.at_quadrature(u.detach(), g)
        ue = torch.as_tensor(exact(g.points), dtype=uq.dtype).expand_as(uq)
    ge = exact_grad(g.points) if exact_grad is not None else exact_gradient(exact, g.points)
    with torch.no_grad():
        w = g.weights
        # sum over the axes after (cell, point): components and gradient directions
        pointwise = lambda v: v.flatten(2).sum(-1) if v.ndim > 2 else v  # noqa: E731
        l2 = torch.sqrt((pointwise((uq - ue) ** 2) * w).sum())
        h1 = torch.sqrt((pointwise((grad_uq - ge) ** 2) * w).sum())
        norm = torch.sqrt((pointwise(ue**2) * w).sum())
    return {"l2": float(l2), "h1": float(h1), "l2_norm": float(norm)}


def mesh_size(space: FunctionSpace) -> float:
    """The longest edge of the mesh (h) of a space (or of a mesh)."""
    mesh = getattr(space, "mesh", space)
    edges = torch.as_tensor(mesh.edge_table.edges, device=mesh.device)
    lengths = torch.linalg.vector_norm(mesh.nodes[edges[:, 1]] - mesh.nodes[edges[:, 0]], dim=1)
    return float(lengths.max())


def fitted_rate(h: Iterable[float], err: Iterable[float]) -> float:
    """Least-squares slope of ``log(err)`` against ``log(h)``."""
    h, err = np.log(np.asarray(list(h))), np.log(np.asarray(list(err)))
    return float(np.polyfit(h, err, 1)[0])


def convergence_study(
    solve: Callable[[int], tuple[FunctionSpace, torch.Tensor]],
    exact: Callable,
    levels: Iterable[int],
    exact_grad: Callable | None = None,
) -> dict:
    """Errors over a sequence of meshes and the fitted rates.

    Parameters
    ----------
    solve : callable
        ``solve(level) -> (space, u)`` for each refinement level, or ``(space, u, h)`` to
        give the level's mesh size (default :func:`mesh_size`, the longest edge).
    levels : iterable of int
        The levels (e.g. cells per side).

    Returns
    -------
    dict
        ``{"levels": [{"level", "h", "dofs", "l2_error", "h1_error"}, ...],
        "l2_rate": ..., "h1_rate": ...}``; rates fitted over all levels.
    """
    rows = []
    for level in levels:
        space, u, *h = solve(level)
        e = errors(space, u, exact, exact_grad)
        rows.append(
            dict(
                level=level,
                h=h[0] if h else mesh_size(space),
                dofs=space.n_dofs,
                l2_error=e["l2"],
                h1_error=e["h1"],
            )
        )
    hs = [r["h"] for r in rows]
    rates = {
        "l2_rate": fitted_rate(hs, [r["l2_error"] for r in rows]) if len(rows) > 1 else math.nan,
        "h1_rate": fitted_rate(hs, [r["h1_error"] for r in rows]) if len(rows) > 1 else math.nan,
    }
    return {"levels": rows, **rates}
