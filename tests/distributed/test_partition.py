"""The partition of a mesh among ranks and the local-to-global dof numbers, on one process.

Each rank's view is built here with a stand-in communicator that only answers its rank
and size (the partition needs no messages: every rank computes the same one); the
distributed solves themselves are in ``test_mpi.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import dfem
from dfem.distributed import Partition, partition_cells
from dfem.distributed.dofs import DofDistribution
from dfem.exceptions import DfemError
from dfem.mesh import box, read_mesh, rectangle
from dfem.mesh.structured import perturb_interior

ROOT = Path(__file__).resolve().parents[2]


class RankOnly:
    """The two calls of an mpi4py communicator that the partition makes."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size


MESHES = {
    "tri": lambda: perturb_interior(rectangle(9, 7, "tri"), 0.2, seed=1),
    "quad": lambda: rectangle(8, 6),
    "tet": lambda: read_mesh(ROOT / "cases/meshes/block_with_hole.msh"),
    "hex": lambda: box(4, 3, 5),
}


@pytest.mark.parametrize("n_parts", [1, 2, 3, 5, 8])
def test_parts_are_balanced_and_cover_every_cell_once(n_parts):
    mesh = MESHES["tet"]()
    owner = partition_cells(mesh, n_parts)
    counts = np.bincount(owner, minlength=n_parts)
    assert counts.sum() == mesh.n_cells and len(counts) == n_parts
    assert counts.max() - counts.min() <= 1
    assert np.array_equal(owner, partition_cells(mesh, n_parts))  # the same on every rank


def test_metis_parts_share_fewer_dofs_than_bisection():
    pytest.importorskip("pymetis")
    mesh = MESHES["tet"]()
    shared = {}
    for partitioner in ("rcb", "metis"):
        owner = partition_cells(mesh, 4, partitioner)
        assert set(owner) == {0, 1, 2, 3}
        assert np.bincount(owner).max() <= 1.05 * mesh.n_cells / 4  # balanced
        counted = sum(dfem.FunctionSpace(Partition(mesh, RankOnly(r, 4), owner=owner).mesh,
                                         "P1").n_dofs for r in range(4))
        shared[partitioner] = counted - mesh.n_nodes
    assert 0 < shared["metis"] < shared["rcb"]


def test_an_unknown_partitioner_is_an_error():
    with pytest.raises(DfemError, match="partitioner must be one of rcb, metis"):
        partition_cells(rectangle(4, 4), 2, "scotch")


def test_too_many_ranks_for_the_mesh_is_an_error():
    with pytest.raises(DfemError, match="at least one cell per rank"):
        partition_cells(rectangle(2, 1), 3)


@pytest.mark.parametrize("cell", list(MESHES))
def test_local_meshes_carry_the_global_boundary_and_nothing_between_ranks(cell):
    mesh = MESHES[cell]()
    size = 3
    parts = [Partition(mesh, RankOnly(r, size)) for r in range(size)]
    for tag in [*mesh.boundaries, "boundary"]:
        expected = np.sort(mesh.boundary_facet_ids(tag))
        found = []
        for part in parts:
            local = part.mesh
            facets = part.node_numbers[local.boundaries[tag]]  # back to global vertices
            found.append(mesh.facet_table.lookup(np.sort(facets, axis=1)))
        # every tagged facet on exactly one rank; the seams between ranks untagged
        assert np.array_equal(np.sort(np.concatenate(found)), expected), tag
    for part in parts:
        local = part.mesh
        assert local.partition is part
        assert np.array_equal(part.node_numbers[local.cells_np], mesh.cells_np[part.cells])
        assert torch.equal(local.nodes, mesh.nodes[part.node_numbers])
        local.check()  # the parts are valid meshes


@pytest.mark.parametrize("cell, element", [("tri", "P3"), ("quad", "Q3"), ("tet", "P3"),
                                           ("hex", "Q2")])
def test_local_dofs_map_to_the_global_dofs_at_the_same_points(cell, element):
    """The highest-order elements: edge and face dofs must keep their orientation."""
    mesh = MESHES[cell]()
    whole = dfem.FunctionSpace(mesh, element)
    fn = lambda x: torch.sin(x[..., 0]) + x[..., 1] ** 3 - 0.5 * x[..., -1]  # noqa: E731
    u = whole.interpolate(fn)
    owner = np.full(whole.n_dofs, 99)
    seen = np.zeros(whole.n_dofs, dtype=int)
    for rank in range(3):
        part = Partition(mesh, RankOnly(rank, 3))
        space = dfem.FunctionSpace(part.mesh, element)
        dist = DofDistribution(space, part)
        numbers = dist.global_dofs
        assert torch.allclose(space.interpolate(fn), u[numbers], atol=1e-13, rtol=0)
        seen[numbers.numpy()] += 1
        owner = np.minimum(owner, np.where(np.isin(np.arange(whole.n_dofs), numbers), rank, 99))
        assert np.array_equal(dist.owner, DofDistribution(space, part).owner)
    assert (seen >= 1).all()  # every dof is on some rank; seams on several
    assert np.array_equal(owner, dist.owner)  # a dof belongs to the lowest rank that has it


def test_vector_dofs_interleave_the_components_globally_too():
    mesh = MESHES["quad"]()
    part = Partition(mesh, RankOnly(1, 2))
    space = dfem.FunctionSpace(part.mesh, "Q2", shape=(2,))
    dist = DofDistribution(space, part)
    scalar = DofDistribution(space.scalar, part).global_dofs
    assert torch.equal(dist.global_dofs.reshape(-1, 2), torch.stack([2 * scalar, 2 * scalar + 1],
                                                                    -1))


def test_point_tags_go_to_the_lowest_rank_only():
    mesh = rectangle(8, 8)
    mesh.tag_points("centre", lambda x: (abs(x[:, 0] - 0.5) < 1e-9) & (abs(x[:, 1] - 0.5) < 1e-9))
    parts = [Partition(mesh, RankOnly(r, 4)) for r in range(4)]
    holders = [p.rank for p in parts if len(p.mesh.point_tags["centre"])]
    assert len(holders) == 1  # a point load is applied once
    assert all("centre" in p.mesh.point_tags for p in parts)  # the tag exists everywhere


def test_a_distributed_matrix_is_refused_by_the_one_process_solvers():
    part = Partition(rectangle(4, 4), RankOnly(0, 2))
    space = dfem.FunctionSpace(part.mesh, "Q1")
    from dfem.solvers import factorize

    values = torch.ones(space.pattern.nnz, dtype=torch.float64)
    for method in ("direct", "cg", "amg"):
        with pytest.raises(DfemError, match="only method='petsc' solves"):
            factorize(space.pattern, values, method)
    problem = dfem.Poisson(space, f=1.0)
    with pytest.raises(DfemError, match="method='petsc'"):
        problem._amg_options("direct", {}, torch.arange(space.n_dofs))


def test_bad_owner_arrays_are_refused():
    mesh = rectangle(4, 4)
    with pytest.raises(DfemError, match="give each of the 16 cells a rank"):
        Partition(mesh, RankOnly(0, 2), owner=np.full(16, 2))
