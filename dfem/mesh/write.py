"""Writing meshes and fields through meshio, atomically, in the tag conventions that
:func:`dfem.mesh.read.read_mesh` reads back (see that module for how tags are stored)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import meshio
import numpy as np
import torch

from dfem.exceptions import DfemError
from dfem.fileio import write_atomically
from dfem.mesh.mesh import Mesh
from dfem.mesh.read import _MESHIO_FACET, _MESHIO_TYPE

#: Extensions :func:`write_mesh` writes.
WRITERS = (".msh", ".vtk", ".vtu", ".xdmf")


# ----------------------------------------------------------------------------- writing
def write_mesh(path, mesh: Mesh, point_data=None, cell_data=None, *, cell_tags=None,
               vectors=()) -> None:
    """Write a mesh, its boundary tags and fields to a file, atomically.

    The file is written next to ``path`` under a temporary name and then moved onto
    ``path``, so a reader never sees half a file and a failed write leaves any old file
    in place.

    Parameters
    ----------
    path : str or path-like
        ``.msh`` (gmsh 2.2 ASCII, with physical groups and ``$PhysicalNames``),
        ``.vtu`` (tags as ``"boundary"`` cell data, names as ``FieldData``),
        ``.xdmf`` (needs h5py; data inline as XML, tags as ``"boundary"`` cell data,
        names in an ``Information`` element, as meshio reads them) or ``.vtk`` (tags as
        ``"boundary"`` cell data, no names).
    mesh : Mesh
        The mesh, 2D or 3D: its cells as one block of triangles, quadrilaterals,
        tetrahedra or hexahedra, and its boundary tags' facets as one block of facet
        cells (lines in 2D, triangles of tetrahedra, quadrilaterals of hexahedra), each
        facet with its tag's number. The nodes of a 2D mesh are written with z = 0.
    point_data : dict of str -> (n_nodes, ...) array or tensor, optional
        Nodal fields.
    cell_data : dict of str -> (n_cells, ...) array or tensor, optional
        Cell fields (the facet cells get NaN, or 0 for integer fields).
    cell_tags : dict of str -> int array, optional
        Named sets of cell numbers, written as tags of the mesh's cells (a cell may be in
        one set at most).
    vectors : sequence of str
        Names of point or cell fields that are vectors, (n, dim): written with 3
        components (z = 0 in 2D; 3D vectors as they are), which ParaView needs to treat
        them as vectors (glyphs, "Warp By Vector").

    Raises
    ------
    DfemError
        On an extension dfem does not write, a missing folder, fields of the wrong
        length, a vector field without 1 to 3 columns, a cell in two cell tags, a name
        used by a boundary tag and a cell tag, or an error from meshio.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITERS:
        raise DfemError(
            f"cannot write {path}: unknown mesh file extension {ext or '(none)'!r}; "
            f"dfem writes {', '.join(WRITERS)}."
        )
    folder = path.parent
    if not folder.is_dir():
        raise DfemError(f"cannot write {path}: folder {folder} does not exist.")

    point_data = _as_3d_vectors(point_data, vectors, "point_data")
    cell_data = _as_3d_vectors(cell_data, vectors, "cell_data")
    raw, names = _to_meshio(mesh, point_data, cell_data, cell_tags, gmsh=ext == ".msh")

    def write(tmp: str) -> None:
        try:
            if ext == ".msh":
                # 2.2 keeps a physical tag on every element without needing gmsh entities.
                meshio.gmsh.write(tmp, raw, fmt_version="2.2", binary=False)
            elif ext == ".vtu":
                meshio.vtu.write(tmp, raw)
                _add_vtu_field_data(Path(tmp), names)
            elif ext == ".vtk":
                meshio.vtk.write(tmp, raw)
            else:
                # Inline XML data: an HDF5 side file would be named after the temporary file.
                meshio.xdmf.write(tmp, raw, data_format="XML")
                _add_xdmf_information(Path(tmp), names)
        except ImportError as err:
            raise DfemError(f"writing {path} needs the package {err.name!r}: {err}") from err
        except (meshio.WriteError, ValueError, KeyError) as err:
            raise DfemError(f"could not write {path}: {err}") from err

    write_atomically(path, write, suffix=f".tmp{ext}")


def _as_3d_vectors(fields, vectors, label: str):
    """``fields`` with each field named in ``vectors`` padded with zero columns to 3."""
    if not fields:
        return fields
    fields = dict(fields)
    for name in vectors:
        if name not in fields:
            continue
        value = _numpy(fields[name])
        if value.ndim != 2 or not 1 <= value.shape[1] <= 3:
            raise DfemError(
                f"{label} {name!r} is listed in vectors, so it must have shape (n, 1..3), "
                f"got {value.shape}."
            )
        pad = np.zeros((len(value), 3 - value.shape[1]), dtype=value.dtype)
        fields[name] = np.concatenate([value, pad], axis=1)
    return fields


def _numpy(value) -> np.ndarray:
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _to_meshio(mesh: Mesh, point_data, cell_data, cell_tags, gmsh: bool):
    nodes = _numpy(mesh.nodes).astype(np.float64)
    if mesh.dim == 2:  # VTK and gmsh want 3D points
        nodes = np.column_stack([nodes, np.zeros(len(nodes))])

    # Tag numbers start at 1: 0 means "no tag" to read_mesh, gmsh and medit. Field data
    # gives each name its number and the dimension of the cells it tags.
    boundary = {k: v for k, v in mesh.boundaries.items() if len(v)}
    field_data = {name: np.array([i + 1, mesh.dim - 1]) for i, name in enumerate(boundary)}
    cell_values = np.zeros(mesh.n_cells, dtype=np.int64)
    for i, (name, cells) in enumerate((cell_tags or {}).items()):
        cells = _numpy(cells).astype(np.int64).ravel()
        if name in field_data:
            raise DfemError(f"{name!r} names both a boundary tag and a cell tag; a file keeps one.")
        if cells.size and (cells.min() < 0 or cells.max() >= mesh.n_cells):
            raise DfemError(f"cell tag {name!r} has cell numbers outside 0..{mesh.n_cells - 1}.")
        if (cell_values[cells] != 0).any():
            raise DfemError(f"cell tag {name!r} shares cells with another cell tag.")
        cell_values[cells] = i + 1
        field_data[name] = np.array([i + 1, mesh.dim])

    blocks = [meshio.CellBlock(_MESHIO_TYPE[mesh.cell_type], mesh.cells_np)]
    tag_arrays = [cell_values]
    if boundary:
        facets = np.concatenate(list(boundary.values()))
        values = np.repeat(np.arange(1, len(boundary) + 1), [len(v) for v in boundary.values()])
        blocks.append(meshio.CellBlock(_MESHIO_FACET[mesh.reference.facet_type], facets))
        tag_arrays.append(values)

    data = {}
    for name, value in (cell_data or {}).items():
        value = _rows(value, f"cell_data {name!r}", mesh.n_cells, "cells")
        data[name] = [_plain(v, gmsh) for v in
                      [value] + [_filler(value, len(b)) for b in blocks[1:]]]
    if gmsh:
        data["gmsh:physical"] = tag_arrays
        data["gmsh:geometrical"] = tag_arrays
    else:
        data["boundary"] = tag_arrays

    nodal = {}
    for name, value in (point_data or {}).items():
        nodal[name] = _plain(_rows(value, f"point_data {name!r}", mesh.n_nodes, "nodes"), gmsh)
    raw = meshio.Mesh(nodes, blocks, point_data=nodal, cell_data=data, field_data=field_data)
    return raw, field_data


def _rows(value, label: str, n: int, what: str) -> np.ndarray:
    """``value`` as an array with one row per cell or node; a clear error otherwise."""
    value = _numpy(value)
    if len(value) != n:
        raise DfemError(f"{label} has {len(value)} rows, the mesh has {n} {what}.")
    return value


def _plain(value: np.ndarray, gmsh: bool) -> np.ndarray:
    """For gmsh: the values as Python numbers (an object array). meshio's ASCII gmsh
    writer formats each value with ``repr``, which under numpy 2 writes
    ``np.float64(0.5)`` instead of ``0.5``, a file no reader parses."""
    if not gmsh:
        return value
    plain = np.empty(value.shape, dtype=object)
    plain[...] = value.tolist() if value.ndim else value.item()
    return plain


def _filler(value: np.ndarray, n: int) -> np.ndarray:
    fill = np.nan if np.issubdtype(value.dtype, np.floating) else 0
    return np.full((n, *value.shape[1:]), fill, dtype=value.dtype)


def _add_vtu_field_data(path: Path, names: dict) -> None:
    # meshio's VTU writer drops field data but its reader reads it, so add the
    # FieldData element (ASCII, before the Piece, where VTK puts it) to the written file.
    if not names:
        return
    arrays = "".join(
        f'<DataArray type="Int64" Name={quoteattr(name)} NumberOfTuples="{len(value)}" '
        f'format="ascii">{" ".join(str(int(v)) for v in value)}</DataArray>'
        for name, value in names.items()
    )
    text = path.read_bytes()
    anchor = b"<UnstructuredGrid>"
    at = text.find(anchor)
    if at < 0:
        raise DfemError(f"unexpected VTU layout from meshio in {path}; cannot add tag names.")
    at += len(anchor)
    path.write_bytes(text[:at] + f"<FieldData>{arrays}</FieldData>".encode() + text[at:])


def _add_xdmf_information(path: Path, names: dict) -> None:
    # meshio's XDMF writer drops field data, but its reader takes the tag names from an
    # Information element of the grid holding <map key="name" dim="d">tag</map> entries;
    # add that element (its text escaped XML; readers that do not know it skip it).
    if not names:
        return
    maps = "".join(
        f"<map key={quoteattr(name)} dim=\"{int(value[1])}\">{int(value[0])}</map>"
        for name, value in names.items()
    )
    text = path.read_bytes()
    at = text.find(b"<Grid ")
    at = text.find(b">", at) if at >= 0 else -1
    if at < 0:
        raise DfemError(f"unexpected XDMF layout from meshio in {path}; cannot add tag names.")
    info = (f'<Information Name="Information" Value="{len(names)}">'
            f"{escape(f'<main>{maps}</main>')}</Information>")
    path.write_bytes(text[:at + 1] + info.encode() + text[at + 1:])


def write_pvd(path, datasets) -> None:
    """Write a ParaView collection (``.pvd``) of a time series, atomically.

    Parameters
    ----------
    path : str or path-like
        The ``.pvd`` file.
    datasets : sequence of (float, str)
        ``(time, file)`` pairs, the files (usually ``.vtu``) named relative to the
        ``.pvd`` file's folder, in time order.

    The file is ``<VTKFile type="Collection">`` with one ``<DataSet timestep="t"
    file="..."/>`` per entry (times written with full precision), which ParaView opens
    as one time-dependent data set.
    """
    rows = "".join(
        f'    <DataSet timestep="{float(t)!r}" group="" part="0" file={quoteattr(str(file))}/>\n'
        for t, file in datasets
    )
    text = ('<?xml version="1.0"?>\n'
            '<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">\n'
            f"  <Collection>\n{rows}  </Collection>\n</VTKFile>\n")

    def write(tmp: str) -> None:
        Path(tmp).write_text(text)

    write_atomically(path, write, suffix=".tmp.pvd")
