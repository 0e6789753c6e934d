"""The domain of a case file as a function space: a mesh with Lagrange elements, or a
NURBS patch for isogeometric analysis (``element = "nurbs"``); scalar for Poisson
problems, with one component per dimension (``shape=(dim,)``) for elastic ones.

Meshes are rectangles (``mesh.x``, ``mesh.y``), boxes (``mesh.nz`` or ``mesh.z`` given, or
``cell = "hex" | "tet"``), mesh files (``mesh.file``: 2D or 3D) or the image of the unit
square under the bilinear map of four corners (``mesh.corners``):

.. math:: x(s, t) = (1-s)(1-t)\\,c_0 + s(1-t)\\,c_1 + s t\\,c_2 + (1-s) t\\,c_3,

a structured quadrilateral (or triangle) mesh of a convex quadrilateral with the tags
``left`` (``c_0 c_3``), ``right`` (``c_1 c_2``), ``bottom`` (``c_0 c_1``) and ``top``
(``c_3 c_2``).

``mesh.perturb = f`` moves every interior node by up to ``f`` times the shortest edge
(:func:`dfem.mesh.perturb_interior`, seeded by the level), for tests on distorted cells.

Refinement level ``k`` splits every cell into ``4^k`` (``8^k`` in 3D; meshes:
:func:`dfem.mesh.refine`;
patches: knot insertion, ``2^k`` times the elements per direction), which is what
``dfem convergence`` steps through.
"""

from __future__ import annotations

from pathlib import Path

from dfem.exceptions import DfemError

#: Keys of the [nurbs] table.
NURBS_KEYS = {"geometry", "degree", "radii", "radius", "length", "control_points", "weights",
              "knots_u", "knots_v", "degree_u", "degree_v"}
_EXPLICIT = ("control_points", "weights", "knots_u", "knots_v", "degree_u", "degree_v")


def is_nurbs(data: dict) -> bool:
    return data.get("element") == "nurbs"


def build_mesh(data: dict, case_path: Path | None = None, level: int = 0):
    """The [mesh] table as a :class:`dfem.mesh.Mesh` (a rectangle, a box, a mapped
    quadrilateral or a mesh file), refined ``level`` times.

    A box at level ``k`` is the box of ``2^k`` times the cells per direction: for hexahedra
    that is the refined mesh; for tetrahedra it keeps the Kuhn split's shape at every
    level, so the longest edge (the ``h`` of a convergence study) halves exactly.
    """
    from dfem.mesh import refine
    from dfem.mesh.structured import box, rectangle

    spec = data.get("mesh", {})
    if "file" in spec:
        from dfem.mesh import read_mesh

        file = mesh_file(data, case_path)
        mesh = read_mesh(file)
        if mesh.dim == 3 and "diagonal" in spec:
            raise DfemError(f"mesh.diagonal is a 2D option (how squares split into triangles); "
                            f"{file.name} is a 3D mesh: drop mesh.diagonal.")
        return refine(mesh, level)
    nx = spec.get("nx", spec.get("n", 16))
    if {"nz", "z"} & set(spec) or spec.get("cell") in ("hex", "tet"):
        scale = 2**level
        return box(nx * scale, spec.get("ny", nx) * scale, spec.get("nz", nx) * scale,
                   spec.get("cell", "hex"), x=tuple(spec.get("x", (0.0, 1.0))),
                   y=tuple(spec.get("y", (0.0, 1.0))), z=tuple(spec.get("z", (0.0, 1.0))))
    mesh = rectangle(
        nx,
        spec.get("ny", nx),
        spec.get("cell", "quad"),
        x=tuple(spec.get("x", (0.0, 1.0))),
        y=tuple(spec.get("y", (0.0, 1.0))),
        diagonal=spec.get("diagonal", "right"),
    )
    if "corners" in spec:
        mesh = mesh.with_nodes(bilinear_map(spec["corners"], mesh.nodes))
    return refine(mesh, level)


def mesh_file(data: dict, case_path: Path | None = None) -> Path | None:
    """``mesh.file`` as a path (relative paths are relative to the case file), or None."""
    spec = data.get("mesh", {})
    if "file" not in spec:
        return None
    file = Path(spec["file"])
    if not file.is_absolute() and case_path is not None:
        file = case_path.parent / file
    return file


def space_cell_tags(data: dict, case_path: Path | None, space):
    """The cell tags of ``space``'s mesh, a refinement of the case's mesh, as a
    :class:`~dfem.problems.subdomains.CellTags`.

    A mesh file's tags (:func:`dfem.read_mesh` with ``return_cell_tags=True``) are carried
    through the refinement that gives ``space``'s cell count
    (:func:`~dfem.problems.subdomains.refine_cell_tags`); other meshes have none.

    Raises
    ------
    DfemError
        If ``space``'s cell count is not that of the file's mesh refined ``k`` times.
    """
    from dfem.problems.subdomains import CellTags, refine_cell_tags

    part = space.mesh.partition  # one rank's part: the tags of the whole mesh, restricted
    n_cells = space.mesh.n_cells if part is None else part.global_mesh.n_cells
    file = mesh_file(data, case_path)
    if file is None or is_nurbs(data):
        what = "the NURBS patch" if is_nurbs(data) else "the generated mesh ([mesh] n, x, y)"
        return CellTags({}, n_cells, what)
    from dfem.mesh import read_mesh

    mesh, tags = read_mesh(file, return_cell_tags=True)
    split, level = 2**mesh.dim, 0
    while mesh.n_cells * split**level < n_cells:
        level += 1
    if mesh.n_cells * split**level != n_cells:
        raise DfemError(
            f"the space has {n_cells} cells, which is not the {mesh.n_cells} cells of "
            f"{file.name} refined a whole number of times; build it with Case.space(level)."
        )
    tags = refine_cell_tags(tags, mesh.dim, level)
    if part is not None:
        tags = {name: part.local_cells(cells) for name, cells in tags.items()}
        n_cells = space.mesh.n_cells
    return CellTags(tags, n_cells, file.name)


def bilinear_map(corners, st):
    """The points ``x(s, t)`` (see the module docstring) of ``st`` (n, 2) in the unit square.

    Raises :class:`DfemError` unless ``corners`` is a convex quadrilateral listed
    counter-clockwise, the condition for the map to be one-to-one with a positive
    Jacobian everywhere.
    """
    import torch

    c = torch.as_tensor(corners, dtype=st.dtype, device=st.device)
    edges = torch.roll(c, -1, dims=0) - c
    turns = edges[:, 0] * torch.roll(edges, -1, dims=0)[:, 1] \
        - edges[:, 1] * torch.roll(edges, -1, dims=0)[:, 0]
    scale = float((edges**2).sum(1).max())
    if not bool((turns > 1e-12 * scale).all()):
        raise DfemError(
            f"mesh.corners {corners!r} must be the corners of a convex quadrilateral, listed "
            "counter-clockwise from the corner where the left and bottom sides meet (e.g. "
            "[[0, 0], [48, 44], [48, 60], [0, 44]])."
        )
    s, t = st[:, :1], st[:, 1:]
    return (1 - s) * (1 - t) * c[0] + s * (1 - t) * c[1] + s * t * c[2] + (1 - s) * t * c[3]


def build_space(data: dict, case_path: Path | None = None, level: int = 0, vector=False,
                distributed: bool = False):
    """The case's function space, refined ``level`` times; with ``vector``, one component
    per dimension (``shape=(dim,)``, dofs interleaved per node); with ``distributed``, on
    this MPI rank's part of the mesh (:func:`dfem.distributed.distribute`)."""
    if is_nurbs(data) and distributed:
        raise DfemError('element = "nurbs" does not run distributed (a patch is not '
                        "partitioned): run the case on one process.")
    if is_nurbs(data):
        from dfem.basis.nurbs.space import IsogeometricSpace

        patch = build_patch(data)
        spec = data.get("mesh", {})
        nx = spec.get("nx", spec.get("n", 8))
        ny = spec.get("ny", nx)
        return IsogeometricSpace(patch.subdivide(nx * 2**level, ny * 2**level),
                                 shape=(2,) if vector else ())
    if "nurbs" in data:
        raise DfemError('a [nurbs] table needs element = "nurbs" (isogeometric analysis).')
    from dfem.basis.lagrange import linear_element
    from dfem.basis.space import FunctionSpace

    mesh = build_mesh(data, case_path, level)
    if "perturb" in data.get("mesh", {}):
        from dfem.mesh.structured import perturb_interior

        # after refinement, so that every level's cells are distorted, not just the coarse ones
        mesh = perturb_interior(mesh, data["mesh"]["perturb"], seed=level)
    if distributed:
        from dfem.distributed import distribute

        mesh = distribute(mesh)
    default = linear_element(mesh.cell_type)
    shape = (mesh.nodes.shape[1],) if vector else ()
    return FunctionSpace(mesh, data.get("element", default), shape=shape)


def build_patch(data: dict):
    """The [nurbs] table as a :class:`NURBSPatch` at the requested degree (one element per
    knot span of the given geometry, before ``mesh.n`` subdivides it)."""
    from dfem.basis.nurbs.patch import GEOMETRIES, NURBSPatch

    spec = data.get("nurbs", {})
    unused = {"cell", "file", "diagonal", "corners", "nz", "z"} & set(data.get("mesh", {}))
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
        keys = {"square": set(), "quarter-annulus": {"radii"},
                "plate-with-hole": {"radius", "length"}}[name]
        stray = sorted((set(spec) & {"radii", "radius", "length"}) - keys)
        if stray:
            owner = "quarter-annulus" if stray[0] == "radii" else "plate-with-hole"
            raise DfemError(f'nurbs.{stray[0]} applies to geometry = "{owner}" only.')
        if name == "square":
            mesh = data.get("mesh", {})
            patch = GEOMETRIES[name](tuple(mesh.get("x", (0.0, 1.0))),
                                     tuple(mesh.get("y", (0.0, 1.0))))
        elif name == "plate-with-hole":
            patch = GEOMETRIES[name](spec.get("radius", 1.0), spec.get("length", 4.0))
        else:
            patch = GEOMETRIES[name](*spec.get("radii", (1.0, 2.0)))
    degree = spec.get("degree", max(2, patch.degree_u, patch.degree_v))
    return patch.elevate(degree, degree)
