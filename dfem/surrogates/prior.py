"""A coarse FEM solve as the surrogate's starting point (a two-level surrogate).

A network trained on the energy alone must learn the whole solution, including its
smooth, global part, from a loss that weighs smooth errors least: for the paper's
diffusivity family a 64² U-Net stays near the error of the guess ``u = 1 - x`` after
15 minutes on a CPU. The global part is what a coarse FEM solve gets right cheaply, so
:class:`CoarseSolve` computes it and the network only learns the fine-scale correction:

.. math:: \\hat u = \\mathcal{D}\\big(I_H u_H(\\nu_H) + N_\\theta(\\log \\nu, I_H u_H, x, y)\\big),

where ``u_H`` is the Q1 solution of the same problem on an ``H``-cell grid with the
diffusivity ``nu_H`` sampled from the input image at the coarse quadrature points
(bilinear interpolation of ``log nu``), ``I_H`` the bilinear interpolation back to the
fine nodes and ``D`` the exact Dirichlet values. The coarse solves of a batch are one
batched dense Cholesky (:meth:`GridProblem.solve_dense`), so the prior costs a fraction
of a fine solve; it is counted in the surrogate's inference time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dfem.exceptions import DfemError
from dfem.surrogates.grid import GridProblem

__all__ = ["CoarseSolve"]


class CoarseSolve:
    """Bilinear interpolant of the Q1 solution on a ``cells x cells`` grid.

    Parameters
    ----------
    grid : GridProblem
        The fine problem; the coarse one has the same boundary data and source.
    cells : int
        Coarse cells per side. A few hundred coarse dofs keep the dense solve cheap
        (16 cells: 289 nodes).
    """

    def __init__(self, grid: GridProblem, cells: int = 16):
        if isinstance(cells, bool) or not isinstance(cells, int) or not 1 <= cells <= 48:
            raise DfemError(
                f"the coarse solve needs 1 <= cells <= 48 (a batched dense solve), got {cells!r}"
            )
        self.grid, self.cells = grid, cells
        dtype, device = grid.space.dtype, grid.space.device
        self.coarse = GridProblem(
            cells, "Q1", grid.dirichlet, grid.neumann, grid.f, dtype=dtype, device=device
        )
        # the coarse quadrature points in grid_sample's [-1, 1] frame (x first)
        self._sample_at = (2.0 * self.coarse.quadrature_points - 1.0).unsqueeze(0)

    def coefficient(self, log_nu: torch.Tensor) -> torch.Tensor:
        """``nu`` at the coarse quadrature points, (batch, n_cells, n_q), from the fine
        ``log nu`` image (batch, m, m)."""
        image = log_nu.to(self._sample_at.dtype).unsqueeze(1)
        where = self._sample_at.expand(len(image), -1, -1, -1)
        sampled = F.grid_sample(image, where, mode="bilinear", align_corners=True)
        return torch.exp(sampled[:, 0])

    @torch.no_grad()
    def __call__(self, log_nu: torch.Tensor) -> torch.Tensor:
        """The prior image (batch, m, m) for a batch of ``log nu`` images."""
        coarse = self.coarse.solve_dense(self.coefficient(log_nu))
        size = (self.grid.size, self.grid.size)
        fine = F.interpolate(coarse.unsqueeze(1), size=size, mode="bilinear", align_corners=True)
        return fine[:, 0]

    def __repr__(self) -> str:
        return f"CoarseSolve({self.cells}x{self.cells} Q1 for {self.grid!r})"
