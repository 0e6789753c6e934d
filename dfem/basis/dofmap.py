"""Global numbering of the degrees of freedom of a Lagrange space.

Numbering: the mesh vertices first (dof ``v`` is vertex ``v``), then ``p - 1``
dofs per global edge, running from the edge's smaller vertex number to its
larger one, then the interior dofs of each cell. Two cells that share an edge
see its dofs in opposite local orders when their local edges run in opposite
directions; :func:`build_dofmap` reverses them there so that both cells refer
to the same global dof at the same point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfem.basis.lagrange import LagrangeElement
from dfem.errors import DfemError
from dfem.mesh.mesh import Mesh


@dataclass(frozen=True)
class DofMap:
    """Degrees of freedom of a Lagrange space on a mesh.

    Attributes
    ----------
    cell_dofs : (n_cells, n_basis) int64 ndarray
        Global dof of each local basis function of each cell.
    n_dofs : int
    n_vertices, n_edges : int
        Counts used by the numbering (vertex dofs ``[0, n_vertices)``, edge dofs next).
    edge_dofs_per_edge : int
    """

    cell_dofs: np.ndarray
    n_dofs: int
    n_vertices: int
    n_edges: int
    edge_dofs_per_edge: int

    def facet_dofs(self, mesh: Mesh, edge_ids: np.ndarray) -> np.ndarray:
        """Dofs on the given global edges, shape ``(n, p + 1)``.

        Order: smaller vertex, larger vertex, then the edge's interior dofs from the
        smaller vertex to the larger one (the order of
        :meth:`LagrangeElement.trace_values` when the edge runs from its smaller vertex).
        """
        edge_ids = np.asarray(edge_ids, dtype=np.int64)
        ends = mesh.edge_table.edges[edge_ids]
        k = self.edge_dofs_per_edge
        inner = self.n_vertices + edge_ids[:, None] * k + np.arange(k)[None, :]
        return np.concatenate([ends, inner], axis=1)

    def first_occurrence(self) -> np.ndarray:
        """For each dof, the flat index into ``cell_dofs`` of one cell-local copy of it."""
        _, first = np.unique(self.cell_dofs.ravel(), return_index=True)
        return first


def build_dofmap(mesh: Mesh, element: LagrangeElement) -> DofMap:
    """Number the dofs of ``element`` on ``mesh`` (see the module docstring)."""
    if mesh.cell_type != element.cell_type:
        kind = "triangles" if mesh.cell_type == "tri" else "quadrilaterals"
        fits = "P1, P2, P3" if mesh.cell_type == "tri" else "Q1, Q2, Q3"
        raise DfemError(f"element {element.name} does not fit a mesh of {kind}; use one of {fits}.")
    n_cells, n_vertices = mesh.n_cells, mesh.n_nodes
    k = element.n_edge_dofs
    parts = [mesh.cells_np]
    n_edges = 0
    if k:
        table = mesh.edge_table
        n_edges = len(table.edges)
        along = np.arange(k)
        # Position along the global edge direction of each local edge dof.
        position = np.where(table.flipped[:, :, None], k - 1 - along, along)
        parts.append(
            (n_vertices + table.cell_edges[:, :, None] * k + position).reshape(n_cells, -1)
        )
    n_interior = element.n_interior_dofs
    first_interior = n_vertices + n_edges * k
    if n_interior:
        parts.append(first_interior + np.arange(n_cells * n_interior).reshape(n_cells, n_interior))
    cell_dofs = np.ascontiguousarray(np.concatenate(parts, axis=1))
    return DofMap(
        cell_dofs=cell_dofs,
        n_dofs=first_interior + n_cells * n_interior,
        n_vertices=n_vertices,
        n_edges=n_edges,
        edge_dofs_per_edge=k,
    )
