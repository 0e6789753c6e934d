"""Uniform refinement of triangle, quadrilateral, tetrahedron and hexahedron meshes.

Every cell is split into ``2 ** dim`` children of half its size:

========  ========  ===================================================================
cell      children  new vertices
========  ========  ===================================================================
tri       4         edge midpoints
quad      4         edge midpoints, the cell centre
tet       8         edge midpoints; 4 corner tets and the inner octahedron cut into 4
                    along one diagonal, chosen by Bey's rule (bounded quality)
hex       8         edge midpoints, face centres, the cell centre
========  ========  ===================================================================

The children of quadrilaterals and hexahedra are the images of the reference
sub-squares and sub-cubes under the cell's (bi/tri)linear map, so refinement never
changes the geometry; those of simplices tile the parent exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from dfem.exceptions import DfemError, MeshError
from dfem.mesh.cells import REFERENCE_CELLS
from dfem.mesh.mesh import Mesh

# Bey's split of the tetrahedron (x0, x1, x2, x3), by the vertices (one number) and the
# edge midpoints (two numbers) of its children: four corner tets, then the octahedron
# cut along the diagonal x02 - x13. Children inherit this vertex order, which is what
# bounds the number of congruence classes (J. Bey, Computing 55, 1995).
_BEY = [[(0,), (0, 1), (0, 2), (0, 3)], [(0, 1), (1,), (1, 2), (1, 3)],
        [(0, 2), (1, 2), (2,), (2, 3)], [(0, 3), (1, 3), (2, 3), (3,)],
        [(0, 1), (0, 2), (0, 3), (1, 3)], [(0, 1), (0, 2), (1, 2), (1, 3)],
        [(0, 2), (0, 3), (1, 3), (2, 3)], [(0, 2), (1, 2), (1, 3), (2, 3)]]


def _extended_points(name: str) -> np.ndarray:
    """Reference coordinates of a cell's extended vertex list: vertices, edge midpoints
    (local edge order), for hexahedra face centres (local facet order), for quads and
    hexahedra the centre."""
    cell = REFERENCE_CELLS[name]
    r = cell.vertices
    points = [r, r[cell.edges].mean(axis=1)]
    if name == "hex":
        points.append(r[cell.facets].mean(axis=1))
    if not cell.simplex:
        points.append(r.mean(axis=0, keepdims=True))
    return np.concatenate(points)


def _tet_children() -> np.ndarray:
    edges = REFERENCE_CELLS["tet"].edges.tolist()
    slot = {frozenset(e): 4 + k for k, e in enumerate(edges)} | {frozenset([v]): v
                                                                 for v in range(4)}
    children = np.array([[slot[frozenset(p)] for p in child] for child in _BEY])
    x = _extended_points("tet")[children]
    negative = np.linalg.det(x[:, 1:] - x[:, :1]) < 0
    # swapping vertices 0 and 2 flips the orientation but keeps the opposite edges 02 and
    # 13 whose midpoints Bey's diagonal joins, so every later split is still Bey's
    children[negative] = children[negative][:, [2, 1, 0, 3]]
    return children


def _hex_children() -> np.ndarray:
    r = REFERENCE_CELLS["hex"].vertices.astype(np.int64)
    doubled = np.rint(2 * _extended_points("hex")).astype(np.int64)  # coordinates in {0,1,2}
    slot = {tuple(p): i for i, p in enumerate(doubled.tolist())}
    # child k is the sub-cube at corner k: vertex j of it sits at (r_k + r_j) / 2
    return np.array([[slot[tuple(o + v)] for v in r.tolist()] for o in r])


# Children of a cell, as indices into the cell's extended vertex list (_extended_points):
# triangle [v0, v1, v2, m01, m12, m20], quad [v0, v1, v2, v3, m01, m12, m23, m30, centre],
# tet [v0 .. v3, midpoints of the 6 local edges], hex [v0 .. v7, 12 edge midpoints,
# 6 face centres, centre]. Edge k of the cell (reference.edges order) has its midpoint
# at position nv + k. Every child keeps the parent's orientation. The same triangle and
# quad tables split the faces of tetrahedra and hexahedra (edge k of a face joins its
# cyclic vertices k and k + 1).
_CHILDREN = {
    "tri": np.array([[0, 3, 5], [3, 1, 4], [5, 4, 2], [3, 4, 5]]),
    "quad": np.array([[0, 4, 8, 7], [4, 1, 5, 8], [8, 5, 2, 6], [7, 8, 6, 3]]),
    "tet": _tet_children(),
    "hex": _hex_children(),
}


def refine(mesh: Mesh, times: int = 1) -> Mesh:
    """Refine a mesh uniformly, splitting every cell into ``2 ** dim`` children.

    Triangles are split at their edge midpoints into four; quadrilaterals at their edge
    midpoints and their centre (the mean of the four vertices, the image of the
    reference centre) into four. Tetrahedra are split at their edge midpoints into
    eight: four corner tetrahedra and four around one diagonal of the inner octahedron,
    chosen by Bey's rule from the vertex order, so repeated refinement yields at most
    three similarity classes per coarse tetrahedron (bounded quality). Hexahedra are
    split at their edge midpoints, face centres (the mean of a face's four vertices)
    and centre (the mean of the eight) into eight. The children of a quadrilateral or
    hexahedron are the images of the reference sub-squares or sub-cubes under its
    bilinear or trilinear map, so refinement never changes the geometry.

    Parameters
    ----------
    mesh : Mesh
        The mesh to refine.
    times : int
        How many times to refine (0 returns ``mesh`` itself); the cell count grows by
        ``4 ** times`` in 2D and ``8 ** times`` in 3D.

    Returns
    -------
    Mesh
        Nodes: the old nodes with their old numbers, then one node per edge (in
        ``mesh.edge_table.entities`` order), then, for hexahedra, one per face (in
        ``mesh.face_table.entities`` order), then, for quads and hexahedra, one per
        cell. Cells: the ``k = 2 ** dim`` children of cell ``c`` are cells
        ``k c .. k c + k - 1``, in the parent's vertex order (meshio's) and positively
        oriented. Every tagged facet is replaced by its children under the same tag: an
        edge by its two halves, in the edge's direction; a triangle face by four
        triangles (edge midpoints); a quadrilateral face by four quadrilaterals (edge
        midpoints and face centre). Children follow the tagged facet's vertex order
        (its orientation), except that a quadrilateral listed out of cyclic order (e.g.
        as sorted numbers) takes the order of its cell's local face, outward on the
        boundary. New coordinates are computed with torch from ``mesh.nodes``, so they
        are differentiable with respect to it. The result is not re-checked: it is
        valid whenever ``mesh`` is.

    Raises
    ------
    DfemError
        If ``times`` is not a non-negative integer.
    MeshError
        If a boundary tag names a facet (edge in 2D, face in 3D) the mesh does not have
        (only possible for a mesh built with ``check=False``).
    """
    if isinstance(times, bool) or not isinstance(times, (int, np.integer)) or times < 0:
        raise DfemError(f"times must be a non-negative integer, got {times!r}.")
    for _ in range(int(times)):
        mesh = _refine_once(mesh)
    return mesh


def _refine_once(mesh: Mesh) -> Mesh:
    table = mesh.edge_table
    n_nodes, n_edges = mesh.n_nodes, len(table.edges)
    edges = torch.as_tensor(table.edges, device=mesh.device)
    midpoints = 0.5 * (mesh.nodes[edges[:, 0]] + mesh.nodes[edges[:, 1]])
    new_nodes = [mesh.nodes, midpoints]

    extended = [mesh.cells_np, n_nodes + table.cell_edges]
    n_faces = 0
    if mesh.cell_type == "hex":
        faces = mesh.face_table
        n_faces = len(faces)
        new_nodes.append(mesh.nodes[torch.as_tensor(faces.entities, device=mesh.device)]
                         .mean(dim=1))
        extended.append(n_nodes + n_edges + faces.cell_entities)
    if not mesh.reference.simplex:
        new_nodes.append(mesh.nodes[mesh.cells].mean(dim=1))
        extended.append(n_nodes + n_edges + n_faces + np.arange(mesh.n_cells)[:, None])
    extended = np.concatenate(extended, axis=1)
    children = _CHILDREN[mesh.cell_type]
    cells = extended[:, children].reshape(-1, children.shape[1])

    boundaries = {}
    for name, facets in mesh.boundaries.items():  # a few tags; the work per tag is vectorised
        boundaries[name] = _refine_facets(mesh, name, facets, n_nodes + n_edges)

    # refinement keeps the vertex numbers, so point tags carry over unchanged
    return Mesh(torch.cat(new_nodes), cells, boundaries, check=False, points=mesh.point_tags)


def _refine_facets(mesh: Mesh, name: str, facets: np.ndarray, first_face: int) -> np.ndarray:
    """The children of the tagged facets ``facets``; face centres are numbered from
    ``first_face`` on in face-table order."""
    ids = mesh.facet_table.lookup(facets) if len(facets) else np.zeros(0, dtype=np.int64)
    if (ids < 0).any():
        kind, article = ("edge", "an") if mesh.dim == 2 else ("face", "a")
        bad = facets[ids < 0][0].tolist()
        raise MeshError(
            f"boundary tag {name!r} names {kind} {bad}, which is not {article} {kind} of "
            "any cell."
        )
    n_nodes = mesh.n_nodes
    if mesh.dim == 2:
        mid = n_nodes + ids
        halves = np.stack([np.stack([facets[:, 0], mid], 1),
                           np.stack([mid, facets[:, 1]], 1)], 1)
        return halves.reshape(-1, 2)
    m = facets.shape[1]
    sides = np.stack([facets, np.roll(facets, -1, axis=1)], axis=2)  # (n, m, 2): k, k + 1
    edges = mesh.edge_table.lookup(sides).reshape(-1, m)
    bad = (edges < 0).any(axis=1)  # a quad given out of cyclic order: take a cell's order
    if bad.any():
        cell, local = mesh.facet_neighbours[ids[bad], 0].T
        facets = facets.copy()
        facets[bad] = mesh.cells_np[cell[:, None], mesh.reference.facets[local]]
        sides = np.stack([facets, np.roll(facets, -1, axis=1)], axis=2)
        edges = mesh.edge_table.lookup(sides).reshape(-1, m)
    extended = [facets, n_nodes + edges]
    if m == 4:
        extended.append(first_face + ids[:, None])
    children = _CHILDREN["tri" if m == 3 else "quad"]
    return np.concatenate(extended, axis=1)[:, children].reshape(-1, m)
