"""Generate ``lshape.msh``: an unstructured triangle mesh of the L-shaped domain.

Domain: the square [-1, 1]^2 minus the quarter [0, 1] x [-1, 0], so the re-entrant
corner is the origin. The mesh is built by gmsh's Python API (``pip install gmsh``,
a dev dependency) with its Frontal-Delaunay algorithm on one thread, so the output is
the same on every run; it has about 500 triangles (target size ``--size``, default 0.12).

Physical groups (``$PhysicalNames`` in the file; :func:`dfem.mesh.read_mesh` turns the
line groups into boundary tags):

* ``"outer"`` (1D): the four edges on the boundary of the square;
* ``"reentrant"`` (1D): the two edges meeting at the re-entrant corner (0, 0):
  x = 0, -1 <= y <= 0 (outward normal (1, 0)) and y = 0, 0 <= x <= 1 (normal (0, -1));
* ``"domain"`` (2D): all triangles.

Run from the repository root::

    python cases/meshes/make_lshape.py                 # writes cases/meshes/lshape.msh
    python cases/meshes/make_lshape.py --out /tmp/l.msh --size 0.1

The file is gmsh format 2.2, ASCII. ``cases/lshape.toml`` uses it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: Corners of the L, counter-clockwise from the bottom-left; the origin is re-entrant.
CORNERS = [(-1.0, -1.0), (0.0, -1.0), (0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (-1.0, 1.0)]
#: Edge i joins CORNERS[i] and CORNERS[i + 1]; edges 1 and 2 meet at the origin.
REENTRANT_EDGES = (1, 2)


def make_lshape(out, size: float = 0.12) -> None:
    """Mesh the L-shape with target element size ``size`` and write it to ``out``."""
    from dfem.mesh.gmsh_session import gmsh_session

    with gmsh_session("lshape", 2.2, {"Mesh.Algorithm": 6}) as gmsh:  # Frontal-Delaunay
        geo = gmsh.model.geo
        points = [geo.addPoint(x, y, 0.0, size) for x, y in CORNERS]
        n = len(points)
        lines = [geo.addLine(points[i], points[(i + 1) % n]) for i in range(n)]
        loop = geo.addCurveLoop(lines)
        surface = geo.addPlaneSurface([loop])
        geo.synchronize()

        reentrant = [lines[i] for i in REENTRANT_EDGES]
        outer = [line for i, line in enumerate(lines) if i not in REENTRANT_EDGES]
        gmsh.model.addPhysicalGroup(1, outer, 1, name="outer")
        gmsh.model.addPhysicalGroup(1, reentrant, 2, name="reentrant")
        gmsh.model.addPhysicalGroup(2, [surface], 3, name="domain")

        gmsh.model.mesh.generate(2)
        gmsh.write(str(out))


def main(argv=None) -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=here / "lshape.msh", help="output .msh file")
    parser.add_argument("--size", type=float, default=0.12, help="target element size")
    args = parser.parse_args(argv)
    make_lshape(args.out, args.size)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
