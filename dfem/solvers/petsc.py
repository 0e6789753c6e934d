"""The PETSc backend of the differentiable solve: ``method="petsc"``.

dfem assembles the matrix (its CSR values on the pattern) with its torch kernels; PETSc
owns the solve. By default a Krylov solver preconditioned by PETSc's algebraic multigrid,
CG + GAMG, with the rigid-body modes as GAMG's near-nullspace on a vector (elasticity)
space; any ``ksp_type``/``pc_type`` and any PETSc option can be passed through, e.g.
``ksp_type="preonly", pc_type="cholesky"`` for a direct solve. The adjoint solve of the
backward pass is ``KSPSolveTranspose`` with the same operator and preconditioner, so the
gradients are those of the other backends (the implicit function theorem,
:class:`dfem.solvers.linear.Factor`).

On one process the matrix is a ``PETSc.COMM_SELF`` matrix of the CSR values; given a
``distribution`` (:mod:`dfem.distributed`) it is one rank's part of a matrix on all ranks,
assembled by global row and column. petsc4py is an optional
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
        0.02}``; they apply to this solver only (a private options prefix). An option
        that PETSc does not read is a :class:`~dfem.exceptions.DfemError`.
    near_nullspace : NearNullspace or (n, k) array, optional
        Modes the multigrid must keep (the rigid-body modes of elasticity), orthonormalised
        and handed to ``MatSetNearNullSpace``.
    distribution : PetscRows, optional
        The matrix is this rank's part of a distributed one
        (:mod:`dfem.distributed.dofs`): ``pattern`` and ``values`` are the sum over this
        rank's cells, and row ``i`` of ``pattern`` is row ``distribution.rows[i]`` of the
        global matrix, the sum of every rank's part. Right-hand sides are this rank's
        parts too, and solutions come back at this rank's dofs:
        ``solve(b_r) = P_r A^{-1} sum_s P_s^T b_s``. Every rank must make the same calls.
    """

    def __init__(self, pattern, values, symmetric=True, rtol=1e-10, atol=0.0, maxiter=None,
                 ksp_type="cg", pc_type="gamg", options=None, near_nullspace=None,
                 distribution=None):
        PETSc = petsc()
        t0 = time.perf_counter()
        if ksp_type == "cg" and not symmetric:
            raise DfemError("ksp_type='cg' needs a symmetric matrix; use ksp_type='gmres'.")
        if options is not None and not isinstance(options, dict):
            raise DfemError(f"options must be a dict of PETSc options, got {options!r}.")
        self.n = pattern.n
        self.distribution = distribution
        if distribution is not None:
            self.rows = distribution.rows.astype(PETSc.IntType)
        self.comm = PETSc.COMM_SELF if distribution is None else PETSc.Comm(distribution.comm)
        A = self._matrix(PETSc, pattern, values.detach().to("cpu", torch.float64).numpy())
        if symmetric:
            A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        if near_nullspace is not None:
            A.setNearNullSpace(self._nullspace(PETSc, A, near_nullspace))
        self.A = A
        self.ksp = self._ksp(PETSc, A, ksp_type, pc_type, options, rtol, atol, maxiter)
        self.x, self.b = A.createVecs()
        if distribution is not None:  # the global solution at this rank's dofs
            self.local = PETSc.Vec().createSeq(self.n, comm=PETSc.COMM_SELF)
            rows = PETSc.IS().createGeneral(self.rows, comm=PETSc.COMM_SELF)
            self.gather = PETSc.Scatter().create(self.x, rows, self.local, None)
        self.info = SolveInfo("petsc", setup_s=time.perf_counter() - t0)

    def _matrix(self, PETSc, pattern, values):
        if self.distribution is None:
            csr = (pattern.indptr.cpu().numpy().astype(PETSc.IntType),
                   pattern.indices.cpu().numpy().astype(PETSc.IntType), values)
            A = PETSc.Mat().createAIJ(size=(self.n, self.n), csr=csr, comm=self.comm)
            A.assemble()
            return A
        # every rank's entries by global row and column; PETSc sums those of the same
        # entry, other ranks' included, into the owner's rows
        dist = self.distribution
        rows = self.rows
        local_rows = pattern.rows.cpu().numpy()
        size = (dist.n_owned, dist.n_global)
        A = PETSc.Mat().create(comm=self.comm)
        A.setSizes((size, size))
        A.setType(PETSc.Mat.Type.AIJ)
        A.setPreallocationCOO(rows[local_rows], rows[pattern.indices.cpu().numpy()])
        A.setValuesCOO(values, addv=PETSc.InsertMode.ADD_VALUES)
        A.assemble()
        return A

    def _ksp(self, PETSc, A, ksp_type, pc_type, options, rtol, atol, maxiter):
        ksp = PETSc.KSP().create(comm=self.comm)
        ksp.setOperators(A)
        prefix = f"dfem{next(_PREFIXES)}_"
        ksp.setOptionsPrefix(prefix)
        database = PETSc.Options()
        given = {"ksp_type": ksp_type, "pc_type": pc_type, **(options or {})}
        names = {}
        for key, value in given.items():
            name = prefix + str(key).lstrip("-")
            names[name] = key
            database[name] = "" if value is None or value is True else str(value)
        ksp.setTolerances(rtol=rtol, atol=atol,
                          max_it=maxiter if maxiter is not None else PETSc.DEFAULT)
        try:
            ksp.setFromOptions()
            ksp.setUp()
        except PETSc.Error as exc:
            raise DfemError(f"PETSc could not set up {ksp_type} + {pc_type}: {exc}") from exc
        finally:
            unread = [key for name, key in names.items() if not database.used(name)]
            for name in names:  # read by setFromOptions; no need to keep them
                database.delValue(name)
        if unread:
            raise DfemError(
                f"PETSc did not use the option(s) {', '.join(map(str, unread))} with "
                f"{ksp_type} + {pc_type}: check the names against PETSc's manual (without "
                "the leading dash, e.g. pc_gamg_threshold), or drop them.")
        return ksp

    def _nullspace(self, PETSc, A, near_nullspace):
        modes = getattr(near_nullspace, "modes", near_nullspace)
        modes = np.asarray(modes, dtype=np.float64).reshape(self.n, -1)
        if self.distribution is None:
            rows, modes = np.arange(self.n, dtype=PETSc.IntType), modes
        else:  # each row once, from the rank that owns it
            owned = self.distribution.owned
            rows, modes = self.rows[owned], modes[owned]
        vectors = []
        for column in modes.T:  # orthonormal, as PETSc wants (Gram-Schmidt, twice)
            v = A.createVecLeft()
            v.setValues(rows, np.ascontiguousarray(column))
            v.assemble()
            for _ in range(2):
                for w in vectors:
                    v.axpy(-w.dot(v), w)
            v.normalize()
            vectors.append(v)
        return PETSc.NullSpace().create(vectors=vectors, comm=self.comm)

    def _whole_sums(self, *sums):
        if self.distribution is None:
            return sums
        return tuple(self.distribution.comm.allreduce(np.array(sums)))

    def solve(self, b, transpose=False):
        PETSc = petsc()
        t0 = time.perf_counter()
        rhs = b.detach().to("cpu", torch.float64).numpy()
        # the batch size spelled out: a rank may hold no free dof (self.n == 0)
        columns = rhs.reshape(int(np.prod(rhs.shape[:-1], dtype=np.int64)), self.n)
        out = np.empty_like(columns)
        for k, column in enumerate(columns):
            self._load(PETSc, np.ascontiguousarray(column))
            self.x.set(0.0)
            (self.ksp.solveTranspose if transpose else self.ksp.solve)(self.b, self.x)
            reason = self.ksp.getConvergedReason()
            if reason < 0:
                names = {value: name for name, value in vars(PETSc.KSP.ConvergedReason).items()
                         if isinstance(value, int)}
                raise ConvergenceError(
                    f"PETSc's {self.ksp.getType()} + {self.ksp.getPC().getType()} stopped "
                    f"short of its tolerance ({names.get(reason, 'converged reason')} = "
                    f"{reason}) after {self.ksp.getIterationNumber()} iterations; raise "
                    "maxiter or choose another ksp_type/pc_type.")
            self.info.iterations += self.ksp.getIterationNumber()
            self.info.residual = float(self.ksp.getResidualNorm()) / max(
                float(self.b.norm()), np.finfo(float).tiny)
            out[k] = self._result(PETSc)
        self.info.solve_s += time.perf_counter() - t0
        return torch.as_tensor(out.reshape(rhs.shape), dtype=b.dtype, device=b.device)

    def _load(self, PETSc, column):
        if self.distribution is None:
            self.b.setArray(column)
            return
        self.b.set(0.0)
        self.b.setValues(self.rows, column, addv=PETSc.InsertMode.ADD_VALUES)
        self.b.assemble()

    def _result(self, PETSc):
        if self.distribution is None:
            return self.x.getArray()
        self.gather.scatter(self.x, self.local, addv=PETSc.InsertMode.INSERT_VALUES,
                            mode=PETSc.ScatterMode.FORWARD)
        return self.local.getArray()
