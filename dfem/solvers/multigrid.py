"""Algebraic multigrid hierarchies and their V-cycle in torch, on the matrix's device.

The hierarchy is ``A_0 = A``, ``A_{l+1} = R_l A_l P_l`` with ``R_l = P_l^T``; either
smoothed aggregation (:func:`smoothed_aggregation`) or classical Ruge-Stueben (built by
pyamg, :func:`ruge_stuben`). Smoothed aggregation groups the nodes of the strength graph
(pyamg's standard aggregation on ``|A_ij| >= theta sqrt(|A_ii A_jj|)``, by node blocks
for a vector problem), fits the near-nullspace modes ``B`` on each aggregate (the
tentative prolongator ``T`` with ``T B_c = B``) and smooths it by one damped Jacobi step,

.. math:: P = \\Big(I - \\frac{4}{3 \\rho} D^{-1} A\\Big) T, \\qquad
          \\rho = \\rho(D^{-1} A),

with ``rho`` estimated by a few Lanczos steps in torch; the same estimate bounds the
smoother. The V-cycle smooths with a Chebyshev polynomial in ``D^{-1} A`` on
``[rho / 10, 1.1 rho]`` before and after the coarse correction: symmetric (the same
polynomial on both sides), as CG needs, and made of sparse products, which run threaded
on the CPU and on a GPU where Gauss-Seidel sweeps are sequential. The coarsest level is
solved by a dense Cholesky factorisation (smoothed instead, should the coarsening stop at
more than ``MAX_DENSE`` rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps
import torch

from dfem.assembly.sparsity import compact_index, csr_tensor
from dfem.exceptions import ConvergenceError, DfemError

LANCZOS_STEPS = 12
CHEBYSHEV_DEGREE = 2
LOWER_FRACTION = 0.1  # the smoother damps D^-1 A's spectrum on [rho / 10, 1.1 rho]
SAFETY = 1.1  # Lanczos estimates rho from below
MAX_LEVELS = 12
MAX_DENSE = 4000  # rows of the largest coarsest level factorised densely


def torch_csr(matrix: sps.spmatrix, device, dtype) -> torch.Tensor:
    """A scipy sparse matrix as a torch CSR tensor (int32 indices where they fit)."""
    matrix = sps.csr_matrix(matrix)
    matrix.sum_duplicates()
    indptr, indices = compact_index(torch.from_numpy(matrix.indptr.astype(np.int64)),
                                    torch.from_numpy(matrix.indices.astype(np.int64)))
    return csr_tensor(indptr.to(device), indices.to(device),
                      torch.from_numpy(matrix.data).to(device=device, dtype=dtype),
                      matrix.shape)


def inverse_diagonal(diagonal: np.ndarray, level: int = 0) -> np.ndarray:
    """``1 / A_ii``, 0 on empty rows (rows a coarse level can hold for a mode that an
    aggregate does not carry); an error for a negative or non-finite diagonal, naming the
    matrix (level 0) or the hierarchy (a coarser level) as the cause."""
    if not np.isfinite(diagonal).all() or (diagonal < 0).any():
        if level == 0:
            raise DfemError(
                "AMG needs a symmetric positive definite matrix; its diagonal has negative "
                "or non-finite entries. Use method='direct' for an indefinite matrix."
            )
        raise ConvergenceError(
            f"AMG broke down: level {level} of the hierarchy has negative or non-finite "
            "diagonal entries, so the hierarchy does not suit this matrix (e.g. "
            "Ruge-Stueben on elasticity). Use the default hierarchy (smoothed "
            "aggregation, with the rigid-body modes on a vector space) or method='direct'."
        )
    out = np.zeros_like(diagonal)
    np.divide(1.0, diagonal, out=out, where=diagonal > 0)
    return out


def spectral_radius(A: torch.Tensor, inv_diag: torch.Tensor, steps: int = LANCZOS_STEPS
                    ) -> float:
    """``rho(D^{-1} A)`` of a symmetric positive semi-definite A, estimated by Lanczos on
    ``D^{-1/2} A D^{-1/2}`` from a seeded random start (the largest Ritz value: a lower
    bound, within a few per cent after a dozen steps)."""
    n = A.shape[0]
    if n == 0:
        return 1.0
    scale = inv_diag.sqrt()
    generator = torch.Generator(device=A.device).manual_seed(0)
    v = torch.rand(n, dtype=A.dtype, device=A.device, generator=generator) * (scale > 0)
    v_norm = torch.linalg.vector_norm(v)
    if float(v_norm) == 0.0:
        return 1.0
    v = v / v_norm
    v_prev = torch.zeros_like(v)
    alphas, betas = [], []
    beta = 0.0
    for _ in range(min(steps, n)):
        w = scale * (A @ (scale * v)) - beta * v_prev
        alpha = float(torch.dot(w, v))
        w = w - alpha * v
        alphas.append(alpha)
        beta = float(torch.linalg.vector_norm(w))
        if beta <= 1e-12 * abs(alpha):
            break
        betas.append(beta)
        v_prev, v = v, w / beta
    k = len(alphas)
    tridiagonal = np.diag(alphas) + np.diag(betas[:k - 1], 1) + np.diag(betas[:k - 1], -1)
    rho = float(np.linalg.eigvalsh(tridiagonal)[-1])
    return rho if rho > 0 else 1.0


@dataclass
class Level:
    """One level of a hierarchy: its operator, ``1 / diag``, the Chebyshev interval of the
    smoother, and the transfers to the next coarser level (None on the coarsest)."""

    A: torch.Tensor
    inv_diag: torch.Tensor
    bounds: tuple[float, float]
    P: torch.Tensor | None = None
    R: torch.Tensor | None = None


class VCycle:
    """``z = M r``: one V-cycle of a hierarchy, with Chebyshev smoothing of ``degree``.

    Parameters
    ----------
    levels : list of Level
        Finest first; the last one is solved exactly (dense Cholesky) when it has at most
        ``MAX_DENSE`` rows, smoothed otherwise.
    """

    def __init__(self, levels: list[Level], degree: int = CHEBYSHEV_DEGREE):
        self.levels = levels
        self.degree = degree
        self.coarse_factor = None
        if levels[-1].A.shape[0] > MAX_DENSE:
            # the coarsening stopped early (e.g. no strong connections: a diagonal matrix);
            # the coarsest level is smoothed instead of factorised densely
            return
        coarse = levels[-1].A.to_dense().to(torch.float64)
        # an empty row (a dropped mode) is decoupled: an identity there leaves the rest exact
        empty = torch.diagonal(coarse) == 0
        coarse = coarse + torch.diag(empty.to(coarse.dtype))
        factor, failed = torch.linalg.cholesky_ex(coarse)
        if int(failed):
            raise DfemError(
                "AMG: the coarsest operator is not positive definite (a singular matrix: a "
                "pure Neumann problem or a body without enough supports?); use "
                "method='direct' to see it, or fix the boundary conditions."
            )
        self.coarse_factor = factor

    def _smooth(self, level: Level, r: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        """``degree`` Chebyshev steps for ``A x = r`` preconditioned by ``D^{-1}``, from x
        (zero when None), Saad's three-term recurrence on the interval ``bounds``."""
        lo, hi = level.bounds
        theta, delta = (hi + lo) / 2, (hi - lo) / 2
        sigma = theta / delta
        rho = 1 / sigma
        residual = r if x is None else r - level.A @ x
        d = level.inv_diag * residual / theta
        x = d if x is None else x + d
        for _ in range(self.degree - 1):
            residual = residual - level.A @ d
            rho_next = 1 / (2 * sigma - rho)
            d = (rho_next * rho) * d + (2 * rho_next / delta) * (level.inv_diag * residual)
            x = x + d
            rho = rho_next
        return x

    def _cycle(self, r: torch.Tensor, k: int) -> torch.Tensor:
        level = self.levels[k]
        if level.P is None:
            if self.coarse_factor is None:
                return self._smooth(level, r, self._smooth(level, r, None))
            rhs = r.to(self.coarse_factor.dtype)[:, None]
            return torch.cholesky_solve(rhs, self.coarse_factor)[:, 0].to(r.dtype)
        x = self._smooth(level, r, None)
        x = x + level.P @ self._cycle(level.R @ (r - level.A @ x), k + 1)
        return self._smooth(level, r, x)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        return self._cycle(r, 0)

    def operator_complexity(self) -> float:
        """Stored entries of all levels over those of the finest."""
        return sum(level.A.values().numel() for level in self.levels) / max(
            self.levels[0].A.values().numel(), 1)

    def grid_complexity(self) -> float:
        """Rows of all levels over those of the finest."""
        return sum(level.A.shape[0] for level in self.levels) / max(self.levels[0].A.shape[0], 1)


def make_level(A: torch.Tensor, diagonal: np.ndarray, number: int) -> Level:
    """Level ``number`` (0: the finest), of the torch operator A whose diagonal is
    ``diagonal``."""
    inv_diag = torch.as_tensor(inverse_diagonal(diagonal, number), dtype=A.dtype,
                               device=A.device)
    rho = spectral_radius(A, inv_diag)
    return Level(A, inv_diag, (LOWER_FRACTION * rho, SAFETY * rho))


def smoothed_aggregation(A: sps.csr_matrix, A_torch: torch.Tensor, modes: np.ndarray,
                         block_size: int = 1, position: np.ndarray | None = None,
                         n_padded: int | None = None, max_coarse: int = 500,
                         theta: float = 0.0) -> list[Level]:
    """The levels of smoothed aggregation for the SPD matrix ``A`` (scipy CSR; the same
    matrix as the torch CSR ``A_torch``, on the device the cycle runs on) with the
    near-nullspace ``modes`` (n, k).

    For a vector problem (``block_size`` d > 1) the nodes are aggregated in blocks: row
    ``i`` of A is row ``position[i]`` of a layout of ``n_padded`` rows made of whole
    nodes, where the missing components (fixed ones) are decoupled identity rows with
    zero modes; those padding rows never reach the cycle (the finest level is A itself
    and ``P_0`` drops them).
    """
    import pyamg

    device, dtype = A_torch.device, A_torch.dtype
    n = A.shape[0]
    if position is None:
        position, n_padded = np.arange(n), n
    work = A
    padded = n_padded != n or not np.array_equal(position, np.arange(n))
    if padded:
        pad = np.setdiff1d(np.arange(n_padded), position)
        coo = A.tocoo()
        work = sps.csr_matrix(
            (np.concatenate([coo.data, np.ones(pad.size)]),
             (np.concatenate([position[coo.row], pad]), np.concatenate([position[coo.col], pad]))),
            shape=(n_padded, n_padded))
        padded_modes = np.zeros((n_padded, modes.shape[1]))
        padded_modes[position] = modes
        modes = padded_modes
    B = modes
    d = block_size
    levels = []
    current_torch = A_torch  # the finest operator is A itself (unpadded)
    diagonal = A.diagonal()
    first = True
    while True:
        level = make_level(current_torch, diagonal, len(levels))
        levels.append(level)
        rows = work.shape[0]
        if rows <= max_coarse or len(levels) == MAX_LEVELS:
            break
        # block sparse (d x d node blocks): pyamg's strength works on node blocks, and
        # scipy's block products are twice as fast as CSR ones here
        blocked = work.tobsr(blocksize=(d, d)) if d > 1 else work
        strength = pyamg.strength.symmetric_strength_of_connection(blocked, theta)
        aggregates, _ = pyamg.aggregation.standard_aggregation(strength.tocsr())
        n_coarse = aggregates.shape[1] * B.shape[1]
        if aggregates.shape[1] == 0 or n_coarse >= rows:
            break  # the graph no longer coarsens: this level becomes the coarsest
        tentative, B = pyamg.aggregation.fit_candidates(aggregates, B)
        if d == 1:
            tentative = sps.csr_matrix(tentative)
        # P = (I - omega D^-1 A) T with omega = 4 / (3 rho), rho = rho(D^-1 A): the
        # estimate made for the smoother
        omega = 4.0 / (3.0 * (level.bounds[1] / SAFETY))
        AT = blocked @ tentative
        inv_diag = inverse_diagonal(work.diagonal(), len(levels) - 1)
        smoothing = pyamg.util.utils.scale_rows(AT, omega * inv_diag, copy=False)
        P = tentative - smoothing
        coarse = P.T @ (blocked @ P)
        P = sps.csr_matrix(P)
        # the padding rows of the finest level are dropped: A_0 is the unpadded A
        P_level = P[position] if first and padded else P
        level.P = torch_csr(P_level, device, dtype)
        level.R = torch_csr(P_level.T, device, dtype)
        work, first = sps.csr_matrix(coarse), False
        d = B.shape[1]
        current_torch = torch_csr(work, device, dtype)
        diagonal = work.diagonal()
    return levels


def ruge_stuben(A: sps.csr_matrix, A_torch: torch.Tensor, max_coarse: int = 500
                ) -> list[Level]:
    """The levels of pyamg's classical Ruge-Stueben hierarchy of ``A`` (scipy CSR; the
    same matrix as ``A_torch``), in torch on ``A_torch``'s device."""
    import pyamg

    ml = pyamg.ruge_stuben_solver(A, max_coarse=max_coarse, keep=False)
    device, dtype = A_torch.device, A_torch.dtype
    levels = []
    for k, pyamg_level in enumerate(ml.levels):
        operator = A_torch if k == 0 else torch_csr(pyamg_level.A, device, dtype)
        level = make_level(operator, pyamg_level.A.diagonal(), k)
        if k < len(ml.levels) - 1:
            level.P = torch_csr(pyamg_level.P, device, dtype)
            level.R = torch_csr(pyamg_level.R, device, dtype)
        levels.append(level)
    return levels
