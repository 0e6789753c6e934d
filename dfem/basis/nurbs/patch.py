"""A NURBS patch: the geometry of isogeometric analysis, and its refinement.

A patch is the map ``x(u, v) = sum_ij R_ij(u, v) P_ij`` from the parameter rectangle
``[t_p, t_n] x [s_q, s_m]`` onto the domain, with the rational basis

.. math:: R_{ij}(u, v) = \\frac{w_{ij} N_{i,p}(u) M_{j,q}(v)}
                              {\\sum_{kl} w_{kl} N_{k,p}(u) M_{l,q}(v)}.

Isogeometric analysis uses the same ``R_ij`` for the solution, so refining the patch
(knot insertion: h; degree elevation: p) refines the space while the geometry stays
exactly the same. Knot vectors must be clamped (open), so that the patch's sides are
the curves of the boundary control points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from dfem.basis.nurbs.knots import validate_knots
from dfem.basis.nurbs.refine import elevate_degree, insert_knot
from dfem.exceptions import DfemError


@dataclass(frozen=True)
class NURBSPatch:
    """A two-dimensional NURBS patch.

    Attributes
    ----------
    control_points : (n_u, n_v, 2) tensor
    weights : (n_u, n_v) tensor of positive weights
    knots_u, knots_v : clamped knot vectors of lengths ``n_u + p + 1`` and ``n_v + q + 1``
    degree_u, degree_v : int
    """

    control_points: torch.Tensor
    weights: torch.Tensor
    knots_u: torch.Tensor
    knots_v: torch.Tensor
    degree_u: int
    degree_v: int

    def __post_init__(self):
        cp = (
            torch.as_tensor(self.control_points, dtype=torch.float64)
            if not torch.is_tensor(self.control_points)
            else self.control_points
        )
        if cp.ndim != 3 or cp.shape[-1] != 2:
            raise DfemError(
                f"control points of a patch must have shape (n_u, n_v, 2), got {tuple(cp.shape)}."
            )
        like = dict(dtype=cp.dtype, device=cp.device)
        w = (
            torch.as_tensor(self.weights, **like)
            if not torch.is_tensor(self.weights)
            else self.weights.to(**like)
        )
        if w.shape != cp.shape[:2]:
            raise DfemError(
                f"weights must have shape {tuple(cp.shape[:2])} (one per control point), "
                f"got {tuple(w.shape)}."
            )
        if not bool((w.detach() > 0).all()):
            raise DfemError("NURBS weights must be positive; got a weight <= 0 (or NaN).")
        ku, kv = (
            torch.as_tensor(k, **like) if not torch.is_tensor(k) else k.to(**like)
            for k in (self.knots_u, self.knots_v)
        )
        for name, knots, p, n in (
            ("u", ku, self.degree_u, cp.shape[0]),
            ("v", kv, self.degree_v, cp.shape[1]),
        ):
            if isinstance(p, bool) or int(p) != p or p < 1:
                raise DfemError(f"degree_{name} must be an integer >= 1 for analysis, got {p!r}.")
            if knots.ndim != 1 or len(knots) != n + p + 1:
                raise DfemError(
                    f"knots_{name} has {len(knots)} entries, but {n} control points of degree "
                    f"{p} need {n + p + 1} (n + p + 1)."
                )
            validate_knots(knots, int(p))
            t = knots.detach()
            if not (bool((t[: p + 1] == t[0]).all()) and bool((t[-p - 1 :] == t[-1]).all())):
                raise DfemError(
                    f"knots_{name} must be clamped (its first and last value repeated p + 1 = "
                    f"{p + 1} times) for isogeometric analysis."
                )
        object.__setattr__(self, "control_points", cp)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "knots_u", ku)
        object.__setattr__(self, "knots_v", kv)
        object.__setattr__(self, "degree_u", int(self.degree_u))
        object.__setattr__(self, "degree_v", int(self.degree_v))

    @property
    def shape(self) -> tuple[int, int]:
        """Control points per direction ``(n_u, n_v)``."""
        return tuple(self.control_points.shape[:2])

    def breaks(self, axis: int) -> np.ndarray:
        """The distinct knot values of a direction (element boundaries)."""
        return np.unique((self.knots_u if axis == 0 else self.knots_v).detach().cpu().numpy())

    # ------------------------------------------------------------------ refinement
    def insert(self, values_u=(), values_v=()) -> NURBSPatch:
        """The same geometry with knots inserted (each value once)."""
        patch = self
        for axis, values in ((0, values_u), (1, values_v)):
            values = [float(v) for v in values]
            if not values:
                continue
            knots = patch.knots_u if axis == 0 else patch.knots_v
            degree = patch.degree_u if axis == 0 else patch.degree_v
            cp, w, k = insert_knot(
                patch.control_points, patch.weights, knots, degree, values, axis=axis
            )
            patch = replace(
                patch,
                control_points=cp,
                weights=w,
                **({"knots_u": k} if axis == 0 else {"knots_v": k}),
            )
        return patch

    def elevate(self, degree_u: int, degree_v: int | None = None) -> NURBSPatch:
        """The same geometry at degrees ``(degree_u, degree_v)`` (not below the current)."""
        degree_v = degree_u if degree_v is None else degree_v
        patch = self
        for axis, target in ((0, degree_u), (1, degree_v)):
            current = patch.degree_u if axis == 0 else patch.degree_v
            if isinstance(target, bool) or int(target) != target or target < current:
                raise DfemError(
                    f"degree elevation cannot lower the degree: direction {'uv'[axis]} has "
                    f"degree {current}, asked for {target!r}."
                )
            if target == current:
                continue
            knots = patch.knots_u if axis == 0 else patch.knots_v
            cp, w, k = elevate_degree(
                patch.control_points,
                patch.weights,
                knots,
                current,
                int(target - current),
                axis=axis,
            )
            patch = replace(
                patch,
                control_points=cp,
                weights=w,
                **(
                    {"knots_u": k, "degree_u": int(target)}
                    if axis == 0
                    else {"knots_v": k, "degree_v": int(target)}
                ),
            )
        return patch

    def subdivide(self, elements_u: int, elements_v: int | None = None) -> NURBSPatch:
        """Insert knots so that every element of a direction splits into equal parts,
        giving ``elements_u x elements_v`` elements (multiples of the current counts)."""
        elements_v = elements_u if elements_v is None else elements_v
        values = []
        for axis, target in ((0, elements_u), (1, elements_v)):
            b = self.breaks(axis)
            current = len(b) - 1
            if isinstance(target, bool) or int(target) != target or target < 1 or target % current:
                raise DfemError(
                    f"direction {'uv'[axis]} has {current} element(s); ask for a positive "
                    f"multiple of it, got {target!r}."
                )
            k = int(target) // current
            inner = [b[i] + (b[i + 1] - b[i]) * j / k for i in range(current) for j in range(1, k)]
            values.append(inner)
        return self.insert(*values)

    def with_control_points(self, control_points: torch.Tensor) -> NURBSPatch:
        """The same patch with moved control points (for shape gradients)."""
        return replace(self, control_points=control_points)


def unit_square(x=(0.0, 1.0), y=(0.0, 1.0), dtype=torch.float64) -> NURBSPatch:
    """A rectangle as a bilinear patch (one element; refine with elevate and subdivide)."""
    (x0, x1), (y0, y1) = x, y
    cp = torch.tensor([[[x0, y0], [x0, y1]], [[x1, y0], [x1, y1]]], dtype=dtype)
    knots = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=dtype)
    return NURBSPatch(cp, torch.ones(2, 2, dtype=dtype), knots, knots.clone(), 1, 1)


def quarter_annulus(r_inner: float = 1.0, r_outer: float = 2.0, dtype=torch.float64) -> NURBSPatch:
    """The quarter annulus ``r_inner <= r <= r_outer``, ``x, y >= 0``, exactly.

    ``u`` runs along the arcs (a rational quadratic with weights 1, 1/sqrt(2), 1),
    ``v`` from the inner to the outer radius (linear).
    """
    if not 0 < r_inner < r_outer:
        raise DfemError(f"the annulus needs 0 < r_inner < r_outer, got {r_inner}, {r_outer}.")
    arc = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=dtype)
    cp = torch.stack([arc * r_inner, arc * r_outer], dim=1)  # (3, 2, 2)
    w = torch.tensor([1.0, 1.0 / math.sqrt(2.0), 1.0], dtype=dtype)[:, None].expand(3, 2)
    ku = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], dtype=dtype)
    kv = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=dtype)
    return NURBSPatch(cp, w.clone(), ku, kv, 2, 1)



def plate_with_hole(radius: float = 1.0, length: float = 4.0, dtype=torch.float64) -> NURBSPatch:
    """The quarter plate ``[0, L]^2`` minus the disc ``r < R``, exactly (biquadratic NURBS).

    The single patch of Hughes, Cottrell & Bazilevs (CMAME 194, 2005), mirrored into the
    first quadrant, with ``u`` radial (hole to outer edges) and ``v`` the angle
    (counter-clockwise from the x-axis): ``(u, v)`` is right-handed like ``(r, theta)``.
    Knots ``u: [0, 0, 0, 1, 1, 1]``, ``v: [0, 0, 0, 1/2, 1, 1, 1]`` (1 x 2 elements). The
    rows of the control net, from the hole outwards, are

    - the hole: the rational quadratic quarter circle with the knot ``v = 1/2`` inserted,
      ``(R, 0), (R, (sqrt 2 - 1) R), ((sqrt 2 - 1) R, R), (0, R)`` with weights
      ``1, c, c, 1``, ``c = (1 + 1/sqrt 2) / 2``: ``|x| = R`` exactly along the side;
    - the middle row ``(m, 0), (m, 3m/10), (3m/10, m), (0, m)``, ``m = (R + L) / 2``
      (Hughes et al.'s ``(2.5, 0.75)`` for ``R = 1, L = 4``), weights 1;
    - the outer edges ``(L, 0), (L, L), (L, L), (0, L)``, weights 1: ``x = L`` for
      ``v <= 1/2`` and ``y = L`` for ``v >= 1/2``. The repeated point makes the corner
      ``(L, L)`` a kink at the knot ``v = 1/2`` (``dx/dv = 0`` there, at no quadrature
      point).

    Sides: ``left`` the hole (``u = 0``), ``right`` the two outer edges, ``bottom`` the
    symmetry edge ``y = 0`` (``v = 0``), ``top`` the symmetry edge ``x = 0`` (``v = 1``).
    Refine with :meth:`NURBSPatch.elevate`, then :meth:`NURBSPatch.subdivide` with
    ``(k, 2k)`` elements (keeps the elements about square).
    """
    radius, length = float(radius), float(length)
    if not 0 < radius < length:
        raise DfemError(
            f"the plate with a hole needs 0 < radius < length (the hole inside the quarter "
            f"plate), got radius {radius} and length {length}."
        )
    s = math.sqrt(2.0) - 1.0
    m = 0.5 * (radius + length)
    cp = torch.tensor(
        [
            [[radius, 0.0], [radius, s * radius], [s * radius, radius], [0.0, radius]],
            [[m, 0.0], [m, 0.3 * m], [0.3 * m, m], [0.0, m]],
            [[length, 0.0], [length, length], [length, length], [0.0, length]],
        ],
        dtype=dtype,
    )
    c = 0.5 * (1.0 + 1.0 / math.sqrt(2.0))
    w = torch.ones(3, 4, dtype=dtype)
    w[0, 1:3] = c
    ku = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], dtype=dtype)
    kv = torch.tensor([0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0], dtype=dtype)
    return NURBSPatch(cp, w, ku, kv, 2, 2)

#: Named geometries for case files: ``[nurbs] geometry = "quarter-annulus"``.
GEOMETRIES = {"square": unit_square, "quarter-annulus": quarter_annulus,
              "plate-with-hole": plate_with_hole}
