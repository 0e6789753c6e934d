"""Meshes: structured rectangles and boxes, meshes from arrays and files, refinement, checks."""

from dfem.mesh.cells import REFERENCE_CELLS, ReferenceCell, reference_cell
from dfem.mesh.entities import EdgeTable, EntityTable
from dfem.mesh.mesh import Mesh, remove_unused_nodes
from dfem.mesh.read import read_mesh
from dfem.mesh.refinement import refine
from dfem.mesh.structured import box, perturb_interior, rectangle, unit_cube, unit_square
from dfem.mesh.write import write_mesh

__all__ = [
    "REFERENCE_CELLS",
    "EdgeTable",
    "EntityTable",
    "ReferenceCell",
    "box",
    "reference_cell",
    "unit_cube",
    "Mesh",
    "perturb_interior",
    "read_mesh",
    "rectangle",
    "refine",
    "remove_unused_nodes",
    "unit_square",
    "write_mesh",
]
