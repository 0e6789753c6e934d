"""Quadrature rules on the reference cells.

Reference cells: ``[0, 1]`` for edges, the unit square ``[0, 1]^2`` for
quadrilaterals, the triangle with vertices ``(0, 0), (1, 0), (0, 1)``, the unit
cube ``[0, 1]^3`` for hexahedra and the tetrahedron with vertices ``(0, 0, 0),
(1, 0, 0), (0, 1, 0), (0, 0, 1)``. Every rule returns ``(points, weights)`` with
``points`` of shape ``(n, dim)`` and weights summing to the measure of the cell
(1, 1, 1/2, 1 and 1/6).

A rule "of degree q" integrates every polynomial of total degree <= q exactly
(on quads and hexes: every polynomial of degree <= q in each variable).
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
from scipy.special import roots_jacobi

from dfem.exceptions import DfemError

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

# Fully symmetric tetrahedron rules, as orbits of barycentric points (l0, l1, l2, l3)
# with per-point weights that sum to one:
#   ("S4", w)             the centroid,
#   ("S31", a, w)         the 4 permutations of (a, a, a, 1 - 3a),
#   ("S22", a, w)         the 6 permutations of (a, a, 1/2 - a, 1/2 - a),
#   ("S211", a, b, w)     the 12 permutations of (a, a, b, 1 - 2a - b),
#   ("S1111", a, b, c, w) the 24 permutations of (a, b, c, 1 - a - b - c).
# Symmetry reduces exactness to the S4-invariant polynomials of degree <= q (1, 2, 3,
# 5, 6, 9, 11, 15 of them for q = 1..8); each orbit structure has exactly that many
# unknowns, or one more for degrees 3 and 8.
# The parameters were found by solving the moment equations from random starts
# (bounded least squares over the orbit structure, then Newton in 50-digit arithmetic)
# and are printed with 17 significant digits; the tests re-check every monomial.
# Degrees 3 and 8 have one-parameter families of solutions: one coordinate (0.095 and
# 0.0205) was fixed near the member whose points lie farthest from the faces.
# The search found no positive interior degree-4 rule with fewer than 14 points, so
# degree 4 uses the degree-5 rule.
_TETRAHEDRON_ORBITS: dict[int, list[tuple]] = {
    1: [("S4", 1.0)],
    2: [("S31", (5.0 - np.sqrt(5.0)) / 20.0, 0.25)],
    3: [
        ("S31", 0.32757642388093441, 0.16000812170652531),
        ("S31", 0.095, 0.089991878293474686),
    ],
    5: [
        ("S31", 0.31088591926330061, 0.11268792571801585),
        ("S31", 0.092735250310891226, 0.07349304311636195),
        ("S22", 0.045503704125649649, 0.042546020777081466),
    ],
    6: [
        ("S31", 0.32233789014227551, 0.055357181543654722),
        ("S31", 0.21460287125915203, 0.039922750258167492),
        ("S31", 0.040673958534611353, 0.010077211055320643),
        ("S211", 0.063661001875017525, 0.26967233145831581, 0.048214285714285714),
    ],
    7: [
        ("S4", 0.095485289464130849),
        ("S31", 0.3157011497782028, 0.042329581209967029),
        ("S22", 0.050489822598396369, 0.03189692783285758),
        ("S211", 0.18883383102600105, 0.047160700360997881, 0.037207130728334621),
        ("S211", 0.021265472541483246, 0.14663881381848495, 0.0081107708299033416),
    ],
    8: [
        ("S31", 0.18423542451948155, 0.059200926826705119),
        ("S31", 0.31537290108882405, 0.033570588152808137),
        ("S31", 0.081910482079444269, 0.02045171815401174),
        ("S31", 0.0205, 0.0019964542887508214),
        ("S22", 0.05949334728051273, 0.033347953935413374),
        ("S211", 0.20733865649785849, 0.020180362464963034, 0.020621327916635952),
        ("S211", 0.023775660616905366, 0.22348822042611059, 0.0076314659748987548),
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


def _expand_tet_orbits(orbits) -> tuple[np.ndarray, np.ndarray]:
    bary, weights = [], []
    for kind, *params in orbits:
        w = params[-1]
        if kind == "S4":
            orbit = (0.25, 0.25, 0.25, 0.25)
        elif kind == "S31":
            a = params[0]
            orbit = (a, a, a, 1.0 - 3.0 * a)
        elif kind == "S22":
            a = params[0]
            orbit = (a, a, 0.5 - a, 0.5 - a)
        elif kind == "S211":
            a, b = params[0], params[1]
            orbit = (a, a, b, 1.0 - 2.0 * a - b)
        else:  # S1111
            a, b, c = params[0], params[1], params[2]
            orbit = (a, b, c, 1.0 - a - b - c)
        # Repeated entries compare equal, so dict.fromkeys keeps exactly the distinct
        # permutations, in a deterministic order.
        perms = list(dict.fromkeys(itertools.permutations(orbit)))
        bary += perms
        weights += [w] * len(perms)
    bary = np.asarray(bary)
    # Barycentric (l0, l1, l2, l3) -> reference coordinates (x, y, z) = (l1, l2, l3).
    return bary[:, 1:].copy(), np.asarray(weights) / 6.0


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


@cache
def hexahedron_rule(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss-Legendre rule on ``[0, 1]^3`` exact to degree ``degree`` in each variable.

    Points are ordered with the first coordinate varying slowest, as in :func:`quad_rule`.
    """
    x, w = line_rule(degree)
    X, Y, Z = np.meshgrid(x[:, 0], x[:, 0], x[:, 0], indexing="ij")
    W = w[:, None, None] * w[None, :, None] * w[None, None, :]
    return np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1), W.ravel()


def _gauss_jacobi(n: int, alpha: int) -> tuple[np.ndarray, np.ndarray]:
    # n-point Gauss rule on [0, 1] for the weight (1 - s)^alpha.
    x, w = roots_jacobi(n, alpha, 0)
    return 0.5 * (x + 1.0), w / 2.0 ** (alpha + 1)


@cache
def tetrahedron_rule(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """A rule on the reference tetrahedron exact to total degree ``degree``.

    Parameters
    ----------
    degree : int
        Polynomial degree to integrate exactly; values below 1 are treated as 1.

    Returns
    -------
    points : ndarray of shape (n, 3)
    weights : ndarray of shape (n,)
        Weights summing to 1/6, the volume of the tetrahedron.

    Notes
    -----
    Degrees up to 8 use fully symmetric rules (invariant under all permutations of
    the barycentric coordinates) with all points strictly inside the tetrahedron and
    positive weights: 1, 1, 4, 8, 14, 14, 24, 35, 46 points for degrees 0..8.
    Higher degrees use a collapsed (Stroud conical) product of Gauss-Jacobi rules,
    ``((degree + 2) // 2) ** 3`` points, which is exact but not symmetric.
    """
    degree = max(int(degree), 1)
    for q in sorted(_TETRAHEDRON_ORBITS):
        if q >= degree:
            return _expand_tet_orbits(_TETRAHEDRON_ORBITS[q])
    # x = u, y = v (1 - u), z = w (1 - u)(1 - v) has Jacobian (1 - u)^2 (1 - v); a
    # polynomial of total degree q stays of degree <= q in each of u, v, w, so the
    # Jacobian factors go into Gauss-Jacobi weights and n = (q + 2) // 2 suffices.
    n = (degree + 2) // 2
    u, wu = _gauss_jacobi(n, 2)
    v, wv = _gauss_jacobi(n, 1)
    w, ww = _gauss_jacobi(n, 0)
    U, V, Wc = np.meshgrid(u, v, w, indexing="ij")
    weights = wu[:, None, None] * wv[None, :, None] * ww[None, None, :]
    points = np.stack([U, V * (1.0 - U), Wc * (1.0 - U) * (1.0 - V)], axis=-1)
    return points.reshape(-1, 3), weights.ravel()


_CELL_RULES = {
    "quad": quad_rule,
    "tri": triangle_rule,
    "hex": hexahedron_rule,
    "tet": tetrahedron_rule,
}

# Facets of a cell type: edges of 2D cells, triangles of tets, squares of hexes.
_FACET_RULES = {
    "quad": line_rule,
    "tri": line_rule,
    "hex": quad_rule,
    "tet": triangle_rule,
}


def cell_rule(cell_type: str, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """The quadrature rule of degree ``degree`` on the reference cell of ``cell_type``.

    Parameters
    ----------
    cell_type : {"tri", "quad", "tet", "hex"}
    degree : int

    Returns
    -------
    points : ndarray of shape (n, dim)
    weights : ndarray of shape (n,)
    """
    if cell_type not in _CELL_RULES:
        raise DfemError(f"unknown cell type {cell_type!r}; use 'tri', 'quad', 'tet' or 'hex'.")
    return _CELL_RULES[cell_type](degree)


def facet_rule(cell_type: str, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """The quadrature rule of degree ``degree`` on the reference facet of ``cell_type``.

    Facets of "tri" and "quad" are edges (:func:`line_rule`, points of shape (n, 1) on
    ``[0, 1]``), facets of "tet" are triangles (:func:`triangle_rule`) and facets of
    "hex" are squares (:func:`quad_rule`).
    """
    if cell_type not in _FACET_RULES:
        raise DfemError(f"unknown cell type {cell_type!r}; use 'tri', 'quad', 'tet' or 'hex'.")
    return _FACET_RULES[cell_type](degree)
