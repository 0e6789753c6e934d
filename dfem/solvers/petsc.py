"""The PETSc backend of the differentiable solve: ``method="petsc"``.

dfem assembles the matrix (its CSR values on the pattern) with its torch kernels; PETSc
owns the solve. By default a Krylov solver preconditioned by PETSc's algebraic multigrid,
CG + GAMG, with the rigid-body modes as GAMG's near-nullspace on a vector (elasticity)
space; any ``ksp_type``/``pc_type`` and any PETSc option can be passed through, e.g.
``ksp_type="preonly", pc_type="cholesky"`` for a direct solve. The adjoint solve of the
backward pass is ``KSPSolveTranspose`` with the same operator and preconditioner, so the
gradients are those of the other backends (the implicit function theorem,
:class:`dfem.solvers.linear.Factor`).

This module runs on one process (``PETSc.COMM_SELF``). petsc4py is an optional
dependency (``pip install dfem[petsc]``; its install is described in ``docs/petsc.md``);
without it ``method="petsc"`` is a :class:`~dfem.exceptions.DfemError` that says so.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch

from dfem.exceptions import ConvergenceError, DfemError
from dfem.solvers.linear import Factor, SolveInfo

__all__ = ["PetscFactor", "petsc"]

_PREFIXES = itertools.count()


def petsc():
    """The ``PETSc`` module of petsc4py, initialised; a clear error without it."""
    try:
        from petsc4py import PETSc
    except ImportError as exc:
        raise DfemError(
            "method='petsc' needs petsc4py, which is not installed: install it with "
            "pip install 'dfem[petsc]' (it builds PETSc from source; see docs/petsc.md), "
            "or use method='amg' or 'direct'."
        ) from exc
    return PETSc


class PetscFactor(Factor):
    """A PETSc KSP set up for one matrix (CSR ``values`` on ``pattern``).

    Parameters
    ----------
    pattern : SparsityPattern
    values : (nnz,) tensor
    symmetric : bool
        Whether the matrix is symmetric (CG needs it; PETSc is told, for its
        preconditioners).
    rtol, atol, maxiter
        The Krylov tolerances (``maxiter`` None: PETSc's default); a solve that stops
        short raises :class:`~dfem.exceptions.ConvergenceError` with PETSc's reason.
    ksp_type, pc_type : str
        PETSc's names ("cg", "gmres", "preonly"; "gamg", "hypre", "lu", "cholesky", ...).
    options : dict, optional
        Further PETSc options without the leading dash, e.g. ``{"pc_gamg_threshold":
        0.02}``; they apply to this solver only (a private options prefix).
    near_nullspace : NearNullspace or (n, k) array, optional
        Modes the multigrid must keep (the rigid-body modes of elasticity), orthonormalised
        and handed to ``MatSetNearNullSpace``.
    """

    def __init__(self, pattern, values, symmetric=True, rtol=1e-10, atol=0.0, maxiter=None,
                 ksp_type="cg", pc_type="gamg", options=None, near_nullspace=None):
        PETSc = petsc()
        t0 = time.perf_counter()
        if ksp_type == "cg" and not symmetric:
            raise DfemError("ksp_type='cg' needs a symmetric matrix; use ksp_type='gmres'.")
        if options is not None and not isinstance(options, dict):
            raise DfemError(f"options must be a dict of PETSc options, got {options!r}.")
        n = pattern.n
        values = values.detach().to("cpu", torch.float64).numpy()
        csr = (pattern.indptr.cpu().numpy().astype(PETSc.IntType),
               pattern.indices.cpu().numpy().astype(PETSc.IntType), values)
        A = PETSc.Mat().createAIJ(size=(n, n), csr=csr, comm=PETSc.COMM_SELF)
        if symmetric:
            A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        if near_nullspace is not None:
            A.setNearNullSpace(self._nullspace(PETSc, A, near_nullspace))
        A.assemble()
        self.A, self.n = A, n
        ksp = PETSc.KSP().create(comm=PETSc.COMM_SELF)
        ksp.setOperators(A)
        prefix = f"dfem{next(_PREFIXES)}_"
        ksp.setOptionsPrefix(prefix)
        database = PETSc.Options()
        names = []
        for key, value in {"ksp_type": ksp_type, "pc_type": pc_type,
                           **(options or {})}.items():
            names.append(prefix + str(key).lstrip("-"))
            database[names[-1]] = "" if value is None or value is True else str(value)
        ksp.setTolerances(rtol=rtol, atol=atol,
                          max_it=maxiter if maxiter is not None else PETSc.DEFAULT)
        ksp.setFromOptions()
        for name in names:  # read by setFromOptions; no need to keep them
            database.delValue(name)
        try:
            ksp.setUp()
        except PETSc.Error as exc:
            raise DfemError(f"PETSc could not set up {ksp_type} + {pc_type}: {exc}") from exc
        self.ksp = ksp
        self.x, self.b = A.createVecs()
        self.info = SolveInfo("petsc", setup_s=time.perf_counter() - t0)

    @staticmethod
    def _nullspace(PETSc, A, near_nullspace):
        modes = getattr(near_nullspace, "modes", near_nullspace)
        modes = np.asarray(modes, dtype=np.float64).reshape(A.getSize()[0], -1)
        q, _ = np.linalg.qr(modes)  # PETSc wants an orthonormal basis
        vectors = []
        for column in q.T:
            v = A.createVecLeft()
            v.setArray(np.ascontiguousarray(column))
            vectors.append(v)
        return PETSc.NullSpace().create(vectors=vectors, comm=PETSc.COMM_SELF)

    def solve(self, b, transpose=False):
        t0 = time.perf_counter()
        rhs = b.detach().to("cpu", torch.float64).numpy()
        columns = rhs.reshape(-1, self.n)
        out = np.empty_like(columns)
        for k, column in enumerate(columns):
            self.b.setArray(np.ascontiguousarray(column))
            self.x.set(0.0)
            (self.ksp.solveTranspose if transpose else self.ksp.solve)(self.b, self.x)
            reason = self.ksp.getConvergedReason()
            if reason < 0:
                raise ConvergenceError(
                    f"PETSc's {self.ksp.getType()} + {self.ksp.getPC().getType()} stopped "
                    f"short of its tolerance (converged reason {reason}) after "
                    f"{self.ksp.getIterationNumber()} iterations; raise maxiter or choose "
                    "another ksp_type/pc_type.")
            self.info.iterations += self.ksp.getIterationNumber()
            self.info.residual = float(self.ksp.getResidualNorm()) / max(
                float(np.linalg.norm(column)), np.finfo(float).tiny)
            out[k] = self.x.getArray()
        self.info.solve_s += time.perf_counter() - t0
        return torch.as_tensor(out.reshape(rhs.shape), dtype=b.dtype, device=b.device)
