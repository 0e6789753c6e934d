"""Uniform refinement of triangle and quadrilateral meshes."""

from __future__ import annotations

import numpy as np
import torch

from dfem.errors import DfemError, MeshError
from dfem.mesh.mesh import Mesh

# Children of a cell, as indices into the cell's extended vertex list:
# triangle [v0, v1, v2, m01, m12, m20], quad [v0, v1, v2, v3, m01, m12, m23, m30, centre].
# Edge k of the cell (mesh.LOCAL_EDGES order) has its midpoint at position nv + k.
# Every child keeps the parent's counter-clockwise orientation.
_CHILDREN = {
    "tri": np.array([[0, 3, 5], [3, 1, 4], [5, 4, 2], [3, 4, 5]]),
    "quad": np.array([[0, 4, 8, 7], [4, 1, 5, 8], [8, 5, 2, 6], [7, 8, 6, 3]]),
}


def refine(mesh: Mesh, times: int = 1) -> Mesh:
    """Refine a mesh uniformly, splitting every cell into four.

    Triangles are split at their edge midpoints; quadrilaterals at their edge midpoints
    and their centre (the mean of the four vertices, the image of the reference
    centre). The children of a quadrilateral are the images of the four reference
    sub-squares under its bilinear map, so refinement never changes the geometry.

    Parameters
    ----------
    mesh : Mesh
        The mesh to refine.
    times : int
        How many times to refine (0 returns ``mesh`` itself); the cell count grows by
        ``4 ** times``.

    Returns
    -------
    Mesh
        Nodes: the old nodes with their old numbers, then one node per edge (in
        ``mesh.edge_table.edges`` order), then, for quads, one per cell. Cells:
        the four children of cell ``c`` are cells ``4c .. 4c + 3``. Every tagged edge
        is replaced by its two halves, in the edge's direction, under the same tag.
        New coordinates are computed with torch from ``mesh.nodes``, so they are
        differentiable with respect to it. The result is not re-checked: it is valid
        whenever ``mesh`` is.

    Raises
    ------
    DfemError
        If ``times`` is not a non-negative integer.
    MeshError
        If a boundary tag names an edge the mesh does not have (only possible for a
        mesh built with ``check=False``).
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
    if mesh.cell_type == "quad":
        new_nodes.append(mesh.nodes[mesh.cells].mean(dim=1))
        extended.append(n_nodes + n_edges + np.arange(mesh.n_cells)[:, None])
    extended = np.concatenate(extended, axis=1)
    children = _CHILDREN[mesh.cell_type]
    cells = extended[:, children].reshape(-1, children.shape[1])

    boundaries = {}
    for name, pairs in mesh.boundaries.items():  # a few tags; the work per tag is vectorised
        ids = table.lookup(pairs) if len(pairs) else np.zeros(0, dtype=np.int64)
        if (ids < 0).any():
            bad = pairs[ids < 0][0].tolist()
            raise MeshError(
                f"boundary tag {name!r} names edge {bad}, which is not an edge of any cell."
            )
        mid = n_nodes + ids
        halves = np.stack([np.stack([pairs[:, 0], mid], 1), np.stack([mid, pairs[:, 1]], 1)], 1)
        boundaries[name] = halves.reshape(-1, 2)

    return Mesh(torch.cat(new_nodes), cells, boundaries, check=False)
