"""Reference cells: vertices, edges and facets of the four cell types.

The vertex order is meshio's (and VTK's): counter-clockwise for triangles and
quadrilaterals; for the hexahedron the bottom face ``z = 0`` counter-clockwise seen
from above, then the top face in the same order. A mesh cell is positively
oriented when the map from its reference cell has a positive Jacobian.

========  ===  ==================================================================
type      dim  reference cell
========  ===  ==================================================================
tri       2    (0,0), (1,0), (0,1)
quad      2    [0,1]^2
tet       3    (0,0,0), (1,0,0), (0,1,0), (0,0,1)
hex       3    [0,1]^3
========  ===  ==================================================================

Facets are the edges of 2D cells and the faces of 3D cells; each is listed by
local vertex numbers in a cyclic order (so that a quadrilateral face is a
counter-clockwise polygon seen from one side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfem.exceptions import MeshError


@dataclass(frozen=True)
class ReferenceCell:
    """The tables of one cell type.

    Attributes
    ----------
    name : {"tri", "quad", "tet", "hex"}
    dim : int
    simplex : bool
        True for triangles and tetrahedra (affine maps, barycentric lattices).
    vertices : (n_vertices, dim) ndarray
    edges : (n_edges, 2) ndarray
        Local edges as vertex pairs, in the order Lagrange elements number edge nodes.
    facets : (n_facets, n_facet_vertices) ndarray
        Local facets (edges in 2D, faces in 3D) in cyclic vertex order.
    facet_type : {"line", "tri", "quad"}
    """

    name: str
    dim: int
    simplex: bool
    vertices: np.ndarray
    edges: np.ndarray
    facets: np.ndarray
    facet_type: str

    @property
    def n_vertices(self) -> int:
        return len(self.vertices)

    @property
    def faces(self) -> np.ndarray:
        """Local 2D faces: the facets in 3D, the cell itself in 2D."""
        return self.facets if self.dim == 3 else np.arange(self.n_vertices)[None, :]

    @property
    def axis_neighbours(self) -> np.ndarray:
        """(n_vertices, dim): the vertex next to each vertex along each reference axis
        (tensor cells; the vertex with coordinate j flipped)."""
        r = self.vertices
        flipped = np.abs(r[:, None, :] - np.eye(self.dim)[None])  # (nv, dim, dim), r in {0, 1}
        match = np.abs(flipped[:, :, None, :] - r[None, None]).sum(-1) == 0  # (nv, dim, nv)
        return match.argmax(-1)

    @property
    def long_name(self) -> str:
        return LONG_NAMES[self.name]


_TRI_EDGES = np.array([[0, 1], [1, 2], [2, 0]])
_QUAD_EDGES = np.array([[0, 1], [1, 2], [2, 3], [3, 0]])

REFERENCE_CELLS: dict[str, ReferenceCell] = {
    "tri": ReferenceCell(
        "tri", 2, True, np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
        _TRI_EDGES, _TRI_EDGES, "line"),
    "quad": ReferenceCell(
        "quad", 2, False, np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]),
        _QUAD_EDGES, _QUAD_EDGES, "line"),
    "tet": ReferenceCell(
        "tet", 3, True,
        np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        np.array([[0, 1], [1, 2], [2, 0], [0, 3], [1, 3], [2, 3]]),
        # face k lies opposite vertex k
        np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]]), "tri"),
    "hex": ReferenceCell(
        "hex", 3, False,
        np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0],
                  [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float),
        np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4],
                  [0, 4], [1, 5], [2, 6], [3, 7]]),
        # x = 0, x = 1, y = 0, y = 1, z = 0, z = 1
        np.array([[0, 4, 7, 3], [1, 2, 6, 5], [0, 1, 5, 4], [3, 7, 6, 2],
                  [0, 3, 2, 1], [4, 5, 6, 7]]), "quad"),
}

LONG_NAMES = {"tri": "triangles", "quad": "quadrilaterals", "tet": "tetrahedra",
              "hex": "hexahedra"}

#: Accepted spellings of each cell type (meshio's names included).
CELL_ALIASES = {
    "tri": "tri", "triangle": "tri", "quad": "quad", "quadrilateral": "quad",
    "tet": "tet", "tetra": "tet", "tetrahedron": "tet", "hex": "hex", "hexahedron": "hex",
}

#: The cell type a (dimension, vertices per cell) pair can only mean.
_BY_SHAPE = {(2, 3): "tri", (2, 4): "quad", (3, 4): "tet", (3, 8): "hex"}


def reference_cell(cell_type: str) -> ReferenceCell:
    """The :class:`ReferenceCell` of a cell type (any spelling of :data:`CELL_ALIASES`)."""
    try:
        return REFERENCE_CELLS[CELL_ALIASES[str(cell_type).lower()]]
    except KeyError:
        raise MeshError(
            f"unknown cell type {cell_type!r}; use 'tri', 'quad', 'tet' or 'hex'."
        ) from None


def cell_type_of(dim: int, n_vertices: int, requested: str | None = None) -> str:
    """The cell type of cells with ``n_vertices`` vertices in ``dim`` dimensions.

    ``requested`` (if given) must fit the shape; otherwise the shape decides.
    """
    if requested is not None:
        cell = reference_cell(requested)
        if (cell.dim, cell.n_vertices) != (dim, n_vertices):
            raise MeshError(
                f"cell_type {requested!r} needs {cell.n_vertices} vertices per cell and "
                f"nodes with {cell.dim} coordinates, got {n_vertices} vertices and "
                f"{dim} coordinates."
            )
        return cell.name
    try:
        return _BY_SHAPE[(dim, n_vertices)]
    except KeyError:
        if dim == 2:
            fits = "(n_cells, 3) for triangles or (n_cells, 4) for quadrilaterals"
        else:
            fits = ("(n_cells, 4) for tetrahedra or (n_cells, 8) for hexahedra; for a planar "
                    "mesh give nodes of shape (n_nodes, 2) (drop a z column of zeros)")
        raise MeshError(
            f"cells must have shape {fits} with nodes of {dim} coordinates, got "
            f"{n_vertices} vertices per cell."
        ) from None
