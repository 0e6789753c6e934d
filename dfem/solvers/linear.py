"""Sparse linear solves ``A x = b`` that autograd differentiates by the adjoint method.

The matrix is given by its CSR values in a fixed :class:`SparsityPattern`. The
backward pass of ``x = A^{-1} b`` is one adjoint solve with the same
factorisation (or preconditioner),

.. math:: \\lambda = A^{-T} \\bar x, \\qquad \\bar b = \\lambda, \\qquad
          \\bar A_{ij} = -\\lambda_i x_j \\ \\text{(on the stored entries)},

never a backward pass through solver iterations.

Backends
--------
``"direct"``
    SuperLU (scipy) with a fill-reducing ordering; for symmetric matrices the
    symmetric mode (minimum degree on ``A + A^T``, diagonal pivots). On the CPU;
    tensors on another device are moved there and back.
``"cg"``
    Conjugate gradients with a Jacobi preconditioner, in torch on the tensors'
    device (GPU included). Symmetric positive definite matrices only.
``"amg"``
    Conjugate gradients preconditioned by an algebraic multigrid V-cycle (hierarchy
    from pyamg's coarsening, cycle in torch on the tensors' device), with rigid-body
    near-nullspace modes for vector problems: see :mod:`dfem.solvers.amg`.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from dfem.assembly.sparsity import SparsityPattern
from dfem.exceptions import DfemError

METHODS = ("direct", "cg", "amg", "petsc")


@dataclass
class SolveInfo:
    """What the last solve did: method, iterations (Krylov), seconds for setup and solve."""

    method: str
    iterations: int = 0
    setup_s: float = 0.0
    solve_s: float = 0.0
    residual: float = float("nan")


def info_snapshot(factor) -> SolveInfo:
    """A copy of ``factor.info`` (a ``SolveInfo("none")`` for no factor): the adjoint solve
    of a backward pass adds to the live info object, the snapshot keeps the forward's."""
    if factor is None:
        return SolveInfo("none")
    return replace(factor.info)


class Factor(abc.ABC):
    """A prepared solver for one matrix: ``solve(b, transpose=False)``.

    ``adjoint_solve`` is the solve of a backward pass: for a symmetric matrix and the
    right-hand side of the forward solve (a self-adjoint objective such as the compliance
    ``F . u``, whose adjoint load is ``F``), it returns the forward solution instead of
    solving again.
    """

    info: SolveInfo
    symmetric: bool = False
    rtol: float = 0.0
    _forward: tuple | None = None

    @abc.abstractmethod
    def solve(self, b: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        """``A^{-1} b`` (or ``A^{-T} b``), for b of shape (n,) or (k, n)."""

    def forward_solve(self, b: torch.Tensor) -> torch.Tensor:
        """:meth:`solve`, remembering ``(b, x)`` for :meth:`adjoint_solve`."""
        x = self.solve(b)
        self._forward = (b.detach(), x.detach())
        return x

    def adjoint_solve(self, g: torch.Tensor) -> torch.Tensor:
        """``A^{-T} g``; the remembered forward solution where ``g`` is its right-hand side
        (exactly, for a direct solve; within a thousandth of the tolerance, for an iterative
        one, so the reused solution meets the tolerance as a new solve would)."""
        if self.symmetric and self._forward is not None:
            b, x = self._forward
            same = b.shape == g.shape and b.dtype == g.dtype and b.device == g.device
            gap = float(torch.linalg.vector_norm(g - b)) ** 2 if same else float("inf")
            gap, norm = self._whole_sums(gap, float(torch.linalg.vector_norm(b)) ** 2)
            if gap <= (1e-3 * self.rtol) ** 2 * norm:
                return x.to(g.dtype)
        return self.solve(g, transpose=True)

    def _whole_sums(self, *sums: float) -> tuple[float, ...]:
        """Sums over this process's part of vectors, as sums over the whole vectors (a
        distributed factor adds the other ranks' parts, so every rank decides alike)."""
        return sums


class _DirectFactor(Factor):
    def __init__(self, pattern: SparsityPattern, values: torch.Tensor, symmetric: bool):
        t0 = time.perf_counter()
        A = pattern.to_scipy(values)
        self.A = A
        # A symmetric matrix whose dofs' positions are known is factored in nested-
        # dissection order (computed once per pattern): less fill than minimum degree.
        self.order = pattern.dissection_order if symmetric else None
        if self.order is not None:
            indptr, indices, take, self.inverse_order = pattern.dissection_csc
            A = sp.csc_matrix((A.data[take], indices, indptr), shape=A.shape)
        else:
            A = A.tocsc()
        options = (
            dict(
                permc_spec="NATURAL" if self.order is not None else "MMD_AT_PLUS_A",
                diag_pivot_thresh=0.0, options=dict(SymmetricMode=True)
            )
            if symmetric
            else dict(permc_spec="COLAMD")
        )
        try:
            self.lu = spla.splu(A, **options)
        except RuntimeError as exc:
            raise DfemError(
                f"the system matrix is singular ({exc}). A pure Neumann problem needs a "
                "Dirichlet condition, a Robin condition or a reaction term c > 0."
            ) from exc
        self.info = SolveInfo("direct", setup_s=time.perf_counter() - t0)
        self._checked = False

    def solve(self, b, transpose=False):
        t0 = time.perf_counter()
        rhs = b.detach().cpu().numpy().T
        if self.order is None:
            x = self.lu.solve(rhs, trans="T" if transpose else "N")
        else:
            x = self.lu.solve(np.ascontiguousarray(rhs[self.order]),
                              trans="T" if transpose else "N")[self.inverse_order]
        # A tiny pivot instead of a zero one lets a singular matrix through SuperLU's
        # symmetric mode; one matrix-vector product exposes it. Singularity is the
        # factorisation's, so the first solve is checked (a time loop makes thousands).
        if not np.isfinite(x).all():
            self._fail()
        if not self._checked and np.linalg.norm(rhs) > 0:
            applied = (self.A.T if transpose else self.A) @ x
            if np.linalg.norm(applied - rhs) > 1e-6 * np.linalg.norm(rhs):
                self._fail()
            self._checked = True
        self.info.solve_s += time.perf_counter() - t0
        return torch.as_tensor(x.T, dtype=b.dtype, device=b.device)

    @staticmethod
    def _fail():
        raise DfemError(
            "the direct solve failed: the matrix is singular or nearly so (a pure Neumann "
            "problem, a zero diffusivity or a mesh with disconnected parts?)."
        )


def factorize(
    pattern: SparsityPattern,
    values: torch.Tensor,
    method: str = "direct",
    symmetric: bool = True,
    rtol: float = 1e-10,
    atol: float = 0.0,
    maxiter: int | None = None,
    **amg_options,
) -> Factor:
    """Prepare ``method`` for the matrix with CSR ``values`` in ``pattern``.

    ``rtol``/``atol``/``maxiter`` apply to "cg" and "amg". Options of "amg":

    - ``hierarchy``: ``"rs"`` (classical Ruge-Stueben, the default without a
      near-nullspace) or ``"sa"`` (smoothed aggregation, the default with one);
    - ``near_nullspace``: a :class:`~dfem.solvers.amg.NearNullspace` (e.g.
      :func:`~dfem.solvers.amg.rigid_body_modes` of the rows' dofs) or an (n, k) array of
      modes; smoothed aggregation then aggregates whole nodes and interpolates the modes
      exactly. :meth:`dfem.EnergyProblem.solve` passes
      the rigid-body modes of a vector space's free dofs by itself;
    - ``max_coarse``: the size below which the coarsest level is solved directly (500).
    """
    if getattr(pattern, "partition", None) is not None and method != "petsc":
        raise DfemError(
            "this matrix is one rank's part of a distributed problem (its space is on a mesh "
            "from dfem.distributed.distribute), which only method='petsc' solves as a whole: "
            f"use method='petsc', not {method!r}.")
    if getattr(pattern, "partition", None) is not None and "distribution" not in amg_options:
        raise DfemError(
            "this matrix is one rank's part of a distributed problem: give "
            "distribution=dfem.distributed.distribution(space).rows(free), the PETSc rows of "
            "its free dofs (EnergyProblem.solve passes it by itself).")
    factor = _prepare(pattern, values, method, symmetric, rtol, atol, maxiter, **amg_options)
    factor.symmetric = bool(symmetric)
    factor.rtol = 0.0 if method == "direct" else float(rtol)
    return factor


def _prepare(pattern, values, method, symmetric, rtol, atol, maxiter, **amg_options) -> Factor:
    if method == "direct":
        return _DirectFactor(pattern, values, symmetric)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 <= rtol < 1:
        raise DfemError(f"rtol must be a number in [0, 1), got {rtol!r}.")
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not atol >= 0:
        raise DfemError(f"atol must be a non-negative number, got {atol!r}.")
    if maxiter is not None and (
        isinstance(maxiter, bool) or not isinstance(maxiter, int) or maxiter < 1
    ):
        raise DfemError(f"maxiter must be a positive integer, got {maxiter!r}.")
    if method == "petsc":
        from dfem.solvers.petsc import PetscFactor

        unknown = set(amg_options) - {"ksp_type", "pc_type", "options", "near_nullspace",
                                      "distribution"}
        if unknown:
            raise DfemError(f"unknown option(s) {', '.join(sorted(unknown))} for method="
                            "'petsc'; it takes ksp_type, pc_type, options (a dict of PETSc "
                            "options) and near_nullspace.")
        return PetscFactor(pattern, values, symmetric, rtol, atol, maxiter, **amg_options)
    if not symmetric:
        raise DfemError(f"method={method!r} needs a symmetric matrix; use method='direct'.")
    if method == "cg":
        from dfem.solvers.krylov import CGFactor

        return CGFactor(pattern, values, rtol, atol, maxiter)
    if method == "amg":
        from dfem.solvers.amg import AMGFactor

        return AMGFactor(pattern, values, rtol, atol, maxiter, **amg_options)
    raise DfemError(f"unknown solver method {method!r}; use one of {', '.join(METHODS)}.")


class _SparseSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, b, pattern, factor):
        x = factor.forward_solve(b)
        ctx.pattern, ctx.factor = pattern, factor
        ctx.save_for_backward(x)
        return x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_x):
        (x,) = ctx.saved_tensors
        lam = ctx.factor.adjoint_solve(grad_x.contiguous())
        grad_values = None
        if ctx.needs_input_grad[0]:
            p = ctx.pattern
            # dL/dA_ij = -lambda_i x_j, summed over a batch of right-hand sides
            grad_values = -(lam[..., p.rows] * x[..., p.indices])
            grad_values = grad_values.reshape(-1, p.nnz).sum(0)
        return grad_values, lam, None, None


def sparse_solve(
    pattern: SparsityPattern,
    values: torch.Tensor,
    b: torch.Tensor,
    method: str = "direct",
    symmetric: bool = True,
    info: dict | None = None,
    factor=None,
    **options,
) -> torch.Tensor:
    """Solve ``A x = b`` for A with CSR ``values`` in ``pattern``; differentiable in values and b.

    Parameters
    ----------
    pattern : SparsityPattern
    values : (nnz,) tensor
    b : (n,) or (k, n) tensor
        One right-hand side, or k of them sharing the factorisation.
    method : {"direct", "cg", "amg"}
    symmetric : bool
        Whether A is symmetric (chooses the direct ordering; CG and AMG need it).
    info : dict, optional
        Filled with the :class:`SolveInfo` of the forward solve under ``"solve"``.
    factor : optional
        A prepared solver of these values (:func:`factorize`) to reuse, e.g. for a
        constant matrix solved against many right-hand sides (a filter, a time step).
    **options
        ``rtol`` (default 1e-10), ``atol``, ``maxiter`` for the iterative methods;
        ``hierarchy`` ("rs" or "sa"), ``near_nullspace`` and ``max_coarse`` for "amg"
        (see :func:`factorize`).
    """
    if values.shape != (pattern.nnz,):
        raise DfemError(f"values must have shape ({pattern.nnz},), got {tuple(values.shape)}.")
    if b.shape[-1] != pattern.n:
        raise DfemError(f"b has {b.shape[-1]} entries; the matrix has {pattern.n} rows.")
    if pattern.n == 0:  # every dof fixed (e.g. one cell with Dirichlet data all round)
        if info is not None:
            info["solve"] = SolveInfo(method)
        return b + 0 * values.sum()
    if factor is None:
        factor = factorize(pattern, values.detach(), method, symmetric, **options)
    x = _SparseSolve.apply(values, b, pattern, factor)
    if info is not None:
        info["solve"] = factor.info
    return x


def dense_solve(
    pattern: SparsityPattern, values: torch.Tensor, b: torch.Tensor, symmetric: bool = True
) -> torch.Tensor:
    """Solve ``A_k x_k = b_k`` for a batch of small matrices in one dense factorisation call.

    For many small systems that share a pattern (coarse grids, per-sample surrogate
    priors) a batched dense Cholesky (LU when ``symmetric=False``) beats one sparse
    factorisation per matrix; it costs ``O(n^3)`` per matrix, so keep ``n`` in the
    hundreds. Autograd differentiates through the factorisation directly.

    Parameters
    ----------
    pattern : SparsityPattern
    values : (..., nnz) tensor
    b : (..., n) tensor
        Broadcast against the batch of ``values``.
    """
    if values.shape[-1] != pattern.nnz:
        raise DfemError(f"values must end in {pattern.nnz} entries, got {tuple(values.shape)}.")
    if b.shape[-1] != pattern.n:
        raise DfemError(f"b has {b.shape[-1]} entries; the matrix has {pattern.n} rows.")
    A = pattern.to_dense(values)
    batch = torch.broadcast_shapes(A.shape[:-2], b.shape[:-1])
    A, b = A.expand(*batch, *A.shape[-2:]), b.expand(*batch, b.shape[-1]).unsqueeze(-1)
    if not symmetric:
        return torch.linalg.solve(A, b)[..., 0]
    L, failed = torch.linalg.cholesky_ex(A)
    if bool(failed.any()):
        raise DfemError(
            "dense_solve: a matrix of the batch is not symmetric positive definite; "
            "pass symmetric=False for an LU solve."
        )
    return torch.cholesky_solve(b, L)[..., 0]
