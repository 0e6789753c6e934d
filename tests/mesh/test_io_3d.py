"""Reading and writing 3D meshes: tetrahedra and hexahedra, face tags, orientation, errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import meshio
import numpy as np
import pytest
import torch

from dfem.exceptions import DfemError, MeshError
from dfem.mesh import Mesh, box, perturb_interior, read_mesh, write_mesh

CASES = Path(__file__).resolve().parents[2] / "cases" / "meshes"
BLOCK = CASES / "block_with_hole.msh"
HAS_H5PY = importlib.util.find_spec("h5py") is not None
FORMATS = [".vtu", ".msh", pytest.param(".xdmf", marks=pytest.mark.skipif(
    not HAS_H5PY, reason="meshio needs h5py for XDMF"))]

# The unit cube as one hexahedron (meshio order) and as the six tetrahedra of box(1, "tet").
CUBE = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0],
                 [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float)
HEX = np.arange(8)[None]


def write_gmsh22(path: Path, raw: meshio.Mesh) -> Path:
    """Write ``raw`` as gmsh 2.2 ASCII, its physical tags doubling as geometrical ones."""
    raw.cell_data["gmsh:geometrical"] = raw.cell_data["gmsh:physical"]
    meshio.write(path, raw, file_format="gmsh22", binary=False)
    return path


def tets_of_cube() -> np.ndarray:
    mesh = box(1, cell="tet")
    # box numbers the corners 4 z + 2 y + x; CUBE numbers them in meshio's order
    to_cube = np.array([0, 1, 3, 2, 4, 5, 7, 6])
    return to_cube[mesh.cells_np]


def face_sets(mesh: Mesh, faces) -> set:
    """Faces as sets of vertex coordinates, comparable across node numberings."""
    x = mesh.nodes.detach().numpy()
    return {frozenset(map(tuple, x[list(f)].round(12).tolist())) for f in np.asarray(faces)}


def triangle_areas(mesh: Mesh, faces: np.ndarray) -> np.ndarray:
    x = mesh.nodes.detach().numpy()[faces]
    return 0.5 * np.linalg.norm(np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]), axis=1)


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("cell", ["hex", "tet"])
def test_round_trip_keeps_mesh_and_tags(tmp_path, ext, cell):
    mesh = perturb_interior(box(2, 3, 2, cell, x=(-1.0, 2.0), z=(0.0, 0.5)), seed=3)
    centres = mesh.nodes[mesh.cells].mean(1)
    cell_tags = {"low x": np.nonzero((centres[:, 0] < 0.5).numpy())[0]}
    u = mesh.nodes * 2.0 - 1.0  # a 3-component nodal vector
    path = tmp_path / f"out{ext}"
    write_mesh(path, mesh, point_data={"u": u}, cell_tags=cell_tags, vectors=["u"])

    back, tags = read_mesh(path, return_cell_tags=True)
    assert back.cell_type == cell and back.dim == 3
    torch.testing.assert_close(back.nodes, mesh.nodes, rtol=0, atol=0)
    np.testing.assert_array_equal(back.cells_np, mesh.cells_np)
    torch.testing.assert_close(back.volumes(), mesh.volumes(), rtol=0, atol=0)
    assert list(back.boundaries) == ["left", "right", "bottom", "top", "front", "back"]
    for name, faces in mesh.boundaries.items():
        np.testing.assert_array_equal(back.boundaries[name], faces)
    assert list(tags) == ["low x"]
    np.testing.assert_array_equal(tags["low x"], cell_tags["low x"])

    raw = meshio.read(path)
    facet = "quad" if cell == "hex" else "triangle"
    assert [b.type for b in raw.cells] == [{"hex": "hexahedron", "tet": "tetra"}[cell], facet]
    np.testing.assert_array_equal(raw.point_data["u"], u.numpy())


def test_round_trip_vtk_and_binary_gmsh(tmp_path):
    mesh = box(2, 1, 1, "tet")
    write_mesh(tmp_path / "out.vtk", mesh)
    back = read_mesh(tmp_path / "out.vtk")
    # Legacy VTK has no place for names: tags come back numbered in the mesh's order.
    assert list(back.boundaries) == ["1", "2", "3", "4", "5", "6"]
    for number, faces in zip(back.boundaries.values(), mesh.boundaries.values(), strict=True):
        np.testing.assert_array_equal(number, faces)

    write_mesh(tmp_path / "out.msh", mesh)
    meshio.write(tmp_path / "bin.msh", meshio.read(tmp_path / "out.msh"),
                 file_format="gmsh22", binary=True)
    back = read_mesh(tmp_path / "bin.msh")
    np.testing.assert_array_equal(back.cells_np, mesh.cells_np)
    assert list(back.boundaries) == list(mesh.boundaries)


def test_medit_tetrahedra(tmp_path):
    mesh = box(1, 1, 2, "tet")
    faces = np.concatenate(list(mesh.boundaries.values()))
    refs = np.repeat(np.arange(1, 7), [len(f) for f in mesh.boundaries.values()])
    raw = meshio.Mesh(mesh.nodes.numpy(), [("tetra", mesh.cells_np), ("triangle", faces)],
                      cell_data={"medit:ref": [np.zeros(mesh.n_cells, int), refs]})
    path = tmp_path / "cube.mesh"
    meshio.write(path, raw)
    back = read_mesh(path)
    assert back.cell_type == "tet"
    assert sorted(back.boundaries) == ["1", "2", "3", "4", "5", "6"]
    np.testing.assert_array_equal(back.boundaries["6"], mesh.boundaries["back"])


# --------------------------------------------------------------------------- gmsh geometry
def test_block_with_hole():
    mesh, cell_tags = read_mesh(BLOCK, return_cell_tags=True)
    assert (mesh.cell_type, mesh.dim) == ("tet", 3)
    assert 5_000 <= mesh.n_cells <= 20_000
    assert sorted(mesh.boundaries) == ["hole", "left", "right", "walls"]
    assert list(cell_tags) == ["solid"]
    np.testing.assert_array_equal(cell_tags["solid"], np.arange(mesh.n_cells))

    # The tags cover the boundary exactly: every boundary face once, nothing else.
    tagged = np.sort(np.concatenate(list(mesh.boundaries.values())), axis=1)
    assert len(np.unique(tagged, axis=0)) == len(tagged)
    np.testing.assert_array_equal(np.unique(tagged, axis=0),
                                  np.unique(mesh.boundary_facets, axis=0))

    volumes = mesh.volumes()
    assert (volumes > 0).all()
    exact = 2.0 - np.pi * 0.25**2
    assert float(volumes.sum()) == pytest.approx(exact, rel=1e-2)
    assert float(volumes.sum()) > exact  # the faceted hole is smaller than the cylinder

    x = mesh.nodes.numpy()
    assert np.allclose(x[mesh.boundaries["left"], 0], 0.0)
    assert np.allclose(x[mesh.boundaries["right"], 0], 2.0)
    hole = x[mesh.boundaries["hole"]]
    radius = np.hypot(hole[..., 0] - 1.0, hole[..., 1] - 0.5)
    np.testing.assert_allclose(radius, 0.25, atol=1e-9)
    assert triangle_areas(mesh, mesh.boundaries["left"]).sum() == pytest.approx(1.0)
    assert triangle_areas(mesh, mesh.boundaries["hole"]).sum() == pytest.approx(
        2 * np.pi * 0.25, rel=2e-2)
    walls = triangle_areas(mesh, mesh.boundaries["walls"]).sum()
    assert walls == pytest.approx(8.0 - 2 * np.pi * 0.25**2, rel=1e-2)


# --------------------------------------------------------------------------- orientation
def test_inverted_tetrahedra_are_reoriented(tmp_path):
    tets = tets_of_cube()
    flipped = tets.copy()
    flipped[::2] = flipped[::2, [0, 1, 3, 2]]  # every other tetrahedron inverted
    path = tmp_path / "tets.vtu"
    meshio.write(path, meshio.Mesh(CUBE, [("tetra", flipped)]))
    mesh = read_mesh(path)
    assert (mesh.volumes() > 0).all()
    assert float(mesh.volumes().sum()) == pytest.approx(1.0)
    assert [set(c) for c in mesh.cells_np] == [set(c) for c in flipped]
    np.testing.assert_array_equal(mesh.cells_np[:, 0], flipped[:, 0])
    np.testing.assert_array_equal(mesh.cells_np[1::2], flipped[1::2])  # good cells kept


@pytest.mark.parametrize("mirror", [[4, 5, 6, 7, 0, 1, 2, 3], [1, 0, 3, 2, 5, 4, 7, 6]])
def test_mirrored_hexahedra_are_reoriented(tmp_path, mirror):
    # Two cubes side by side, the second mirrored: all its corner Jacobians negative.
    points = np.concatenate([CUBE, CUBE[[1, 2, 5, 6]] + [1, 0, 0]])
    right = np.array([1, 8, 9, 2, 5, 10, 11, 6])
    hexes = np.stack([HEX[0], right[mirror]])
    path = tmp_path / "hexes.vtu"
    meshio.write(path, meshio.Mesh(points, [("hexahedron", hexes)]))
    mesh = read_mesh(path)
    assert (mesh.corner_jacobians() > 0).all()
    torch.testing.assert_close(mesh.volumes(), torch.ones(2, dtype=torch.float64))
    assert [set(c) for c in mesh.cells_np] == [set(c) for c in hexes]
    np.testing.assert_array_equal(mesh.cells_np[0], hexes[0])


def test_twisted_hexahedron_still_rejected(tmp_path):
    twisted = HEX[:, [1, 0, 2, 3, 4, 5, 6, 7]]  # two corners swapped: mixed signs
    path = tmp_path / "twisted.vtu"
    meshio.write(path, meshio.Mesh(CUBE, [("hexahedron", twisted)]))
    with pytest.raises(MeshError, match="non-positive Jacobian") as info:
        read_mesh(path)
    assert str(path) in str(info.value)


def test_flat_tetrahedra_are_rejected(tmp_path):
    flat = CUBE[:4] + [0, 0, 0.5]  # all nodes at z = 0.5
    path = tmp_path / "flat.vtu"
    meshio.write(path, meshio.Mesh(flat, [("tetra", np.array([[0, 1, 2, 3]]))]))
    with pytest.raises(MeshError, match=r"3D cells \(tetra\).*share one z.*flat"):
        read_mesh(path)


def test_triangles_at_constant_z_stay_2d(tmp_path):
    points = CUBE[:4] + [0, 0, 3.0]
    path = tmp_path / "tri.vtu"
    meshio.write(path, meshio.Mesh(points, [("triangle", np.array([[0, 1, 2], [0, 2, 3]]))]))
    mesh = read_mesh(path)
    assert (mesh.cell_type, mesh.dim) == ("tri", 2)


# --------------------------------------------------------------------------- cell types
def mixed_file(tmp_path) -> Path:
    # The unit cube as six tetrahedra and a hexahedron next to it on [1, 2] x [0, 1]^2.
    points = np.concatenate([CUBE, CUBE[[1, 2, 5, 6]] + [1, 0, 0]])
    hexes = np.array([[1, 8, 9, 2, 5, 10, 11, 6]])
    raw = meshio.Mesh(
        points,
        [("tetra", tets_of_cube()), ("hexahedron", hexes),
         ("triangle", np.array([[0, 3, 7], [0, 7, 4]])), ("quad", np.array([[8, 9, 11, 10]])),
         ("line", np.array([[0, 1]]))],
        cell_data={"gmsh:physical": [np.full(6, 1), np.array([2]), np.array([3, 3]),
                                     np.array([4]), np.array([5])]},
        field_data={"tets": np.array([1, 3]), "hex": np.array([2, 3]),
                    "x0": np.array([3, 2]), "x2": np.array([4, 2]), "edge": np.array([5, 1])},
    )
    return write_gmsh22(tmp_path / "mixed.msh", raw)


def test_mixed_tets_and_hexes_need_cell_type(tmp_path):
    path = mixed_file(tmp_path)
    with pytest.raises(MeshError, match="both hexahedra and tetrahedra; mixed meshes are "
                                        "not supported.*cell_type='hex' or cell_type='tet'"):
        read_mesh(path)

    tets, tags = read_mesh(path, cell_type="tetra", return_cell_tags=True)
    assert (tets.cell_type, tets.n_cells, tets.n_nodes) == ("tet", 6, 8)
    assert float(tets.volumes().sum()) == pytest.approx(1.0)
    assert list(tets.boundaries) == ["x0"]  # the line "edge" is no face; "x2" is the hex's
    assert face_sets(tets, tets.boundaries["x0"]) == {
        frozenset(map(tuple, CUBE[face].tolist())) for face in ([0, 3, 7], [0, 7, 4])}
    assert list(tags) == ["tets"]

    hexes, tags = read_mesh(path, cell_type="hex", return_cell_tags=True)
    assert (hexes.cell_type, hexes.n_cells, hexes.n_nodes) == ("hex", 1, 8)
    assert list(hexes.boundaries) == ["x2"]
    assert list(tags) == ["hex"]

    # Its triangles and quadrilaterals are faces: they cannot make a 2D mesh of the file.
    with pytest.raises(MeshError, match="no triangle cells.*cell_type must be.*'hex' or 'tet'"):
        read_mesh(path, cell_type="tri")
    with pytest.raises(DfemError, match="cell_type must be 'tri', 'quad', 'tet' or 'hex'"):
        read_mesh(path, cell_type="wedge")


@pytest.mark.parametrize("kind, cells", [
    ("wedge", np.array([[0, 1, 3, 4, 5, 7]])),
    ("pyramid", np.array([[0, 1, 2, 3, 4]])),
    ("tetra10", np.arange(10)[None] % 8),
])
def test_unsupported_3d_cells(tmp_path, kind, cells):
    path = tmp_path / f"{kind}.vtu"
    meshio.write(path, meshio.Mesh(CUBE, [(kind, cells)]))
    with pytest.raises(MeshError, match=f"holds {kind} cells; dfem reads only .*tetra.*"
                                        "hexahedron") as info:
        read_mesh(path)
    assert "cell_type" not in str(info.value)  # nothing to keep


def test_unsupported_beside_supported_cells_hints_at_cell_type(tmp_path):
    points = np.concatenate([CUBE, [[2.0, 0.5, 0.5]]])
    raw = meshio.Mesh(points, [("hexahedron", HEX), ("pyramid", np.array([[1, 2, 6, 5, 8]]))])
    path = tmp_path / "hex_pyramid.vtu"
    meshio.write(path, raw)
    with pytest.raises(MeshError, match="pyramid.*Pass cell_type='hex'"):
        read_mesh(path)
    assert read_mesh(path, cell_type="hex").n_cells == 1


# --------------------------------------------------------------------------- tags
def test_face_tag_that_is_not_a_face(tmp_path):
    tets = tets_of_cube()
    raw = meshio.Mesh(
        CUBE,
        [("tetra", tets), ("triangle", np.array([[0, 3, 7], [0, 1, 7]]))],  # 0-1-7: no face
        cell_data={"gmsh:physical": [np.zeros(6, int), np.array([2, 2])]},
        field_data={"inlet": np.array([2, 2])},
    )
    path = write_gmsh22(tmp_path / "bad.msh", raw)
    with pytest.raises(MeshError, match=r"boundary tag 'inlet' names face \[0, 1, 7\].*not a "
                                        "face of any cell") as info:
        read_mesh(path)
    assert str(path) in str(info.value)


def test_names_are_matched_by_dimension(tmp_path):
    # Physical surface 1 and physical volume 1 are different groups with different names.
    mesh = box(1, cell="hex")
    faces = mesh.boundaries["left"]
    raw = meshio.Mesh(
        mesh.nodes.numpy(), [("hexahedron", mesh.cells_np), ("quad", faces)],
        cell_data={"gmsh:physical": [np.array([1]), np.array([1])]},
        field_data={"inflow": np.array([1, 2]), "body": np.array([1, 3])},
    )
    back, tags = read_mesh(write_gmsh22(tmp_path / "dims.msh", raw), return_cell_tags=True)
    assert list(back.boundaries) == ["inflow"]
    np.testing.assert_array_equal(back.boundaries["inflow"], faces)
    assert list(tags) == ["body"]
