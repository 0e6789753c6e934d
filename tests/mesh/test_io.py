"""Reading and writing mesh files: formats, tags, orientation, errors, round trips."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import meshio
import numpy as np
import pytest
import torch

from dfem.exceptions import DfemError, MeshError
from dfem.mesh import Mesh, read_mesh, rectangle, refine, write_mesh

DATA = Path(__file__).resolve().parent.parent / "data"
HAS_H5PY = importlib.util.find_spec("h5py") is not None

# A unit square cut into four triangles around its centre, plus one geometry point
# (node 5) that no cell uses. Sides: bottom 0-1, right 1-2, top 2-3, left 3-0.
POINTS = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.5, 0], [3, 3, 0.0]])
TRIANGLES = np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
LINES = np.array([[0, 1], [1, 2], [2, 3], [3, 0]])
LINE_TAGS = np.array([1, 2, 3, 3])  # inlet, outlet, wall, wall
FIELD_DATA = {
    "inlet": np.array([1, 1]),
    "outlet": np.array([2, 1]),
    "wall": np.array([3, 1]),
    "domain": np.array([7, 2]),
}


def coord_edges(mesh: Mesh, pairs) -> set:
    """Edges as sets of vertex coordinates, comparable across node numberings."""
    x = mesh.nodes.detach().numpy()
    return {frozenset(map(tuple, x[list(p)].round(12))) for p in np.asarray(pairs)}


def coord_cells(mesh: Mesh) -> set:
    x = mesh.nodes.detach().numpy()
    return {frozenset(map(tuple, x[c].round(12))) for c in mesh.cells_np}


def expected_square_tags():
    return {
        "inlet": {frozenset({(0.0, 0.0), (1.0, 0.0)})},
        "outlet": {frozenset({(1.0, 0.0), (1.0, 1.0)})},
        "wall": {frozenset({(1.0, 1.0), (0.0, 1.0)}), frozenset({(0.0, 1.0), (0.0, 0.0)})},
    }


def check_square(mesh: Mesh, names=("inlet", "outlet", "wall")):
    assert mesh.cell_type == "tri"
    assert mesh.n_nodes == 5  # the geometry point is gone
    assert mesh.n_cells == 4
    assert float(mesh.signed_areas().sum()) == pytest.approx(1.0)
    assert (mesh.signed_areas() > 0).all()
    expected = expected_square_tags()
    assert sorted(mesh.boundaries) == sorted(names)
    for name, key in zip(names, ("inlet", "outlet", "wall"), strict=True):
        assert coord_edges(mesh, mesh.boundaries[name]) == expected[key]


def gmsh_mesh() -> meshio.Mesh:
    cells = [("vertex", np.array([[0], [5]])), ("line", LINES), ("triangle", TRIANGLES)]
    physical = [np.array([0, 0]), LINE_TAGS, np.full(4, 7)]
    geometrical = [np.array([1, 2]), np.array([1, 2, 3, 4]), np.ones(4, dtype=int)]
    return meshio.Mesh(
        POINTS,
        cells,
        cell_data={"gmsh:physical": physical, "gmsh:geometrical": geometrical},
        field_data=FIELD_DATA,
    )


# --------------------------------------------------------------------------- formats
def test_shipped_gmsh22_file():
    mesh, cell_tags = read_mesh(DATA / "square_tagged.msh", return_cell_tags=True)
    assert mesh.cell_type == "tri"
    assert (mesh.n_nodes, mesh.n_cells) == (6, 5)  # node (2, 2) is a geometry point only
    assert not (mesh.nodes == 2.0).all(dim=1).any()
    assert float(mesh.signed_areas().sum()) == pytest.approx(1.0)
    assert sorted(mesh.boundaries) == ["inlet", "outlet", "wall"]
    assert coord_edges(mesh, mesh.boundaries["inlet"]) == {
        frozenset({(0.0, 1.0), (0.0, 0.5)}),
        frozenset({(0.0, 0.5), (0.0, 0.0)}),
    }
    assert coord_edges(mesh, mesh.boundaries["outlet"]) == {frozenset({(1.0, 0.0), (1.0, 1.0)})}
    assert coord_edges(mesh, mesh.boundaries["wall"]) == {
        frozenset({(0.0, 0.0), (1.0, 0.0)}),
        frozenset({(1.0, 1.0), (0.0, 1.0)}),
    }
    assert list(cell_tags) == ["domain"]
    np.testing.assert_array_equal(cell_tags["domain"], np.arange(5))
    # The tags cover the whole boundary.
    tagged = np.concatenate(list(mesh.boundaries.values()))
    assert coord_edges(mesh, tagged) == coord_edges(mesh, mesh.boundary_edges)


@pytest.mark.parametrize("binary", [False, True])
def test_gmsh22_with_physical_groups(tmp_path, binary):
    path = tmp_path / "square.msh"
    meshio.write(path, gmsh_mesh(), file_format="gmsh22", binary=binary)
    mesh, cell_tags = read_mesh(path, return_cell_tags=True)
    check_square(mesh)
    assert list(cell_tags) == ["domain"]
    np.testing.assert_array_equal(cell_tags["domain"], np.arange(4))


def test_gmsh22_unnamed_groups_are_named_by_number(tmp_path):
    raw = gmsh_mesh()
    raw.field_data = {}
    path = tmp_path / "square.msh"
    meshio.write(path, raw, file_format="gmsh22", binary=False)
    mesh, cell_tags = read_mesh(path, return_cell_tags=True)
    check_square(mesh, names=("1", "2", "3"))
    assert list(cell_tags) == ["7"]


GMSH41 = """\
$MeshFormat
4.1 0 8
$EndMeshFormat
$PhysicalNames
3
1 1 "bottom"
1 2 "rest"
2 3 "domain"
$EndPhysicalNames
$Entities
0 4 1 0
1 0 0 0 1 0 0 1 1 0
2 1 0 0 1 1 0 1 2 0
3 0 1 0 1 1 0 1 2 0
4 0 0 0 0 1 0 1 2 0
1 0 0 0 1 1 0 1 3 4 1 2 3 4
$EndEntities
$Nodes
1 6 1 6
2 1 0 6
1
2
3
4
5
6
0 0 0
1 0 0
1 1 0
0 1 0
0.5 0.5 0
9 9 0
$EndNodes
$Elements
5 8 1 8
1 1 1 1
1 1 2
1 2 1 1
2 2 3
1 3 1 1
3 3 4
1 4 1 1
4 4 1
2 1 2 4
5 1 2 5
6 2 3 5
7 3 4 5
8 4 1 5
$EndElements
"""


def test_gmsh41_with_physical_groups(tmp_path):
    path = tmp_path / "square41.msh"
    path.write_text(GMSH41)
    mesh, cell_tags = read_mesh(path, return_cell_tags=True)
    assert (mesh.n_nodes, mesh.n_cells) == (5, 4)
    assert float(mesh.signed_areas().sum()) == pytest.approx(1.0)
    expected = expected_square_tags()
    assert sorted(mesh.boundaries) == ["bottom", "rest"]
    assert coord_edges(mesh, mesh.boundaries["bottom"]) == expected["inlet"]
    assert coord_edges(mesh, mesh.boundaries["rest"]) == expected["outlet"] | expected["wall"]
    np.testing.assert_array_equal(cell_tags["domain"], np.arange(4))


@pytest.mark.parametrize("ext", [".vtu", ".vtk"])
def test_vtk_formats_with_boundary_cell_data(tmp_path, ext):
    raw = meshio.Mesh(
        POINTS,
        [("triangle", TRIANGLES), ("line", LINES)],
        cell_data={"boundary": [np.zeros(4, dtype=int), LINE_TAGS]},
    )
    path = tmp_path / f"square{ext}"
    meshio.write(path, raw)
    mesh = read_mesh(path)
    check_square(mesh, names=("1", "2", "3"))


def test_vtu_with_float_tags_and_custom_key(tmp_path):
    raw = meshio.Mesh(
        POINTS,
        [("triangle", TRIANGLES), ("line", LINES)],
        cell_data={"facet_marker": [np.zeros(4), LINE_TAGS.astype(float)]},
    )
    path = tmp_path / "square.vtu"
    meshio.write(path, raw)
    # Not a recognised key: no tags unless asked for.
    assert read_mesh(path).boundaries == {}
    check_square(read_mesh(path, boundary_key="facet_marker"), names=("1", "2", "3"))
    with pytest.raises(MeshError, match="no cell data 'nope'.*facet_marker"):
        read_mesh(path, boundary_key="nope")


def test_medit_refs(tmp_path):
    raw = meshio.Mesh(
        POINTS[:5, :2],
        [("triangle", TRIANGLES), ("line", LINES)],
        cell_data={"medit:ref": [np.zeros(4, dtype=int), LINE_TAGS]},
    )
    path = tmp_path / "square.mesh"
    meshio.write(path, raw)
    check_square(read_mesh(path), names=("1", "2", "3"))


@pytest.mark.skipif(not HAS_H5PY, reason="meshio needs h5py for XDMF")
def test_xdmf(tmp_path):
    raw = meshio.Mesh(
        POINTS,
        [("triangle", TRIANGLES), ("line", LINES)],
        cell_data={"boundary": [np.zeros(4, dtype=int), LINE_TAGS]},
    )
    path = tmp_path / "square.xdmf"
    meshio.write(path, raw)
    check_square(read_mesh(path), names=("1", "2", "3"))
    # And dfem's own writer (inline XML data) round-trips the tag numbers.
    write_mesh(tmp_path / "out.xdmf", read_mesh(path))
    check_square(read_mesh(tmp_path / "out.xdmf"), names=("1", "2", "3"))


@pytest.mark.skipif(HAS_H5PY, reason="only without h5py")
def test_xdmf_without_h5py_names_the_missing_package(tmp_path):
    with pytest.raises(DfemError, match="h5py"):
        write_mesh(tmp_path / "out.xdmf", rectangle(1))
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "in.xdmf"
    path.write_text(
        '<Xdmf Version="3.0"><Domain><Grid Name="g"><Geometry GeometryType="XY">'
        '<DataItem DataType="Float" Dimensions="3 2" Format="HDF" Precision="8">'
        "in.h5:/data0</DataItem></Geometry></Grid></Domain></Xdmf>"
    )
    with pytest.raises(DfemError, match="h5py"):
        read_mesh(path)


# --------------------------------------------------------------------------- geometry fixes
def test_clockwise_cells_are_reoriented(tmp_path):
    tri = TRIANGLES[:, ::-1]
    quads = np.array([[0, 3, 2, 1]])  # the unit square, clockwise
    for name, cells in (("tri.vtu", [("triangle", tri)]), ("quad.vtu", [("quad", quads)])):
        path = tmp_path / name
        meshio.write(path, meshio.Mesh(POINTS[:5], cells))
        mesh = read_mesh(path)
        assert (mesh.signed_areas() > 0).all()
        assert float(mesh.signed_areas().sum()) == pytest.approx(1.0)
        # Same cells as vertex sets, and vertex 0 of each cell kept.
        given = cells[0][1]
        assert [set(c) for c in mesh.cells_np] == [set(c) for c in given]
        np.testing.assert_array_equal(mesh.cells_np[:, 0], given[:, 0])


def test_some_clockwise_cells_only(tmp_path):
    cells = TRIANGLES.copy()
    cells[1] = cells[1, ::-1]
    path = tmp_path / "half.vtk"
    meshio.write(path, meshio.Mesh(POINTS, [("triangle", cells)]))
    mesh = read_mesh(path)
    expected = TRIANGLES.copy()
    expected[1] = [4, 1, 2]  # the flipped cell, re-oriented by swapping its last two vertices
    np.testing.assert_array_equal(mesh.cells_np, expected)


def test_degenerate_cell_still_rejected(tmp_path):
    points = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0.0]])
    path = tmp_path / "flat.vtu"
    meshio.write(path, meshio.Mesh(points, [("triangle", np.array([[0, 1, 3], [0, 1, 2]]))]))
    with pytest.raises(MeshError, match="zero or negative area") as info:
        read_mesh(path)
    assert str(path) in str(info.value)


def test_constant_z_is_dropped_and_non_planar_rejected(tmp_path):
    lifted = POINTS.copy()
    lifted[:, 2] = 2.5
    lifted[5, 2] = 100.0  # the unused geometry point may sit anywhere
    path = tmp_path / "lifted.vtu"
    meshio.write(path, meshio.Mesh(lifted, [("triangle", TRIANGLES)]))
    mesh = read_mesh(path)
    assert mesh.nodes.shape == (5, 2)
    torch.testing.assert_close(mesh.nodes, torch.as_tensor(POINTS[:5, :2]))

    lifted[4, 2] = 2.6
    meshio.write(path, meshio.Mesh(lifted, [("triangle", TRIANGLES)]))
    with pytest.raises(MeshError, match="not planar"):
        read_mesh(path)


def test_tagged_line_that_is_not_an_edge(tmp_path):
    raw = meshio.Mesh(
        POINTS,
        [("triangle", TRIANGLES), ("line", np.array([[0, 2]]))],  # a diagonal, not an edge
        cell_data={"boundary": [np.zeros(4, dtype=int), np.array([5])]},
    )
    path = tmp_path / "bad.vtu"
    meshio.write(path, raw)
    with pytest.raises(MeshError, match="boundary tag '5' names edge .* not an edge"):
        read_mesh(path)


def test_untagged_lines_and_lines_off_the_mesh_are_ignored(tmp_path):
    lines = np.array([[0, 1], [1, 2], [4, 5]])  # 4-5 runs to the unused geometry point
    raw = meshio.Mesh(
        POINTS,
        [("triangle", TRIANGLES), ("line", lines)],
        cell_data={"boundary": [np.zeros(4, dtype=int), np.array([0, 2, 9])]},
    )
    path = tmp_path / "lines.vtu"
    meshio.write(path, raw)
    mesh = read_mesh(path)
    assert list(mesh.boundaries) == ["2"]
    assert coord_edges(mesh, mesh.boundaries["2"]) == expected_square_tags()["outlet"]


# --------------------------------------------------------------------------- cell types
def mixed_file(tmp_path) -> Path:
    # Quad 0-1-2-3 on [0, 1]^2 and triangle 1-4-2 to its right.
    points = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [2, 0.5]])
    lines = np.array([[0, 1], [1, 4]])
    raw = meshio.Mesh(
        points,
        [("quad", np.array([[0, 1, 2, 3]])), ("triangle", np.array([[1, 4, 2]])), ("line", lines)],
        cell_data={"gmsh:physical": [np.array([1]), np.array([2]), np.array([3, 4])]},
        field_data={"sq": np.array([1, 2]), "tr": np.array([2, 2]), "a": np.array([3, 1])},
    )
    path = tmp_path / "mixed.msh"
    meshio.write(path, raw, file_format="gmsh22", binary=False)
    return path


def test_mixed_mesh_needs_cell_type(tmp_path):
    path = mixed_file(tmp_path)
    with pytest.raises(MeshError, match="mixed meshes are not supported.*cell_type"):
        read_mesh(path)

    quads, tags = read_mesh(path, cell_type="quad", return_cell_tags=True)
    assert (quads.cell_type, quads.n_cells, quads.n_nodes) == ("quad", 1, 4)
    assert float(quads.signed_areas().sum()) == pytest.approx(1.0)
    assert list(quads.boundaries) == ["a"]  # tag "4" only touched the triangle
    assert list(tags) == ["sq"]
    np.testing.assert_array_equal(tags["sq"], [0])

    tris, tags = read_mesh(path, cell_type="triangle", return_cell_tags=True)
    assert (tris.cell_type, tris.n_cells, tris.n_nodes) == ("tri", 1, 3)
    assert sorted(tris.boundaries) == ["4"]
    assert list(tags) == ["tr"]
    with pytest.raises(DfemError, match="cell_type must be"):
        read_mesh(path, cell_type="hex")


def test_missing_cell_type_and_unsupported_cells(tmp_path):
    path = tmp_path / "quads.vtu"
    meshio.write(path, meshio.Mesh(POINTS[:4], [("quad", np.array([[0, 1, 2, 3]]))]))
    with pytest.raises(MeshError, match="no triangle cells"):
        read_mesh(path, cell_type="tri")

    path = tmp_path / "lines.vtu"
    meshio.write(path, meshio.Mesh(POINTS[:4], [("line", LINES)]))
    with pytest.raises(MeshError, match="no triangles or quadrilaterals"):
        read_mesh(path)

    points6 = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0.5, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0]])
    path = tmp_path / "p2.vtu"
    meshio.write(path, meshio.Mesh(points6, [("triangle6", np.arange(6)[None])]))
    with pytest.raises(MeshError, match="triangle6.*only linear"):
        read_mesh(path)

    path = tmp_path / "tet.vtu"
    meshio.write(path, meshio.Mesh(POINTS[:4] + [0, 0, 0], [("tetra", np.array([[0, 1, 2, 3]]))]))
    with pytest.raises(MeshError, match="3D cells"):
        read_mesh(path)


# --------------------------------------------------------------------------- file errors
def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "mesh.msh"
    with pytest.raises(DfemError, match="does not exist") as info:
        read_mesh(path)
    assert str(path) in str(info.value)
    assert not isinstance(info.value, FileNotFoundError)


def test_unknown_extension(tmp_path):
    path = tmp_path / "mesh.stl"
    path.write_text("solid x\nendsolid x\n")
    with pytest.raises(DfemError, match=r"unknown mesh file extension '\.stl'.*\.msh.*\.vtu"):
        read_mesh(path)
    with pytest.raises(DfemError, match=r"unknown mesh file extension '\.foo'.*\.msh.*\.vtu"):
        write_mesh(tmp_path / "mesh.foo", rectangle(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.stl"]


@pytest.mark.parametrize("ext", [".msh", ".vtu", ".vtk"])
def test_garbage_file(tmp_path, ext):
    path = tmp_path / f"garbage{ext}"
    path.write_text("this is not a mesh\n")
    with pytest.raises(DfemError, match="could not read") as info:
        read_mesh(path)
    assert str(path) in str(info.value)


def test_write_into_missing_folder(tmp_path):
    with pytest.raises(DfemError, match="does not exist"):
        write_mesh(tmp_path / "nope" / "m.vtu", rectangle(1))


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("ext", [".msh", ".vtu"])
@pytest.mark.parametrize("cell", ["tri", "quad"])
def test_round_trip_keeps_tags(tmp_path, ext, cell):
    mesh = refine(rectangle(2, 3, cell, x=(-1.0, 2.0)))
    cell_tags = {"left half": np.nonzero(mesh.nodes[mesh.cells][..., 0].mean(1) < 0.5)[0]}
    path = tmp_path / f"out{ext}"
    write_mesh(path, mesh, cell_tags=cell_tags)
    back, tags = read_mesh(path, return_cell_tags=True)
    torch.testing.assert_close(back.nodes, mesh.nodes, rtol=0, atol=0)
    np.testing.assert_array_equal(back.cells_np, mesh.cells_np)
    assert list(back.boundaries) == list(mesh.boundaries)
    for name, pairs in mesh.boundaries.items():
        np.testing.assert_array_equal(back.boundaries[name], pairs)
    assert list(tags) == ["left half"]
    np.testing.assert_array_equal(tags["left half"], cell_tags["left half"])


def test_round_trip_vtk_keeps_tag_numbers(tmp_path):
    mesh = rectangle(2, 2, "tri")
    write_mesh(tmp_path / "out.vtk", mesh)
    back = read_mesh(tmp_path / "out.vtk")
    # Legacy VTK has no place for names: tags come back numbered in the mesh's order.
    assert list(back.boundaries) == ["1", "2", "3", "4"]
    for number, pairs in zip(back.boundaries.values(), mesh.boundaries.values(), strict=True):
        np.testing.assert_array_equal(number, pairs)


def test_write_fields_and_grad_nodes(tmp_path):
    mesh = rectangle(2, 2, "tri")
    moved = mesh.with_nodes(mesh.nodes.clone().requires_grad_(True))
    u = torch.arange(mesh.n_nodes, dtype=torch.float64)
    k = np.arange(mesh.n_cells, dtype=np.int64)
    path = tmp_path / "fields.vtu"
    write_mesh(path, moved, point_data={"u": u}, cell_data={"k": k, "e": np.ones(mesh.n_cells)})
    raw = meshio.read(path)
    np.testing.assert_array_equal(raw.point_data["u"], u.numpy())
    assert [b.type for b in raw.cells] == ["triangle", "line"]
    np.testing.assert_array_equal(raw.cell_data["k"][0], k)
    assert (raw.cell_data["k"][1] == 0).all()
    assert np.isnan(raw.cell_data["e"][1]).all()
    assert {name: list(v) for name, v in raw.field_data.items()} == {
        "bottom": [1, 1],
        "right": [2, 1],
        "top": [3, 1],
        "left": [4, 1],
    }


def test_write_is_atomic(tmp_path):
    path = tmp_path / "m.msh"
    write_mesh(path, rectangle(1))
    before = path.read_bytes()
    with pytest.raises(DfemError, match="point_data 'u' has 3 rows"):
        write_mesh(path, rectangle(3), point_data={"u": np.zeros(3)})
    assert path.read_bytes() == before
    write_mesh(path, rectangle(2))  # overwrite in place
    assert read_mesh(path).n_cells == 4
    assert [p.name for p in tmp_path.iterdir()] == ["m.msh"]  # no temporary files left


def test_write_rejects_bad_cell_tags(tmp_path):
    mesh = rectangle(2)
    with pytest.raises(DfemError, match="shares cells"):
        write_mesh(tmp_path / "a.vtu", mesh, cell_tags={"a": [0, 1], "b": [1]})
    with pytest.raises(DfemError, match="both a boundary tag and a cell tag"):
        write_mesh(tmp_path / "a.vtu", mesh, cell_tags={"left": [0]})
    with pytest.raises(DfemError, match="outside"):
        write_mesh(tmp_path / "a.vtu", mesh, cell_tags={"a": [4]})
    assert list(tmp_path.iterdir()) == []
