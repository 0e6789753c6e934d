"""What an inverse problem recovers, and how it is regularised.

An unknown maps a parameter vector ``m`` to a diffusivity coefficient for
:class:`dfem.Poisson` (or the conductivity of :class:`dfem.Heat`, through
:class:`dfem.inverse.transient.TransientForward`; the initial condition of a run is
:class:`dfem.inverse.transient.InitialCondition`):

:class:`CellLogDiffusivity`
    ``nu = exp(m)`` on each cell (``m`` has one entry per cell).
:class:`NodalLogDiffusivity`
    ``nu = exp(m_h)`` with ``m_h`` the P1/Q1 interpolant of the vertex values ``m``.
:class:`FamilyParameters`
    ``nu = nu(x; w)`` of a parametric family (the paper's four-parameter log-normal
    field), ``m = w``.

The field unknowns carry two regularisers of ``log nu``:

.. math:: R_{\\mathrm{Tikhonov}}(m) = \\tfrac12 \\int_\\Omega |\\nabla m|^2, \\qquad
          R_{\\mathrm{TV}}(m) = \\int_\\Omega \\sqrt{|\\nabla m|^2 + \\varepsilon^2}.

For nodal ``m`` both integrals are taken with the FEM core's quadrature (the
Tikhonov term is the core's Dirichlet energy with ``nu = 1``). For per-cell ``m``,
whose gradient is a sum of jumps, they are the facet sums

.. math:: R_{\\mathrm{Tikhonov}} = \\tfrac12 \\sum_{e} \\frac{|e|}{d_e} (m_i - m_j)^2,
          \\qquad R_{\\mathrm{TV}} = \\sum_{e} |e| \\sqrt{(m_i - m_j)^2 + \\varepsilon^2 d_e^2},

over interior facets ``e`` (edges in 2D, faces in 3D; ``|e|`` their measure) between
cells ``i`` and ``j`` with centroid distance
``d_e``: the usual two-point flux approximation of the first, and the exact total
variation of a piecewise constant field for the second when ``epsilon = 0``.
"""

from __future__ import annotations

import numpy as np
import torch

from dfem.assembly.coefficients import AtQuadrature, PerCell
from dfem.assembly.forms import energy
from dfem.basis.facets import lagrange_facet_geometry
from dfem.basis.lagrange import linear_element
from dfem.basis.space import FunctionSpace
from dfem.exceptions import DfemError

REGULARIZATIONS = ("none", "tikhonov", "tv")


class CellLogDiffusivity:
    """``log nu`` per cell of ``space.mesh``."""

    name = "log_nu_cell"

    def __init__(self, space: FunctionSpace):
        self.space = space
        mesh = space.mesh
        neighbours = mesh.facet_neighbours[:, :, 0]  # (n_facets, 2) cells, -1 outside
        interior = neighbours[:, 1] >= 0
        device = space.device
        self.pairs = torch.as_tensor(neighbours[interior], device=device)
        nodes = mesh.nodes.detach()
        # the facet measure (edge length in 2D, face area in 3D) from the facet rule
        facets = np.nonzero(interior)[0]
        linear = FunctionSpace(mesh, linear_element(mesh.cell_type))
        weights = lagrange_facet_geometry(linear, facets, 1)["weights"]
        self.lengths = weights.detach().sum(dim=1)
        centroids = nodes[mesh.cells].mean(dim=1)
        self.distances = torch.linalg.vector_norm(
            centroids[self.pairs[:, 0]] - centroids[self.pairs[:, 1]], dim=1)

    @property
    def size(self) -> int:
        return self.space.mesh.n_cells

    def coefficient(self, m: torch.Tensor):
        return PerCell(torch.exp(m))

    def log_nu_at_quadrature(self, m: torch.Tensor) -> torch.Tensor:
        """``log nu`` at the solution space's quadrature points, (n_cells, n_q)."""
        return m[:, None].expand(-1, self.space.geometry().weights.shape[-1])

    def regularization(self, m: torch.Tensor, kind: str, epsilon: float) -> torch.Tensor:
        jump = m[self.pairs[:, 0]] - m[self.pairs[:, 1]]
        if kind == "tikhonov":
            return 0.5 * (self.lengths / self.distances * jump * jump).sum()
        return (self.lengths * torch.sqrt(jump * jump + (epsilon * self.distances) ** 2)).sum()


class NodalLogDiffusivity:
    """``log nu`` at the mesh vertices, interpolated with P1 (triangles) or Q1 (quads)."""

    name = "log_nu_nodal"

    def __init__(self, space: FunctionSpace):
        self.space = space
        linear = linear_element(space.mesh.cell_type)
        # the same quadrature rule as the solution space, so nu lands on its points
        self.field_space = FunctionSpace(space.mesh, linear, space.quadrature_degree)

    @property
    def size(self) -> int:
        return self.space.mesh.n_nodes

    def coefficient(self, m: torch.Tensor):
        values, _ = self.field_space.at_quadrature(m)
        return AtQuadrature(torch.exp(values))

    def log_nu_at_quadrature(self, m: torch.Tensor) -> torch.Tensor:
        """``log nu`` at the solution space's quadrature points, (n_cells, n_q)."""
        return self.field_space.at_quadrature(m)[0]

    def regularization(self, m: torch.Tensor, kind: str, epsilon: float) -> torch.Tensor:
        return gradient_regularization(self.field_space, m, kind, epsilon)


def gradient_regularization(space: FunctionSpace, m: torch.Tensor, kind: str,
                            epsilon: float) -> torch.Tensor:
    """The Tikhonov (``1/2 int |grad m|^2``, the Dirichlet energy with ``nu = 1``) or TV
    (``int sqrt(|grad m|^2 + epsilon^2)``) regulariser of a field ``m`` with dofs in
    ``space``."""
    if kind == "tikhonov":
        return energy(space, m)
    geometry = space.geometry()
    _, grad = space.at_quadrature(m, geometry)
    density = torch.sqrt((grad * grad).sum(-1) + epsilon**2)
    return (density * geometry.weights).sum()


class FamilyParameters:
    """The parameters ``w`` of a field family such as
    :class:`dfem.problems.random_fields.LogNormalDiffusivity`."""

    name = "w"

    def __init__(self, family):
        self.family = family

    @property
    def size(self) -> int:
        return self.family.m

    def coefficient(self, w: torch.Tensor):
        return self.family.field(w)

    def regularization(self, m: torch.Tensor, kind: str, epsilon: float) -> torch.Tensor:
        raise DfemError("the parameters of a field family take no regularisation; "
                        "set regularization = \"none\".")


def log_nu_error(unknown, m: torch.Tensor, log_nu) -> float:
    """Relative L2 error of the recovered ``log nu``,
    ``||m_h - log nu*|| / ||log nu*||``, with ``log nu*`` a callable of x."""
    geometry = unknown.space.geometry()
    truth = log_nu(geometry.points)
    diff = unknown.log_nu_at_quadrature(m.detach()) - truth
    return float(torch.sqrt((diff * diff * geometry.weights).sum()
                            / (truth * truth * geometry.weights).sum()))


UNKNOWNS = {"log_nu_cell": CellLogDiffusivity, "log_nu_nodal": NodalLogDiffusivity}


def check_regularization(kind: str, weight: float, epsilon: float) -> None:
    """Raise :class:`DfemError` for an unknown kind, a negative weight or epsilon."""
    if kind not in REGULARIZATIONS:
        raise DfemError(
            f"unknown regularization {kind!r}; use one of {', '.join(REGULARIZATIONS)}.")
    if not (isinstance(weight, (int, float)) and np.isfinite(weight) and weight >= 0):
        raise DfemError(f"the regularization weight must be a finite number >= 0, got {weight!r}.")
    if not (isinstance(epsilon, (int, float)) and np.isfinite(epsilon) and epsilon >= 0):
        raise DfemError(f"the TV smoothing epsilon must be a finite number >= 0, got {epsilon!r}.")
