"""A surrogate: diffusivity image in, solution image out, Dirichlet values exact.

.. math:: \\hat u = \\mathcal{D}\\big(N_\\theta(\\log \\nu / s)\\big),

where ``N_theta`` is a network of :mod:`dfem.surrogates.networks`, ``s`` a fixed scale that
brings ``log nu`` to order one, and ``D`` writes the Dirichlet values over the boundary
nodes (:meth:`GridProblem.impose`), so the prediction meets them exactly and the network
only predicts the free values. Training minimises the mean FEM energy
``J(u_hat; nu)`` over a batch (:meth:`Surrogate.energy_loss`): no solved labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from dfem.surrogates.grid import GridProblem

__all__ = ["Surrogate", "relative_l2"]


class Surrogate(nn.Module):
    """``network`` wrapped with the input features and the exact Dirichlet values.

    Parameters
    ----------
    grid : GridProblem
    network : nn.Module
        ``(batch, in_channels, m, m) -> (batch, 1, m, m)``.
    log_scale : float
        ``log nu`` is divided by this before it enters the network.
    coordinates : bool
        Also feed the pixel coordinates ``x, y`` as two channels.
    """

    def __init__(
        self,
        grid: GridProblem,
        network: nn.Module,
        log_scale: float = 3.0,
        coordinates: bool = False,
    ):
        super().__init__()
        self.grid, self.network = grid, network
        self.log_scale, self.coordinates = float(log_scale), bool(coordinates)

    @staticmethod
    def in_channels(coordinates: bool) -> int:
        return 3 if coordinates else 1

    def features(self, log_nu: torch.Tensor) -> torch.Tensor:
        """``(batch, m, m)`` log-diffusivity image -> network input."""
        dtype = next(self.network.parameters()).dtype
        channels = [log_nu.to(dtype) / self.log_scale]
        if self.coordinates:
            xy = self.grid.points.to(device=log_nu.device, dtype=dtype)
            channels += [xy[..., 0].expand_as(channels[0]), xy[..., 1].expand_as(channels[0])]
        return torch.stack(channels, dim=1)

    def forward(self, log_nu: torch.Tensor) -> torch.Tensor:
        """The predicted solution image (batch, m, m) in the grid's dtype, boundary exact."""
        out = self.network(self.features(log_nu))[:, 0]
        return self.grid.impose(out.to(self.grid.space.dtype))

    def energy_loss(self, log_nu: torch.Tensor, nu_q: torch.Tensor) -> torch.Tensor:
        """Mean FEM energy of the predictions over the batch (the training loss)."""
        return self.grid.energy(self(log_nu), nu_q).mean()


def relative_l2(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``||pred - ref|| / ||ref||`` per sample over the image (nodal l2)."""
    diff = (pred - ref).flatten(1).norm(dim=-1)
    return diff / ref.flatten(1).norm(dim=-1).clamp(min=torch.finfo(ref.dtype).tiny)
