"""Reading mesh files through meshio (the writer is :mod:`dfem.mesh.write`).

:func:`read_mesh` turns a gmsh, VTK, XDMF or medit file into a :class:`~dfem.mesh.Mesh`
of triangles or quadrilaterals (2D) or of tetrahedra or hexahedra (3D), with its
boundary tags (and, on request, its cell tags) taken from integer cell data;
:func:`write_mesh` writes a mesh (with its tags and any nodal or cell fields) so that
:func:`read_mesh` gets the same mesh and tags back.

How tags are stored
-------------------
A tag is an integer attached to each cell of the file, under one cell-data key:

* ``"gmsh:physical"``: gmsh physical groups (``.msh`` files, versions 2.2 and 4.1);
* ``"boundary"``: what :func:`write_mesh` writes to VTK and XDMF files;
* ``"medit:ref"``: medit references (``.mesh`` files, or files converted from them).

The first of these keys that the file has is used (or the one passed as
``boundary_key=``). Its value on the facet cells, one dimension below the mesh's cells
(lines in a 2D mesh, triangles of tetrahedra or quadrilaterals of hexahedra in 3D),
gives the boundary tags; its value on the mesh's cells gives the cell tags. The value
0 means "no tag", as in gmsh and medit. A tag's name comes from the file's field data
(gmsh ``$PhysicalNames``, or VTU ``FieldData`` arrays ``name -> [tag, dim]``, where dim
is the dimension of the tagged cells); a tag without a name is called ``str(tag)``.
:func:`write_mesh` also stores the names in ``.xdmf`` files (an ``Information``
element, which meshio reads); legacy ``.vtk`` files, and ``.xdmf`` files written by
meshio alone, carry no names, so their tags come back as ``"1"``, ``"2"``, ...
"""

from __future__ import annotations

from pathlib import Path

import meshio
import numpy as np

from dfem.exceptions import DfemError, MeshError
from dfem.mesh.cells import CELL_ALIASES, LONG_NAMES, REFERENCE_CELLS
from dfem.mesh.mesh import Mesh, remove_unused_nodes

#: Extensions :func:`read_mesh` reads, and the meshio reader for each.
READERS = {
    ".msh": "gmsh",
    ".vtk": "vtk",
    ".vtu": "vtu",
    ".xdmf": "xdmf",
    ".mesh": "medit",
}
#: Cell-data keys recognised as tags when no ``boundary_key`` is given, in order of preference.
TAG_KEYS = ("gmsh:physical", "boundary", "medit:ref")

#: meshio's name of each dfem cell type, and of each facet type.
_MESHIO_TYPE = {"tri": "triangle", "quad": "quad", "tet": "tetra", "hex": "hexahedron"}
_MESHIO_FACET = {"line": "line", "tri": "triangle", "quad": "quad"}
_DFEM_TYPE = {v: k for k, v in _MESHIO_TYPE.items()}
_SUPPORTED = ("linear triangles ('triangle') and quadrilaterals ('quad') in 2D, "
              "tetrahedra ('tetra') and hexahedra ('hexahedron') in 3D")
#: Vertex orders that reverse a cell's orientation and keep its vertex 0: the reversed
#: polygon in 2D, two swapped vertices of a tetrahedron, a hexahedron mirrored across
#: its diagonal plane x = y (bottom and top faces each reversed).
_REVERSE = {"tri": [0, 2, 1], "quad": [0, 3, 2, 1], "tet": [0, 2, 1, 3],
            "hex": [0, 3, 2, 1, 4, 7, 6, 5]}
# Points that differ in a coordinate by less than this fraction of the mesh size count as
# one plane: files written in single precision, or by CAD tools, carry z = 1e-17 and the like.
_PLANAR_RTOL = 1e-10


# ----------------------------------------------------------------------------- reading
def read_mesh(
    path,
    cell_type: str | None = None,
    *,
    boundary_key: str | None = None,
    return_cell_tags: bool = False,
):
    """Read a mesh of triangles or quadrilaterals (2D) or tetrahedra or hexahedra (3D).

    The mesh's dimension is that of the highest-dimensional cells in the file: a file
    with tetrahedra or hexahedra gives a 3D mesh (their triangle or quadrilateral
    faces give its boundary tags), a file with triangles or quadrilaterals only a 2D
    mesh (its lines give the boundary tags; its nodes must share one z).

    Parameters
    ----------
    path : str or path-like
        A ``.msh`` (gmsh 2.2 or 4.1, ASCII or binary), ``.vtk``, ``.vtu``, ``.xdmf``
        (needs h5py) or ``.mesh`` (medit) file.
    cell_type : {"tri", "quad", "tet", "hex"}, optional
        Which cells to keep when the file has several kinds (meshio's names, such as
        ``"triangle"`` or ``"tetra"``, are accepted too). Nodes and boundary facets
        that only the other cells use are dropped.
    boundary_key : str, optional
        Cell-data key holding the tags. By default the first of :data:`TAG_KEYS` that
        the file has; a file without any has no tags.
    return_cell_tags : bool
        Also return the cell tags.

    Returns
    -------
    mesh : Mesh
        Nodes in file order, less the nodes no cell uses (gmsh files often hold
        geometry points); cells positively oriented (inverted cells, such as clockwise
        triangles or tetrahedra of negative volume, are re-oriented); boundary tags
        from the tagged facet cells whose vertices all belong to kept cells.
    cell_tags : dict of str -> int64 ndarray
        Only with ``return_cell_tags=True``: for each tag of the mesh's cells (gmsh
        physical surfaces in 2D, physical volumes in 3D), the numbers of its cells.

    Raises
    ------
    DfemError
        If the file does not exist, has an extension dfem does not read, or cannot be
        parsed, or ``cell_type`` is not a cell type.
    MeshError
        If the file has no cells dfem reads, has two kinds of cells of the mesh's
        dimension and no ``cell_type``, has higher-order or other unsupported cells
        (such as wedges or pyramids), is not planar (2D) or flat (3D), names a
        ``boundary_key`` it does not have, has a tagged facet that is not a facet of a
        cell (the message names the tag), or fails :meth:`Mesh.check` (degenerate or
        twisted cells).
    """
    path = Path(path)
    raw = _read_meshio(path)
    blocks = list(raw.cells)
    want = _choose_cell_type(blocks, _parse_cell_type(cell_type), path)
    reference = REFERENCE_CELLS[want]

    key = _tag_key(raw, path, boundary_key)
    tags_of = (lambda i: _int_tags(raw.cell_data[key][i], key, path)) if key else None

    cell_idx = [i for i, b in enumerate(blocks) if b.type == _MESHIO_TYPE[want]]
    cells = np.concatenate([blocks[i].data for i in cell_idx]).astype(np.int64)
    cell_tag_values = np.concatenate([tags_of(i) for i in cell_idx]) if key else None

    points = np.asarray(raw.points, dtype=np.float64)
    if cells.size and (cells.min() < 0 or cells.max() >= len(points)):
        raise MeshError(f"{path}: cells refer to points the file does not have.")
    used = np.zeros(len(points), dtype=bool)
    used[cells.ravel()] = True
    if reference.dim == 2:
        nodes = _planar(points, used, path)
    else:
        nodes = _solid(points, used, path, blocks[cell_idx[0]].type)
    cells = _orient(nodes, cells, want)

    boundaries: dict[str, np.ndarray] = {}
    cell_tags: dict[str, np.ndarray] = {}
    if key:
        names = _tag_names(raw.field_data)
        facet_type = _MESHIO_FACET[reference.facet_type]
        facet_idx = [i for i, b in enumerate(blocks) if b.type == facet_type]
        if facet_idx:
            facets = np.concatenate([blocks[i].data for i in facet_idx]).astype(np.int64)
            values = np.concatenate([tags_of(i) for i in facet_idx])
            # Facets of the cells not kept (cell_type=) or of the geometry alone are not
            # facets of this mesh; facets between kept nodes must be, and Mesh.check says so.
            keep = used[facets].all(axis=1) & (values != 0)
            boundaries = _group(facets[keep], values[keep], names, dim=reference.dim - 1)
        cell_numbers = np.arange(len(cells))
        tagged = cell_tag_values != 0
        cell_tags = _group(cell_numbers[tagged], cell_tag_values[tagged], names,
                           dim=reference.dim)

    nodes, cells, boundaries = remove_unused_nodes(nodes, cells, boundaries)
    try:
        mesh = Mesh(nodes, cells, boundaries, cell_type=want)
    except MeshError as err:
        raise MeshError(f"{path}: {err}") from err
    return (mesh, cell_tags) if return_cell_tags else mesh


def _choose_cell_type(blocks, want: str | None, path: Path) -> str:
    """The dfem cell type to read: ``want``, or the one kind of the highest-dimensional
    cells in the file; a clear error for files without one."""
    dim = max((b.dim for b in blocks if b.dim >= 2), default=None)
    top = sorted({_DFEM_TYPE[b.type] for b in blocks
                  if b.type in _DFEM_TYPE and b.dim == dim})
    if want is not None:
        if want not in top:
            have = " or ".join(repr(t) for t in top) or "none"
            raise MeshError(
                f"{path} holds no {_MESHIO_TYPE[want]} cells (cell types: "
                f"{_types(blocks) or 'none'}); cell_type must be a kind of its "
                f"highest-dimensional cells: {have}."
            )
        return want
    if dim is None:
        raise MeshError(
            f"{path} holds no triangles or quadrilaterals (2D) and no tetrahedra or "
            f"hexahedra (3D) (cell types: {_types(blocks) or 'none'})."
        )
    other = [b for b in blocks if b.dim == dim and b.type not in _DFEM_TYPE]
    if other:
        hint = (f" Pass cell_type={top[0]!r} to read only the {LONG_NAMES[top[0]]}."
                if len(top) == 1 else "")
        raise MeshError(
            f"{path} holds {_types(other)} cells; dfem reads only {_SUPPORTED} "
            f"(no higher-order cells, wedges or pyramids).{hint}"
        )
    if len(top) > 1:
        kinds = " and ".join(LONG_NAMES[t] for t in top)
        options = " or ".join(f"cell_type={t!r}" for t in top)
        raise MeshError(
            f"{path} holds both {kinds}; mixed meshes are not supported. Pass {options} "
            "to keep one kind."
        )
    return top[0]


def _read_meshio(path: Path) -> meshio.Mesh:
    ext = path.suffix.lower()
    if ext not in READERS:
        raise DfemError(
            f"cannot read {path}: unknown mesh file extension {ext or '(none)'!r}; "
            f"dfem reads {', '.join(READERS)}."
        )
    if not path.exists():
        raise DfemError(f"mesh file {path} does not exist.")
    if not path.is_file():
        raise DfemError(f"mesh file {path} is not a file.")
    # Call the format's reader directly: meshio.read() answers an unreadable file by
    # printing a message and calling sys.exit.
    reader = getattr(meshio, READERS[ext]).read
    try:
        return reader(str(path))
    except ImportError as err:
        raise DfemError(f"reading {path} needs the package {err.name!r}: {err}") from err
    except Exception as err:  # any parser failure means a malformed file
        detail = str(err) or "the file does not follow the format"
        raise DfemError(
            f"could not read {path} as a {READERS[ext]} file ({type(err).__name__}: {detail})."
        ) from err


def _parse_cell_type(cell_type):
    if cell_type is None:
        return None
    try:
        return CELL_ALIASES[str(cell_type).lower()]
    except KeyError:
        raise DfemError(
            f"cell_type must be 'tri', 'quad', 'tet' or 'hex' (or meshio's 'triangle', "
            f"'tetra', 'hexahedron'), got {cell_type!r}."
        ) from None


def _types(blocks) -> str:
    return ", ".join(sorted({b.type for b in blocks}))


def _tag_key(raw: meshio.Mesh, path: Path, boundary_key: str | None) -> str | None:
    if boundary_key is not None:
        if boundary_key not in raw.cell_data:
            have = ", ".join(sorted(raw.cell_data)) or "none"
            raise MeshError(
                f"{path} has no cell data {boundary_key!r} to read tags from; "
                f"its cell data keys are: {have}."
            )
        return boundary_key
    return next((k for k in TAG_KEYS if k in raw.cell_data), None)


def _int_tags(values, key: str, path: Path) -> np.ndarray:
    values = np.asarray(values).reshape(len(values), -1)
    if values.shape[1] != 1:
        raise MeshError(f"{path}: cell data {key!r} has several components; tags need one.")
    values = values[:, 0]
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    # VTK writers sometimes store integers as floats; accept those, nothing else.
    rounded = np.rint(values)
    if not np.array_equal(rounded, values):
        raise MeshError(f"{path}: cell data {key!r} holds non-integer values; tags are integers.")
    return rounded.astype(np.int64)


def _planar(points: np.ndarray, used: np.ndarray, path: Path) -> np.ndarray:
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise MeshError(f"{path}: points have shape {points.shape}, expected (n, 2) or (n, 3).")
    if points.shape[1] == 2:
        return points
    # Only the nodes of kept cells matter: stray geometry points may sit anywhere.
    z = points[used, 2]
    xy = points[used, :2]
    size = float(np.ptp(xy, axis=0).max()) if len(xy) else 0.0
    spread = float(np.ptp(z)) if len(z) else 0.0
    if spread > _PLANAR_RTOL * max(size, np.finfo(float).tiny):
        raise MeshError(
            f"{path} is not planar: z ranges over [{z.min():g}, {z.max():g}]; a mesh of "
            "triangles or quadrilaterals is two-dimensional and needs one z for all nodes "
            "(a curved surface mesh is not supported)."
        )
    return np.ascontiguousarray(points[:, :2])


def _solid(points: np.ndarray, used: np.ndarray, path: Path, kind: str) -> np.ndarray:
    if points.ndim != 2 or points.shape[1] != 3:
        raise MeshError(
            f"{path} holds 3D cells ({kind}) but its points have shape {points.shape}; "
            "3D cells need points with three coordinates, (n, 3)."
        )
    x = points[used]
    if not len(x):
        return points
    extent = np.ptp(x, axis=0)
    flat = np.nonzero(extent <= _PLANAR_RTOL * max(float(extent.max()), np.finfo(float).tiny))[0]
    if len(flat):
        axis = "xyz"[flat[0]]
        raise MeshError(
            f"{path} holds 3D cells ({kind}) but all their nodes share one {axis} "
            f"({axis} = {x[0, flat[0]]:g}): every cell is flat. A planar mesh needs "
            "triangles or quadrilaterals."
        )
    return points


def _orient(nodes: np.ndarray, cells: np.ndarray, cell_type: str) -> np.ndarray:
    """Cells whose Jacobian is negative at every corner (clockwise in 2D, mirrored in 3D)
    re-ordered to be positively oriented, vertex 0 kept; cells with mixed signs
    (degenerate, non-convex or twisted) are left for :meth:`Mesh.check` to reject."""
    probe = Mesh(nodes, cells, cell_type=cell_type, check=False)
    # Mesh computes the corner Jacobians from edge vectors, relative to each corner: far
    # from the origin the sums of absolute coordinates would cancel and flip small cells.
    inverted = (probe.corner_jacobians() < 0).all(dim=1).numpy()
    return np.where(inverted[:, None], cells[:, _REVERSE[cell_type]], cells)


def _tag_names(field_data: dict) -> dict[tuple[int, int | None], str]:
    names = {}
    for name, value in field_data.items():
        value = np.asarray(value).ravel()
        if value.size == 0 or not np.issubdtype(value.dtype, np.number):
            continue
        dim = int(value[1]) if value.size >= 2 else None
        names[(int(value[0]), dim)] = str(name)
    return names


def _group(items: np.ndarray, values: np.ndarray, names: dict, dim: int) -> dict:
    groups = {}
    for tag in np.unique(values):  # one pass per tag, not per item
        name = names.get((int(tag), dim), names.get((int(tag), None), str(int(tag))))
        if name in groups:  # two tags under one name: merge rather than lose one
            groups[name] = np.concatenate([groups[name], items[values == tag]])
        else:
            groups[name] = items[values == tag]
    return groups
