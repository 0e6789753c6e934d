"""A surrogate: diffusivity image in, solution image out, Dirichlet values exact.

.. math:: \\hat u = \\mathcal{D}\\big(u_0 + N_\\theta(\\log \\nu / s, u_0)\\big),

where ``N_theta`` is a network of :mod:`dfem.surrogates.networks`, ``s`` a fixed scale that
brings ``log nu`` to order one, ``u_0`` an optional prior (zero without one; the coarse
FEM solve of :class:`dfem.surrogates.CoarseSolve`), and ``D`` writes the Dirichlet values
over the boundary nodes (:meth:`GridProblem.impose`), so the prediction meets them exactly
and the network only predicts the free values. Training minimises the mean FEM energy
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
    prior : callable, optional
        ``log nu`` images -> prior images ``u_0`` (e.g. :class:`CoarseSolve`); the network
        sees ``u_0`` as one more channel and predicts the correction to it. Zero the
        network's output layer (:func:`zero_output_layer`) so that training starts at
        ``u_0``.
    """

    def __init__(
        self,
        grid: GridProblem,
        network: nn.Module,
        log_scale: float = 3.0,
        coordinates: bool = False,
        prior=None,
    ):
        super().__init__()
        self.grid, self.network = grid, network
        self.log_scale, self.coordinates = float(log_scale), bool(coordinates)
        self.prior = prior

    @staticmethod
    def in_channels(coordinates: bool, prior: bool = False) -> int:
        return 1 + 2 * bool(coordinates) + bool(prior)

    def features(self, log_nu: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, m, m)`` log-diffusivity image (and prior image) -> network input."""
        dtype = next(self.network.parameters()).dtype
        channels = [log_nu.to(dtype) / self.log_scale]
        if self.coordinates:
            xy = self.grid.points.to(device=log_nu.device, dtype=dtype)
            channels += [xy[..., 0].expand_as(channels[0]), xy[..., 1].expand_as(channels[0])]
        if base is not None:
            channels.append(base.to(dtype))
        return torch.stack(channels, dim=1)

    def forward(self, log_nu: torch.Tensor) -> torch.Tensor:
        """The predicted solution image (batch, m, m) in the grid's dtype, boundary exact."""
        base = self.prior(log_nu) if self.prior is not None else None
        out = self.network(self.features(log_nu, base))[:, 0].to(self.grid.space.dtype)
        if base is not None:
            out = out + base.to(out.dtype)
        return self.grid.impose(out)

    def energy_loss(self, log_nu: torch.Tensor, nu_q: torch.Tensor) -> torch.Tensor:
        """Mean FEM energy of the predictions over the batch (the training loss)."""
        return self.grid.energy(self(log_nu), nu_q).mean()


def relative_l2(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``||pred - ref|| / ||ref||`` per sample over the image (nodal l2)."""
    diff = (pred - ref).flatten(1).norm(dim=-1)
    return diff / ref.flatten(1).norm(dim=-1).clamp(min=torch.finfo(ref.dtype).tiny)
