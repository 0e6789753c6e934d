"""Global numbering of the degrees of freedom of a Lagrange space.

Numbering: the mesh vertices first (dof ``v`` is vertex ``v``), then the dofs
inside each global edge, then (3D) inside each global face, then the interior
dofs of each cell. Within an edge or face the dofs are ordered by their weights
on the entity's global vertices taken in ascending vertex number, largest first
(see :mod:`dfem.basis.lagrange`): on an edge they run from its smaller vertex to
its larger one. The weights of a shared node are the same seen from every cell
that shares the entity, so both cells refer to the same global dof at the same
point whatever their local orientation (a reversed edge, a rotated or reflected
face with four Q3 dofs).
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from dfem.basis.lagrange import LagrangeElement
from dfem.basis.lagrange import element as element_named
from dfem.mesh.mesh import Mesh

if TYPE_CHECKING:
    from dfem.assembly.sparsity import SparsityPattern


@dataclass(frozen=True)
class DofMap:
    """Degrees of freedom of a Lagrange space on a mesh.

    Attributes
    ----------
    cell_dofs : (n_cells, n_basis) int64 ndarray
        Global dof of each local basis function of each cell.
    n_dofs : int
    n_vertices : int
        Vertex dofs are ``[0, n_vertices)``.
    facet_dofs_local : (n_local_facets, n_facet_dofs) int64 ndarray
        Local dofs on each local facet of a cell.
    """

    cell_dofs: np.ndarray
    n_dofs: int
    n_vertices: int
    facet_dofs_local: np.ndarray

    def facet_dofs(self, mesh: Mesh, facet_ids: np.ndarray) -> np.ndarray:
        """Dofs on the given global facets, shape ``(n, n_facet_dofs)``, in the local order
        of the facet in the cell that owns it (the first of :attr:`Mesh.facet_neighbours`)."""
        owner = mesh.facet_neighbours[np.asarray(facet_ids, dtype=np.int64), 0]
        return self.cell_dofs[owner[:, :1], self.facet_dofs_local[owner[:, 1]]]

    def first_occurrence(self) -> np.ndarray:
        """For each dof, the flat index into ``cell_dofs`` of one cell-local copy of it."""
        _, first = np.unique(self.cell_dofs.ravel(), return_index=True)
        return first


def _entity_positions(cells: np.ndarray, local_vertices: np.ndarray, weights: np.ndarray,
                      degree: int) -> np.ndarray:
    """Position of each cell-local entity dof within its global entity, (E, L, k).

    ``local_vertices`` (L, m) are the entity's local vertices and ``weights`` (L, k, m)
    the dofs' weights on them. The weights are multiples of ``1/p**2``, so scaled by
    ``p**2`` they are small integers: one integer key per dof, digits in ascending
    global vertex order, ranks it.
    """
    order = np.argsort(cells[:, local_vertices], axis=-1, kind="stable")  # (E, L, m)
    w = np.rint(weights * degree**2).astype(np.int64)  # (L, k, m)
    w = np.take_along_axis(np.broadcast_to(w, (len(cells), *w.shape)),
                           np.broadcast_to(order[:, :, None, :], (len(cells), *w.shape)),
                           axis=-1)
    base = degree**2 + 1
    key = (w * base ** np.arange(w.shape[-1] - 1, -1, -1)).sum(-1)  # (E, L, k)
    return np.argsort(np.argsort(-key, axis=-1, kind="stable"), axis=-1)


def build_dofmap(mesh: Mesh, element: LagrangeElement) -> DofMap:
    """Number the dofs of ``element`` on ``mesh`` (see the module docstring)."""
    element = element_named(element, mesh.cell_type)  # raises for a misfit
    cells = mesh.cells_np
    cell_dofs = np.empty((mesh.n_cells, element.n_basis), dtype=np.int64)
    cell_dofs[:, : element.n_vertices] = cells
    offset = mesh.n_nodes
    reference = mesh.reference
    entities = [("edge", reference.edges, lambda: mesh.edge_table)]
    if mesh.dim == 3:
        entities.append(("face", reference.facets, lambda: mesh.face_table))
    for kind, local_vertices, table in entities:
        local = element.entity_dofs(kind)  # (L, k)
        if local.shape[1] == 0:
            continue
        weights = np.take_along_axis(element.weights[local], local_vertices[:, None, :], axis=-1)
        position = _entity_positions(cells, local_vertices, weights, element.degree)
        ids = table().cell_entities  # (E, L)
        k = local.shape[1]
        cell_dofs[:, local.ravel()] = (offset + ids[:, :, None] * k + position).reshape(
            mesh.n_cells, -1)
        offset += len(table()) * k
    interior = element.entity_dofs("interior").ravel()
    if len(interior):
        cell_dofs[:, interior] = offset + np.arange(mesh.n_cells * len(interior)).reshape(
            mesh.n_cells, -1)
        offset += mesh.n_cells * len(interior)
    return DofMap(cell_dofs=cell_dofs, n_dofs=offset, n_vertices=mesh.n_nodes,
                  facet_dofs_local=element.facet_dofs)


def shared_pattern(space) -> SparsityPattern:
    """The CSR sparsity pattern of matrices on ``space`` (scalar or vector: any space with
    ``cell_dofs`` and ``n_dofs``), built from its cell dofs on first use and kept in
    ``space._shared``, which the space's moved copies share."""
    if "pattern" not in space._shared:
        # the assembly layer sits above the basis: imported here, not at module level
        from dfem.assembly.sparsity import SparsityPattern

        pattern = SparsityPattern.from_cell_dofs(space.cell_dofs, space.n_dofs)
        # by a weak reference: the space holds its pattern, and a cycle would keep both
        # (and the pattern's large arrays) alive until a full collection
        pattern.locate = functools.partial(_dof_points_of, weakref.ref(space))
        # a space on one rank's part of a mesh: its matrices are parts of a distributed one
        pattern.partition = getattr(getattr(space, "mesh", None), "partition", None)
        space._shared["pattern"] = pattern
    return space._shared["pattern"]


def _dof_points_of(space_ref):
    space = space_ref()
    return None if space is None else _dof_points(space)


def _dof_points(space):
    """Where each dof of ``space`` sits (float64 ndarray), for ordering the unknowns of a
    direct solve by nested dissection; None where SuperLU's minimum degree does as well.

    Measured (``benchmarks/bench_ordering.py``): on structured meshes, whose dofs lie on
    the planes of a lattice, nested dissection's cuts are single grid planes and it
    factors 2-6x faster on 3D meshes and about 2x on 2D vector (elasticity) spaces; on 2D
    scalar spaces it ties with minimum degree, and on perturbed or unstructured meshes
    its cuts are ragged and it ties or loses (up to 30 %), so those keep minimum degree,
    as does a NURBS space (no dof coordinates).
    """
    dim = getattr(getattr(space, "mesh", None), "dim", 2)
    if dim < 3 and not getattr(space, "shape", ()):
        return None
    try:
        points = space.dof_coordinates
    except AttributeError:  # a NURBS space, or a vector space of one
        return None
    points = points.detach().to("cpu", torch.float64).numpy()
    return points if _on_a_lattice(points) else None


def _on_a_lattice(points) -> bool:
    """Whether the points lie on the planes of a tensor lattice: the numbers of distinct
    coordinates per axis multiply to at most a few times the number of points (a
    structured mesh's dofs; a perturbed or unstructured mesh has about n per axis)."""
    n = len(points)
    extent = float(np.ptp(points, axis=0).max()) if n else 0.0
    if extent == 0.0:
        return False
    levels = np.round((points - points.min(axis=0)) / extent, 9)
    count = 1.0
    for axis in range(points.shape[1]):
        count *= len(np.unique(levels[:, axis]))
    return count <= 4 * len(np.unique(levels, axis=0))
