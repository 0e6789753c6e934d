"""Node-coordinate optimisation: move mesh nodes to lower an objective of the solution.

``optimize_nodes`` minimises ``J(X)`` over the positions ``X`` of the movable nodes
(by default every node off the boundary) by steepest descent in the H^1 metric of
the mesh. The raw gradient ``g = dJ/dX`` (one forward and one adjoint solve through
:meth:`dfem.Poisson.solve`) is a nodal load; the step direction is its Riesz
representative ``d``,

.. math:: (\\nabla d, \\nabla v) + \\beta (d, v) = -\\langle g, v \\rangle \\quad
          \\forall v, \\qquad d = 0 \\ \\text{at fixed nodes},

a smooth displacement field (the Sobolev gradient of shape optimisation): the raw
gradient scales with the cell size and is rough, so plain descent would tangle the mesh.
A backtracking line search accepts a step only if the objective falls (Armijo) and
no cell's smallest corner Jacobian determinant drops below ``min_jacobian_ratio``
times its value on the initial mesh: this is the mesh-quality guard that keeps every
cell from inverting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse.linalg as spla
import torch

from dfem.assembly.forms import assemble
from dfem.basis.lagrange import linear_element
from dfem.basis.space import FunctionSpace
from dfem.design.guard import backtrack
from dfem.exceptions import DfemError
from dfem.mesh.mesh import Mesh


@dataclass
class ShapeResult:
    """The outcome of :func:`optimize_nodes`.

    Attributes
    ----------
    nodes : tensor
        The optimised node coordinates (all nodes).
    history : list of dict
        Per accepted step: ``iteration``, ``objective``, ``step`` (largest node
        displacement), ``min_jacobian_ratio`` (worst cell against the initial mesh).
    rejected : int
        Trial steps the line search refused (objective up or the guard tripped).
    guard_trips : int
        Of those, how many the mesh-quality guard refused.
    seconds : float
    message : str
    """

    nodes: torch.Tensor
    history: list = field(default_factory=list)
    rejected: int = 0
    guard_trips: int = 0
    seconds: float = 0.0
    message: str = ""


def corner_jacobians(mesh: Mesh, nodes: torch.Tensor) -> torch.Tensor:
    """Jacobian determinants at the corners of every cell, (n_cells, n_corners), for the
    node coordinates ``nodes``: see :meth:`dfem.mesh.Mesh.corner_jacobians`."""
    return mesh.corner_jacobians(nodes)


def boundary_nodes(mesh: Mesh) -> torch.Tensor:
    """Sorted indices of the nodes on boundary edges, as a tensor on the mesh's device."""
    return torch.as_tensor(mesh.boundary_nodes, device=mesh.device)


def optimize_nodes(
    objective: Callable[[torch.Tensor], torch.Tensor],
    mesh: Mesh,
    movable=None,
    max_iter: int = 30,
    first_step: float = 0.25,
    min_jacobian_ratio: float = 0.1,
    mass: float = 0.0,
    rtol: float = 1e-6,
    progress=None,
) -> ShapeResult:
    """Minimise ``objective(nodes)`` over the movable node coordinates.

    Parameters
    ----------
    objective : callable
        ``objective(nodes)`` for node coordinates of shape (n_nodes, 2): a scalar
        tensor differentiable in the nodes (e.g. a functional of
        ``Poisson(space.with_nodes(nodes), ...).solve()``).
    mesh : Mesh
        The initial mesh (its nodes are the starting point; it is not modified).
    movable : bool tensor (n_nodes,), optional
        Nodes allowed to move; default: every node not on a boundary edge.
    max_iter : int
        Accepted steps at most.
    first_step : float
        The first trial step moves the nodes by at most this fraction of the shortest
        edge; later trials start from twice the last accepted step.
    min_jacobian_ratio : float in (0, 1)
        The guard: every cell keeps its smallest corner Jacobian above this fraction
        of its initial smallest corner Jacobian.
    mass : float
        ``beta`` of the module docstring (0: the pure H^1 seminorm).
    rtol : float
        Stop when a step lowers the objective by less than ``rtol * |J|``.
    progress : callable, optional
        Called with each history row.
    """
    if not 0 < min_jacobian_ratio < 1:
        raise DfemError(f"min_jacobian_ratio must lie in (0, 1), got {min_jacobian_ratio!r}.")
    if not (isinstance(max_iter, int) and max_iter > 0):
        raise DfemError(f"max_iter must be a positive integer, got {max_iter!r}.")
    x = mesh.nodes.detach().clone()
    if movable is None:
        movable = torch.ones(mesh.n_nodes, dtype=torch.bool, device=x.device)
        movable[boundary_nodes(mesh)] = False
    movable = torch.as_tensor(movable, dtype=torch.bool, device=x.device)
    if movable.shape != (mesh.n_nodes,) or not bool(movable.any()):
        raise DfemError(f"movable must be a bool mask with one entry per node "
                        f"({mesh.n_nodes}) and at least one True.")
    reference = corner_jacobians(mesh, x).min(dim=1).values
    edges = torch.as_tensor(mesh.edge_table.edges, device=x.device)
    shortest = float(torch.linalg.vector_norm(x[edges[:, 1]] - x[edges[:, 0]], dim=1).min())

    def value_and_gradient(nodes):
        leaf = nodes.clone().requires_grad_(True)
        value = objective(leaf)
        (grad,) = torch.autograd.grad(value, leaf)
        return float(value.detach()), grad.detach()

    def worst_ratio(nodes) -> float:
        return float((corner_jacobians(mesh, nodes).min(dim=1).values / reference).min())

    t0 = time.perf_counter()
    value, grad = value_and_gradient(x)
    history = [dict(iteration=0, objective=value, step=0.0, min_jacobian_ratio=1.0)]
    if progress is not None:
        progress(history[-1])
    result = ShapeResult(nodes=x, history=history, message="iteration budget reached")
    scale = None
    for iteration in range(1, max_iter + 1):
        direction = _sobolev_direction(mesh, x, grad, movable, mass)
        slope = float((grad * direction).sum())
        if slope >= 0:
            result.message = "no descent direction (the gradient vanishes on the movable nodes)"
            break
        longest = float(torch.linalg.vector_norm(direction, dim=1).max())
        scale = first_step * shortest / longest if scale is None else 2 * scale
        seen = {}

        def valid(trial, seen=seen):
            seen["ratio"] = worst_ratio(trial)
            return seen["ratio"] >= min_jacobian_ratio

        def armijo(trial, seen=seen, x=x, value=value, grad=grad):
            # J(x + a d) <= J(x) + c a g.d, with a d = trial - x
            seen["value"], seen["grad"] = value_and_gradient(trial)
            return seen["value"] <= value + 1e-4 * float((grad * (trial - x)).sum())

        outcome = backtrack(x, direction, [("guard", valid), ("armijo", armijo)], scale=scale)
        result.guard_trips += outcome.refused["guard"]
        result.rejected += sum(outcome.refused.values())
        if not outcome.accepted:
            result.message = "the line search found no admissible step"
            break
        trial, scale, ratio = outcome.trial, outcome.scale, seen["ratio"]
        trial_value, trial_grad = seen["value"], seen["grad"]
        decrease = value - trial_value
        x, value, grad = trial, trial_value, trial_grad
        history.append(dict(iteration=iteration, objective=value, step=scale * longest,
                            min_jacobian_ratio=ratio))
        if progress is not None:
            progress(history[-1])
        if decrease <= rtol * abs(value):
            result.message = f"converged: the last step lowered J by less than rtol={rtol}"
            break
    result.nodes, result.seconds = x, time.perf_counter() - t0
    return result


def _sobolev_direction(mesh, nodes, grad, movable, mass) -> torch.Tensor:
    """``-K^{-1} g`` on the movable nodes, K the linear-element stiffness (+ mass)."""
    linear = linear_element(mesh.cell_type)
    space = FunctionSpace(mesh.with_nodes(nodes, check=False), linear)
    K, _ = assemble(space, nu=1.0, c=mass if mass > 0 else None, format="scipy")
    free = movable.cpu().numpy()
    K_free = K[free][:, free].tocsc()
    rhs = -grad.cpu().numpy()[free]
    direction = torch.zeros_like(nodes)
    solved = spla.splu(K_free).solve(np.ascontiguousarray(rhs))
    direction[torch.as_tensor(free, device=nodes.device)] = torch.as_tensor(solved).to(nodes)
    return direction
