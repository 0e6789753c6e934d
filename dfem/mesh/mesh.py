"""The mesh: node coordinates, cells and named boundary tags.

A :class:`Mesh` holds straight-sided triangles (3 vertices, counter-clockwise) or
quadrilaterals (4 vertices, counter-clockwise). Boundary tags name sets of edges
by their two vertex indices. The edge table (global edges, each cell's edges and
their orientation) is built once on demand and shared by every
:class:`~dfem.basis.FunctionSpace` on the mesh.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from dfem.errors import MeshError

#: Local edges of each cell type, as pairs of local vertex numbers, in the
#: order the Lagrange elements number their edge nodes.
LOCAL_EDGES = {
    "tri": np.array([[0, 1], [1, 2], [2, 0]]),
    "quad": np.array([[0, 1], [1, 2], [2, 3], [3, 0]]),
}
VERTICES_PER_CELL = {"tri": 3, "quad": 4}


@dataclass(frozen=True)
class EdgeTable:
    """Global edges of a mesh.

    Attributes
    ----------
    edges : (n_edges, 2) int64 ndarray
        Vertex pairs, each sorted so that ``edges[:, 0] < edges[:, 1]``.
    cell_edges : (n_cells, n_local_edges) int64 ndarray
        Global edge number of each local edge of each cell.
    flipped : (n_cells, n_local_edges) bool ndarray
        True where the local edge runs against the global edge's direction
        (from its larger to its smaller vertex).
    """

    edges: np.ndarray
    cell_edges: np.ndarray
    flipped: np.ndarray

    def lookup(self, pairs: np.ndarray) -> np.ndarray:
        """Global edge numbers of vertex pairs (any order); -1 where no such edge exists."""
        pairs = np.sort(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), axis=1)
        if len(self.edges) == 0:
            return np.full(len(pairs), -1, dtype=np.int64)
        n = max(int(self.edges.max()), int(pairs.max(initial=0))) + 1
        keys = self.edges[:, 0] * n + self.edges[:, 1]  # sorted: edges come from np.unique
        wanted = pairs[:, 0] * n + pairs[:, 1]
        pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        return np.where(keys[pos] == wanted, pos, -1)


class Mesh:
    """An unstructured 2D mesh of triangles or quadrilaterals.

    Parameters
    ----------
    nodes : (n_nodes, 2) array or tensor
        Node coordinates. Kept as a float tensor (float64 unless a float tensor of
        another dtype is given); it may require grad, for shape derivatives.
    cells : (n_cells, 3 or 4) integer array
        Vertex numbers of each cell, counter-clockwise.
    boundaries : dict of str -> (n_facets, 2) integer array, optional
        Named sets of boundary edges, each edge given by its two vertex numbers.
    check : bool
        Run :meth:`check` (reject degenerate or inverted cells, dangling nodes,
        tags that name no edge of the mesh). Default True.

    Raises
    ------
    MeshError
        If the arrays have the wrong shape or the mesh fails :meth:`check`.
    """

    def __init__(self, nodes, cells, boundaries=None, *, check: bool = True):
        if not torch.is_tensor(nodes):
            nodes = torch.as_tensor(np.asarray(nodes, dtype=np.float64))
        elif not nodes.is_floating_point():
            nodes = nodes.to(torch.float64)
        if nodes.ndim != 2 or nodes.shape[1] != 2:
            raise MeshError(
                f"nodes must have shape (n_nodes, 2), got {tuple(nodes.shape)}; "
                "dfem meshes are two-dimensional (drop a z column of zeros)."
            )
        cells_np = np.asarray(cells.detach().cpu() if torch.is_tensor(cells) else cells)
        if cells_np.ndim != 2 or cells_np.shape[1] not in (3, 4):
            raise MeshError(
                f"cells must have shape (n_cells, 3) for triangles or (n_cells, 4) for "
                f"quadrilaterals, got {cells_np.shape}."
            )
        if not np.issubdtype(cells_np.dtype, np.integer):
            raise MeshError(f"cells must hold integer vertex numbers, got dtype {cells_np.dtype}.")
        self.nodes: torch.Tensor = nodes
        self.cells_np = cells_np.astype(np.int64)
        self.cell_type = "tri" if cells_np.shape[1] == 3 else "quad"
        self.boundaries: dict[str, np.ndarray] = {
            name: np.asarray(edges, dtype=np.int64).reshape(-1, 2)
            for name, edges in (boundaries or {}).items()
        }
        if check:
            self.check()

    # ------------------------------------------------------------------ basics
    @property
    def cells(self) -> torch.Tensor:
        """Cells as an int64 tensor on the nodes' device."""
        return torch.as_tensor(self.cells_np, device=self.nodes.device)

    @property
    def n_nodes(self) -> int:
        return self.nodes.shape[0]

    @property
    def n_cells(self) -> int:
        return self.cells_np.shape[0]

    @property
    def device(self) -> torch.device:
        return self.nodes.device

    @property
    def dtype(self) -> torch.dtype:
        return self.nodes.dtype

    def __repr__(self) -> str:
        tags = ", ".join(f"{k}: {len(v)}" for k, v in self.boundaries.items())
        return (
            f"Mesh({self.n_cells} {self.cell_type} cells, {self.n_nodes} nodes, "
            f"boundaries {{{tags}}})"
        )

    def to(self, device=None, dtype=None) -> Mesh:
        """A copy of the mesh with its nodes on another device or dtype (topology shared)."""
        return self.with_nodes(self.nodes.to(device=device, dtype=dtype), check=False)

    def with_nodes(self, nodes: torch.Tensor, *, check: bool = True) -> Mesh:
        """The same topology with new node coordinates (e.g. a tensor that requires grad).

        The edge table is shared with this mesh, so spaces built on either reuse it.
        """
        if tuple(nodes.shape) != tuple(self.nodes.shape):
            raise MeshError(
                f"new nodes have shape {tuple(nodes.shape)}, the mesh has "
                f"{tuple(self.nodes.shape)}; with_nodes only moves nodes."
            )
        moved = Mesh.__new__(Mesh)
        moved.nodes = nodes
        moved.cells_np = self.cells_np
        moved.cell_type = self.cell_type
        moved.boundaries = self.boundaries
        if "edge_table" in self.__dict__:
            moved.__dict__["edge_table"] = self.__dict__["edge_table"]
        if check:
            moved._check_areas()
        return moved

    # ------------------------------------------------------------------ topology
    @cached_property
    def edge_table(self) -> EdgeTable:
        """Global edges, built once: see :class:`EdgeTable`."""
        local = LOCAL_EDGES[self.cell_type]
        pairs = self.cells_np[:, local]  # (E, n_local_edges, 2)
        flipped = pairs[..., 0] > pairs[..., 1]
        low, high = (
            np.minimum(pairs[..., 0], pairs[..., 1]),
            np.maximum(pairs[..., 0], pairs[..., 1]),
        )
        # One int64 key per edge: a 1D unique is much faster than np.unique(axis=0).
        keys, inverse = np.unique((low * self.n_nodes + high).ravel(), return_inverse=True)
        edges = np.stack([keys // self.n_nodes, keys % self.n_nodes], axis=1)
        return EdgeTable(edges=edges, cell_edges=inverse.reshape(pairs.shape[:2]), flipped=flipped)

    @cached_property
    def boundary_edges(self) -> np.ndarray:
        """Vertex pairs of the edges that belong to exactly one cell."""
        table = self.edge_table
        counts = np.bincount(table.cell_edges.ravel(), minlength=len(table.edges))
        return table.edges[counts == 1]

    @cached_property
    def boundary_nodes(self) -> np.ndarray:
        """Sorted numbers of the nodes on boundary edges."""
        return np.unique(self.boundary_edges)

    def boundary_edge_ids(self, tag: str) -> np.ndarray:
        """Global edge numbers of the edges tagged ``tag``.

        The tag ``"boundary"``, unless the mesh defines it, names every boundary edge.

        Raises
        ------
        MeshError
            If the tag does not exist (the message lists the tags that do).
        """
        if tag not in self.boundaries:
            if tag == "boundary":
                return self.edge_table.lookup(self.boundary_edges)
            known = ", ".join(sorted(self.boundaries)) or "none"
            raise MeshError(
                f"boundary tag {tag!r} does not exist on this mesh; its tags are: {known} "
                "(and 'boundary', the whole boundary)."
            )
        return self.edge_table.lookup(self.boundaries[tag])

    # ------------------------------------------------------------------ checks
    def signed_areas(self) -> torch.Tensor:
        """Signed area of each cell (shoelace formula); positive for counter-clockwise cells.

        Coordinates are taken relative to each cell's first vertex, so the areas of
        small cells far from the origin keep their precision.
        """
        x = self.nodes[self.cells]
        x = x - x[:, :1, :]
        xn = torch.roll(x, -1, dims=1)
        return 0.5 * (x[..., 0] * xn[..., 1] - xn[..., 0] * x[..., 1]).sum(dim=1)

    def _quad_corner_jacobians(self) -> torch.Tensor:
        """Jacobian of the bilinear map at each quad corner (twice the corner triangle's area)."""
        x = self.nodes[self.cells]
        prev = torch.roll(x, 1, dims=1) - x
        nxt = torch.roll(x, -1, dims=1) - x
        return nxt[..., 0] * prev[..., 1] - nxt[..., 1] * prev[..., 0]

    def _check_areas(self) -> None:
        with torch.no_grad():
            x = self.nodes[self.cells]
            # degenerate relative to the cell's own size, wherever the cell sits
            size = (x - torch.roll(x, 1, dims=1)).abs().amax(dim=(1, 2))
            tol = 1e-12 * size**2
            measure = self.signed_areas()
            if self.cell_type == "quad":
                measure = torch.minimum(measure, 0.5 * self._quad_corner_jacobians().amin(dim=1))
            bad = torch.nonzero(measure <= tol).ravel()
        if len(bad):
            first = bad[:5].tolist()
            raise MeshError(
                f"{len(bad)} cell(s) have zero or negative area (inverted or degenerate), "
                f"e.g. cell(s) {first} with vertices {self.cells_np[first[0]].tolist()}. "
                "Order each cell's vertices counter-clockwise and remove collapsed cells."
            )

    def check(self) -> None:
        """Check that the mesh can be used for finite elements.

        Raises
        ------
        MeshError
            On vertex numbers out of range, repeated vertices in a cell, cells with
            zero or negative area (for quads: a non-positive Jacobian at any corner,
            i.e. a non-convex or twisted cell), nodes that belong to no cell
            (dangling nodes), or boundary tags that name edges the mesh does not have.
        """
        cells = self.cells_np
        if cells.size and (cells.min() < 0 or cells.max() >= self.n_nodes):
            raise MeshError(
                f"cells refer to vertex numbers outside 0..{self.n_nodes - 1} "
                f"(min {cells.min()}, max {cells.max()})."
            )
        if not torch.isfinite(self.nodes.detach()).all():
            raise MeshError("node coordinates contain NaN or infinity.")
        srt = np.sort(cells, axis=1)
        repeated = np.nonzero((np.diff(srt, axis=1) == 0).any(axis=1))[0]
        if len(repeated):
            raise MeshError(
                f"{len(repeated)} cell(s) repeat a vertex (degenerate), e.g. cell "
                f"{repeated[0]} = {cells[repeated[0]].tolist()}."
            )
        self._check_areas()
        used = np.zeros(self.n_nodes, dtype=bool)
        used[cells.ravel()] = True
        if not used.all():
            dangling = np.nonzero(~used)[0]
            raise MeshError(
                f"{len(dangling)} node(s) belong to no cell (dangling), e.g. nodes "
                f"{dangling[:5].tolist()}. Remove them (dfem.mesh.remove_unused_nodes) "
                "before building the mesh."
            )
        for name, pairs in self.boundaries.items():
            ids = self.edge_table.lookup(pairs) if len(pairs) else np.zeros(0, np.int64)
            if (ids < 0).any():
                bad = pairs[ids < 0][0].tolist()
                raise MeshError(
                    f"boundary tag {name!r} names edge {bad}, which is not an edge of any cell."
                )


def remove_unused_nodes(nodes, cells, boundaries=None):
    """Drop nodes that no cell uses and renumber cells and boundary edges.

    Boundary edges that touch a dropped node cannot be edges of any cell, so they are
    dropped too (the rest of their tag is kept).

    Returns
    -------
    nodes, cells, boundaries
        The compacted arrays (numpy), ready for :class:`Mesh`.
    """
    if torch.is_tensor(nodes):
        nodes = nodes.detach().cpu()
    nodes = np.asarray(nodes)
    cells = np.asarray(cells, dtype=np.int64)
    used = np.zeros(len(nodes), dtype=bool)
    used[cells.ravel()] = True
    new_number = np.cumsum(used) - 1
    compact = {}
    for name, edges in (boundaries or {}).items():
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        compact[name] = new_number[edges[used[edges].all(axis=1)]]
    return nodes[used], new_number[cells], compact
