"""Cook's membrane: a tapered cantilever panel in plane stress, the classic bending benchmark.

The panel has the vertices ``(0, 0), (48, 44), (48, 60), (0, 44)``, is clamped on ``x = 0``
and carries a total vertical shear of 1 on its loaded edge ``x = 48`` (length 16, so the
uniform traction ``t = (0, 1/16)``); ``E = 1``, Poisson's ratio ``1/3``, plane stress
(Cook 1974; the parameters of design.md section 5 and of the FinEtools ``cookstress``
example). The quantity of interest is the vertical displacement of a point of the loaded
edge: the upper corner ``(48, 60)`` here by default, the mid-edge point ``(48, 52)`` where
FinEtools tracks it (its converged value 23.97).

The mesh is the ``n x n`` mapped quadrilateral mesh of the trapezoid: the structured mesh
of the unit square pushed through the bilinear map of its corners,

.. math:: x(\\xi, \\eta) = \\sum_{k=1}^4 N_k(\\xi, \\eta)\\, X_k, \\qquad
          N_1 = (1-\\xi)(1-\\eta),\\ N_2 = \\xi(1-\\eta),\\ N_3 = \\xi\\eta,\\ N_4 = (1-\\xi)\\eta,

with ``X_1..X_4`` the vertices above. Each cell is the image of a sub-square under the same
bilinear map, so straight-sided isoparametric cells represent it exactly.

There is no closed form. The reference is computed: :func:`richardson` extrapolates a
sequence of refinements with the observed order (the clamped corners are singular, so the
point value converges at a non-integer rate the sequence itself tells).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dfem.basis.probes import PointEvaluation
from dfem.basis.space import FunctionSpace
from dfem.exceptions import DfemError
from dfem.mesh.mesh import Mesh
from dfem.mesh.structured import rectangle
from dfem.problems.elasticity import LinearElasticity

VERTICES = ((0.0, 0.0), (48.0, 44.0), (48.0, 60.0), (0.0, 44.0))
TIP = (48.0, 60.0)
MID_EDGE = (48.0, 52.0)
E = 1.0
POISSON_RATIO = 1.0 / 3.0
SHEAR = 1.0
LOADED_EDGE = 16.0
# the value the literature quotes (FinEtools ``cookstress``: plane stress, E = 1, nu = 1/3,
# deflection tracked at the mid-edge point (48, 52)); kept to compare with, never to test
# against
LITERATURE = {"value": 23.97, "point": MID_EDGE,
              "source": "FinEtools/JFinEALE cookstress example (P. Krysl): convutip = 23.97 "
                        "at Mid_edge = [48, 52], plane stress, E = 1, nu = 1/3, load 1/16"}


def cook_mesh(n: int, dtype: torch.dtype = torch.float64, device=None) -> Mesh:
    """The ``n x n`` mapped quadrilateral mesh of Cook's trapezoid.

    Node ``(i, j)`` is ``x(i / n, j / n)`` of the bilinear map in the module docstring
    (numbered as :func:`dfem.mesh.rectangle`), with the tags ``left`` (``x = 0``, clamped),
    ``right`` (``x = 48``, loaded), ``bottom`` (from ``(0, 0)`` to ``(48, 44)``) and ``top``
    (from ``(0, 44)`` to ``(48, 60)``).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DfemError(f"n (cells per side) must be a positive integer, got {n!r}.")
    square = rectangle(int(n), int(n), "quad", dtype=dtype, device=device)
    xi, eta = square.nodes[:, 0], square.nodes[:, 1]
    X = torch.as_tensor(VERTICES, dtype=dtype, device=device)
    N = torch.stack([(1 - xi) * (1 - eta), xi * (1 - eta), xi * eta, (1 - xi) * eta], dim=1)
    return Mesh(N @ X, square.cells_np, square.boundaries)


def cook_problem(element: str = "Q2", n: int = 8, plane: str = "stress") -> LinearElasticity:
    """Cook's membrane on :func:`cook_mesh` with ``element`` (Q1, Q2, Q3).

    ``E = 1``, Poisson's ratio ``1/3``, clamped on ``left``, traction ``(0, 1/16)`` on
    ``right`` (total shear 1).
    """
    space = FunctionSpace(cook_mesh(n), element, shape=(2,))
    return LinearElasticity(space, E=E, poisson_ratio=POISSON_RATIO, plane=plane,
                            dirichlet={"left": 0.0},
                            traction={"right": [0.0, SHEAR / LOADED_EDGE]})


def vertical_displacement(problem: LinearElasticity, u: torch.Tensor, points=(TIP,)):
    """``u_y`` of the solution ``u`` at ``points`` (k, 2): (k,) tensor."""
    space = problem.space
    probe = PointEvaluation(space.scalar, torch.as_tensor(points, dtype=space.dtype))
    return probe(space.components(u)[:, 1])


def tip_displacement(element: str = "Q2", n: int = 8, point=TIP, method: str = "direct",
                     plane: str = "stress", **solver_options) -> float:
    """The vertical displacement at ``point`` (default the tip ``(48, 60)``) of the solution
    of :func:`cook_problem` (``element``, ``n``), solved with ``method``."""
    problem = cook_problem(element, n, plane)
    with torch.no_grad():
        u = problem.solve(method=method, **solver_options)
    return float(vertical_displacement(problem, u, [point])[0])


def richardson(values, ratio: float = 2.0) -> dict:
    """Extrapolation of the last three of a sequence ``values`` on meshes refined by ``ratio``.

    With ``u_k = u + C h_k^p`` the observed order and the limit are

    .. math:: p = \\log_r \\frac{u_{k-1} - u_{k-2}}{u_k - u_{k-1}}, \\qquad
              u_\\infty = u_k + \\frac{u_k - u_{k-1}}{r^p - 1}.

    Returns ``{"value", "order", "correction"}`` (``correction = u_inf - u_k``).
    """
    u = [float(v) for v in values]
    if len(u) < 3:
        raise DfemError(f"Richardson extrapolation needs three refinements, got {len(u)}.")
    a, b, c = u[-3:]
    d1, d2 = b - a, c - b
    if d1 == 0 or d2 == 0 or d1 * d2 < 0:
        raise DfemError(
            f"the sequence {u[-3:]} does not converge monotonically; Richardson extrapolation "
            "needs finer meshes (or the values are already converged to round-off)."
        )
    order = math.log(d1 / d2) / math.log(ratio)
    correction = d2 / (ratio**order - 1)
    return {"value": c + correction, "order": order, "correction": correction}
