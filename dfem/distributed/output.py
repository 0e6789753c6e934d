"""Output of a distributed solution: one VTU per rank, a ``.pvtu`` that joins them, and
the solution gathered on rank 0.

ParaView opens ``NAME.pvtu``, which names the pieces ``NAME_0.vtu``, ``NAME_1.vtu``, ...
(each rank's own cells, written by that rank) and declares the fields they hold. The
declarations are read from piece 0 as written, so the two never disagree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

from dfem.fileio import write_atomically

__all__ = ["gather", "gather_solution", "write_pvtu"]


def gather(comm, numbers, values, size: int, root: int = 0) -> np.ndarray | None:
    """The whole array (``size`` entries) on ``root`` (None on the other ranks) from every
    rank's ``values`` at its global ``numbers``: ``whole[numbers] = values``."""
    parts = comm.gather((np.asarray(numbers), np.asarray(values)), root=root)
    if comm.Get_rank() != root:
        return None
    whole = np.zeros(size, dtype=np.float64)
    for part_numbers, part_values in parts:
        whole[part_numbers] = part_values
    return whole


def gather_solution(space, u: torch.Tensor, root: int = 0) -> torch.Tensor | None:
    """The whole dof vector on ``root`` (None on the other ranks), from every rank's dofs
    ``u`` of a space on its local mesh: ``u_global[global_dofs] = u``."""
    from dfem.distributed.dofs import distribution

    dist = distribution(space)
    whole = gather(dist.partition.comm, dist.global_dofs.cpu().numpy(),
                   u.detach().cpu().numpy(), dist.n_global, root)
    return None if whole is None else torch.as_tensor(whole, dtype=u.dtype, device=u.device)


def _declarations(piece: Path) -> dict:
    """The ``DataArray`` attributes of a VTU's points, point data and cell data."""
    grid = ET.parse(piece).getroot().find("UnstructuredGrid/Piece")
    out = {}
    for section in ("Points", "PointData", "CellData"):
        node = grid.find(section)
        arrays = [] if node is None else node.findall("DataArray")
        out[section] = [{k: a.attrib[k] for k in ("type", "Name", "NumberOfComponents")
                         if k in a.attrib} for a in arrays]
    return out


def write_pvtu(path, n_pieces: int) -> None:
    """``path`` (``NAME.pvtu``) over the pieces ``NAME_0.vtu`` .. ``NAME_{n-1}.vtu`` beside
    it, which must exist; written atomically."""
    path = Path(path)
    stem = path.stem
    declared = _declarations(path.with_name(f"{stem}_0.vtu"))
    root = ET.Element("VTKFile", type="PUnstructuredGrid", version="1.0",
                      byte_order="LittleEndian", header_type="UInt64")
    grid = ET.SubElement(root, "PUnstructuredGrid", GhostLevel="0")
    for section in ("PointData", "CellData"):
        block = ET.SubElement(grid, "P" + section)
        for attributes in declared[section]:
            ET.SubElement(block, "PDataArray", **attributes)
    points = ET.SubElement(grid, "PPoints")
    for attributes in declared["Points"]:
        ET.SubElement(points, "PDataArray", **{k: v for k, v in attributes.items()
                                               if k != "Name"})
    for k in range(n_pieces):
        ET.SubElement(grid, "Piece", Source=f"{stem}_{k}.vtu")
    ET.indent(root)
    text = '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    write_atomically(path, lambda tmp: Path(tmp).write_text(text))
