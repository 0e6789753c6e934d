"""Algebraic multigrid preconditioned CG for the differentiable solves, and the
near-nullspace modes that make it work on vector problems.

``"amg"`` in :func:`dfem.solvers.linear.factorize`: conjugate gradients preconditioned by one
V-cycle with Chebyshev smoothing (:mod:`dfem.solvers.multigrid`), both in torch on the
matrix's device; the hierarchy is classical Ruge-Stueben (pyamg) by default, smoothed
aggregation with ``hierarchy="sa"``, and is reused for the adjoint. Given a
:class:`NearNullspace` (``near_nullspace=``), smoothed aggregation on node blocks
interpolates those modes exactly: for elasticity the rigid-body modes
(:func:`rigid_body_modes`),

.. math:: B_{2D} = \\big[(1, 0),\\ (0, 1),\\ (-y, x)\\big], \\qquad
          B_{3D} = \\big[e_1, e_2, e_3,\\ e_1 \\times x,\\ e_2 \\times x,\\ e_3 \\times x\\big],

which keep the iteration count flat under refinement where the default constant candidate
lets it double with each refinement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dfem.exceptions import DfemError
from dfem.solvers.krylov import CGFactor
from dfem.solvers.multigrid import VCycle, ruge_stuben, smoothed_aggregation


@dataclass(frozen=True)
class NearNullspace:
    """Modes an AMG hierarchy must interpolate exactly, and the node blocks of a vector problem.

    Attributes
    ----------
    modes : (n, k) ndarray
        Column ``j`` is a vector (one entry per matrix row) with ``A @ modes[:, j]``
        small: the energy-free motions of the unconstrained operator.
    dofs : (n,) int ndarray, optional
        The global interleaved dof number of each row (``node * block_size +
        component``); rows of one node are aggregated together. None: every row is
        its own node.
    block_size : int
        Components per node (``d``).
    """

    modes: np.ndarray
    dofs: np.ndarray | None = None
    block_size: int = 1

    def __post_init__(self):
        modes = np.asarray(self.modes, dtype=np.float64)
        if modes.ndim == 1:
            modes = modes[:, None]
        if modes.ndim != 2 or modes.shape[1] < 1 or not np.isfinite(modes).all():
            raise DfemError(
                f"near-nullspace modes must be a finite (n_rows, k) array, got shape "
                f"{modes.shape}."
            )
        object.__setattr__(self, "modes", modes)
        if isinstance(self.block_size, bool) or not isinstance(self.block_size, int) \
                or self.block_size < 1:
            raise DfemError(f"block_size must be a positive integer, got {self.block_size!r}.")
        if self.dofs is not None:
            dofs = np.asarray(self.dofs, dtype=np.int64).ravel()
            if dofs.shape[0] != modes.shape[0] or (dofs.size and dofs.min() < 0) \
                    or np.unique(dofs).size != dofs.size:
                raise DfemError(
                    f"near-nullspace dofs must be {modes.shape[0]} distinct non-negative dof "
                    "numbers, one per row of the modes."
                )
            object.__setattr__(self, "dofs", dofs)

    def padded(self) -> tuple[np.ndarray, int]:
        """``(position, n_padded)``: row ``k`` goes to ``position[k]`` of a layout with
        ``block_size`` rows for every node that has a free component (missing components
        are padding), so that the matrix is made of whole ``block_size`` blocks."""
        d = self.block_size
        n = self.modes.shape[0]
        if self.dofs is None:
            if n % d:
                raise DfemError(
                    f"{n} rows do not split into nodes of {d} components; give the dofs of "
                    "the rows (NearNullspace(modes, dofs, block_size))."
                )
            return np.arange(n), n
        nodes, compact = np.unique(self.dofs // d, return_inverse=True)
        return compact * d + self.dofs % d, nodes.size * d


def rigid_body_modes(coordinates, dofs, block_size: int | None = None) -> NearNullspace:
    """The rigid-body motions of a displacement field at the given dofs.

    Row ``k`` is component ``c = dofs[k] % d`` of the displacement at point
    ``x = coordinates[k]``. With ``x`` taken relative to the centroid of the points
    (the span is the same; the columns are better scaled):

    - 2D (3 modes): ``e_x``, ``e_y`` and the rotation ``(-y, x)``;
    - 3D (6 modes): ``e_x``, ``e_y``, ``e_z`` and the rotations ``(0, -z, y)``,
      ``(z, 0, -x)``, ``(-y, x, 0)``.

    These are the null space of the small-strain elasticity operator with no
    Dirichlet conditions, exactly for any isoparametric element (Lagrange nodes, or
    NURBS control points).

    Parameters
    ----------
    coordinates : (n, dim) array or tensor
        The point of each row (a Lagrange node, or a NURBS control point).
    dofs : (n,) int array or tensor
        Global interleaved dof number of each row (``node * d + component``).
    block_size : int, optional
        ``d``; default ``dim``. Must equal ``dim`` (2 or 3).

    Returns
    -------
    NearNullspace
    """
    x = coordinates.detach().cpu().numpy() if torch.is_tensor(coordinates) \
        else np.asarray(coordinates)
    dofs = dofs.detach().cpu().numpy() if torch.is_tensor(dofs) else np.asarray(dofs)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] not in (2, 3):
        raise DfemError(f"coordinates must have shape (n, 2) or (n, 3), got {x.shape}.")
    dim = x.shape[1]
    d = dim if block_size is None else block_size
    if d != dim:
        raise DfemError(
            f"rigid-body modes need one displacement component per dimension; got "
            f"block_size={d} for {dim}D points (use NearNullspace with your own modes)."
        )
    dofs = np.asarray(dofs, dtype=np.int64).ravel()
    if dofs.shape[0] != x.shape[0]:
        raise DfemError(f"got {x.shape[0]} coordinates for {dofs.shape[0]} dofs.")
    x = x - x.mean(0) if x.shape[0] else x
    c = dofs % d
    rows = np.arange(x.shape[0])
    # rotation generators: e_i x e_j pairs (i, j) with u_i = -x_j, u_j = x_i
    pairs = [(0, 1)] if dim == 2 else [(1, 2), (2, 0), (0, 1)]
    modes = np.zeros((x.shape[0], dim + len(pairs)))
    modes[rows, c] = 1.0
    for k, (i, j) in enumerate(pairs):
        col = modes[:, dim + k]
        col[c == i] = -x[c == i, j]
        col[c == j] = x[c == j, i]
    return NearNullspace(modes, dofs, d)


def translation_modes(dofs, block_size: int) -> NearNullspace:
    """One constant mode per component (``e_c`` at every node): the near-nullspace of a
    vector diffusion-type operator, or of any vector field without rotations."""
    dofs = dofs.detach().cpu().numpy() if torch.is_tensor(dofs) else np.asarray(dofs)
    dofs = np.asarray(dofs, dtype=np.int64).ravel()
    modes = np.zeros((dofs.size, block_size))
    modes[np.arange(dofs.size), dofs % block_size] = 1.0
    return NearNullspace(modes, dofs, block_size)


def space_near_nullspace(space, dofs: torch.Tensor) -> NearNullspace | None:
    """The AMG near-nullspace of a vector space's ``dofs`` (e.g. the free ones).

    Rigid-body modes (:func:`rigid_body_modes`) when the space has one component per
    dimension (elasticity), constant modes per component otherwise; None for a
    scalar space (the default AMG is then used). The point of each dof is the
    Lagrange node or, on a NURBS space, the control point.
    """
    scalar = getattr(space, "scalar", None)
    if scalar is None:
        return None
    d = space.n_components
    s = dofs // d
    coords = getattr(scalar, "dof_coordinates", None)  # a NURBS space has control points
    if coords is None and hasattr(scalar, "patch"):
        coords = scalar.patch.control_points.reshape(-1, scalar.patch.control_points.shape[-1])
    if coords is None or coords.shape[1] != d:
        return translation_modes(dofs, d)
    return rigid_body_modes(coords.detach()[s.to(coords.device)], dofs, d)


def space_amg_options(space, options: dict, free: torch.Tensor) -> dict:
    """The options of an AMG solve of a matrix on the dofs ``free`` of ``space``:
    ``options`` with the defaults that suit the space.

    On a vector space: smoothed aggregation on node blocks with the rigid-body modes of
    the free dofs as near-nullspace (:func:`space_near_nullspace`; the default constant
    candidate lets the iteration count double with each refinement), unless ``options``
    choose a ``near_nullspace`` or ``hierarchy="rs"``. On a scalar space in 3D: smoothed
    aggregation unless a hierarchy is given (Q1 on 48³ hexes: 12 CG iterations and
    operator complexity 1.04, against Ruge-Stueben's 18 and 1.72, half the time;
    benchmarks/bench_3d.py). Scalar 2D spaces keep Ruge-Stueben.
    """
    if not hasattr(space, "scalar"):
        if space.dim == 3 and "hierarchy" not in options:
            return {**options, "hierarchy": "sa"}
        return options
    if options.get("hierarchy") == "rs":
        return options
    return with_rigid_body_modes(space, options, free)


def with_rigid_body_modes(space, options: dict, free: torch.Tensor) -> dict:
    """``options`` with the rigid-body modes of the free dofs of a vector ``space`` as
    ``near_nullspace`` (for pyamg's smoothed aggregation or PETSc's GAMG), unless they
    name one already; scalar spaces get ``options`` as they are."""
    if not hasattr(space, "scalar") or "near_nullspace" in options:
        return options
    return {**options, "near_nullspace": space_near_nullspace(space, free)}


class AMGFactor(CGFactor):
    """CG preconditioned by one V-cycle of an algebraic multigrid hierarchy
    (:mod:`dfem.solvers.multigrid`), in torch on the matrix's device: classical
    Ruge-Stueben ("rs", built by pyamg) or smoothed aggregation ("sa"), the latter
    optionally on node blocks with given near-nullspace modes. The hierarchy is reused
    for the adjoint solve."""

    name = "amg"
    advice = "use method='direct'"

    def __init__(self, pattern, values, rtol, atol, maxiter, hierarchy=None,
                 near_nullspace=None, max_coarse=500):
        try:
            import pyamg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise DfemError(
                "method='amg' needs pyamg: pip install pyamg (or dfem[amg]); "
                "method='cg' needs nothing."
            ) from exc
        if near_nullspace is not None and not isinstance(near_nullspace, NearNullspace):
            near_nullspace = NearNullspace(near_nullspace)
        if hierarchy is None:
            hierarchy = "rs" if near_nullspace is None else "sa"
        if hierarchy not in ("rs", "sa"):
            raise DfemError(f"hierarchy must be 'rs' or 'sa', got {hierarchy!r}.")
        if hierarchy == "rs" and near_nullspace is not None:
            raise DfemError(
                "a near_nullspace needs hierarchy='sa' (Ruge-Stueben cannot use one); drop "
                "hierarchy='rs' or pass near_nullspace=None."
            )
        if isinstance(max_coarse, bool) or not isinstance(max_coarse, int) or max_coarse < 1:
            raise DfemError(f"max_coarse must be a positive integer, got {max_coarse!r}.")
        if near_nullspace is not None and near_nullspace.modes.shape[0] != pattern.n:
            raise DfemError(
                f"the near-nullspace has {near_nullspace.modes.shape[0]} rows; the matrix "
                f"has {pattern.n}."
            )
        self.hierarchy_kind, self.near_nullspace, self.max_coarse = (
            hierarchy, near_nullspace, max_coarse)
        super().__init__(pattern, values.detach().to(torch.float64), rtol, atol,
                         maxiter or 2000)

    def preconditioner(self, pattern, values):
        """One V-cycle of the hierarchy of this matrix, built here (``self.hierarchy``)."""
        A, nn = pattern.to_scipy(values), self.near_nullspace
        if self.hierarchy_kind == "rs":
            levels = ruge_stuben(A, self.A, self.max_coarse)
        elif nn is None:
            levels = smoothed_aggregation(A, self.A, np.ones((pattern.n, 1)),
                                          max_coarse=self.max_coarse)
        else:
            position, n_padded = nn.padded()
            levels = smoothed_aggregation(A, self.A, nn.modes, nn.block_size, position,
                                          n_padded, max_coarse=self.max_coarse)
        self.hierarchy = VCycle(levels)
        return self.hierarchy
