"""Vector-valued function spaces: ``d`` copies of a scalar space, dofs interleaved per node.

Dof layout
----------
Component ``i`` of scalar dof ``s`` is the global dof ``s * d + i`` (the layout of
torch-fem and of scikit-fem's ``ElementVector``): the ``d`` values of one node sit
next to each other, and a dof vector reshaped to ``(n_scalar_dofs, d)`` holds one
row per node. Locally the same holds: column ``a * d + i`` of :attr:`cell_dofs` is
component ``i`` of the cell's basis function ``a``.

Component names: ``0, 1, 2`` or ``"x", "y", "z"`` (also ``"ux", "uy", "uz"``).
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING

import torch

from dfem.basis.dofmap import shared_pattern
from dfem.basis.mapping import CellGeometry
from dfem.exceptions import DfemError

if TYPE_CHECKING:
    from dfem.assembly.sparsity import SparsityPattern

COMPONENT_NAMES = {"x": 0, "y": 1, "z": 2, "ux": 0, "uy": 1, "uz": 2}


def interleave(scalar_dofs: torch.Tensor, d: int) -> torch.Tensor:
    """Vector dofs ``s * d + i`` of scalar dofs ``s`` (..., n) as (..., n * d), component last."""
    comps = torch.arange(d, device=scalar_dofs.device)
    # the size spelled out: an empty set of facets (none on this rank) has no -1 to infer
    return (scalar_dofs[..., :, None] * d + comps).reshape(
        *scalar_dofs.shape[:-1], scalar_dofs.shape[-1] * d)


class VectorSpace:
    """``shape = (d,)`` copies of a scalar space (Lagrange or NURBS).

    Build it as ``dfem.FunctionSpace(mesh, "Q2", shape=(2,))`` (or
    ``IsogeometricSpace(patch, shape=(2,))``); see the module docstring for the dof
    layout. Geometry, quadrature and boundary tags are the scalar space's.

    Attributes
    ----------
    scalar : Space
        The space of each component.
    shape : tuple of int
        ``(d,)``.
    """

    def __init__(self, scalar, shape):
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        if len(shape) != 1 or shape[0] < 1:
            raise DfemError(
                f"shape must be (d,) with d >= 1 components for a vector space, got {shape!r}."
            )
        if isinstance(scalar, VectorSpace):
            raise DfemError("a vector space of vector spaces is not supported; give shape=(d,).")
        self.scalar = scalar
        self.shape = shape
        self._shared: dict = {}

    # ------------------------------------------------------------------ basics
    @property
    def n_components(self) -> int:
        return math.prod(self.shape)

    @property
    def mesh(self):
        return self.scalar.mesh

    @property
    def element(self):
        return self.scalar.element

    @property
    def quadrature_degree(self) -> int:
        return self.scalar.quadrature_degree

    @property
    def device(self) -> torch.device:
        return self.scalar.device

    @property
    def dtype(self) -> torch.dtype:
        return self.scalar.dtype

    @property
    def dim(self) -> int:
        """Geometric dimension (columns of the node coordinates)."""
        return self.mesh.nodes.shape[1]

    @property
    def n_dofs(self) -> int:
        return self.scalar.n_dofs * self.n_components

    def __repr__(self) -> str:
        return f"VectorSpace({self.scalar!r}, shape={self.shape})"

    @cached_property
    def cell_dofs(self) -> torch.Tensor:
        """(n_cells, n_basis * d) int64: column ``a * d + i`` is component i of basis a."""
        return interleave(self.scalar.cell_dofs, self.n_components)

    @property
    def pattern(self) -> SparsityPattern:
        """The CSR pattern of matrices on the interleaved dofs (built once)."""
        return shared_pattern(self)

    def _moved(self, scalar) -> VectorSpace:
        moved = VectorSpace.__new__(VectorSpace)
        moved.__dict__.update(self.__dict__)
        moved.scalar = scalar
        moved.__dict__.pop("cell_dofs", None)
        return moved

    def with_nodes(self, nodes: torch.Tensor, cache_geometry: bool = False) -> VectorSpace:
        """The same space on moved node coordinates (dof map and pattern shared)."""
        return self._moved(self.scalar.with_nodes(nodes, cache_geometry))

    def with_control_points(self, control_points: torch.Tensor,
                            cache_geometry: bool = False) -> VectorSpace:
        """The same isogeometric space with moved control points."""
        return self._moved(self.scalar.with_control_points(control_points, cache_geometry))

    def to(self, device=None, dtype=None) -> VectorSpace:
        return self._moved(self.scalar.to(device=device, dtype=dtype))

    # ------------------------------------------------------------------ geometry
    def geometry(self, degree: int | None = None) -> CellGeometry:
        return self.scalar.geometry(degree)

    def facet_geometry(self, tags, degree: int | None = None):
        """The scalar space's facet data (its ``dofs`` are scalar dofs; see :func:`interleave`)."""
        return self.scalar.facet_geometry(tags, degree)

    def quadrature(self, degree: int | None = None):
        return self.scalar.quadrature(degree)

    # ------------------------------------------------------------------ functions
    def component(self, name) -> int:
        """The component number of ``name`` (0, 1, 2, "x", "y", "z", "ux", "uy", "uz")."""
        if isinstance(name, bool):
            index = None
        elif isinstance(name, int):
            index = name
        else:
            index = COMPONENT_NAMES.get(str(name).strip().lower())
        if index is None or not 0 <= index < self.n_components:
            names = ", ".join(["x", "y", "z"][: self.n_components])
            raise DfemError(
                f"unknown component {name!r} of a {self.n_components}-component space; "
                f"use 0..{self.n_components - 1} or {names}."
            )
        return index

    def component_dofs(self, i) -> torch.Tensor:
        """The dofs of component ``i`` (``i, i + d, i + 2 d, ...``), one per scalar dof."""
        i = self.component(i)
        return torch.arange(i, self.n_dofs, self.n_components, device=self.device)

    def boundary_dofs(self, tags, component=None) -> torch.Tensor:
        """Sorted dofs on ``tags``: all components, or only ``component``."""
        scalar = self.scalar.boundary_dofs(tags)
        if component is not None:
            return scalar * self.n_components + self.component(component)
        return interleave(scalar, self.n_components)

    def components(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` (..., n_dofs) as (..., n_scalar_dofs, d): one row per node."""
        return u.reshape(*u.shape[:-1], self.scalar.n_dofs, self.n_components)

    def flatten(self, values: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`components`: (..., n_scalar_dofs, d) -> (..., n_dofs)."""
        return values.reshape(*values.shape[:-2], self.n_dofs)

    @property
    def dof_coordinates(self) -> torch.Tensor:
        """Coordinates of every dof (n_dofs, dim): each node's repeated d times."""
        return self.scalar.dof_coordinates.repeat_interleave(self.n_components, dim=0)

    def interpolate(self, fn) -> torch.Tensor:
        """Interpolant of ``fn(x)`` returning (n, d) (or (d,), or a number for all components).

        Lagrange spaces interpolate at the nodes; a NURBS space per component as its
        scalar space does.
        """
        d = self.n_components
        columns = [
            self.scalar.interpolate(lambda x, i=i: _component_of(fn, x, i, d)) for i in range(d)
        ]
        return torch.stack(columns, dim=-1).reshape(self.n_dofs)

    def cell_values(self, u: torch.Tensor) -> torch.Tensor:
        return u[..., self.cell_dofs]

    def at_quadrature(self, u: torch.Tensor, geometry: CellGeometry | None = None):
        """Values (..., n_cells, n_q, d) and gradients (..., n_cells, n_q, d, dim) of ``u``."""
        g = self.geometry() if geometry is None else geometry
        ue = self.cell_values(u).unflatten(-1, (-1, self.n_components))  # (..., E, nb, d)
        per_cell = "eqa" if g.values.ndim == 3 else "qa"
        values = torch.einsum(f"...eai,{per_cell}->...eqi", ue, g.values)
        grads = torch.einsum("...eai,eqam->...eqim", ue, g.grads)
        return values, grads

    def vertex_values(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` at the mesh vertices, (..., n_nodes, d)."""
        parts = [self.scalar.vertex_values(u[..., i :: self.n_components])
                 for i in range(self.n_components)]
        return torch.stack(parts, dim=-1)


def _component_of(fn, x: torch.Tensor, i: int, d: int) -> torch.Tensor:
    value = fn(x) if callable(fn) and not torch.is_tensor(fn) else fn
    value = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if value.ndim == 0:
        return value.expand(x.shape[:-1])
    if value.shape[-1] != d:
        raise DfemError(
            f"a vector field on a {d}-component space must give {d} values per point "
            f"(shape (..., {d})), got shape {tuple(value.shape)}."
        )
    return value[..., i].expand(x.shape[:-1])
