"""The counting sort behind entity tables and sparsity patterns, against numpy's unique."""

import numpy as np
import pytest

import dfem
from dfem.mesh.unique_rows import unique_rows


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("count", [0, 1, 7, 10_000])
def test_unique_rows_are_numpys_unique(k, count):
    rng = np.random.default_rng(10 * count + k)
    n = 9  # few values: many repeated rows
    rows = rng.integers(0, n, (count, k))
    expected, expected_inverse = np.unique(rows.reshape(count, k), axis=0, return_inverse=True)
    got = unique_rows([rows[:, c] for c in range(k)], n)
    assert np.array_equal(got.stacked().reshape(-1, k), expected)
    assert np.array_equal(got.inverse, expected_inverse.ravel())
    counts = np.bincount(expected[:, 0], minlength=n) if len(expected) else np.zeros(n, int)
    assert np.array_equal(got.starts, np.r_[0, np.cumsum(counts)])


def test_faces_are_found_by_their_vertices_in_any_order():
    mesh = dfem.mesh.box(2, 2, 2, cell="tet")
    faces = mesh.face_table
    rng = np.random.default_rng(0)
    picked = rng.choice(len(faces), 20, replace=False)
    shuffled = rng.permuted(faces.entities[picked], axis=1)
    missing = np.array([[0, 1, mesh.n_nodes - 1]])  # not a face of this mesh
    found = faces.lookup(np.concatenate([shuffled, missing]))
    assert found[:-1].tolist() == picked.tolist() and found[-1] == -1


def test_a_negative_vertex_number_names_no_face():
    faces = dfem.mesh.box(1, 1, 1, cell="tet").face_table
    found = faces.lookup(np.array([[-1, 0, 1], faces.entities[3]]))
    assert found.tolist() == [-1, 3]
