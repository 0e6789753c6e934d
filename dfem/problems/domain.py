"""The domain of a case file as a function space: a mesh with Lagrange elements, or a
NURBS patch for isogeometric analysis (``element = "nurbs"``).

Refinement level ``k`` splits every cell into ``4^k`` (meshes: :func:`dfem.mesh.refine`;
patches: knot insertion, ``2^k`` times the elements per direction), which is what
``dfem convergence`` steps through.
"""

from __future__ import annotations

from pathlib import Path

from dfem.errors import DfemError

#: Keys of the [nurbs] table.
NURBS_KEYS = {"geometry", "degree", "radii", "control_points", "weights", "knots_u", "knots_v",
              "degree_u", "degree_v"}
_EXPLICIT = ("control_points", "weights", "knots_u", "knots_v", "degree_u", "degree_v")


def is_nurbs(data: dict) -> bool:
    return data.get("element") == "nurbs"


def build_mesh(data: dict, case_path: Path | None = None):
    """The [mesh] table as a :class:`dfem.mesh.Mesh` (a rectangle or a mesh file)."""
    from dfem.mesh.structured import rectangle

    spec = data.get("mesh", {})
    if "file" in spec:
        from dfem.mesh import read_mesh

        file = Path(spec["file"])
        if not file.is_absolute() and case_path is not None:
            file = case_path.parent / file
        return read_mesh(file)
    nx = spec.get("nx", spec.get("n", 16))
    return rectangle(
        nx,
        spec.get("ny", nx),
        spec.get("cell", "quad"),
        x=tuple(spec.get("x", (0.0, 1.0))),
        y=tuple(spec.get("y", (0.0, 1.0))),
        diagonal=spec.get("diagonal", "right"),
    )


def build_space(data: dict, case_path: Path | None = None, level: int = 0):
    """The case's function space, refined ``level`` times."""
    if is_nurbs(data):
        from dfem.basis.nurbs.space import IsogeometricSpace

        patch = build_patch(data)
        spec = data.get("mesh", {})
        nx = spec.get("nx", spec.get("n", 8))
        ny = spec.get("ny", nx)
        return IsogeometricSpace(patch.subdivide(nx * 2**level, ny * 2**level))
    if "nurbs" in data:
        raise DfemError('a [nurbs] table needs element = "nurbs" (isogeometric analysis).')
    from dfem.basis.space import FunctionSpace
    from dfem.mesh import refine

    mesh = build_mesh(data, case_path)
    if level:
        mesh = refine(mesh, level)
    default = "Q1" if mesh.cell_type == "quad" else "P1"
    return FunctionSpace(mesh, data.get("element", default))


def build_patch(data: dict):
    """The [nurbs] table as a :class:`NURBSPatch` at the requested degree (one element per
    knot span of the given geometry, before ``mesh.n`` subdivides it)."""
    from dfem.basis.nurbs.patch import GEOMETRIES, NURBSPatch

    spec = data.get("nurbs", {})
    unused = {"cell", "file", "diagonal"} & set(data.get("mesh", {}))
    if unused:
        raise DfemError(
            f"mesh.{sorted(unused)[0]} does not apply to element = \"nurbs\": the patch is the "
            f"mesh; [mesh] n, nx, ny set the elements per direction (and x, y the square)."
        )
    explicit = [k for k in _EXPLICIT if k in spec]
    if explicit and "geometry" in spec:
        raise DfemError("[nurbs] takes either geometry = NAME or control_points/weights/knots, "
                        "not both.")
    if explicit:
        missing = [k for k in _EXPLICIT if k not in spec]
        if missing:
            raise DfemError(f"[nurbs] with control_points also needs {', '.join(missing)}.")
        try:
            patch = NURBSPatch(*(spec[k] for k in _EXPLICIT[:4]), spec["degree_u"],
                               spec["degree_v"])
        except (TypeError, ValueError, RuntimeError) as exc:
            if isinstance(exc, DfemError):
                raise
            raise DfemError(
                f"[nurbs] control_points must be a list of n_u rows of n_v [x, y] pairs, weights "
                f"n_u rows of n_v numbers and knots_u/knots_v lists of numbers ({exc})."
            ) from exc
    else:
        name = spec.get("geometry", "square")
        if name not in GEOMETRIES:
            raise DfemError(f"nurbs.geometry must be one of {', '.join(GEOMETRIES)}, got {name!r}.")
        if name == "square":
            if "radii" in spec:
                raise DfemError('nurbs.radii applies to geometry = "quarter-annulus" only.')
            mesh = data.get("mesh", {})
            patch = GEOMETRIES[name](tuple(mesh.get("x", (0.0, 1.0))),
                                     tuple(mesh.get("y", (0.0, 1.0))))
        else:
            patch = GEOMETRIES[name](*spec.get("radii", (1.0, 2.0)))
    degree = spec.get("degree", max(2, patch.degree_u, patch.degree_v))
    return patch.elevate(degree, degree)
