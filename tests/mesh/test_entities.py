"""The sort behind entity tables and sparsity patterns, against numpy's unique."""

import numpy as np
import pytest

from dfem.mesh.entities import unique_inverse


@pytest.mark.parametrize("bound", [50, 2**60])  # keys packed with their positions; argsorted
@pytest.mark.parametrize("count", [0, 1, 7, 10_000])
def test_unique_inverse_is_numpys_unique(bound, count):
    rng = np.random.default_rng(count)
    keys = rng.integers(0, min(bound, 50), count).astype(np.int64) * (bound // 50)
    expected, expected_inverse = np.unique(keys, return_inverse=True)
    unique, inverse = unique_inverse(keys.copy(), bound)
    assert np.array_equal(unique, expected)
    assert np.array_equal(inverse, expected_inverse.ravel())
    assert np.array_equal(unique[inverse], keys)
