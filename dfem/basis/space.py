"""A Lagrange function space on a mesh: dof map, quadrature tables and mapped geometry."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch

from dfem.basis.dofmap import DofMap, build_dofmap, shared_pattern
from dfem.basis.facets import lagrange_facet_geometry
from dfem.basis.lagrange import LagrangeElement, element, geometry_element
from dfem.basis.mapping import CellGeometry, at_points, map_cells
from dfem.basis.vector import VectorSpace
from dfem.mesh.mesh import Mesh
from dfem.quadrature.rules import cell_rule

if TYPE_CHECKING:
    from dfem.assembly.sparsity import SparsityPattern


@dataclass
class FacetGeometry:
    """Quadrature data on a set of boundary facets (edges in 2D, faces in 3D).

    Attributes
    ----------
    dofs : (n_facets, n_facet_dofs) int64 tensor
        Dofs on each facet, in the order of ``values``.
    points : (n_facets, n_q, dim) tensor
        Physical quadrature points.
    weights : (n_facets, n_q) tensor
        Quadrature weight times the facet's measure element.
    values : (n_q, n_facet_dofs) or (n_facets, n_q, n_facet_dofs) tensor
        The basis functions that do not vanish on the facet, at its quadrature points.
    normals : (n_facets, dim) or (n_facets, n_q, dim) tensor
        Unit normals pointing out of the domain.
    """

    dofs: torch.Tensor
    points: torch.Tensor
    weights: torch.Tensor
    values: torch.Tensor
    normals: torch.Tensor


class Space:
    """What the assembly needs of a function space, shared by Lagrange and NURBS spaces.

    Subclasses set ``mesh`` (tags, plots, device and dtype), ``element`` (with ``name``
    and ``degree``), ``cell_dofs``, ``n_dofs``, ``_shared`` and ``_geometry_cache``, and
    implement ``geometry(degree)``, ``_facet_geometry(tags, degree)``,
    ``boundary_dofs(tags)``, ``boundary_interpolant(tag, fn, dofs)`` and
    ``vertex_values(u)``.
    """

    quadrature_degree: int

    def __new__(cls, *args, shape=(), **kwargs):
        # shape=(d,) builds the scalar space and returns d interleaved copies of it
        space = super().__new__(cls)
        if shape is None or tuple(shape) == ():
            return space
        space.__init__(*args, **kwargs)
        return VectorSpace(space, shape)

    @property
    def dim(self) -> int:
        """Geometric dimension (columns of the node coordinates)."""
        return self.mesh.nodes.shape[1]

    @property
    def n_components(self) -> int:
        """1: a scalar space (see :class:`dfem.basis.vector.VectorSpace` for vector fields)."""
        return 1

    shape: tuple = ()

    @property
    def device(self) -> torch.device:
        return self.mesh.device

    @property
    def dtype(self) -> torch.dtype:
        return self.mesh.dtype

    @property
    def pattern(self) -> SparsityPattern:
        """The CSR pattern of matrices on this space (built once, shared by moved copies)."""
        return shared_pattern(self)

    def _table(self, array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=self.dtype, device=self.device)

    #: Cache the geometry even when the coordinates require grad: for a space built for
    #: one autograd graph (see ``with_nodes(..., cache_geometry=True)``).
    cache_moving_geometry = False

    def _geometry_is_cacheable(self) -> bool:
        return self.cache_moving_geometry or not self.mesh.nodes.requires_grad

    def _moved(self, stale: tuple[str, ...], **changes):
        """A copy sharing the dof numbering and patterns, with ``changes`` applied, the
        geometry cache emptied and the cached properties ``stale`` dropped."""
        moved = type(self).__new__(type(self))
        moved.__dict__.update(self.__dict__)
        moved.__dict__.update(changes)
        moved._geometry_cache = {}
        for name in stale:
            moved.__dict__.pop(name, None)
        return moved

    def cell_values(self, u: torch.Tensor) -> torch.Tensor:
        """Dof values gathered per cell: ``u[..., cell_dofs]`` of shape (..., n_cells, n_basis)."""
        return u[..., self.cell_dofs]

    def at_quadrature(self, u: torch.Tensor, geometry: CellGeometry | None = None):
        """Values and gradients of ``u`` at the quadrature points.

        Returns
        -------
        values : (..., n_cells, n_q) tensor
        grads : (..., n_cells, n_q, dim) tensor
        """
        g = self.geometry() if geometry is None else geometry
        ue = self.cell_values(u)
        return at_points(ue, g.values), torch.einsum("...ea,eiqa->...eqi", ue, g.grads_t)

    def facet_geometry(self, tags, degree: int | None = None) -> FacetGeometry:
        """Quadrature data on the facets carrying ``tags`` (rule exact to ``2 p`` by default)."""
        degree = self.quadrature_degree if degree is None else int(degree)
        key = (tuple([tags] if isinstance(tags, str) else tags), degree)
        cacheable = self._geometry_is_cacheable()
        if cacheable and key in self._geometry_cache:
            return self._geometry_cache[key]
        result = self._facet_geometry(key[0], degree)
        if cacheable:
            self._geometry_cache[key] = result
        return result


class FunctionSpace(Space):
    """Continuous Lagrange functions of one element type on a mesh.

    Parameters
    ----------
    mesh : Mesh
    element : str or LagrangeElement
        "P1", "P2", "P3" on triangles and tetrahedra; "Q1", "Q2", "Q3" on quadrilaterals
        and hexahedra.
    quadrature_degree : int, optional
        Degree of the cell rule; default ``2 p``, exact for the mass and (on affine
        cells) stiffness integrands of degree-p functions.
    shape : tuple, optional
        ``(d,)`` for a vector field of d components: returns a
        :class:`~dfem.basis.vector.VectorSpace` of d interleaved copies of this space.

    Notes
    -----
    The dof map and the sparsity pattern are built once. Mapped geometry is cached
    while the node coordinates do not require grad; with ``mesh.nodes.requires_grad``
    it is recomputed on each call so that gradients reach the nodes. Use
    :meth:`with_nodes` to move the nodes while keeping the dof map.
    """

    def __init__(
        self, mesh: Mesh, element_name="Q1", quadrature_degree: int | None = None, shape=()
    ):
        self.mesh = mesh
        self.element: LagrangeElement = element(element_name, mesh.cell_type)
        self.dofmap: DofMap = build_dofmap(mesh, self.element)
        self.quadrature_degree = (
            2 * self.element.degree if quadrature_degree is None else int(quadrature_degree)
        )
        self._geometry_cache: dict = {}
        self._shared: dict = {}  # state shared with moved copies (sparsity patterns, ...)

    # ------------------------------------------------------------------ basics
    @property
    def n_dofs(self) -> int:
        return self.dofmap.n_dofs

    def __repr__(self) -> str:
        return f"FunctionSpace({self.element.name}, {self.mesh.n_cells} cells, {self.n_dofs} dofs)"

    @cached_property
    def cell_dofs(self) -> torch.Tensor:
        """(n_cells, n_basis) int64 tensor on the mesh's device."""
        return torch.as_tensor(self.dofmap.cell_dofs, device=self.device)

    def with_nodes(self, nodes: torch.Tensor, cache_geometry: bool = False) -> FunctionSpace:
        """The same space on moved node coordinates (dof map and patterns shared).

        With ``cache_geometry`` the geometry is computed once even when ``nodes`` requires
        grad (it then carries that graph): for a space used for one graph, e.g. one
        objective evaluation of a shape optimisation; by default it is recomputed on every
        use, as a space may outlive the graph.
        """
        return self._moved(("cell_dofs",), mesh=self.mesh.with_nodes(nodes),
                           cache_moving_geometry=bool(cache_geometry))

    def to(self, device=None, dtype=None) -> FunctionSpace:
        """The same space on another device or dtype."""
        return self.with_nodes(self.mesh.nodes.to(device=device, dtype=dtype))

    # ------------------------------------------------------------------ cells
    def quadrature(self, degree: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Reference points and weights of the cell rule of the given degree."""
        return cell_rule(
            self.element.cell_type, self.quadrature_degree if degree is None else degree
        )

    def geometry(self, degree: int | None = None) -> CellGeometry:
        """Mapped quadrature data (points, weights, basis gradients) on every cell."""
        degree = self.quadrature_degree if degree is None else int(degree)
        nodes = self.mesh.nodes
        cacheable = not nodes.requires_grad
        if cacheable and degree in self._geometry_cache:
            return self._geometry_cache[degree]
        xi, w = self.quadrature(degree)
        geo = geometry_element(self.element.cell_type)
        result = map_cells(
            nodes,
            self.mesh.cells,
            self._table(geo.values(xi)),
            self._table(geo.gradients(xi)),
            self._table(self.element.values(xi)),
            self._table(self.element.gradients(xi)),
            self._table(w),
            affine=self.mesh.reference.simplex,
        )
        if cacheable:
            self._geometry_cache[degree] = result
        return result

    @property
    def dof_coordinates(self) -> torch.Tensor:
        """Physical coordinates of every dof, (n_dofs, dim); differentiable in the nodes."""
        geo = geometry_element(self.element.cell_type)
        N = self._table(geo.values(self.element.nodes))  # (n_basis, n_vertices)
        local = torch.einsum("eai,ba->ebi", self.mesh.nodes[self.mesh.cells], N)
        first = torch.as_tensor(self.dofmap.first_occurrence(), device=self.device)
        return local.reshape(-1, self.dim)[first]

    # ------------------------------------------------------------------ functions
    def boundary_interpolant(self, tag, fn, dofs: torch.Tensor) -> torch.Tensor:
        """Dirichlet values of ``fn(x)`` at the boundary ``dofs``: nodal interpolation."""
        return fn(self.dof_coordinates[dofs])

    def vertex_values(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` at the mesh vertices (..., n_nodes): the vertex dofs come first."""
        return u[..., : self.mesh.n_nodes]

    def interpolate(self, fn) -> torch.Tensor:
        """Nodal interpolant of ``fn(x)`` (x of shape (n, dim)): the dof vector ``fn(x_dof)``."""
        values = fn(self.dof_coordinates)
        return torch.as_tensor(values, dtype=self.dtype, device=self.device).expand(self.n_dofs)

    # ------------------------------------------------------------------ boundary
    def boundary_facets(self, tags) -> np.ndarray:
        """Global facet numbers of the facets carrying any of ``tags`` (a name or a list)."""
        tags = [tags] if isinstance(tags, str) else list(tags)
        ids = [self.mesh.boundary_facet_ids(t) for t in tags]
        return np.unique(np.concatenate(ids)) if ids else np.zeros(0, dtype=np.int64)

    def boundary_dofs(self, tags) -> torch.Tensor:
        """Sorted dofs on the facets carrying any of ``tags`` (and, for point tags, the
        vertex dofs of their nodes), as an int64 tensor."""
        tags = [tags] if isinstance(tags, str) else list(tags)
        point_tags = self.mesh.point_tags
        facets = self.boundary_facets([t for t in tags if t not in point_tags])
        vertices = [point_tags[t] for t in tags if t in point_tags]  # dof v is vertex v
        dofs = np.unique(np.concatenate([self.dofmap.facet_dofs(self.mesh, facets).ravel(),
                                         *vertices]))
        return torch.as_tensor(dofs, device=self.device)

    def _facet_geometry(self, tags, degree: int) -> FacetGeometry:
        return FacetGeometry(**lagrange_facet_geometry(self, self.boundary_facets(tags), degree))
