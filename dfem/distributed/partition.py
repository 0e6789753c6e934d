"""A mesh split among MPI ranks: each rank's own cells as a mesh of their own.

Every rank holds the whole mesh (it is replicated: read or built on every rank, see
``docs/distributed.md`` for what that costs) and the same partition of its cells,
computed the same way on every rank so that no communication is needed to agree on
it. A rank's *local mesh* has only its own cells, with their nodes numbered in the
ascending order of their global numbers: the orientation of every edge and face, and
so the position of every dof inside a cell, is the same as on the whole mesh, which is
what lets :mod:`dfem.distributed.dofs` map local dofs to global ones cell by cell.

Two partitioners (:func:`partition_cells`):

- ``"rcb"`` (the default): recursive coordinate bisection of the cell centroids: the
  cells are split at the median of the coordinate of largest extent into two groups of
  sizes in the ratio of the ranks each gets, recursively. It needs no graph partitioner,
  gives compact parts on the meshes dfem reads and builds, each with the same number of
  cells to within one, and every rank computes it alone.
- ``"metis"``: METIS (pymetis) on the dual graph of the cells (two cells adjacent where
  they share a facet), which minimises the facets between parts (so the dofs that ranks
  share) within a few percent of balance; computed on rank 0 and sent to the others.
"""

from __future__ import annotations

import numpy as np
import torch

from dfem.exceptions import DfemError
from dfem.mesh.mesh import Mesh

__all__ = ["Partition", "distribute", "partition_cells"]


PARTITIONERS = ("rcb", "metis")


def partition_cells(mesh: Mesh, n_parts: int, partitioner: str = "rcb") -> np.ndarray:
    """The part (0 .. n_parts-1) of every cell.

    Parameters
    ----------
    mesh : Mesh
    n_parts : int
        Any positive number (not only powers of two).
    partitioner : {"rcb", "metis"}
        See the module docstring; "metis" needs pymetis.

    Returns
    -------
    (n_cells,) int64 ndarray
        With "rcb", part ``r`` has ``floor`` or ``ceil`` of ``n_cells / n_parts`` cells.
    """
    if isinstance(n_parts, bool) or not isinstance(n_parts, (int, np.integer)) or n_parts < 1:
        raise DfemError(f"n_parts must be a positive integer, got {n_parts!r}.")
    if n_parts > mesh.n_cells:
        raise DfemError(f"cannot split {mesh.n_cells} cells among {n_parts} ranks: give the "
                        "mesh at least one cell per rank (refine it, or run fewer ranks).")
    if partitioner not in PARTITIONERS:
        raise DfemError(f"partitioner must be one of {', '.join(PARTITIONERS)}, got "
                        f"{partitioner!r}.")
    if partitioner == "metis":
        return _metis(mesh, int(n_parts))
    return _bisection(mesh, int(n_parts))


def _metis(mesh: Mesh, n_parts: int) -> np.ndarray:
    try:
        import pymetis
    except ImportError as exc:
        raise DfemError("partitioner='metis' needs pymetis: pip install pymetis (or use the "
                        "default partitioner='rcb').") from exc
    if n_parts == 1:
        return np.zeros(mesh.n_cells, dtype=np.int64)
    pairs = mesh.facet_neighbours[:, :, 0]
    pairs = pairs[pairs[:, 1] >= 0]  # interior facets: the edges of the dual graph
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    xadj = np.zeros(mesh.n_cells + 1, dtype=np.int64)
    xadj[1:] = np.cumsum(np.bincount(both[:, 0], minlength=mesh.n_cells))
    _, membership = pymetis.part_graph(n_parts, pymetis.CSRAdjacency(xadj, both[:, 1]))
    owner = np.asarray(membership, dtype=np.int64)
    if len(np.unique(owner)) != n_parts:
        raise DfemError(f"METIS left a part of the {mesh.n_cells} cells empty for {n_parts} "
                        "ranks; use partitioner='rcb' or fewer ranks.")
    return owner


def _bisection(mesh: Mesh, n_parts: int) -> np.ndarray:
    nodes = mesh.nodes.detach().cpu().numpy()
    centroids = nodes[mesh.cells_np].mean(axis=1)
    owner = np.zeros(mesh.n_cells, dtype=np.int64)
    # (cells, first part, number of parts) still to split; one split per entry
    stack = [(np.arange(mesh.n_cells), 0, int(n_parts))]
    while stack:
        cells, first, parts = stack.pop()
        if parts == 1:
            owner[cells] = first
            continue
        points = centroids[cells]
        axis = int(np.argmax(points.max(axis=0) - points.min(axis=0)))
        # a stable sort by the coordinate, ties broken by cell number: the same on every rank
        order = cells[np.lexsort((cells, points[:, axis]))]
        left = parts // 2
        cut = (len(cells) * left) // parts
        stack.append((order[:cut], first, left))
        stack.append((order[cut:], first + left, parts - left))
    return owner


class Partition:
    """The cells of ``mesh`` divided among the ranks of ``comm``, and this rank's share.

    Parameters
    ----------
    mesh : Mesh
        The whole mesh, the same on every rank.
    comm : mpi4py communicator, optional
        Default ``MPI.COMM_WORLD``.
    owner : (n_cells,) int array, optional
        The rank of each cell; default :func:`partition_cells` with ``partitioner``.
    partitioner : {"rcb", "metis"}

    Attributes
    ----------
    global_mesh : Mesh
    cell_owner : (n_cells,) int64 ndarray
        The rank that owns each cell.
    cells : (n_local_cells,) int64 ndarray
        This rank's cells (global numbers, ascending): local cell ``k`` is ``cells[k]``.
    node_numbers : (n_local_nodes,) int64 ndarray
        The global number of each local node (ascending).
    node_owner : (n_nodes,) int64 ndarray
        The lowest rank whose cells use each node: the rank that owns its vertex dofs and
        its point tags (a point load is applied once).
    mesh : Mesh
        The local mesh: this rank's cells, the global boundary facets among their facets
        under the global tags (and ``"boundary"``: the faces between ranks are not
        boundary), the point tags of the nodes this rank owns. ``mesh.partition`` is
        this object.
    """

    def __init__(self, mesh: Mesh, comm=None, owner=None, partitioner: str = "rcb"):
        from dfem.distributed.comm import world

        self.comm = world() if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.global_mesh = mesh
        if owner is None and partitioner == "metis" and self.size > 1:
            # one rank partitions, so that every rank has the same parts
            owner = partition_cells(mesh, self.size, "metis") if self.rank == 0 else None
            owner = self.comm.bcast(owner, root=0)
        elif owner is None:
            owner = partition_cells(mesh, self.size, partitioner)
        owner = np.asarray(owner, dtype=np.int64)
        if owner.shape != (mesh.n_cells,) or owner.min() < 0 or owner.max() >= self.size:
            raise DfemError(f"owner must give each of the {mesh.n_cells} cells a rank in "
                            f"0..{self.size - 1}.")
        self.cell_owner = owner
        self.cells = np.nonzero(owner == self.rank)[0]
        # the local number of every global cell (-1: another rank's)
        self._local_cell_number = np.full(mesh.n_cells, -1, dtype=np.int64)
        self._local_cell_number[self.cells] = np.arange(len(self.cells))
        node_owner = np.full(mesh.n_nodes, self.size, dtype=np.int64)
        np.minimum.at(node_owner, mesh.cells_np.ravel(),
                      np.repeat(owner, mesh.cells_np.shape[1]))
        self.node_owner = node_owner
        self.mesh = self._local_mesh()

    def _local_mesh(self) -> Mesh:
        mesh = self.global_mesh
        cells = mesh.cells_np[self.cells]
        used = np.zeros(mesh.n_nodes, dtype=bool)
        used[cells.ravel()] = True
        self.node_numbers = np.nonzero(used)[0]
        local_number = np.full(mesh.n_nodes, -1, dtype=np.int64)
        local_number[self.node_numbers] = np.arange(len(self.node_numbers))
        mine = self._local_cell_number >= 0
        boundaries = {}
        for name in [*mesh.boundaries, *(() if "boundary" in mesh.boundaries else ("boundary",))]:
            ids = mesh.boundary_facet_ids(name)
            # a boundary facet belongs to one cell: to the rank of that cell
            ids = ids[mine[mesh.facet_neighbours[ids, 0, 0]]]
            boundaries[name] = local_number[mesh.oriented_facets(ids)]
        points = {name: local_number[numbers[self.node_owner[numbers] == self.rank]]
                  for name, numbers in mesh.point_tags.items()}
        index = torch.as_tensor(self.node_numbers, device=mesh.nodes.device)
        local = Mesh(mesh.nodes[index], local_number[cells], boundaries,
                     cell_type=mesh.cell_type, check=False, points=points)
        local.partition = self
        return local

    def local_cells(self, global_cells) -> np.ndarray:
        """The local numbers of those of ``global_cells`` that this rank owns."""
        numbers = self._local_cell_number[np.asarray(global_cells, dtype=np.int64)]
        return numbers[numbers >= 0]

    def __repr__(self) -> str:
        return (f"Partition(rank {self.rank} of {self.size}: {len(self.cells)} of "
                f"{self.global_mesh.n_cells} cells)")


def distribute(mesh: Mesh, comm=None, partitioner: str = "rcb") -> Mesh:
    """This rank's part of ``mesh`` (the same mesh on every rank), as a :class:`Mesh`
    whose spaces and problems solve the whole problem together with the other ranks.

    A :class:`~dfem.basis.space.FunctionSpace` on the returned mesh numbers its dofs
    locally; :mod:`dfem.distributed.dofs` maps them to the global ones, Dirichlet data
    are those of the whole mesh, and ``problem.solve(method="petsc")`` assembles one
    distributed PETSc matrix from every rank's cells. See ``docs/distributed.md``.
    """
    return Partition(mesh, comm, partitioner=partitioner).mesh
