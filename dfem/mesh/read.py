"""Reading mesh files through meshio (the writer is :mod:`dfem.mesh.write`).

:func:`read_mesh` turns a gmsh, VTK, XDMF or medit file into a :class:`~dfem.mesh.Mesh`,
with its boundary tags (and, on request, its cell tags) taken from integer cell data;
:func:`write_mesh` writes a mesh (with its tags and any nodal or cell fields) so that
:func:`read_mesh` gets the same mesh and tags back.

How tags are stored
-------------------
A tag is an integer attached to each cell of the file, under one cell-data key:

* ``"gmsh:physical"``: gmsh physical groups (``.msh`` files, versions 2.2 and 4.1);
* ``"boundary"``: what :func:`write_mesh` writes to VTK and XDMF files;
* ``"medit:ref"``: medit references (``.mesh`` files, or files converted from them).

The first of these keys that the file has is used (or the one passed as
``boundary_key=``). Its value on line cells gives the boundary tags, its value on
triangles or quadrilaterals the cell tags. The value 0 means "no tag", as in gmsh and
medit. A tag's name comes from the file's field data (gmsh ``$PhysicalNames``, or VTU
``FieldData`` arrays ``name -> [tag, dim]``); a tag without a name is called
``str(tag)``. Legacy ``.vtk`` and ``.xdmf`` files written by meshio carry no names, so
their tags come back as ``"1"``, ``"2"``, ...
"""

from __future__ import annotations

from pathlib import Path

import meshio
import numpy as np

from dfem.errors import DfemError, MeshError
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

_MESHIO_TYPE = {"tri": "triangle", "quad": "quad"}
_DFEM_TYPE = {"triangle": "tri", "quad": "quad"}
_CELL_TYPE_ALIASES = {"tri": "tri", "triangle": "tri", "quad": "quad", "quadrilateral": "quad"}
# Points that differ in z by less than this fraction of the mesh size count as one plane:
# files written in single precision, or by CAD tools, carry z = 1e-17 and the like.
_PLANAR_RTOL = 1e-10


# ----------------------------------------------------------------------------- reading
def read_mesh(
    path,
    cell_type: str | None = None,
    *,
    boundary_key: str | None = None,
    return_cell_tags: bool = False,
):
    """Read a 2D triangle or quadrilateral mesh from a file.

    Parameters
    ----------
    path : str or path-like
        A ``.msh`` (gmsh 2.2 or 4.1, ASCII or binary), ``.vtk``, ``.vtu``, ``.xdmf``
        (needs h5py) or ``.mesh`` (medit) file.
    cell_type : {"tri", "quad"}, optional
        Which cells to keep when the file has both triangles and quadrilaterals
        (``"triangle"`` is accepted for ``"tri"``). Nodes and boundary edges that only
        the other cells use are dropped.
    boundary_key : str, optional
        Cell-data key holding the tags. By default the first of :data:`TAG_KEYS` that
        the file has; a file without any has no tags.
    return_cell_tags : bool
        Also return the cell tags.

    Returns
    -------
    mesh : Mesh
        Nodes in file order, less the nodes no cell uses (gmsh files often hold
        geometry points); cells counter-clockwise (clockwise cells are re-oriented);
        boundary tags from the tagged line cells whose vertices all belong to kept cells.
    cell_tags : dict of str -> int64 ndarray
        Only with ``return_cell_tags=True``: for each tag of 2D cells, the numbers of
        the cells it holds.

    Raises
    ------
    DfemError
        If the file does not exist, has an extension dfem does not read, or cannot be
        parsed.
    MeshError
        If the file has no triangles or quadrilaterals, has both and no ``cell_type``,
        has 3D or higher-order cells, is not planar, names a ``boundary_key`` it does
        not have, has a tagged line that is not an edge of a cell, or fails
        :meth:`Mesh.check` (degenerate cells).
    """
    path = Path(path)
    raw = _read_meshio(path)
    want = _parse_cell_type(cell_type)

    blocks = list(raw.cells)
    solid = [b for b in blocks if b.dim == 3]
    if solid:
        raise MeshError(
            f"{path} holds 3D cells ({_types(solid)}); dfem meshes are two-dimensional."
        )
    linear = sorted({_DFEM_TYPE[b.type] for b in blocks if b.type in _DFEM_TYPE})
    if want is None:
        other = [b for b in blocks if b.dim == 2 and b.type not in _DFEM_TYPE]
        if other:
            raise MeshError(
                f"{path} holds {_types(other)} cells; dfem reads only linear triangles "
                "('triangle') and quadrilaterals ('quad')."
            )
        if not linear:
            raise MeshError(
                f"{path} holds no triangles or quadrilaterals (cell types: "
                f"{_types(blocks) or 'none'})."
            )
        if len(linear) > 1:
            raise MeshError(
                f"{path} holds both triangles and quadrilaterals; mixed meshes are not "
                "supported. Pass cell_type='tri' or cell_type='quad' to keep one kind."
            )
        want = linear[0]
    elif want not in linear:
        raise MeshError(
            f"{path} holds no {_MESHIO_TYPE[want]} cells (cell types: {_types(blocks) or 'none'})."
        )

    key = _tag_key(raw, path, boundary_key)
    tags_of = (lambda i: _int_tags(raw.cell_data[key][i], key, path)) if key else None

    cell_idx = [i for i, b in enumerate(blocks) if b.type == _MESHIO_TYPE[want]]
    cells = np.concatenate([blocks[i].data for i in cell_idx]).astype(np.int64)
    cell_tag_values = np.concatenate([tags_of(i) for i in cell_idx]) if key else None

    points = np.asarray(raw.points, dtype=np.float64)
    used = np.zeros(len(points), dtype=bool)
    used[cells.ravel()] = True
    nodes = _planar(points, used, path)
    cells = _counter_clockwise(nodes, cells)

    boundaries: dict[str, np.ndarray] = {}
    cell_tags: dict[str, np.ndarray] = {}
    if key:
        names = _tag_names(raw.field_data)
        line_idx = [i for i, b in enumerate(blocks) if b.type == "line"]
        if line_idx:
            lines = np.concatenate([blocks[i].data for i in line_idx]).astype(np.int64)
            values = np.concatenate([tags_of(i) for i in line_idx])
            # Lines of the cells not kept (cell_type=) or of the geometry alone are not
            # edges of this mesh; lines between kept nodes must be, and Mesh.check says so.
            keep = used[lines].all(axis=1) & (values != 0)
            boundaries = _group(lines[keep], values[keep], names, dim=1)
        cell_numbers = np.arange(len(cells))
        tagged = cell_tag_values != 0
        cell_tags = _group(cell_numbers[tagged], cell_tag_values[tagged], names, dim=2)

    nodes, cells, boundaries = remove_unused_nodes(nodes, cells, boundaries)
    try:
        mesh = Mesh(nodes, cells, boundaries)
    except MeshError as err:
        raise MeshError(f"{path}: {err}") from err
    return (mesh, cell_tags) if return_cell_tags else mesh


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
        return _CELL_TYPE_ALIASES[str(cell_type).lower()]
    except KeyError:
        raise DfemError(f"cell_type must be 'tri' or 'quad', got {cell_type!r}.") from None


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
            f"{path} is not planar: z ranges over [{z.min():g}, {z.max():g}]; dfem meshes "
            "are two-dimensional and need one z for all nodes."
        )
    return np.ascontiguousarray(points[:, :2])


def _counter_clockwise(nodes: np.ndarray, cells: np.ndarray) -> np.ndarray:
    # Coordinates relative to vertex 0: far from the origin the shoelace sum of absolute
    # coordinates cancels catastrophically and could flip the sign of a small cell.
    x = nodes[cells] - nodes[cells[:, :1]]
    xn = np.roll(x, -1, axis=1)
    area = 0.5 * (x[..., 0] * xn[..., 1] - xn[..., 0] * x[..., 1]).sum(axis=1)
    # Reversing the order after vertex 0 flips orientation for both cell types;
    # zero-area cells are left for Mesh.check to reject.
    reverse = np.r_[0, np.arange(cells.shape[1] - 1, 0, -1)]
    return np.where((area < 0)[:, None], cells[:, reverse], cells)


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
