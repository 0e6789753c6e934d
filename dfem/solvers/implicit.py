"""The derivative of a solution defined implicitly by ``R(u, theta) = 0``.

For the converged free dofs ``u*`` of ``R(u, theta) = 0`` (linear or not), the implicit
function theorem gives ``du/dtheta = -K^{-1} dR/dtheta`` with the tangent ``K = dR/du``
at ``u*``. Its vector-Jacobian product is one adjoint solve with the same
factorisation (or preconditioner) as the forward solve,

.. math:: \\lambda = K^{-T} \\bar u, \\qquad
          \\bar\\theta = -\\lambda^T \\frac{\\partial R}{\\partial \\theta},

and autograd computes ``lambda^T dR/dtheta`` by back-propagating ``-lambda`` through a
residual evaluated at ``u*``. Solver iterations are never unrolled.
"""

from __future__ import annotations

import torch


class _ImplicitSolution(torch.autograd.Function):
    @staticmethod
    def forward(ctx, residual, solution, factor):
        ctx.factor = factor
        return solution.detach().clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_u):
        lam = ctx.factor.adjoint_solve(grad_u.contiguous())
        return -lam, None, None


def _is_stand_in(tensor) -> bool:
    return getattr(tensor, "_dfem_point_leaf", False)


def graph_leaves(tensors, first_only: bool = False) -> list[torch.Tensor]:
    """The leaf tensors that require grad and that the graphs of ``tensors`` reach (each
    once, in the order found), not counting the stand-in leaves marked
    ``_dfem_point_leaf`` (point values made differentiable only to take derivatives of a
    density). With ``first_only``, stop at the first one."""
    leaves, found = [], set()

    def keep(variable):
        if variable is not None and variable.requires_grad and not _is_stand_in(variable) \
                and id(variable) not in found:
            found.add(id(variable))
            leaves.append(variable)

    stack, seen = [], set()
    for tensor in tensors:
        if not torch.is_tensor(tensor) or not tensor.requires_grad:
            continue
        if tensor.grad_fn is None:
            keep(tensor)
        else:
            stack.append(tensor.grad_fn)
    while stack and not (first_only and leaves):
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        keep(getattr(node, "variable", None))
        stack.extend(next_node for next_node, _ in node.next_functions)
    return leaves


def reaches_a_leaf(tensor: torch.Tensor) -> bool:
    """Whether ``tensor``'s graph reaches a leaf that requires grad (a parameter, the node
    coordinates), not counting stand-in leaves (see :func:`graph_leaves`)."""
    return bool(graph_leaves([tensor], first_only=True))


def implicit_solution(residual: torch.Tensor, solution: torch.Tensor, factor,
                      collective: bool = False) -> torch.Tensor:
    """``solution`` (the root ``u*`` of ``residual``), differentiable through ``residual``.

    Parameters
    ----------
    residual : (n,) tensor
        ``R(u*, theta)`` on the free dofs, computed with autograd from ``theta`` at the
        detached ``u*`` (its value is ~0; only its graph matters).
    solution : (n,) tensor
        The converged ``u*``.
    factor
        A prepared solver of the tangent at ``u*`` (:func:`dfem.solvers.linear.factorize`).
    collective : bool
        The adjoint solve is one that every MPI rank makes together (a distributed
        factor): the solution is differentiable on every rank, even where this rank's
        residual has no entry or no parameter, so that every rank's backward pass reaches
        the solve.
    """
    if collective:
        anchor = torch.zeros(0, dtype=solution.dtype, device=solution.device,
                             requires_grad=True)
        residual = torch.cat([residual, anchor]) if residual.ndim == 1 else residual
    elif residual.numel() == 0 or not reaches_a_leaf(residual):
        return solution
    return _ImplicitSolution.apply(residual, solution, factor)
