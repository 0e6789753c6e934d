"""Meshes: structured rectangles, meshes from arrays and files, refinement, checks."""

from dfem.mesh.io import read_mesh, write_mesh
from dfem.mesh.mesh import EdgeTable, Mesh, remove_unused_nodes
from dfem.mesh.refine import refine
from dfem.mesh.structured import rectangle, unit_square

__all__ = [
    "EdgeTable",
    "Mesh",
    "read_mesh",
    "rectangle",
    "refine",
    "remove_unused_nodes",
    "unit_square",
    "write_mesh",
]
