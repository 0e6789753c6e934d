"""The classic design problems, each as ``(mesh, objective)``.

- :func:`mbb_beam`: the MBB half-beam of the 88-line code (``nelx x nely`` unit Q1 cells,
  plane stress, unit load down at the top-left corner, symmetry ``u_x = 0`` on the left
  side, a roller ``u_y = 0`` at the bottom-right corner);
- :func:`cantilever`: clamped on the left, a unit load down at the middle of the right side
  (or at its bottom corner, the 88-line code's variant);
- :func:`cantilever_3d`: a hexahedral beam clamped at x = 0, a unit load down spread over
  the nodes of the bottom edge of its free end;
- :func:`heat_sink`: heat conduction on the unit square, a uniform source and a cold
  patch (``u = 0``) on the middle of the left side.
"""

from __future__ import annotations

from dfem.basis.space import FunctionSpace
from dfem.design.compliance import StructuralCompliance, ThermalCompliance
from dfem.exceptions import DfemError
from dfem.mesh.structured import box, rectangle


def _cells(**counts) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DfemError(f"{name} must be a positive integer, got {value!r}.")


def mbb_beam(nelx: int = 60, nely: int = 20, **material):
    """The 88-line code's MBB half-beam (module docstring); ``material``: ``E0``,
    ``E_min``, ``penal``, ``poisson_ratio``, ``method``."""
    _cells(nelx=nelx, nely=nely)
    mesh = rectangle(nelx, nely, "quad", x=(0.0, float(nelx)), y=(0.0, float(nely)))
    mesh.tag_points("load", [[0.0, float(nely)]])
    mesh.tag_points("roller", [[float(nelx), 0.0]])
    space = FunctionSpace(mesh, "Q1", shape=(2,))
    objective = StructuralCompliance(space, plane="stress",
                                     dirichlet={"left": {"x": 0.0}, "roller": {"y": 0.0}},
                                     point_loads={"load": [0.0, -1.0]}, **material)
    return mesh, objective


def cantilever(nelx: int = 80, nely: int = 40, load: str = "middle", **material):
    """A cantilever clamped on the left with a unit load down on the right side, at its
    ``"middle"`` or its ``"bottom"`` corner."""
    _cells(nelx=nelx, nely=nely)
    if load not in ("middle", "bottom"):
        raise DfemError(f"load must be 'middle' or 'bottom', got {load!r}.")
    if load == "middle" and nely % 2:
        raise DfemError(f"a load at the middle of the right side needs an even nely, got "
                        f"{nely}.")
    mesh = rectangle(nelx, nely, "quad", x=(0.0, float(nelx)), y=(0.0, float(nely)))
    mesh.tag_points("load", [[float(nelx), nely / 2 if load == "middle" else 0.0]])
    space = FunctionSpace(mesh, "Q1", shape=(2,))
    objective = StructuralCompliance(space, plane="stress", dirichlet={"left": 0.0},
                                     point_loads={"load": [0.0, -1.0]}, **material)
    return mesh, objective


def cantilever_3d(nx: int = 30, ny: int = 10, nz: int = 10, **material):
    """A hexahedral cantilever ``nx x ny x nz`` unit cells, clamped at x = 0, a total unit
    load down (-y) shared by the nodes of the edge x = nx, y = 0."""
    _cells(nx=nx, ny=ny, nz=nz)
    mesh = box(nx, ny, nz, cell="hex", x=(0.0, float(nx)), y=(0.0, float(ny)),
               z=(0.0, float(nz)))
    nodes = mesh.tag_points("load", lambda x: (x[:, 0] > nx - 1e-9) & (x[:, 1] < 1e-9))
    space = FunctionSpace(mesh, "Q1", shape=(3,))
    objective = StructuralCompliance(space, dirichlet={"left": 0.0},
                                     point_loads={"load": [0.0, -1.0 / len(nodes), 0.0]},
                                     **material)
    return mesh, objective


def heat_sink(n: int = 40, sink: float = 0.2, source: float = 1.0, **material):
    """Heat conduction on the unit square with a uniform ``source`` and the cold patch
    ``u = 0`` on the left side where ``|y - 1/2| < sink / 2``; ``material``: ``k0``,
    ``k_min``, ``penal``, ``method``."""
    _cells(n=n)
    if not 0 < sink <= 1:
        raise DfemError(f"the sink's length must be in (0, 1], got {sink!r}.")
    mesh = rectangle(n, n, "quad")
    mesh.tag_facets("sink", lambda c: (c[:, 0] < 1e-9) & ((c[:, 1] - 0.5).abs() < sink / 2))
    space = FunctionSpace(mesh, "Q1")
    objective = ThermalCompliance(space, f=source, dirichlet={"sink": 0.0}, **material)
    return mesh, objective


PROBLEMS = {"mbb": mbb_beam, "cantilever": cantilever, "cantilever_3d": cantilever_3d,
            "heat_sink": heat_sink}
