"""Meshes: structured rectangles, meshes from arrays and files, refinement, checks."""

from dfem.mesh.mesh import EdgeTable, Mesh, remove_unused_nodes
from dfem.mesh.read import read_mesh
from dfem.mesh.refine import refine
from dfem.mesh.structured import perturb_interior, rectangle, unit_square
from dfem.mesh.write import write_mesh

__all__ = [
    "EdgeTable",
    "Mesh",
    "perturb_interior",
    "read_mesh",
    "rectangle",
    "refine",
    "remove_unused_nodes",
    "unit_square",
    "write_mesh",
]
