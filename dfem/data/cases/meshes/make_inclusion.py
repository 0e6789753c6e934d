"""Generate ``inclusion.msh``: a triangle mesh of the unit square with a square inclusion.

Domain: the unit square [0, 1]^2; the inclusion is the square [0.25, 0.75]^2 in its middle.
The two surfaces share the inclusion's four edges, so the mesh is conforming across the
interface and every triangle lies in one of them. The mesh is built by gmsh's Python API
(``pip install gmsh``, a dev dependency) with its Frontal-Delaunay algorithm on one
thread, so the output is the same on every run; it has about 900 triangles (target size
``--size``, default 0.05).

Physical groups (``$PhysicalNames`` in the file; :func:`dfem.mesh.read_mesh` turns the
line groups into boundary tags and, with ``return_cell_tags=True``, the surface groups
into cell tags):

* ``"boundary"`` (1D): the four sides of the unit square;
* ``"inner"`` (2D): the triangles of the inclusion [0.25, 0.75]^2;
* ``"outer"`` (2D): the triangles of the frame around it.

The interface is straight, so uniform refinement (``dfem convergence``) keeps it exactly:
the children of a triangle lie in its subdomain.

Run from the repository root::

    python cases/meshes/make_inclusion.py              # writes cases/meshes/inclusion.msh
    python cases/meshes/make_inclusion.py --out /tmp/i.msh --size 0.1

The file is gmsh format 2.2, ASCII. ``cases/inclusion.toml`` uses it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: The outer square and the inclusion, each as (lo, hi) in x and in y.
OUTER = (0.0, 1.0)
INNER = (0.25, 0.75)


def _square(geo, lo: float, hi: float, size: float) -> list[int]:
    """The four lines of the square [lo, hi]^2, counter-clockwise from (lo, lo)."""
    corners = [(lo, lo), (hi, lo), (hi, hi), (lo, hi)]
    points = [geo.addPoint(x, y, 0.0, size) for x, y in corners]
    return [geo.addLine(points[i], points[(i + 1) % 4]) for i in range(4)]


def make_inclusion(out, size: float = 0.05) -> None:
    """Mesh the square with its inclusion at target element size ``size``; write ``out``."""
    from dfem.mesh.gmsh_session import gmsh_session

    with gmsh_session("inclusion", 2.2, {"Mesh.Algorithm": 6}) as gmsh:  # Frontal-Delaunay
        geo = gmsh.model.geo
        outer_lines = _square(geo, *OUTER, size)
        inner_lines = _square(geo, *INNER, size)
        outer_loop = geo.addCurveLoop(outer_lines)
        inner_loop = geo.addCurveLoop(inner_lines)
        inner = geo.addPlaneSurface([inner_loop])
        outer = geo.addPlaneSurface([outer_loop, inner_loop])  # the frame: a hole for inner
        geo.synchronize()

        gmsh.model.addPhysicalGroup(1, outer_lines, 1, name="boundary")
        gmsh.model.addPhysicalGroup(2, [inner], 2, name="inner")
        gmsh.model.addPhysicalGroup(2, [outer], 3, name="outer")

        gmsh.model.mesh.generate(2)
        gmsh.write(str(out))


def main(argv=None) -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=here / "inclusion.msh",
                        help="output .msh file")
    parser.add_argument("--size", type=float, default=0.05, help="target element size")
    args = parser.parse_args(argv)
    make_inclusion(args.out, args.size)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
