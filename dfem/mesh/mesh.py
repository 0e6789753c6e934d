"""The mesh: node coordinates, cells of one type and named boundary tags.

A :class:`Mesh` holds straight-sided cells of one type (see
:mod:`dfem.mesh.cells`): triangles or quadrilaterals in 2D, tetrahedra or
hexahedra in 3D, positively oriented. Boundary tags name sets of facets (edges in
2D, faces in 3D) by their vertex numbers. The entity tables (global edges and
faces, each cell's local entities) are built once on demand and shared by every
:class:`~dfem.basis.FunctionSpace` on the mesh.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from dfem.exceptions import MeshError
from dfem.mesh import measures
from dfem.mesh.cells import REFERENCE_CELLS, ReferenceCell, cell_type_of
from dfem.mesh.entities import EntityTable, entity_table

#: Local edges of each cell type, as pairs of local vertex numbers, in the
#: order the Lagrange elements number their edge nodes.
LOCAL_EDGES = {name: cell.edges for name, cell in REFERENCE_CELLS.items()}
VERTICES_PER_CELL = {name: cell.n_vertices for name, cell in REFERENCE_CELLS.items()}


class Mesh:
    """An unstructured mesh of triangles, quadrilaterals, tetrahedra or hexahedra.

    Parameters
    ----------
    nodes : (n_nodes, dim) array or tensor
        Node coordinates, dim 2 or 3. Kept as a float tensor (float64 unless a float
        tensor of another dtype is given); it may require grad, for shape derivatives.
    cells : (n_cells, n_vertices) integer array
        Vertex numbers of each cell in the order of :mod:`dfem.mesh.cells`
        (counter-clockwise in 2D; meshio's order in 3D).
    boundaries : dict of str -> (n_facets, n_facet_vertices) integer array, optional
        Named sets of boundary facets, each given by its vertex numbers (2 per edge in
        2D; 3 per triangle face of tetrahedra, 4 per quadrilateral face of hexahedra).
    cell_type : {"tri", "quad", "tet", "hex"}, optional
        Checked against the arrays' shapes; by default the shapes decide.
    check : bool
        Run :meth:`check` (reject degenerate or inverted cells, dangling nodes,
        tags that name no facet of the mesh). Default True.
    points : dict of str -> integer array, optional
        Named sets of nodes (point tags: a point load, a single support), as
        :meth:`tag_points` adds them.

    Raises
    ------
    MeshError
        If the arrays have the wrong shape or the mesh fails :meth:`check`.
    """

    def __init__(self, nodes, cells, boundaries=None, *, cell_type: str | None = None,
                 check: bool = True, points=None):
        if not torch.is_tensor(nodes):
            nodes = torch.as_tensor(np.asarray(nodes, dtype=np.float64))
        elif not nodes.is_floating_point():
            nodes = nodes.to(torch.float64)
        if nodes.ndim != 2 or nodes.shape[1] not in (2, 3):
            raise MeshError(
                f"nodes must have shape (n_nodes, 2) or (n_nodes, 3), got {tuple(nodes.shape)}."
            )
        cells_np = np.asarray(cells.detach().cpu() if torch.is_tensor(cells) else cells)
        if cells_np.ndim != 2:
            raise MeshError(
                f"cells must be a 2D array (n_cells, n_vertices), got {cells_np.shape}.")
        if not np.issubdtype(cells_np.dtype, np.integer):
            raise MeshError(f"cells must hold integer vertex numbers, got dtype {cells_np.dtype}.")
        self.cell_type = cell_type_of(nodes.shape[1], cells_np.shape[1], cell_type)
        self.nodes: torch.Tensor = nodes
        self.cells_np = cells_np.astype(np.int64)
        k = self.reference.facets.shape[1]
        self.boundaries: dict[str, np.ndarray] = {}
        for name, facets in (boundaries or {}).items():
            facets = np.asarray(facets, dtype=np.int64)
            if facets.size and (facets.ndim != 2 or facets.shape[1] != k):
                raise MeshError(
                    f"boundary tag {name!r} gives facets of shape {facets.shape}; the facets "
                    f"of {self.reference.long_name} have {k} vertices, so give an "
                    f"(n_facets, {k}) array."
                )
            self.boundaries[name] = facets.reshape(-1, k)
        self.point_tags: dict[str, np.ndarray] = {}
        for name, numbers in (points or {}).items():
            self._add_point_tag(name, np.asarray(numbers, dtype=np.int64).ravel())
        if check:
            self.check()

    def tag_facets(self, name: str, where) -> np.ndarray:
        """Name the boundary facets whose centroids satisfy ``where`` and return them.

        Parameters
        ----------
        name : str
            The new boundary tag (e.g. a heat sink: part of one side).
        where : callable ``x -> bool mask``
            A predicate on the facet centroids (n_boundary_facets, dim).
        """
        if name in self.boundaries or name == "boundary" or name in self.point_tags:
            raise MeshError(f"the tag {name!r} exists already; choose another name.")
        facets = self.boundary_facets
        centroids = self.nodes.detach().cpu()[torch.as_tensor(facets)].mean(dim=1)
        chosen = np.asarray(where(centroids), dtype=bool)
        if chosen.shape != (len(facets),) or not chosen.any():
            raise MeshError(f"boundary tag {name!r}: no boundary facet satisfies the condition "
                            "(it gets the facet centroids, shape (n, dim), and must return one "
                            "bool per facet).")
        self.boundaries[name] = facets[chosen]
        return self.boundaries[name]

    # ------------------------------------------------------------------ point tags
    def _add_point_tag(self, name: str, numbers: np.ndarray) -> None:
        if name in self.boundaries or name == "boundary":
            raise MeshError(f"{name!r} is already a boundary (facet) tag; give the point tag "
                            "another name.")
        if numbers.size and (numbers.min() < 0 or numbers.max() >= self.n_nodes):
            raise MeshError(f"point tag {name!r} names nodes outside 0..{self.n_nodes - 1}.")
        self.point_tags[name] = np.unique(numbers)

    def tag_points(self, name: str, where, tol: float | None = None) -> np.ndarray:
        """Name the nodes at some points (a point load, a single support) and return them.

        Parameters
        ----------
        name : str
            The tag; Dirichlet conditions and point loads take it like a boundary tag.
        where : (k, dim) coordinates, or callable ``x -> bool mask``
            Points that must be nodes of the mesh (within ``tol``), or a predicate on
            the node coordinates (n_nodes, dim).
        tol : float, optional
            Default: 1e-9 times the mesh's bounding-box diagonal.
        """
        x = self.nodes.detach().cpu().numpy()
        if callable(where):
            numbers = np.nonzero(np.asarray(where(torch.as_tensor(x)), dtype=bool))[0]
            if numbers.size == 0:
                raise MeshError(f"point tag {name!r}: no node satisfies the condition.")
        else:
            points = np.asarray(where, dtype=np.float64).reshape(-1, self.dim)
            diagonal = float(np.linalg.norm(x.max(0) - x.min(0)))
            tol = 1e-9 * diagonal if tol is None else tol
            distance = np.linalg.norm(x[None, :, :] - points[:, None, :], axis=2) \
                if len(points) * len(x) <= 10**7 else None
            if distance is None:
                from scipy.spatial import cKDTree

                d, numbers = cKDTree(x).query(points)
            else:
                numbers = distance.argmin(1)
                d = distance[np.arange(len(points)), numbers]
            far = np.nonzero(d > tol)[0]
            if far.size:
                raise MeshError(f"point tag {name!r}: {points[far[0]].tolist()} is not a node "
                                f"of the mesh (the nearest is {d[far[0]]:.3g} away); give "
                                "node coordinates.")
        self._add_point_tag(name, numbers)
        return self.point_tags[name]

    # ------------------------------------------------------------------ basics
    @property
    def reference(self) -> ReferenceCell:
        """The reference cell of this mesh's cell type."""
        return REFERENCE_CELLS[self.cell_type]

    @property
    def dim(self) -> int:
        return self.nodes.shape[1]

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
        points = ", ".join(f"{k}: {len(v)}" for k, v in self.point_tags.items())
        return (
            f"Mesh({self.n_cells} {self.cell_type} cells, {self.n_nodes} nodes, "
            f"boundaries {{{tags}}}" + (f", points {{{points}}}" if points else "") + ")"
        )

    def to(self, device=None, dtype=None) -> Mesh:
        """A copy of the mesh with its nodes on another device or dtype (topology shared)."""
        return self.with_nodes(self.nodes.to(device=device, dtype=dtype), check=False)

    #: The :class:`~dfem.distributed.partition.Partition` this mesh is one rank's part of
    #: (set by :func:`dfem.distributed.distribute`), or None for a whole mesh.
    partition = None

    _TABLES = ("edge_table", "face_table", "facet_neighbours", "boundary_facet_numbers")

    def with_nodes(self, nodes: torch.Tensor, *, check: bool = True) -> Mesh:
        """The same topology with new node coordinates (e.g. a tensor that requires grad).

        The entity tables are shared with this mesh, so spaces built on either reuse them.
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
        moved.point_tags = self.point_tags
        moved.partition = self.partition
        for name in self._TABLES:
            if name in self.__dict__:
                moved.__dict__[name] = self.__dict__[name]
        if check:
            moved._check_orientation()
        return moved

    # ------------------------------------------------------------------ topology
    @cached_property
    def edge_table(self) -> EntityTable:
        """Global edges, built once: see :class:`EntityTable`."""
        return entity_table(self.cells_np, self.reference.edges, self.n_nodes)

    @cached_property
    def face_table(self) -> EntityTable:
        """Global faces of a 3D mesh (triangles of tetrahedra, quadrilaterals of hexahedra)."""
        if self.dim != 3:
            raise MeshError("face_table exists on 3D meshes; the facets of a 2D mesh are "
                            "its edges (edge_table).")
        return entity_table(self.cells_np, self.reference.facets, self.n_nodes)

    @property
    def facet_table(self) -> EntityTable:
        """The facets: edges in 2D, faces in 3D."""
        return self.edge_table if self.dim == 2 else self.face_table

    @cached_property
    def facet_neighbours(self) -> np.ndarray:
        """(n_facets, 2, 2): for each facet, (cell, local facet) on either side; the second
        row is -1 on boundary facets."""
        table = self.facet_table
        n_local = table.cell_entities.shape[1]
        ids = table.cell_entities.ravel()
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        first = np.r_[True, ids[1:] != ids[:-1]]
        result = np.full((len(table), 2, 2), -1, dtype=np.int64)
        side = np.where(first, 0, 1)
        result[ids, side, 0] = order // n_local
        result[ids, side, 1] = order % n_local
        return result

    def oriented_facets(self, ids: np.ndarray) -> np.ndarray:
        """Vertex numbers of the facets ``ids`` in the cyclic order of the cell that owns
        each (the first of :attr:`facet_neighbours`): outward-oriented on the boundary."""
        owner = self.facet_neighbours[np.asarray(ids, dtype=np.int64), 0]
        return self.cells_np[owner[:, :1], self.reference.facets[owner[:, 1]]]

    @cached_property
    def boundary_facet_numbers(self) -> np.ndarray:
        """Global numbers (rows of :attr:`facet_table`) of the facets in exactly one cell."""
        return np.nonzero(self.facet_neighbours[:, 1, 0] < 0)[0]

    @property
    def boundary_facets(self) -> np.ndarray:
        """Vertex numbers (sorted per row) of the facets that belong to exactly one cell."""
        return self.facet_table.entities[self.boundary_facet_numbers]

    @property
    def boundary_edges(self) -> np.ndarray:
        """The boundary facets of a 2D mesh: vertex pairs of the edges in exactly one cell."""
        if self.dim != 2:
            raise MeshError("boundary_edges is for 2D meshes; use boundary_facets in 3D.")
        return self.boundary_facets

    @cached_property
    def boundary_nodes(self) -> np.ndarray:
        """Sorted numbers of the nodes on boundary facets."""
        return np.unique(self.boundary_facets)

    def boundary_facet_ids(self, tag: str) -> np.ndarray:
        """Global facet numbers (rows of :attr:`facet_table`) of the facets tagged ``tag``.

        The tag ``"boundary"``, unless the mesh defines it, names every boundary facet.

        Raises
        ------
        MeshError
            If the tag does not exist (the message lists the tags that do).
        """
        if tag not in self.boundaries:
            if tag == "boundary":
                return self.boundary_facet_numbers
            if tag in getattr(self, "point_tags", {}):
                raise MeshError(f"{tag!r} is a point tag (a set of nodes): it takes Dirichlet "
                                "conditions and point loads, but a traction or flux needs a "
                                "boundary (facet) tag.")
            known = ", ".join(sorted(self.boundaries)) or "none"
            raise MeshError(
                f"boundary tag {tag!r} does not exist on this mesh; its tags are: {known} "
                "(and 'boundary', the whole boundary)."
            )
        return self.facet_table.lookup(self.boundaries[tag])

    boundary_edge_ids = boundary_facet_ids

    # ------------------------------------------------------------------ measures
    def signed_areas(self) -> torch.Tensor:
        """Signed area of each 2D cell (shoelace formula); positive for counter-clockwise
        cells: see :func:`dfem.mesh.measures.shoelace_areas`."""
        if self.dim != 2:
            raise MeshError("signed_areas is for 2D meshes; use volumes() in 3D.")
        return measures.shoelace_areas(self.nodes[self.cells])

    def volumes(self) -> torch.Tensor:
        """Signed measure of each cell (area in 2D, volume in 3D), differentiable in the
        nodes: see :func:`dfem.mesh.measures.cell_volumes`."""
        return measures.cell_volumes(self.nodes[self.cells], self.reference)

    def corner_jacobians(self, nodes: torch.Tensor | None = None) -> torch.Tensor:
        """Jacobian determinant of the cell map at each corner, (n_cells, n_vertices), at
        the mesh's nodes or at ``nodes`` (moved coordinates): see
        :func:`dfem.mesh.measures.corner_jacobians`. A cell is valid when every corner
        value is positive."""
        x = (self.nodes if nodes is None else nodes)[self.cells]
        return measures.corner_jacobians(x, self.reference)

    # ------------------------------------------------------------------ checks
    def _check_orientation(self) -> None:
        with torch.no_grad():
            x = self.nodes[self.cells]
            # degenerate relative to the cell's own size, wherever the cell sits
            size = (x - x[:, :1]).abs().amax(dim=(1, 2))
            measure = self.corner_jacobians().amin(dim=1)
            bad = torch.nonzero(measure <= 1e-12 * size**self.dim).ravel()
        if len(bad):
            first = bad[:5].tolist()
            what = "area" if self.dim == 2 else "volume"
            order = ("counter-clockwise" if self.dim == 2 else
                     "in meshio's order with a positive Jacobian")
            raise MeshError(
                f"{len(bad)} cell(s) have zero or negative {what} or a non-positive Jacobian "
                f"at a corner (inverted or degenerate), e.g. cell(s) {first} with vertices "
                f"{self.cells_np[first[0]].tolist()}. Order each cell's vertices {order} and "
                "remove collapsed cells."
            )

    def check(self) -> None:
        """Check that the mesh can be used for finite elements.

        Raises
        ------
        MeshError
            On vertex numbers out of range, repeated vertices in a cell, inverted or
            degenerate cells (a non-positive Jacobian at any corner: for quads and
            hexes also non-convex or twisted cells), nodes that belong to no cell
            (dangling nodes), or boundary tags that name facets the mesh does not have.
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
        self._check_orientation()
        used = np.zeros(self.n_nodes, dtype=bool)
        used[cells.ravel()] = True
        if not used.all():
            dangling = np.nonzero(~used)[0]
            raise MeshError(
                f"{len(dangling)} node(s) belong to no cell (dangling), e.g. nodes "
                f"{dangling[:5].tolist()}. Remove them (dfem.mesh.remove_unused_nodes) "
                "before building the mesh."
            )
        kind, article = ("edge", "an") if self.dim == 2 else ("face", "a")
        for name, facets in self.boundaries.items():
            ids = self.facet_table.lookup(facets) if len(facets) else np.zeros(0, np.int64)
            if (ids < 0).any():
                bad = facets[ids < 0][0].tolist()
                raise MeshError(
                    f"boundary tag {name!r} names {kind} {bad}, which is not {article} {kind} "
                    f"of any cell ({int((ids < 0).sum())} of its {len(ids)} facets are not)."
                )


def remove_unused_nodes(nodes, cells, boundaries=None):
    """Drop nodes that no cell uses and renumber cells and boundary facets.

    Boundary facets that touch a dropped node cannot be facets of any cell, so they
    are dropped too (the rest of their tag is kept).

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
    for name, facets in (boundaries or {}).items():
        facets = np.asarray(facets, dtype=np.int64)
        facets = facets.reshape(-1, facets.shape[-1] if facets.ndim == 2 else 2)
        compact[name] = new_number[facets[used[facets].all(axis=1)]]
    return nodes[used], new_number[cells], compact
