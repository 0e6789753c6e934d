"""Tetrahedron and hexahedron rules: exactness, symmetry, positivity, dispatch."""

import itertools
from math import factorial

import numpy as np
import pytest

from dfem.exceptions import DfemError
from dfem.quadrature.rules import (
    cell_rule,
    facet_rule,
    hexahedron_rule,
    line_rule,
    quad_rule,
    tetrahedron_rule,
    triangle_rule,
)

SYMMETRIC_DEGREES = range(1, 9)
POINT_COUNTS = {1: 1, 2: 4, 3: 8, 4: 14, 5: 14, 6: 24, 7: 35, 8: 46}


def tet_moment(i, j, k):
    # int_T x^i y^j z^k over the reference tetrahedron = i! j! k! / (i + j + k + 3)!
    return factorial(i) * factorial(j) * factorial(k) / factorial(i + j + k + 3)


def monomials(degree):
    return [
        (i, j, k)
        for i in range(degree + 1)
        for j in range(degree + 1 - i)
        for k in range(degree + 1 - i - j)
    ]


def barycentric(x):
    return np.column_stack([1.0 - x.sum(axis=1), x])


@pytest.mark.parametrize("degree", range(0, 11))
def test_tetrahedron_rule_exact_to_degree(degree):
    x, w = tetrahedron_rule(degree)
    assert x.shape == (len(w), 3)
    for i, j, k in monomials(degree):
        approx = np.sum(w * x[:, 0] ** i * x[:, 1] ** j * x[:, 2] ** k)
        assert approx == pytest.approx(tet_moment(i, j, k), rel=1e-13)


@pytest.mark.parametrize("degree", SYMMETRIC_DEGREES)
def test_symmetric_tetrahedron_rules_inside_with_positive_weights(degree):
    x, w = tetrahedron_rule(degree)
    assert len(w) == POINT_COUNTS[degree]
    assert (w > 0).all()
    assert (barycentric(x) > 1e-12).all()
    assert w.sum() == pytest.approx(1.0 / 6.0, rel=1e-14)


@pytest.mark.parametrize("degree", SYMMETRIC_DEGREES)
def test_symmetric_tetrahedron_rules_invariant_under_all_permutations(degree):
    x, w = tetrahedron_rule(degree)
    lam = barycentric(x)
    for perm in itertools.permutations(range(4)):
        mapped = lam[:, list(perm)]
        dist = np.abs(mapped[:, None, :] - lam[None, :, :]).sum(-1)
        match = dist.argmin(axis=1)
        assert dist[np.arange(len(w)), match].max() < 1e-14
        # a bijection of the point set that preserves the weights
        assert len(set(match.tolist())) == len(w)
        np.testing.assert_allclose(w[match], w, rtol=1e-14)


def test_tetrahedron_rule_not_exact_beyond_degree():
    # the degree-3 rule must miss some degree-4 monomial: the exactness check can fail
    x, w = tetrahedron_rule(3)
    errs = [
        abs(np.sum(w * x[:, 0] ** i * x[:, 1] ** j * x[:, 2] ** k) - tet_moment(i, j, k))
        for i, j, k in monomials(4)
        if i + j + k == 4
    ]
    assert max(errs) > 1e-8


def test_tetrahedron_fallback_inside():
    x, w = tetrahedron_rule(10)
    assert len(w) == 6**3
    assert (w > 0).all() and (barycentric(x) > 0).all()


@pytest.mark.parametrize("degree", range(0, 9))
def test_hexahedron_rule_exact_in_each_variable(degree):
    x, w = hexahedron_rule(degree)
    assert x.shape == (len(w), 3)
    for i, j, k in itertools.product(range(degree + 1), repeat=3):
        exact = 1.0 / ((i + 1) * (j + 1) * (k + 1))
        approx = np.sum(w * x[:, 0] ** i * x[:, 1] ** j * x[:, 2] ** k)
        assert approx == pytest.approx(exact, rel=1e-13)


def test_hexahedron_rule_ordering_first_coordinate_slowest():
    x, _ = hexahedron_rule(3)
    s = line_rule(3)[0][:, 0]
    n = len(s)
    np.testing.assert_array_equal(x[:, 0], np.repeat(s, n * n))
    np.testing.assert_array_equal(x[:, 2], np.tile(s, n * n))


def test_cell_rule_dispatch():
    for cell_type, rule in [
        ("tri", triangle_rule),
        ("quad", quad_rule),
        ("tet", tetrahedron_rule),
        ("hex", hexahedron_rule),
    ]:
        x, w = cell_rule(cell_type, 4)
        x_ref, w_ref = rule(4)
        np.testing.assert_array_equal(x, x_ref)
        np.testing.assert_array_equal(w, w_ref)


def test_cell_rule_unknown_cell_type():
    with pytest.raises(DfemError, match="unknown cell type 'prism'.*'tri', 'quad', 'tet' or 'hex'"):
        cell_rule("prism", 2)


@pytest.mark.parametrize(
    ("cell_type", "rule", "dim"),
    [
        ("tri", line_rule, 1),
        ("quad", line_rule, 1),
        ("tet", triangle_rule, 2),
        ("hex", quad_rule, 2),
    ],
)
def test_facet_rule(cell_type, rule, dim):
    x, w = facet_rule(cell_type, 5)
    x_ref, w_ref = rule(5)
    assert x.shape == (len(w), dim)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(w, w_ref)


def test_facet_rule_unknown_cell_type():
    with pytest.raises(DfemError, match="unknown cell type"):
        facet_rule("prism", 2)
