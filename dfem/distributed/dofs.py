"""The global numbering of the dofs of a space on a rank's local mesh.

A space on a local mesh (:func:`dfem.distributed.distribute`) numbers its dofs as any
space does; :class:`DofDistribution` relates them to the same space on the whole mesh:

- ``global_dofs[i]``: the global number of local dof ``i``. Local cell ``k`` is global
  cell ``cells[k]`` with its vertices in the same order, so local basis function ``j``
  of cell ``k`` is global basis function ``j`` of cell ``cells[k]``:
  ``global_dofs[local.cell_dofs[k, j]] = global.cell_dofs[cells[k], j]``. This is checked
  against the dof coordinates when the map is built.
- ``owner[g]``: the rank that owns global dof ``g`` (the lowest rank whose cells have it),
  which holds its row of the distributed matrix.
- :meth:`rows`: the PETSc row of every free local dof: the free global dofs numbered
  rank by rank (so that each rank's rows are contiguous, as PETSc needs), in global
  order within a rank.

A vector space has ``d`` interleaved components (dof ``d n + i``), locally and globally.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from dfem.exceptions import DfemError

__all__ = ["DofDistribution", "PetscRows", "distribution", "partition_of"]


def partition_of(space):
    """The :class:`~dfem.distributed.partition.Partition` of ``space``'s mesh, or None."""
    scalar = getattr(space, "scalar", space)
    mesh = getattr(scalar, "mesh", None)
    return getattr(mesh, "partition", None)


def distribution(space) -> DofDistribution | None:
    """The :class:`DofDistribution` of a space on a local mesh (built once per space and
    shared with its moved copies); None for a space on a whole mesh."""
    part = partition_of(space)
    if part is None:
        return None
    if "distribution" not in space._shared:
        space._shared["distribution"] = DofDistribution(space, part)
    return space._shared["distribution"]


@dataclasses.dataclass(frozen=True)
class PetscRows:
    """Where the free local dofs go in the distributed matrix.

    Attributes
    ----------
    comm : mpi4py communicator
    rows : (n_free_local,) int64 ndarray
        The PETSc row (and column) of each free local dof.
    n_owned : int
        How many rows this rank owns: ``first .. first + n_owned - 1``.
    first : int
    n_global : int
        The free dofs of the whole problem.
    """

    comm: object
    rows: np.ndarray
    n_owned: int
    first: int
    n_global: int

    @property
    def owned(self) -> np.ndarray:
        """Which free local dofs this rank owns (bool, per free local dof)."""
        return (self.rows >= self.first) & (self.rows < self.first + self.n_owned)


class DofDistribution:
    """Local-to-global dof numbers of a space on a local mesh; see the module docstring.

    Attributes
    ----------
    global_space : FunctionSpace or VectorSpace
        The same space on the whole mesh (every rank holds it: the mesh is replicated).
    global_dofs : (n_local_dofs,) int64 tensor
    owner : (n_global_dofs,) int64 ndarray
    """

    def __init__(self, space, partition):
        from dfem.basis.space import FunctionSpace

        scalar = getattr(space, "scalar", space)
        if not isinstance(scalar, FunctionSpace):
            raise DfemError(f"distributed solves take Lagrange spaces on a mesh; {space!r} "
                            "is not one (an isogeometric patch is not partitioned).")
        self.partition = partition
        d = space.n_components
        shape = (d,) if hasattr(space, "scalar") else ()
        self.global_space = FunctionSpace(partition.global_mesh, scalar.element.name,
                                          scalar.quadrature_degree, shape=shape)
        global_scalar = getattr(self.global_space, "scalar", self.global_space)
        local_cell_dofs = scalar.dofmap.cell_dofs
        global_cell_dofs = global_scalar.dofmap.cell_dofs[partition.cells]
        numbers = np.full(scalar.n_dofs, -1, dtype=np.int64)
        numbers[local_cell_dofs.ravel()] = global_cell_dofs.ravel()
        self._check(scalar, global_scalar, numbers)
        owner = np.full(global_scalar.n_dofs, partition.size, dtype=np.int64)
        np.minimum.at(owner, global_scalar.dofmap.cell_dofs.ravel(),
                      np.repeat(partition.cell_owner, global_cell_dofs.shape[1]))
        if shape:
            numbers = (numbers[:, None] * d + np.arange(d)).ravel()
            owner = np.repeat(owner, d)
        self.global_dofs = torch.as_tensor(numbers, device=space.device)
        self._numbers = numbers
        self.owner = owner
        self._rows: dict = {}

    @staticmethod
    def _check(scalar, global_scalar, numbers):
        with torch.no_grad():
            local = scalar.dof_coordinates.cpu()
            glob = global_scalar.dof_coordinates.cpu()[torch.as_tensor(numbers)]
        scale = float(glob.abs().max()) if glob.numel() else 1.0
        if not bool(torch.allclose(local, glob, rtol=0.0, atol=1e-12 * max(scale, 1.0))):
            raise DfemError("the local dofs of this rank do not sit where their global "
                            "numbers do: the local mesh is not this rank's part of the mesh "
                            "the partition was made from.")

    @property
    def n_global(self) -> int:
        return len(self.owner)

    @property
    def owned(self) -> torch.Tensor:
        """Which local dofs this rank owns (bool tensor): a sum over the owned dofs of
        every rank counts each dof once, e.g. ``allreduce_sum((u[owned] ** 2).sum())``
        is ``sum_i u_i^2`` over the whole problem."""
        rank = self.partition.rank
        return torch.as_tensor(self.owner[self._numbers] == rank, device=self.global_dofs.device)

    def local(self, global_dofs: torch.Tensor) -> torch.Tensor:
        """The local numbers (sorted) of this rank's dofs among ``global_dofs``."""
        mask = torch.zeros(self.n_global, dtype=torch.bool, device=self.global_dofs.device)
        mask[global_dofs] = True
        return torch.nonzero(mask[self.global_dofs]).ravel()

    def global_mask(self, local_mask: torch.Tensor) -> np.ndarray:
        """The logical or over the ranks of a per-local-dof mask, as a global mask (bool,
        n_global_dofs), the same on every rank."""
        from mpi4py import MPI

        flags = np.zeros(self.n_global, dtype=np.int8)
        flags[self._numbers[local_mask.cpu().numpy()]] = 1
        self.partition.comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.MAX)
        return flags.astype(bool)

    def rows(self, free: torch.Tensor) -> PetscRows:
        """The PETSc rows of the free local dofs ``free`` (sorted local numbers): the same
        global system on every rank, whichever rank decided a dof is fixed."""
        local_free = torch.zeros(len(self._numbers), dtype=torch.bool)
        local_free[free.cpu()] = True
        key = local_free.numpy().tobytes()
        if key not in self._rows:
            fixed = self.global_mask(~local_free)
            free_global = np.nonzero(~fixed)[0]
            # rank by rank, in global order within a rank (a stable sort by owner)
            order = free_global[np.argsort(self.owner[free_global], kind="stable")]
            row_of = np.full(self.n_global, -1, dtype=np.int64)
            row_of[order] = np.arange(len(order))
            counts = np.bincount(self.owner[free_global], minlength=self.partition.size)
            rank = self.partition.rank
            rows = row_of[self._numbers[local_free.numpy()]]
            # decided together, so that no rank goes on to the solve alone
            if self.partition.comm.allreduce(int((rows < 0).any())):
                raise DfemError("a dof that one rank leaves free is fixed on another; give "
                                "every rank the same Dirichlet conditions.")
            self._rows.clear()
            self._rows[key] = PetscRows(self.partition.comm, rows, int(counts[rank]),
                                        int(counts[:rank].sum()), len(order))
        return self._rows[key]
