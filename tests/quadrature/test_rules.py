"""Quadrature rules integrate monomials exactly up to their stated degree."""

from math import factorial

import numpy as np
import pytest

from dfem.exceptions import DfemError
from dfem.quadrature import cell_rule, gauss_legendre, line_rule, quad_rule, triangle_rule


def triangle_moment(i, j):
    # int_T x^i y^j over the reference triangle = i! j! / (i + j + 2)!
    return factorial(i) * factorial(j) / factorial(i + j + 2)


@pytest.mark.parametrize("degree", range(0, 13))
def test_triangle_rule_exact_to_degree(degree):
    x, w = triangle_rule(degree)
    for i in range(degree + 1):
        for j in range(degree + 1 - i):
            approx = np.sum(w * x[:, 0] ** i * x[:, 1] ** j)
            assert approx == pytest.approx(triangle_moment(i, j), rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("degree", [1, 2, 4, 5, 6, 8])
def test_symmetric_triangle_rules_inside_with_positive_weights(degree):
    x, w = triangle_rule(degree)
    assert (w > 0).all()
    assert (x >= 0).all() and (x.sum(axis=1) <= 1).all()
    # invariant under the reflection x <-> y: the same point set
    mirrored = x[:, ::-1]
    dist = np.abs(mirrored[:, None, :] - x[None, :, :]).sum(-1).min(axis=1)
    assert dist.max() < 1e-13


def test_triangle_rule_not_exact_beyond_degree():
    # the degree-2 rule must miss some degree-3 monomial: the check above can fail
    x, w = triangle_rule(2)
    errs = [
        abs(np.sum(w * x[:, 0] ** i * x[:, 1] ** (3 - i)) - triangle_moment(i, 3 - i))
        for i in range(4)
    ]
    assert max(errs) > 1e-6


@pytest.mark.parametrize("degree", range(0, 12))
def test_quad_rule_exact_in_each_variable(degree):
    x, w = quad_rule(degree)
    for i in range(degree + 1):
        for j in range(degree + 1):
            exact = 1.0 / ((i + 1) * (j + 1))
            assert np.sum(w * x[:, 0] ** i * x[:, 1] ** j) == pytest.approx(exact, rel=1e-13)


@pytest.mark.parametrize("degree", range(0, 12))
def test_line_rule(degree):
    s, w = line_rule(degree)
    for k in range(degree + 1):
        assert np.sum(w * s[:, 0] ** k) == pytest.approx(1.0 / (k + 1), rel=1e-13)


def test_errors():
    with pytest.raises(DfemError, match="at least one point"):
        gauss_legendre(0)
    with pytest.raises(DfemError, match="unknown cell type"):
        cell_rule("prism", 2)
