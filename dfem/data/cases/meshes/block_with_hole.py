"""Generate ``block_with_hole.msh``: an unstructured tetrahedral mesh of a drilled block.

Domain: the block [0, 2] x [0, 1] x [0, 1] minus the cylinder of radius 0.25 whose axis
is the line x = 1, y = 0.5 (parallel to z), so the hole runs through the block from
z = 0 to z = 1. The geometry is an OpenCASCADE boolean cut, meshed by gmsh's Python API
(``pip install gmsh``, a dev dependency) with linear tetrahedra of target size
``--size`` (default 0.1: about 9,000 tetrahedra, a file of about 380 kB). The meshers
run on one thread with a fixed seed, so a run with the same gmsh version reproduces the
file.

Physical groups (``$PhysicalNames`` in the file; :func:`dfem.mesh.read_mesh` turns the
surface groups into boundary tags and the volume group into a cell tag):

* ``"left"`` (2D): the face x = 0;
* ``"right"`` (2D): the face x = 2;
* ``"hole"`` (2D): the cylinder's surface, area 2 pi 0.25 (faceted: slightly less);
* ``"walls"`` (2D): the rest of the boundary: y = 0, y = 1, and the faces z = 0 and
  z = 1 (each with the hole cut out);
* ``"solid"`` (3D): all tetrahedra, volume 2 - pi 0.25^2 (faceted: slightly more).

Run from the repository root::

    python cases/meshes/block_with_hole.py    # writes cases/meshes/block_with_hole.msh
    python cases/meshes/block_with_hole.py --out /tmp/b.msh --size 0.05

The file is gmsh format 4.1, ASCII, holding only the elements of the physical groups.
"""

from __future__ import annotations

import argparse
from pathlib import Path

LENGTH, WIDTH, HEIGHT = 2.0, 1.0, 1.0
#: Axis (x, y) of the hole and its radius.
HOLE_CENTRE, HOLE_RADIUS = (1.0, 0.5), 0.25


def _classify(gmsh, surface: int) -> str:
    """The physical group of a boundary surface of the cut block, by its centre of mass
    (OpenCASCADE's bounding boxes are padded by a tolerance, centres of mass exact)."""
    x, y, z = gmsh.model.occ.getCenterOfMass(2, surface)
    tol = 1e-6
    if abs(x) < tol:
        return "left"
    if abs(x - LENGTH) < tol:
        return "right"
    # the cylinder's centre lies on its axis, halfway up; the faces z = 0 and z = 1
    # (centres on the axis too) and y = 0, y = 1 (centres off it) are walls
    on_axis = abs(x - HOLE_CENTRE[0]) < tol and abs(y - HOLE_CENTRE[1]) < tol
    if on_axis and abs(z - HEIGHT / 2) < tol:
        return "hole"
    return "walls"


def make_block_with_hole(out, size: float = 0.1) -> dict[str, int]:
    """Mesh the drilled block with target element size ``size`` and write it to ``out``.

    Returns the number of elements of each physical group.
    """
    from dfem.mesh.gmsh_session import gmsh_session

    options = {
        "Mesh.Algorithm": 6,  # Frontal-Delaunay on the surfaces
        "Mesh.Algorithm3D": 1,  # Delaunay
        "Mesh.CharacteristicLengthMin": size,
        "Mesh.CharacteristicLengthMax": size,
        "Mesh.CharacteristicLengthFromPoints": 0,
        "Mesh.CharacteristicLengthFromCurvature": 0,
        "Mesh.CharacteristicLengthExtendFromBoundary": 0,
    }
    with gmsh_session("block_with_hole", 4.1, options) as gmsh:
        occ = gmsh.model.occ
        block = occ.addBox(0.0, 0.0, 0.0, LENGTH, WIDTH, HEIGHT)
        cylinder = occ.addCylinder(*HOLE_CENTRE, 0.0, 0.0, 0.0, HEIGHT, HOLE_RADIUS)
        solid, _ = occ.cut([(3, block)], [(3, cylinder)])
        occ.synchronize()
        if len(solid) != 1:
            raise RuntimeError(f"the cut gave {len(solid)} volumes, expected 1")
        volume = solid[0][1]

        groups: dict[str, list[int]] = {"left": [], "right": [], "hole": [], "walls": []}
        for _, surface in gmsh.model.getBoundary(solid, oriented=False):
            groups[_classify(gmsh, surface)].append(surface)
        for tag, (name, surfaces) in enumerate(groups.items(), start=1):
            if not surfaces:
                raise RuntimeError(f"no surface of the cut block is classified {name!r}")
            gmsh.model.addPhysicalGroup(2, surfaces, tag, name=name)
        gmsh.model.addPhysicalGroup(3, [volume], 1, name="solid")

        gmsh.model.mesh.generate(3)
        counts = {}
        for dim, tag in gmsh.model.getPhysicalGroups():
            name = gmsh.model.getPhysicalName(dim, tag)
            counts[name] = sum(
                len(elements)
                for entity in gmsh.model.getEntitiesForPhysicalGroup(dim, tag)
                for elements in gmsh.model.mesh.getElements(dim, entity)[1]
            )
        gmsh.write(str(out))
        return counts


def main(argv=None) -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=here / "block_with_hole.msh",
                        help="output .msh file")
    parser.add_argument("--size", type=float, default=0.1,
                        help="target element size (characteristic length)")
    args = parser.parse_args(argv)
    counts = make_block_with_hole(args.out, args.size)
    summary = ", ".join(f"{name}: {n}" for name, n in counts.items())
    print(f"wrote {args.out} ({summary} elements)")


if __name__ == "__main__":
    main()
