"""The surrogate's PDE on a structured grid: images in, FEM energy out.

A surrogate network maps an image of the diffusivity to an image of the solution. Here
those images are the nodal values of a Lagrange space on the structured ``n x n`` quad mesh
of the unit square: Q1 has ``(n + 1)^2`` nodes, Q2 ``(2n + 1)^2``. Image row ``j`` and column
``i`` hold the node at ``x = i / (m - 1)``, ``y = j / (m - 1)``. :class:`GridProblem` moves
values between images and dof vectors and imposes the Dirichlet values exactly on the
network output, as appendix D.3.1 of the DSA paper does. The loss is the Galerkin energy

.. math:: J(u) = \\frac12 \\int \\nu |\\nabla u|^2 - \\int f u - \\int_{\\Gamma_N} g u ,

evaluated by the FEM core (:func:`dfem.assembly.energy`), batched over samples with
``nu`` given at the quadrature points. No convolution stencils are written here, so the
1/2, the Jacobian weights and the quadrature are the same as in every other solve.
Neumann sides with ``g = 0`` (zero flux) are natural: they add nothing.
"""

from __future__ import annotations

from functools import cached_property

import torch

from dfem.assembly import AtQuadrature
from dfem.assembly.forms import assemble_matrix, assemble_vector, energy
from dfem.basis.space import FunctionSpace
from dfem.exceptions import DfemError
from dfem.mesh import rectangle
from dfem.problems.poisson import Poisson
from dfem.solvers.linear import dense_solve

__all__ = ["ELEMENTS", "GridProblem"]

ELEMENTS = {"Q1": 1, "Q2": 2}


class GridProblem:
    """``-div(nu grad u) = f`` on the unit square with images as the data layout.

    Parameters
    ----------
    n : int
        Cells per side.
    element : {"Q1", "Q2"}
    dirichlet : dict {tag: value}
        Tags ``left`` (x = 0), ``right``, ``bottom`` (y = 0), ``top``; values are numbers
        or callables of x, as for :class:`dfem.Poisson`. Default: the authors' setting,
        ``u = 1`` on the left and ``u = 0`` on the right.
    neumann : dict {tag: g}, optional
        Flux data; sides that are in neither dict have zero flux.
    f : number or callable, optional
        The source (default 0).
    """

    def __init__(
        self,
        n: int,
        element: str = "Q1",
        dirichlet: dict | None = None,
        neumann: dict | None = None,
        f=0.0,
        dtype: torch.dtype = torch.float64,
        device=None,
    ):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DfemError(f"the grid needs n >= 1 cells per side, got {n!r}")
        if element not in ELEMENTS:
            raise DfemError(f"element must be one of {sorted(ELEMENTS)}, got {element!r}")
        dirichlet = {"left": 1.0, "right": 0.0} if dirichlet is None else dict(dirichlet)
        if not dirichlet:
            raise DfemError(
                "the surrogate problem needs a Dirichlet condition on at least one side "
                "(with zero flux everywhere its solution is defined only up to a constant)"
            )
        self.n, self.element = n, element
        self.size = ELEMENTS[element] * n + 1  # nodes per image side
        self.space = FunctionSpace(rectangle(n, n, "quad", dtype=dtype, device=device), element)
        self.f = f
        self.neumann = dict(neumann or {})
        self.dirichlet = dirichlet
        self._poisson = Poisson(self.space, f=f, dirichlet=dirichlet, neumann=self.neumann)
        self.grid_of_dof = self._grid_index()
        fixed, values = self._poisson.dirichlet_data()
        mask = torch.zeros(self.space.n_dofs, dtype=torch.bool, device=self.space.device)
        mask[fixed] = True
        self.fixed_mask = self.to_grid(mask)  # (m, m) bool
        self.fixed_values = self.to_grid(values)  # (m, m), zero where free

    # ------------------------------------------------------------------ layout
    def _grid_index(self) -> torch.Tensor:
        """Flat image index ``j * m + i`` of every dof, from the dof coordinates."""
        coords = self.space.dof_coordinates.detach()
        index = torch.round(coords * (self.size - 1)).long()
        flat = index[:, 1] * self.size + index[:, 0]
        if not torch.equal(torch.sort(flat).values, torch.arange(self.size**2, device=flat.device)):
            raise DfemError(f"the {self.element} dofs do not fill a {self.size}^2 grid")
        return flat

    @property
    def points(self) -> torch.Tensor:
        """Coordinates of the image pixels, (m, m, 2) with ``[j, i] = (x_i, y_j)``."""
        s = torch.linspace(0.0, 1.0, self.size, dtype=self.space.dtype, device=self.space.device)
        y, x = torch.meshgrid(s, s, indexing="ij")
        return torch.stack([x, y], dim=-1)

    @property
    def quadrature_points(self) -> torch.Tensor:
        """Physical quadrature points of the cells, (n_cells, n_q, 2)."""
        return self.space.geometry().points

    def to_dofs(self, image: torch.Tensor) -> torch.Tensor:
        """``(..., m, m)`` image -> ``(..., n_dofs)`` dof vector."""
        self._check_image(image)
        return image.reshape(*image.shape[:-2], -1)[..., self.grid_of_dof]

    def to_grid(self, u: torch.Tensor) -> torch.Tensor:
        """``(..., n_dofs)`` dof vector -> ``(..., m, m)`` image."""
        image = u.new_zeros(*u.shape[:-1], self.size * self.size)
        image[..., self.grid_of_dof] = u
        return image.reshape(*u.shape[:-1], self.size, self.size)

    def _check_image(self, image: torch.Tensor) -> None:
        if image.shape[-2:] != (self.size, self.size):
            raise DfemError(
                f"images for {self.element} on {self.n}x{self.n} cells are "
                f"{self.size}x{self.size} (one value per node), got {tuple(image.shape[-2:])}"
            )

    def impose(self, image: torch.Tensor) -> torch.Tensor:
        """The image with the Dirichlet values written over its boundary nodes (exactly)."""
        self._check_image(image)
        values = self.fixed_values.to(image.dtype)
        return torch.where(self.fixed_mask, values, image)

    # ------------------------------------------------------------------ physics
    def energy(self, image: torch.Tensor, nu_q: torch.Tensor) -> torch.Tensor:
        """``J(u)`` for each sample: ``image`` (batch, m, m) nodal values (Dirichlet values
        are imposed here), ``nu_q`` (batch, n_cells, n_q) the diffusivity at the
        quadrature points. Differentiable in both."""
        u = self.to_dofs(self.impose(image))
        return energy(self.space, u, nu=AtQuadrature(nu_q), f=self.f, neumann=self.neumann)

    def stiffness_diagonal(self, nu_q: torch.Tensor) -> torch.Tensor:
        """``K_ii = int nu |grad phi_i|^2`` for each sample, as images (batch, m, m)."""
        pattern = self.space.pattern
        on_diagonal = torch.nonzero(pattern.rows == pattern.indices).ravel()
        values = assemble_matrix(self.space, AtQuadrature(nu_q))[..., on_diagonal]
        diagonal = values.new_zeros(*values.shape[:-1], self.space.n_dofs)
        diagonal[..., pattern.rows[on_diagonal]] = values
        return self.to_grid(diagonal)

    def solve(self, nu_q: torch.Tensor, progress=None) -> torch.Tensor:
        """Reference FEM solutions (batch, m, m): one sparse direct solve per sample.

        ``progress`` is an optional callable run after each sample (e.g. a bar's update).
        """
        if nu_q.ndim == 2:
            return self.solve(nu_q.unsqueeze(0), progress)[0]
        out = []
        for sample in nu_q:
            problem = Poisson(
                self.space,
                nu=AtQuadrature(sample),
                f=self.f,
                dirichlet=self.dirichlet,
                neumann=self.neumann,
            )
            out.append(problem.solve())
            if progress is not None:
                progress()
        return self.to_grid(torch.stack(out))

    @cached_property
    def load_vector(self) -> torch.Tensor:
        """``F`` of the source and flux data: independent of ``nu``, so assembled once."""
        return assemble_vector(self.space, self.f, self.neumann)

    def solve_dense(self, nu_q: torch.Tensor) -> torch.Tensor:
        """FEM solutions (batch, m, m) of a batch at once, by batched dense Cholesky.

        The same assembly and elimination as :meth:`solve`, but one
        :func:`dfem.solvers.dense_solve` call for the whole batch: fast for coarse grids
        (a few hundred dofs), wasteful beyond that. Differentiable in ``nu_q``.
        """
        values = assemble_matrix(self.space, AtQuadrature(nu_q))
        restricted, u_fixed, b = self._poisson.eliminate(values, self.load_vector)
        x = dense_solve(restricted.pattern, values[..., restricted.ff], b)
        u = u_fixed.expand(*x.shape[:-1], -1).index_copy(-1, restricted.free_dofs, x)
        return self.to_grid(u)

    def __repr__(self) -> str:
        sides = ", ".join(f"{k}={v!r}" for k, v in self.dirichlet.items())
        return f"GridProblem({self.n}x{self.n} {self.element}, {self.size}^2 nodes, u: {sides})"
