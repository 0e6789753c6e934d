"""Preconditioned conjugate gradients in torch, on the tensors' device.

One CG loop serves the Jacobi-preconditioned ``"cg"`` method and the multigrid-preconditioned
``"amg"`` method. For a preconditioner ``M ≈ A^{-1}`` it iterates

.. math:: x_{k+1} = x_k + \\alpha_k p_k, \\quad r_{k+1} = r_k - \\alpha_k A p_k, \\quad
          z_{k+1} = M r_{k+1}, \\quad
          p_{k+1} = z_{k+1} + \\beta_k p_k, \\quad
          \\beta_k = \\frac{r_{k+1} \\cdot (z_{k+1} - z_k)}{r_k \\cdot z_k},

Polak-Ribière's ``beta``: equal to Fletcher-Reeves' ``r_{k+1}·z_{k+1} / r_k·z_k`` for a
fixed linear ``M``, and robust to one that varies slightly from one application to the
next (a V-cycle in single precision), so the iteration still reaches a float64 tolerance.
It stops at ``||r|| <= max(rtol ||b||, atol)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from dfem.assembly.sparsity import SparsityPattern
from dfem.exceptions import ConvergenceError, DfemError
from dfem.solvers.linear import Factor, SolveInfo


def pcg(A: torch.Tensor, b: torch.Tensor, precondition: Callable[[torch.Tensor], torch.Tensor],
        rtol: float, atol: float, maxiter: int, name: str = "CG"
        ) -> tuple[torch.Tensor, int, float]:
    """Solve ``A x = b`` (A symmetric positive definite) by preconditioned CG from x = 0.

    Returns ``(x, iterations, relative residual)``; raises :class:`ConvergenceError`
    (its message begins with ``name``) naming the residual reached when ``maxiter``
    iterations do not reach the tolerance, or when the iteration breaks down.
    """
    x = torch.zeros_like(b)
    bnorm = float(torch.linalg.vector_norm(b))
    if bnorm == 0.0:
        return x, 0, 0.0
    target = max(rtol * bnorm, atol)
    r = b.clone()
    z = precondition(r)
    p = z.clone()
    rz = torch.dot(r, z)
    res = bnorm
    for it in range(1, maxiter + 1):
        Ap = A @ p
        pAp = torch.dot(p, Ap)
        if not bool(pAp > 0):
            raise ConvergenceError(
                f"{name} broke down (p·Ap = {float(pAp):.3e}): the matrix or the "
                "preconditioner is not symmetric positive definite"
            )
        alpha = rz / pAp
        x.add_(p, alpha=float(alpha))
        r.sub_(Ap, alpha=float(alpha))
        res = float(torch.linalg.vector_norm(r))
        if res <= target:
            return x, it, res / bnorm
        if not math.isfinite(res):
            break
        z_new = precondition(r)
        rz_new = torch.dot(r, z_new)
        beta = (rz_new - torch.dot(r, z)) / rz
        p = z_new + beta * p
        z, rz = z_new, rz_new
    raise ConvergenceError(
        f"{name} did not reach rtol={rtol:g} in {maxiter} iterations (relative residual "
        f"{res / bnorm:.3e})"
    )


class CGFactor(Factor):
    """Preconditioned CG in torch on the matrix's device, Jacobi-preconditioned; a subclass
    gives another preconditioner by overriding :meth:`preconditioner` (e.g. a multigrid
    V-cycle)."""

    symmetric = True
    name = "cg"  # the method in SolveInfo; "CG" or "AMG-CG" starts the errors
    advice = "use method='amg' or 'direct'"

    def __init__(self, pattern: SparsityPattern, values: torch.Tensor, rtol: float, atol: float,
                 maxiter: int | None):
        t0 = time.perf_counter()
        values = values.detach()
        self.A = pattern.csr(values)
        self.precondition = self.preconditioner(pattern, values)
        self.maxiter = maxiter or 10 * pattern.n
        self.rtol, self.atol = rtol, atol
        self.label = "CG" if self.name == "cg" else f"{self.name.upper()}-CG"
        self.info = SolveInfo(self.name, setup_s=time.perf_counter() - t0)

    def preconditioner(self, pattern: SparsityPattern, values: torch.Tensor):
        """``r -> z ≈ A^{-1} r``: here ``D^{-1} r``, for a positive diagonal D."""
        diag = torch.zeros(pattern.n, dtype=values.dtype, device=values.device)
        on_diag = pattern.rows == pattern.indices
        diag[pattern.rows[on_diag]] = values[on_diag]
        if not bool((diag > 0).all()):
            raise DfemError(
                "CG needs a symmetric positive definite matrix; its diagonal is not positive."
            )
        return (1.0 / diag).__mul__

    def solve(self, b, transpose=False):
        t0 = time.perf_counter()
        columns = b.detach().reshape(-1, b.shape[-1]).to(self.A.dtype)
        out = []
        for col in columns:
            try:
                x, iterations, residual = pcg(self.A, col, self.precondition, self.rtol,
                                              self.atol, self.maxiter, self.label)
            except ConvergenceError as exc:
                raise ConvergenceError(f"{exc}; {self.advice}.") from None
            self.info.iterations += iterations
            self.info.residual = residual
            out.append(x)
        self.info.solve_s += time.perf_counter() - t0
        return torch.stack(out).reshape(b.shape).to(b.dtype)
