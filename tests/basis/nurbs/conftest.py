"""Shared helpers for the NURBS tests: random knot vectors and parameter values."""

from __future__ import annotations

import numpy as np
import pytest


def _random_knots(rng, p, n_distinct=4, *, clamped=True, max_mult=None):
    """Knot vector on the domain [0, 1] with ``n_distinct`` interior values, each repeated
    1..max_mult (default p) times; clamped ends, or p random outer knots on each side."""
    max_mult = p if max_mult is None else max_mult
    while True:
        values = np.sort(rng.uniform(0.05, 0.95, n_distinct))
        if n_distinct < 2 or np.diff(values).min() > 0.03:
            break
    mults = (
        rng.integers(1, max(max_mult, 1) + 1, size=n_distinct)
        if max_mult
        else np.ones(n_distinct, dtype=int)
    )
    inner = np.repeat(values, mults)
    if clamped:
        head, tail = np.zeros(p + 1), np.ones(p + 1)
    else:
        head = np.concatenate([np.sort(-rng.uniform(0.05, 0.5, p)), [0.0]])
        tail = np.concatenate([[1.0], np.sort(1 + rng.uniform(0.05, 0.5, p))])
    return np.concatenate([head, inner, tail])


def _parameter_values(rng, knots, p, n=50):
    """n values in [t_p, t_n]: both ends, up to 3 interior knots, the rest random."""
    m = len(knots) - p - 1
    a, b = knots[p], knots[m]
    inner = np.unique(knots[(knots > a) & (knots < b)])[:3]
    rest = rng.uniform(a, b, n - 2 - len(inner))
    return np.concatenate([[a, b], inner, rest])


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """These tests work on small tensors: one thread (see tests/conftest.py)."""




@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


@pytest.fixture
def random_knots():
    """``random_knots(rng, p, n_distinct=4, clamped=True, max_mult=None)`` -> ndarray."""
    return _random_knots


@pytest.fixture
def parameter_values():
    """``parameter_values(rng, knots, p, n=50)`` -> ndarray of n values in the domain."""
    return _parameter_values
