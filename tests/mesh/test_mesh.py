"""Mesh validation and the structured rectangle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dfem.exceptions import DfemError, MeshError
from dfem.mesh import Mesh, rectangle, remove_unused_nodes

SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
TWO_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3]])


def test_valid_mesh_passes():
    mesh = Mesh(SQUARE, TWO_TRIANGLES, {"bottom": [[0, 1]], "left": [[3, 0]]})
    mesh.check()
    assert mesh.cell_type == "tri"
    assert float(mesh.signed_areas().sum()) == pytest.approx(1.0)
    assert issubclass(MeshError, DfemError)


def test_inverted_cell():
    cells = TWO_TRIANGLES.copy()
    cells[1] = [0, 3, 2]  # clockwise
    with pytest.raises(MeshError, match="negative area") as info:
        Mesh(SQUARE, cells)
    assert "counter-clockwise" in str(info.value)
    assert "[0, 3, 2]" in str(info.value)


def test_inverted_quad():
    with pytest.raises(MeshError, match="negative area"):
        Mesh(SQUARE, [[0, 3, 2, 1]])


def test_zero_area_cell():
    nodes = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    with pytest.raises(MeshError, match="zero or negative area") as info:
        Mesh(nodes, [[0, 1, 3], [0, 1, 2]])  # cell 1 is three points on a line
    assert "degenerate" in str(info.value)
    assert "cell(s) [1]" in str(info.value)


def test_twisted_and_non_convex_quads():
    bow_tie = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(MeshError, match="zero or negative area"):
        Mesh(bow_tie, [[0, 1, 2, 3]])
    dart = np.array([[0.0, 0.0], [2.0, 0.0], [0.5, 0.5], [0.0, 2.0]])  # reflex corner at 2
    with pytest.raises(MeshError, match="zero or negative area"):
        Mesh(dart, [[0, 1, 2, 3]])


def test_repeated_vertex():
    with pytest.raises(MeshError, match="repeat a vertex") as info:
        Mesh(SQUARE, [[0, 1, 2], [0, 2, 2]])
    assert "[0, 2, 2]" in str(info.value)
    with pytest.raises(MeshError, match="repeat a vertex"):
        Mesh(SQUARE, [[0, 1, 2, 0]])


def test_dangling_node():
    nodes = np.vstack([SQUARE, [[5.0, 5.0]]])
    with pytest.raises(MeshError, match="dangling") as info:
        Mesh(nodes, TWO_TRIANGLES)
    assert "[4]" in str(info.value)
    assert "remove_unused_nodes" in str(info.value)


def test_tag_naming_a_non_edge():
    with pytest.raises(MeshError, match="'cut' names edge \\[1, 3\\], which is not an edge"):
        Mesh(SQUARE, TWO_TRIANGLES, {"ok": [[0, 1]], "cut": [[0, 1], [1, 3]]})


@pytest.mark.parametrize("bad", [4, -1])
def test_vertex_index_out_of_range(bad):
    with pytest.raises(MeshError, match="outside 0..3"):
        Mesh(SQUARE, [[0, 1, 2], [0, 2, bad]])


def test_bad_shapes_and_values():
    with pytest.raises(MeshError, match=r"drop a z column"):
        Mesh(np.zeros((4, 3)), TWO_TRIANGLES)
    with pytest.raises(MeshError, match=r"nodes must have shape \(n_nodes, 2\)"):
        Mesh(np.zeros((4, 4)), TWO_TRIANGLES)
    with pytest.raises(MeshError, match="cells must have shape"):
        Mesh(SQUARE, [[0, 1]])
    with pytest.raises(MeshError, match="integer vertex numbers"):
        Mesh(SQUARE, TWO_TRIANGLES.astype(float))
    nodes = SQUARE.copy()
    nodes[2, 0] = np.nan
    with pytest.raises(MeshError, match="NaN"):
        Mesh(nodes, TWO_TRIANGLES)


def test_check_false_defers_errors():
    mesh = Mesh(SQUARE, [[0, 3, 2], [0, 2, 1]], check=False)
    with pytest.raises(MeshError, match="negative area"):
        mesh.check()


def test_with_nodes():
    mesh = rectangle(2, 2, "tri")
    with pytest.raises(MeshError, match="with_nodes only moves nodes"):
        mesh.with_nodes(mesh.nodes[:-1])
    flipped = mesh.nodes.clone()
    flipped[:, 0] *= -1  # a mirror image: every cell turns clockwise
    with pytest.raises(MeshError, match="negative area"):
        mesh.with_nodes(flipped)
    moved = mesh.with_nodes(mesh.nodes * 2)
    assert moved.edge_table is mesh.edge_table
    assert float(moved.signed_areas().sum()) == pytest.approx(4.0)


def test_unknown_boundary_tag_lists_existing_ones():
    mesh = rectangle(2, 2)
    with pytest.raises(MeshError, match="'nope' does not exist.*bottom, left, right, top"):
        mesh.boundary_edge_ids("nope")
    untagged = Mesh(SQUARE, TWO_TRIANGLES)
    with pytest.raises(MeshError, match="its tags are: none"):
        untagged.boundary_edge_ids("left")


def test_edge_table():
    mesh = Mesh(SQUARE, TWO_TRIANGLES)
    table = mesh.edge_table
    assert (table.edges[:, 0] < table.edges[:, 1]).all()
    assert len(table.edges) == 5
    # Each local edge, read through the table and its flip flag, gives the cell's vertices.
    local = np.array([[0, 1], [1, 2], [2, 0]])
    pairs = mesh.cells_np[:, local]
    from_table = table.edges[table.cell_edges]
    from_table = np.where(table.flipped[..., None], from_table[..., ::-1], from_table)
    np.testing.assert_array_equal(from_table, pairs)
    np.testing.assert_array_equal(table.lookup([[2, 0], [0, 2], [1, 3]]) >= 0, [True, True, False])
    np.testing.assert_array_equal(table.edges[table.lookup([[2, 1]])], [[1, 2]])
    # The shared diagonal is the only interior edge.
    assert {tuple(e) for e in mesh.boundary_edges} == {(0, 1), (1, 2), (2, 3), (0, 3)}


def test_remove_unused_nodes():
    nodes = np.vstack([[[9.0, 9.0]], SQUARE, [[7.0, 7.0]]])
    cells = TWO_TRIANGLES + 1
    new_nodes, new_cells, tags = remove_unused_nodes(nodes, cells, {"b": [[1, 2]]})
    np.testing.assert_array_equal(new_nodes, SQUARE)
    np.testing.assert_array_equal(new_cells, TWO_TRIANGLES)
    np.testing.assert_array_equal(tags["b"], [[0, 1]])
    Mesh(new_nodes, new_cells, tags)


@pytest.mark.parametrize("cell", ["quad", "tri"])
@pytest.mark.parametrize("diagonal", ["right", "left", "alternate"])
def test_rectangle_tags_cover_the_boundary(cell, diagonal):
    x0, x1, y0, y1 = -1.0, 2.0, 0.5, 1.5
    mesh = rectangle(3, 2, cell, x=(x0, x1), y=(y0, y1), diagonal=diagonal)
    mesh.check()
    assert mesh.n_cells == (6 if cell == "quad" else 12)
    assert float(mesh.signed_areas().sum()) == pytest.approx((x1 - x0) * (y1 - y0))
    assert sorted(mesh.boundaries) == ["bottom", "left", "right", "top"]
    x = mesh.nodes.numpy()
    side = {"left": (0, x0), "right": (0, x1), "bottom": (1, y0), "top": (1, y1)}
    counts = {"left": 2, "right": 2, "bottom": 3, "top": 3}
    for name, (axis, value) in side.items():
        pairs = mesh.boundaries[name]
        assert len(pairs) == counts[name]
        np.testing.assert_allclose(x[pairs][..., axis], value)
        # Each side runs counter-clockwise around the domain, as a chain.
        np.testing.assert_array_equal(pairs[1:, 0], pairs[:-1, 1])
    tagged = np.sort(np.concatenate(list(mesh.boundaries.values())), axis=1)
    assert len({tuple(p) for p in tagged}) == len(tagged)  # no edge in two tags
    assert {tuple(p) for p in tagged} == {tuple(p) for p in mesh.boundary_edges}


def test_rectangle_numbering_and_errors():
    mesh = rectangle(2, 1, "quad", dtype=torch.float32)
    assert mesh.dtype == torch.float32
    torch.testing.assert_close(mesh.nodes[4], torch.tensor([0.5, 1.0]))  # node (i=1, j=1)
    for bad in (0, -2, 1.5):
        with pytest.raises(MeshError, match="positive integer"):
            rectangle(bad)
    with pytest.raises(MeshError, match="x0 < x1"):
        rectangle(2, x=(1.0, 0.0))
    with pytest.raises(MeshError, match="'quad' or 'tri'"):
        rectangle(2, cell="hex")
    with pytest.raises(MeshError, match="diagonal must be"):
        rectangle(2, cell="tri", diagonal="up")


def test_remove_unused_nodes_keeps_the_rest_of_a_tag():
    import numpy as np
    import torch

    from dfem.mesh import Mesh, remove_unused_nodes

    nodes = torch.tensor([[0, 0], [1, 0], [1, 1], [0, 1], [5, 5.0]], requires_grad=True)
    cells = [[0, 1, 2], [0, 2, 3]]
    tags = {"wall": [[0, 1], [1, 2], [2, 4]]}  # the last edge touches the unused node 4
    x, c, b = remove_unused_nodes(nodes, cells, tags)
    assert len(x) == 4
    np.testing.assert_array_equal(b["wall"], [[0, 1], [1, 2]])
    Mesh(x, c, b)  # valid
