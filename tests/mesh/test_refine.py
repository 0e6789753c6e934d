"""Uniform refinement: counts, geometry, tags, numbering, differentiability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dfem.exceptions import DfemError, MeshError
from dfem.mesh import Mesh, read_mesh, rectangle, refine

DATA = Path(__file__).resolve().parent.parent / "data"


def perturbed(cell: str, seed: int = 0) -> Mesh:
    """A 3 x 2 rectangle mesh with its interior nodes moved: general (non-affine) cells."""
    mesh = rectangle(3, 2, cell, diagonal="alternate")
    rng = np.random.default_rng(seed)
    x = mesh.nodes.numpy().copy()
    inside = (x[:, 0] > 0) & (x[:, 0] < 1) & (x[:, 1] > 0) & (x[:, 1] < 1)
    x[inside] += rng.uniform(-0.08, 0.08, size=(inside.sum(), 2))
    return Mesh(x, mesh.cells_np, mesh.boundaries)


MESHES = {
    "tri": lambda: rectangle(2, 3, "tri", x=(-1.0, 1.5)),
    "quad": lambda: rectangle(2, 3, "quad", x=(-1.0, 1.5)),
    "tri-perturbed": lambda: perturbed("tri"),
    "quad-perturbed": lambda: perturbed("quad"),
    "file": lambda: read_mesh(DATA / "square_tagged.msh"),
}


def coord_cells(mesh: Mesh) -> set:
    x = mesh.nodes.detach().numpy()
    return {frozenset(map(tuple, x[c].round(12))) for c in mesh.cells_np}


def lengths(mesh: Mesh, pairs) -> np.ndarray:
    x = mesh.nodes.detach().numpy()
    pairs = np.asarray(pairs)
    return np.linalg.norm(x[pairs[:, 1]] - x[pairs[:, 0]], axis=1)


@pytest.fixture(params=sorted(MESHES))
def mesh(request) -> Mesh:
    return MESHES[request.param]()


def test_counts_and_numbering(mesh):
    fine = refine(mesh)
    n_edges = len(mesh.edge_table.edges)
    extra = mesh.n_cells if mesh.cell_type == "quad" else 0
    assert fine.cell_type == mesh.cell_type
    assert fine.n_cells == 4 * mesh.n_cells
    assert fine.n_nodes == mesh.n_nodes + n_edges + extra
    # Old nodes keep their numbers; edge midpoints follow in edge-table order.
    torch.testing.assert_close(fine.nodes[: mesh.n_nodes], mesh.nodes, rtol=0, atol=0)
    e = mesh.edge_table.edges
    mid = 0.5 * (mesh.nodes[e[:, 0]] + mesh.nodes[e[:, 1]])
    torch.testing.assert_close(fine.nodes[mesh.n_nodes : mesh.n_nodes + n_edges], mid)
    # Every vertex of the coarse mesh is a vertex of the fine one.
    used = np.zeros(fine.n_nodes, dtype=bool)
    used[fine.cells_np.ravel()] = True
    assert used.all()


def test_geometry_preserved_and_valid(mesh):
    fine = refine(mesh)
    fine.check()
    areas = fine.signed_areas()
    assert (areas > 0).all()
    # The children of cell c are cells 4c .. 4c+3 and tile it exactly.
    torch.testing.assert_close(areas.reshape(-1, 4).sum(dim=1), mesh.signed_areas())
    torch.testing.assert_close(areas.sum(), mesh.signed_areas().sum())


def test_boundary_tags_refined(mesh):
    fine = refine(mesh)
    assert list(fine.boundaries) == list(mesh.boundaries)
    for name, pairs in mesh.boundaries.items():
        halves = fine.boundaries[name]
        assert len(halves) == 2 * len(pairs)
        coarse_len = lengths(mesh, pairs)
        fine_len = lengths(fine, halves)
        np.testing.assert_allclose(
            fine_len.reshape(-1, 2), np.repeat(coarse_len[:, None] / 2, 2, 1)
        )
        assert fine_len.sum() == pytest.approx(coarse_len.sum())
        # Each half keeps the coarse edge's direction: start, midpoint, end.
        np.testing.assert_array_equal(halves[0::2, 0], pairs[:, 0])
        np.testing.assert_array_equal(halves[1::2, 1], pairs[:, 1])
        np.testing.assert_array_equal(halves[0::2, 1], halves[1::2, 0])
    # Tags that covered the boundary still cover it exactly.
    tagged = np.sort(np.concatenate(list(fine.boundaries.values())), axis=1)
    assert {tuple(p) for p in tagged} == {tuple(p) for p in fine.boundary_edges}


@pytest.mark.parametrize("cell", ["quad", "tri"])
def test_refined_rectangle_is_the_finer_rectangle(cell):
    fine = refine(rectangle(2, 2, cell))
    direct = rectangle(4, 4, cell)
    assert coord_cells(fine) == coord_cells(direct)
    assert refine(rectangle(1, 1, cell), times=2).n_cells == direct.n_cells
    assert coord_cells(refine(rectangle(1, 1, cell), times=2)) == coord_cells(direct)


def test_times():
    mesh = rectangle(2, 1, "tri")
    assert refine(mesh, times=0) is mesh
    twice = refine(mesh, times=2)
    again = refine(refine(mesh))
    torch.testing.assert_close(twice.nodes, again.nodes)
    np.testing.assert_array_equal(twice.cells_np, again.cells_np)
    assert twice.n_cells == 16 * mesh.n_cells
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(DfemError, match="non-negative integer"):
            refine(mesh, times=bad)


def test_area_gradient_matches_coarse_mesh():
    for cell in ("tri", "quad"):
        base = perturbed(cell, seed=3)
        x = base.nodes.clone().requires_grad_(True)
        coarse = base.with_nodes(x)
        (g_coarse,) = torch.autograd.grad(coarse.signed_areas().sum(), x)
        (g_fine,) = torch.autograd.grad(refine(coarse, times=2).signed_areas().sum(), x)
        assert g_coarse.abs().sum() > 0  # boundary nodes move the area
        torch.testing.assert_close(g_fine, g_coarse)


def test_refined_nodes_are_differentiable():
    base = perturbed("quad", seed=1)

    def fine_nodes(x):
        return refine(base.with_nodes(x, check=False)).nodes

    x = base.nodes.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fine_nodes, (x,))


def test_dtype_kept():
    mesh = rectangle(2, 2, "quad", dtype=torch.float32)
    fine = refine(mesh)
    assert fine.dtype == torch.float32
    assert fine.device == mesh.device


def test_tag_naming_a_non_edge_is_reported():
    mesh = rectangle(1, 1, "tri")
    broken = Mesh(mesh.nodes, mesh.cells_np, {"diag": [[1, 2]]}, check=False)
    with pytest.raises(MeshError, match="'diag' names edge \\[1, 2\\]"):
        refine(broken)
