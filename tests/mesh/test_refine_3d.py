"""Uniform refinement of tetrahedra and hexahedra: counts, geometry, conformity, tags,
numbering, differentiability and tetrahedron quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dfem.exceptions import MeshError
from dfem.mesh import REFERENCE_CELLS, Mesh, box, perturb_interior, refine

BOX = {"x": (-1.0, 0.5), "y": (0.0, 2.0), "z": (0.25, 1.0)}

MESHES = {
    "hex": lambda: box(2, 3, 2, "hex", **BOX),
    "tet": lambda: box(2, 1, 2, "tet", **BOX),
    "hex-perturbed": lambda: perturb_interior(box(3, 3, 3, "hex"), 0.1),
    "tet-perturbed": lambda: perturb_interior(box(3, 3, 3, "tet"), 0.1),
}


@pytest.fixture(params=sorted(MESHES))
def mesh(request) -> Mesh:
    return MESHES[request.param]()


def coords(mesh: Mesh) -> np.ndarray:
    return mesh.nodes.detach().numpy()


def coord_cells(mesh: Mesh) -> set:
    x = coords(mesh)
    return {frozenset(map(tuple, x[c].round(12))) for c in mesh.cells_np}


def coord_nodes(mesh: Mesh) -> set:
    return set(map(tuple, coords(mesh).round(12)))


def vector_areas(mesh: Mesh, faces: np.ndarray) -> np.ndarray:
    """Vector area ``1/2 sum x_k x x_{k+1}`` of each polygon (additive under splitting)."""
    x = coords(mesh)[faces]
    return 0.5 * np.cross(x, np.roll(x, -1, axis=1)).sum(axis=1)


def trilinear(x: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Images (E, n_points, 3) of reference points under each hexahedron's trilinear map."""
    ref = REFERENCE_CELLS["hex"].vertices
    shape = np.prod(ref[None] * points[:, None] + (1 - ref[None]) * (1 - points[:, None]), -1)
    return np.einsum("qa,eai->eqi", shape, x)


@pytest.mark.parametrize("times", [1, 2])
def test_counts_volumes_and_orientation(mesh, times):
    fine = refine(mesh, times)
    assert fine.cell_type == mesh.cell_type
    assert fine.n_cells == 8**times * mesh.n_cells
    coarse_volumes = mesh.volumes()
    volumes = fine.volumes()
    assert (volumes > 0).all()
    assert (fine.corner_jacobians() > 0).all()
    # the children of cell c are cells 8c .. 8c+7 and tile it exactly
    torch.testing.assert_close(volumes.reshape(mesh.n_cells, -1).sum(dim=1), coarse_volumes)
    torch.testing.assert_close(volumes.sum(), coarse_volumes.sum())
    extent = coords(mesh).max(axis=0) - coords(mesh).min(axis=0)
    assert float(volumes.sum()) == pytest.approx(np.prod(extent))  # the box's volume
    Mesh(fine.nodes, fine.cells_np, fine.boundaries).check()  # full check, tags included


def test_numbering(mesh):
    fine = refine(mesh)
    n, edges = mesh.n_nodes, mesh.edge_table.entities
    x = mesh.nodes
    torch.testing.assert_close(fine.nodes[:n], x, rtol=0, atol=0)
    midpoints = 0.5 * (x[edges[:, 0]] + x[edges[:, 1]])
    torch.testing.assert_close(fine.nodes[n:n + len(edges)], midpoints)
    used = np.zeros(fine.n_nodes, dtype=bool)
    used[fine.cells_np.ravel()] = True
    assert used.all()
    if mesh.cell_type == "tet":
        assert fine.n_nodes == n + len(edges)
        return
    faces = mesh.face_table.entities
    start = n + len(edges)
    assert fine.n_nodes == start + len(faces) + mesh.n_cells
    torch.testing.assert_close(fine.nodes[start:start + len(faces)], x[faces].mean(dim=1))
    torch.testing.assert_close(fine.nodes[start + len(faces):], x[mesh.cells].mean(dim=1))


def test_hex_children_are_images_of_the_reference_sub_cubes():
    mesh = perturb_interior(box(3, 2, 2, "hex"), 0.2, seed=4)
    fine = refine(mesh)
    ref = mesh.reference.vertices
    # child k is the sub-cube at reference corner k, its vertices in meshio's order
    points = (ref[:, None, :] + ref[None, :, :]) / 2  # (child, vertex, 3)
    expected = trilinear(coords(mesh)[mesh.cells_np], points.reshape(-1, 3))
    got = coords(fine)[fine.cells_np].reshape(mesh.n_cells, 64, 3)
    np.testing.assert_allclose(got, expected, atol=1e-13)


@pytest.mark.parametrize("times", [1, 2])
def test_conforming(mesh, times):
    fine = refine(mesh, times)
    per_face = np.bincount(fine.face_table.cell_entities.ravel(), minlength=len(fine.face_table))
    assert set(np.unique(per_face)) <= {1, 2}
    # a hanging node would leave extra one-sided faces inside the domain
    boundary = np.bincount(mesh.face_table.cell_entities.ravel()) == 1
    assert (per_face == 1).sum() == 4**times * boundary.sum()
    x = coords(fine)[fine.face_table.entities[per_face == 1]]  # (n, k, 3)
    lo, hi = coords(mesh).min(axis=0), coords(mesh).max(axis=0)
    on_side = (np.isclose(x, lo).all(axis=1) | np.isclose(x, hi).all(axis=1)).any(axis=1)
    assert on_side.all()


def cyclic(mesh: Mesh, faces: np.ndarray) -> np.ndarray:
    """Planar convex faces with their vertices put in cyclic order (by angle)."""
    x = coords(mesh)[faces]
    d = x - x.mean(axis=1, keepdims=True)
    normal = np.cross(d[:, 0], d[:, 1])
    u = d[:, 0] / np.linalg.norm(d[:, 0], axis=1, keepdims=True)
    v = np.cross(normal / np.linalg.norm(normal, axis=1, keepdims=True), u)
    angle = np.arctan2((d * v[:, None]).sum(-1), (d * u[:, None]).sum(-1))
    return np.take_along_axis(faces, np.argsort(angle, axis=1), axis=1)


@pytest.mark.parametrize("times", [1, 2])
def test_boundary_tags_refined(mesh, times):
    fine = refine(mesh, times)
    assert list(fine.boundaries) == list(mesh.boundaries)
    k = mesh.reference.facets.shape[1]
    lo, hi = coords(mesh).min(axis=0), coords(mesh).max(axis=0)
    for name, faces in mesh.boundaries.items():
        children = fine.boundaries[name]
        assert children.shape == (4**times * len(faces), k)
        coarse = np.linalg.norm(vector_areas(mesh, cyclic(mesh, faces)), axis=1)
        split = vector_areas(fine, children).reshape(len(faces), -1, 3)
        # the children of a face are consistently oriented and add up to its area
        np.testing.assert_allclose(np.linalg.norm(split.sum(axis=1), axis=1), coarse)
        np.testing.assert_allclose(np.linalg.norm(split, axis=2).sum(axis=1), coarse)
        axis = "xyz".index({"left": "x", "right": "x", "bottom": "y", "top": "y",
                            "front": "z", "back": "z"}[name])
        side = np.prod(np.delete(hi - lo, axis))
        assert coarse.sum() == pytest.approx(side)  # the tag's area is the box side's
    tagged = np.sort(np.concatenate(list(fine.boundaries.values())), axis=1)
    assert len(tagged) == len(fine.boundary_facets)
    assert {tuple(f) for f in tagged} == {tuple(f) for f in fine.boundary_facets}


@pytest.mark.parametrize("cell", ["hex", "tet"])
def test_tag_orientation_kept(cell):
    base = perturb_interior(box(2, 2, 2, cell), 0.1)
    # tags in cyclic order, half of each side's faces turned over
    tags = {}
    for name, faces in base.boundaries.items():
        faces = cyclic(base, faces)
        faces[::2] = faces[::2, ::-1]
        tags[name] = faces
    mesh = Mesh(base.nodes, base.cells_np, tags)
    fine = refine(mesh, times=2)
    for name, faces in tags.items():
        split = vector_areas(fine, fine.boundaries[name]).reshape(len(faces), 16, 3)
        np.testing.assert_allclose(split.sum(axis=1), vector_areas(mesh, faces), atol=1e-14)


def test_quads_out_of_cyclic_order_are_oriented_outward():
    base = box(2, 1, 3, "hex", **BOX)
    # the same faces listed by sorted vertex numbers, not around the face
    mesh = Mesh(base.nodes, base.cells_np,
                {name: np.sort(faces, axis=1) for name, faces in base.boundaries.items()})
    faces = mesh.boundaries["left"]
    sides = np.stack([faces, np.roll(faces, -1, axis=1)], axis=2)
    assert (mesh.edge_table.lookup(sides) < 0).any()
    fine = refine(mesh)
    centre = coords(mesh).mean(axis=0)
    for faces in fine.boundaries.values():
        outward = coords(fine)[faces].mean(axis=1) - centre
        assert ((vector_areas(fine, faces) * outward).sum(axis=1) > 0).all()


def test_tag_children_in_face_order():
    base = box(1, 1, 1, "hex")
    face = cyclic(base, base.boundaries["front"])[0]
    mesh = Mesh(base.nodes, base.cells_np, {"front": face[None]})
    children = refine(mesh).boundaries["front"]
    # child j starts at the face's vertex j (corner children), the centre inside all four
    np.testing.assert_array_equal(children[[0, 1, 2, 3], [0, 1, 2, 3]], face)
    centre = mesh.n_nodes + len(mesh.edge_table) + mesh.face_table.lookup(face[None])[0]
    np.testing.assert_array_equal(children[[0, 1, 2, 3], [2, 3, 0, 1]], [centre] * 4)


@pytest.mark.parametrize("cell", ["hex", "tet"])
def test_refined_box_is_the_finer_box(cell):
    fine = refine(box(1, 2, 1, cell, **BOX))
    direct = box(2, 4, 2, cell, **BOX)
    assert fine.n_cells == direct.n_cells
    assert coord_nodes(fine) == coord_nodes(direct)
    twice = refine(box(1, 1, 1, cell), times=2)
    direct = box(4, 4, 4, cell)
    assert twice.n_cells == direct.n_cells
    assert coord_nodes(twice) == coord_nodes(direct)
    if cell == "hex":
        assert coord_cells(fine) == coord_cells(box(2, 4, 2, cell, **BOX))
        assert coord_cells(twice) == coord_cells(direct)
        for name in direct.boundaries:
            assert ({frozenset(map(tuple, coords(twice)[f].round(12)))
                     for f in twice.boundaries[name]}
                    == {frozenset(map(tuple, coords(direct)[f].round(12)))
                        for f in direct.boundaries[name]})


def test_times_compose():
    mesh = box(1, 1, 2, "tet")
    twice, again = refine(mesh, times=2), refine(refine(mesh))
    torch.testing.assert_close(twice.nodes, again.nodes)
    np.testing.assert_array_equal(twice.cells_np, again.cells_np)
    assert refine(mesh, times=0) is mesh


@pytest.mark.parametrize("cell", ["hex", "tet"])
def test_volume_gradient_matches_coarse_mesh(cell):
    base = perturb_interior(box(3, 2, 2, cell), 0.1, seed=2)
    x = base.nodes.clone().requires_grad_(True)
    coarse = base.with_nodes(x)
    (g_coarse,) = torch.autograd.grad(coarse.volumes().sum(), x)
    (g_fine,) = torch.autograd.grad(refine(coarse, times=2).volumes().sum(), x)
    assert g_coarse.abs().sum() > 0  # boundary nodes move the volume
    torch.testing.assert_close(g_fine, g_coarse)


def test_refined_nodes_are_differentiable():
    base = perturb_interior(box(2, 1, 1, "hex"), 0.1)

    def fine_nodes(x):
        return refine(base.with_nodes(x, check=False)).nodes

    x = base.nodes.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fine_nodes, (x,))


def test_dtype_and_empty_tags_kept():
    for cell, k in (("hex", 4), ("tet", 3)):
        mesh = box(1, 1, 1, cell, dtype=torch.float32)
        fine = refine(Mesh(mesh.nodes, mesh.cells_np, {"none": np.zeros((0, k), int)}))
        assert fine.dtype == torch.float32
        assert fine.device == torch.device("cpu")
        assert fine.boundaries["none"].shape == (0, k)


def quality(mesh: Mesh) -> float:
    """Worst ratio of a tetrahedron's longest edge to the cube root of its volume."""
    x = mesh.nodes.detach()[mesh.cells]
    pairs = mesh.reference.edges
    longest = torch.linalg.vector_norm(x[:, pairs[:, 1]] - x[:, pairs[:, 0]], dim=-1).amax(1)
    return float((longest / mesh.volumes().detach() ** (1 / 3)).max())


@pytest.mark.parametrize("mesh_name", ["tet", "tet-perturbed"])
def test_tet_quality_stays_bounded(mesh_name):
    mesh = MESHES[mesh_name]()
    coarse = quality(mesh)
    worst = []
    for _ in range(3):
        mesh = refine(mesh)
        worst.append(quality(mesh))
    assert max(worst) <= 2 * coarse
    assert worst[2] <= worst[0] * (1 + 1e-9)  # no further decay after the first split
    # Bey's rule: at most three similarity classes per coarse tetrahedron
    x = mesh.nodes.detach()[mesh.cells]
    pairs = mesh.reference.edges
    lengths = torch.linalg.vector_norm(x[:, pairs[:, 1]] - x[:, pairs[:, 0]], dim=-1)
    lengths = lengths / lengths.amax(1, keepdim=True)
    shapes = np.sort(lengths.numpy(), axis=1).round(8).reshape(mesh.n_cells // 512, 512, 6)
    assert max(len(np.unique(s, axis=0)) for s in shapes) <= 3


# Bey's children of (x0, x1, x2, x3) by the vertices they average, in his vertex order
BEY = [[(0,), (0, 1), (0, 2), (0, 3)], [(0, 1), (1,), (1, 2), (1, 3)],
       [(0, 2), (1, 2), (2,), (2, 3)], [(0, 3), (1, 3), (2, 3), (3,)],
       [(0, 1), (0, 2), (0, 3), (1, 3)], [(0, 1), (0, 2), (1, 2), (1, 3)],
       [(0, 2), (0, 3), (1, 3), (2, 3)], [(0, 2), (1, 2), (1, 3), (2, 3)]]


def test_tets_are_beys_split_positively_oriented():
    """The children equal Bey's (whose vertex order leaves some inverted) at every level."""
    mesh = perturb_interior(box(2, 2, 2, "tet"), 0.1)
    x = coords(mesh)[mesh.cells_np]
    for _ in range(3):
        x = np.stack([np.stack([x[:, list(p)].mean(axis=1) for p in child], axis=1)
                      for child in BEY], axis=1).reshape(-1, 4, 3)
        mesh = refine(mesh)
        assert coord_cells(mesh) == {frozenset(map(tuple, t.round(12))) for t in x}
        assert (mesh.volumes() > 0).all()


@pytest.mark.parametrize(("cell", "bad"), [("tet", [1, 2, 4]), ("hex", [0, 1, 7, 6])])
def test_tag_naming_a_non_face_is_reported(cell, bad):
    mesh = box(1, 1, 1, cell)
    broken = Mesh(mesh.nodes, mesh.cells_np, {"cut": [bad]}, check=False)
    with pytest.raises(MeshError, match=f"'cut' names face \\[{', '.join(map(str, bad))}\\]"):
        refine(broken)
