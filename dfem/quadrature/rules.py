"""Quadrature rules on the reference cells.

Reference cells: the unit square ``[0, 1]^2`` for quadrilaterals, the triangle
with vertices ``(0, 0), (1, 0), (0, 1)`` for triangles, and ``[0, 1]`` for edges.
Every rule returns ``(points, weights)`` with ``points`` of shape ``(n, dim)`` and
weights summing to the measure of the cell (1, 1/2 and 1).

A rule "of degree q" integrates every polynomial of total degree <= q exactly
(on quads: every polynomial of degree <= q in each variable).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from dfem.errors import DfemError

# Symmetric triangle rules, as orbits of barycentric points with weights that sum
# to one. The parameters were obtained by solving the moment equations to machine
# precision (Newton from the classical Strang-Fix/Dunavant values); the test suite
# re-checks exactness on every monomial.
_TRIANGLE_ORBITS: dict[int, list[tuple]] = {
    1: [("S3", 1.0)],
    2: [("S21", 1.0 / 6.0, 1.0 / 3.0)],
    4: [
        ("S21", 0.44594849091596483, 0.22338158967801136),
        ("S21", 0.09157621350977076, 0.10995174365532195),
    ],
    5: [
        ("S3", 9.0 / 40.0),
        ("S21", (6.0 - np.sqrt(15.0)) / 21.0, (155.0 - np.sqrt(15.0)) / 1200.0),
        ("S21", (6.0 + np.sqrt(15.0)) / 21.0, (155.0 + np.sqrt(15.0)) / 1200.0),
    ],
    6: [
        ("S21", 0.24928674517091273, 0.11678627572637666),
        ("S21", 0.06308901449150191, 0.05084490637020611),
        ("S111", 0.053145049844817965, 0.3103524510337822, 0.08285107561837528),
    ],
    8: [
        ("S3", 0.144315607677787),
        ("S21", 0.459292588292723, 0.095091634267285),
        ("S21", 0.17056930775176, 0.103217370534718),
        ("S21", 0.050547228317031, 0.032458497623198),
        ("S111", 0.008394777409958, 0.263112829634638, 0.027230314174435),
    ],
}


def _expand_orbits(orbits) -> tuple[np.ndarray, np.ndarray]:
    bary, weights = [], []
    for orbit in orbits:
        kind = orbit[0]
        if kind == "S3":
            bary.append([1 / 3, 1 / 3, 1 / 3])
            weights.append(orbit[1])
        elif kind == "S21":
            a, w = orbit[1], orbit[2]
            b = 1.0 - 2.0 * a
            bary += [[a, a, b], [a, b, a], [b, a, a]]
            weights += [w] * 3
        else:  # S111: all six permutations of (a, b, 1 - a - b)
            a, b, w = orbit[1], orbit[2], orbit[3]
            c = 1.0 - a - b
            bary += [[a, b, c], [a, c, b], [b, a, c], [b, c, a], [c, a, b], [c, b, a]]
            weights += [w] * 6
    bary = np.asarray(bary)
    # Barycentric (l0, l1, l2) -> reference coordinates (x, y) = (l1, l2); area 1/2.
    return bary[:, 1:].copy(), 0.5 * np.asarray(weights)


@cache
def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n-point Gauss-Legendre rule on ``[0, 1]`` (exact to degree ``2n - 1``).

    Returns ``points`` of shape ``(n, 1)`` and ``weights`` of shape ``(n,)``.
    """
    if n < 1:
        raise DfemError(f"a Gauss rule needs at least one point, got n={n}.")
    x, w = np.polynomial.legendre.leggauss(n)
    return (0.5 * (x + 1.0))[:, None], 0.5 * w


def line_rule(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre rule on ``[0, 1]`` exact to polynomial degree ``degree``."""
    return gauss_legendre(max(1, (degree + 2) // 2))


@cache
def quad_rule(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss-Legendre rule on ``[0, 1]^2`` exact to degree ``degree`` in each variable."""
    x, w = line_rule(degree)
    X, Y = np.meshgrid(x[:, 0], x[:, 0], indexing="ij")
    W = np.outer(w, w)
    return np.stack([X.ravel(), Y.ravel()], axis=1), W.ravel()


@cache
def triangle_rule(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """A rule on the reference triangle exact to total degree ``degree``.

    Degrees up to 8 use symmetric rules with all points inside the triangle and
    positive weights (1, 1, 3, 6, 6, 7, 12, 16, 16 points for degrees 0..8).
    Higher degrees use a collapsed (Duffy) product of Gauss rules, which is exact
    but not symmetric.
    """
    degree = max(int(degree), 1)
    for q in sorted(_TRIANGLE_ORBITS):
        if q >= degree:
            return _expand_orbits(_TRIANGLE_ORBITS[q])
    # Duffy: x = s, y = t (1 - s) on [0,1]^2 with Jacobian (1 - s); the extra factor
    # raises the degree in s by one, hence n = (degree + 3) // 2 points along s.
    s, ws = gauss_legendre((degree + 3) // 2)
    t, wt = gauss_legendre((degree + 2) // 2)
    S, T = np.meshgrid(s[:, 0], t[:, 0], indexing="ij")
    W = np.outer(ws, wt) * (1.0 - S)
    return np.stack([S.ravel(), (T * (1.0 - S)).ravel()], axis=1), W.ravel()


def cell_rule(cell_type: str, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """The rule of :func:`quad_rule` or :func:`triangle_rule` for ``cell_type`` "quad" or "tri"."""
    if cell_type == "quad":
        return quad_rule(degree)
    if cell_type == "tri":
        return triangle_rule(degree)
    raise DfemError(f"unknown cell type {cell_type!r}; use 'tri' or 'quad'.")
