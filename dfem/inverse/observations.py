"""Observations of a finite element solution: at every dof or at sensor points.

The misfit of a dof vector ``u`` is

.. math:: M(u) = \\frac{1}{2N} \\sum_{i=1}^{N} \\Big(\\frac{(P u)_i - d_i}{\\sigma}\\Big)^2,

with ``P`` the observation operator (the identity, or point evaluation at the
sensors), ``d`` the data and ``sigma`` the noise standard deviation (1 when it is not
known). Scaled this way the misfit of the true solution is about 1/2 whatever the
number of observations, which is what the discrepancy principle compares against.
"""

from __future__ import annotations

import torch

from dfem.basis.space import FunctionSpace
from dfem.exceptions import DfemError


class Observations:
    """Data ``d`` of a solution in ``space``, at all dofs or at ``points``.

    Parameters
    ----------
    space : FunctionSpace
    values : (N,) array or tensor
        The data: one value per dof (``points=None``) or per point.
    points : (N, dim) array or tensor, optional
        Sensor positions inside the mesh's domain.
    sigma : float, optional
        Noise standard deviation of the data (> 0); default 1.
    """

    def __init__(self, space: FunctionSpace, values, points=None, sigma: float | None = None):
        like = dict(dtype=space.dtype, device=space.device)
        values = torch.as_tensor(values, **like).detach()
        self.space = space
        if points is None:
            self.probe = None
            expected, where = space.n_dofs, f"one per dof of the {space.element.name} space"
        else:
            from dfem.basis.probes import PointEvaluation

            points = torch.as_tensor(points, **like)
            dim = space.mesh.dim
            if points.ndim != 2 or points.shape[1] != dim:
                raise DfemError(
                    f"sensor points must have shape (N, {dim}) on this {dim}D mesh, got "
                    f"{tuple(points.shape)}.")
            self.probe = PointEvaluation(space, points)
            expected, where = len(points), "one per sensor point"
        if values.ndim != 1 or len(values) != expected:
            raise DfemError(
                f"the observations have shape {tuple(values.shape)}, but {expected} values are "
                f"needed ({where}); pass a 1-D array of that length."
            )
        if not bool(torch.isfinite(values).all()):
            raise DfemError("the observations contain inf or NaN; remove or fill those values.")
        if sigma is not None and not (sigma > 0 and torch.isfinite(torch.tensor(sigma))):
            raise DfemError(f"the noise level sigma must be a positive number, got {sigma!r}.")
        self.values = values
        self.points = points
        self.sigma = 1.0 if sigma is None else float(sigma)

    def __len__(self) -> int:
        return len(self.values)

    def observe(self, u: torch.Tensor) -> torch.Tensor:
        """``P u``: the solution where the data were taken."""
        return u if self.probe is None else self.probe(u)

    def misfit(self, u: torch.Tensor) -> torch.Tensor:
        """``M(u)`` of the module docstring."""
        r = (self.observe(u) - self.values) / self.sigma
        return 0.5 * (r * r).mean()

    @classmethod
    def synthetic(cls, space: FunctionSpace, u: torch.Tensor, noise: float, seed: int = 0,
                  points=None) -> Observations:
        """Observations of ``u`` with Gaussian noise of standard deviation
        ``noise * max|P u|`` (``noise = 0.01`` is "1 % noise"), seeded."""
        if not (noise >= 0):
            raise DfemError(f"the noise level must be >= 0, got {noise!r}.")
        observations = cls(space, torch.zeros(space.n_dofs if points is None else len(points)),
                           points)  # the probe is built once; the data are filled in below
        exact = observations.observe(u.detach())
        sigma = noise * float(exact.abs().max())
        generator = torch.Generator().manual_seed(int(seed))
        scatter = torch.randn(exact.shape, generator=generator, dtype=exact.dtype)
        observations.values = exact + sigma * scatter.to(exact.device)
        observations.sigma = sigma if sigma > 0 else 1.0
        return observations
