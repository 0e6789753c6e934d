"""Global edges and faces of a mesh: each entity once, numbered, with each cell's local
entities mapped to them (:class:`EntityTable`), and lookup by vertices."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch


def packed_index_bits(count: int, bound: int) -> int | None:
    """Bits that the positions ``0 .. count - 1`` take when packed below keys in
    ``[0, bound)`` into one int64 (:func:`unique_inverse_packed`), or None if they do not fit."""
    index_bits = max(int(count - 1).bit_length(), 1)
    if int(max(bound, 1) - 1).bit_length() + index_bits > 63:
        return None
    return index_bits


def unique_inverse(keys: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct values of the int64 ``keys`` (all in ``[0, bound)``) and, for
    each key, the index of its value: ``unique[inverse] == keys``. ``keys`` is overwritten.

    Each key is packed with its position into one int64 and sorted once, in place
    (:func:`unique_inverse_packed`): numpy's sort of plain integers is several times
    faster than an argsort. When the bits do not fit, a stable argsort, still several
    times faster than ``np.unique``'s (Q1 on 100^3 hexahedra, 64M keys: 1.8 s against 16 s).
    """
    index_bits = packed_index_bits(len(keys), bound)
    if index_bits is None:
        order = np.argsort(keys, kind="stable")
        return _unique_of_sorted(torch.from_numpy(keys[order]), torch.from_numpy(order))
    packed = torch.from_numpy(keys)
    packed <<= index_bits
    packed |= torch.arange(len(keys))
    return unique_inverse_packed(keys, index_bits)


def unique_inverse_packed(packed: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`unique_inverse` of keys given packed with their positions,
    ``packed = key << index_bits | position`` (int64, overwritten).

    The packed keys are distinct, so any sort orders them as a stable sort of the keys
    would. Where torch has several threads, each sorts a slice and numpy's stable sort
    (timsort) merges the sorted runs in one pass (P1 on 32^3 Kuhn tetrahedra, 3.1M keys:
    23 ms against 37 ms on two threads); the element-wise passes run in torch, also
    threaded.
    """
    _sort_in_place(packed)
    keys = torch.from_numpy(packed)
    order = keys & ((1 << index_bits) - 1)
    keys >>= index_bits
    return _unique_of_sorted(keys, order)


#: Below this many keys one thread sorts them all (starting a thread costs more).
_THREADED_SORT_MIN = 2**17


def _sort_in_place(keys: np.ndarray) -> None:
    threads = min(torch.get_num_threads(), 8)
    if threads < 2 or len(keys) < _THREADED_SORT_MIN:
        keys.sort()
        return
    # numpy releases the GIL while it sorts; the slices are views of ``keys``. The threads
    # are started here rather than pooled, so that a forked process (a data loader's
    # worker) never waits on a pool's threads that the fork did not copy.
    first, *rest = np.array_split(keys, threads)
    workers = [threading.Thread(target=part.sort, name="dfem-sort") for part in rest]
    for worker in workers:
        worker.start()
    first.sort()
    for worker in workers:
        worker.join()
    keys.sort(kind="stable")


def _unique_of_sorted(keys: torch.Tensor, order: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of the sorted ``keys`` and the inverse of the keys before ``order``
    sorted them (``keys`` is overwritten)."""
    count = len(keys)
    first = torch.empty(count, dtype=torch.bool)
    first[:1] = True
    torch.ne(keys[1:], keys[:-1], out=first[1:])
    unique = keys[first]
    first[:1] = False  # so that the running count of first keys is the rank itself
    rank = torch.cumsum(first, 0, out=keys)  # the sorted keys are no longer needed
    inverse = torch.empty_like(rank).index_copy_(0, order, rank)
    return unique.numpy(), inverse.numpy()


def _row_keys(rows: np.ndarray, n: int) -> list[np.ndarray]:
    """Columns of int64 keys, one per pair of vertex numbers, that order rows lexicographically."""
    rows = rows.reshape(-1, rows.shape[-1])
    return [rows[:, k] * n + rows[:, k + 1] if k + 1 < rows.shape[1] else rows[:, k]
            for k in range(0, rows.shape[1], 2)]


def _unique_rows(rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of ``rows`` (m, k) of vertex numbers below ``n``, sorted, and the inverse."""
    keys = _row_keys(rows, n)
    if len(keys) == 1:  # a 1D unique of one int64 key is much faster than a lexsort
        unique, inverse = unique_inverse(keys[0].astype(np.int64),
                                         n * n if rows.shape[-1] > 1 else n)
        first = np.empty(len(unique), dtype=np.int64)
        first[inverse[::-1]] = np.arange(len(inverse))[::-1]
        return rows.reshape(-1, rows.shape[-1])[first], inverse
    order = np.lexsort(keys[::-1])
    sorted_keys = [k[order] for k in keys]
    new = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        new[1:] = np.any([k[1:] != k[:-1] for k in sorted_keys], axis=0)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return rows.reshape(-1, rows.shape[-1])[order[new]], inverse


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
        if len(self.entities) == 0 or len(wanted) == 0:
            return np.full(len(wanted), -1, dtype=np.int64)
        n = max(int(self.entities.max()), int(wanted.max())) + 1
        table, query = _row_keys(self.entities, n), _row_keys(wanted, n)
        both = [np.concatenate([t, q]) for t, q in zip(table, query, strict=True)]
        is_query = np.r_[np.zeros(len(self.entities), bool), np.ones(len(wanted), bool)]
        # sort by the keys, the table's row before equal queries
        order = np.lexsort([is_query, *both[::-1]])
        sorted_keys = [b[order] for b in both]
        new = np.ones(len(order), dtype=bool)
        new[1:] = np.any([s[1:] != s[:-1] for s in sorted_keys], axis=0)
        group_first = order[np.maximum.accumulate(np.where(new, np.arange(len(order)), 0))]
        match = np.where(group_first < len(self.entities), group_first, -1)
        result = np.empty(len(order), dtype=np.int64)
        result[order] = match
        return result[len(self.entities):]


EdgeTable = EntityTable


def entity_table(cells: np.ndarray, local: np.ndarray, n_nodes: int) -> EntityTable:
    """The global entities of a mesh whose cells (E, n_vertices) have the local entities
    ``local`` (n_local, k) (local vertex numbers of each edge or face), and each cell's
    global entity numbers; an edge is flipped where its local direction runs from its
    larger to its smaller vertex."""
    vertex_sets = cells[:, local]  # (E, n_local, k)
    ordered = np.sort(vertex_sets, axis=2)
    entities, inverse = _unique_rows(ordered, n_nodes)
    flipped = vertex_sets[..., 0] > vertex_sets[..., -1] if local.shape[1] == 2 else None
    return EntityTable(entities, inverse.reshape(vertex_sets.shape[:2]), flipped)
