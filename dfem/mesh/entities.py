"""Global edges and faces of a mesh: each entity once, numbered, with each cell's local
entities mapped to them (:class:`EntityTable`), and lookup by vertices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfem.mesh.unique_rows import index_type, unique_rows


@dataclass(frozen=True)
class EntityTable:
    """Global edges or faces of a mesh.

    Attributes
    ----------
    entities : (n_entities, k) int64 ndarray
        Vertex numbers of each entity, sorted ascending along the row; rows sorted.
    cell_entities : (n_cells, n_local) int64 ndarray
        Global entity number of each local entity of each cell.
    flipped : (n_cells, n_local) bool ndarray
        For edges: True where the local edge runs from its larger to its smaller vertex.
    """

    entities: np.ndarray
    cell_entities: np.ndarray
    flipped: np.ndarray | None = None

    @property
    def edges(self) -> np.ndarray:
        return self.entities

    @property
    def cell_edges(self) -> np.ndarray:
        return self.cell_entities

    def __len__(self) -> int:
        return len(self.entities)

    def lookup(self, vertex_sets: np.ndarray) -> np.ndarray:
        """Global numbers of entities given by their vertices (any order); -1 where none."""
        k = self.entities.shape[1]
        wanted = np.sort(np.asarray(vertex_sets, dtype=np.int64).reshape(-1, k), axis=1)
        found = np.full(len(wanted), -1, dtype=np.int64)
        valid = wanted[:, 0] >= 0  # a negative vertex number names no entity
        if len(self.entities) == 0 or not valid.any():
            return found
        n = max(int(self.entities.max()), int(wanted.max())) + 1
        both = np.concatenate([self.entities, wanted[valid]])
        distinct = unique_rows([both[:, c] for c in range(k)], n).inverse
        # each distinct row's table entity; the table's rows are distinct themselves
        owner = np.full(len(both), -1, dtype=np.int64)
        owner[distinct[:len(self.entities)]] = np.arange(len(self.entities))
        found[valid] = owner[distinct[len(self.entities):]]
        return found


EdgeTable = EntityTable


def entity_table(cells: np.ndarray, local: np.ndarray, n_nodes: int) -> EntityTable:
    """The global entities of a mesh whose cells (E, n_vertices) have the local entities
    ``local`` (n_local, k) (local vertex numbers of each edge or face), and each cell's
    global entity numbers; an edge is flipped where its local direction runs from its
    larger to its smaller vertex."""
    vertex_sets = cells[:, local]  # (E, n_local, k)
    k = local.shape[1]
    columns = [vertex_sets[..., c].astype(index_type(n_nodes)).reshape(-1) for c in range(k)]
    # each entity's vertices in ascending order by an odd-even transposition network over
    # its k <= 4 columns (numpy's sort along a short axis costs several times more)
    for step in range(k):
        for c in range(step % 2, k - 1, 2):
            smaller = np.minimum(columns[c], columns[c + 1])
            np.maximum(columns[c], columns[c + 1], out=columns[c + 1])
            columns[c] = smaller
    distinct = unique_rows(columns, n_nodes)
    flipped = vertex_sets[..., 0] > vertex_sets[..., -1] if k == 2 else None
    return EntityTable(distinct.stacked(),
                       distinct.inverse.astype(np.int64).reshape(vertex_sets.shape[:2]), flipped)
