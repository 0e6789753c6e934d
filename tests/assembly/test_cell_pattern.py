"""The counting-sort CSR pattern against a pattern built entry by entry with Python sets."""

import gc
import weakref

import numpy as np
import pytest

import dfem
from dfem.assembly.cell_pattern import cell_pattern


def brute_force_pattern(dofs, n):
    """CSR of the set of (row, col) pairs sharing a cell, and each entry's position."""
    rows = [set() for _ in range(n)]
    for local in dofs:
        for i in local:
            rows[i].update(int(j) for j in local)
    indptr = np.cumsum([0] + [len(r) for r in rows])
    columns = [sorted(r) for r in rows]
    indices = np.array([c for row in columns for c in row], dtype=np.int64)
    where = {(i, c): indptr[i] + k for i, row in enumerate(columns) for k, c in enumerate(row)}
    scatter = np.array([where[int(i), int(j)] for local in dofs for i in local for j in local],
                       dtype=np.int64)
    return indptr, indices, scatter


def check(dofs, n):
    got = cell_pattern(np.asarray(dofs, dtype=np.int64), n)
    for name, a, b in zip(("indptr", "indices", "scatter"), got,
                          brute_force_pattern(np.asarray(dofs).reshape(len(dofs), -1), n),
                          strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
        assert a.dtype == np.int64, name


@pytest.mark.parametrize("nb", [1, 2, 4, 8])
def test_random_cells_match_the_brute_force_pattern(nb):
    rng = np.random.default_rng(nb)
    n = 40
    dofs = np.stack([rng.choice(n - 3, nb, replace=False) for _ in range(60)])
    check(dofs, n)  # the last three dofs are in no cell: empty rows


def test_a_dof_repeated_in_a_cell_is_its_diagonal_entry():
    check([[0, 3, 0, 5], [3, 3, 1, 2], [4, 4, 4, 4]], 7)


def test_no_cells():
    indptr, indices, scatter = cell_pattern(np.zeros((0, 3), dtype=np.int64), 4)
    assert indptr.tolist() == [0] * 5 and len(indices) == 0 and len(scatter) == 0


@pytest.mark.parametrize(("cell", "element"), [("tet", "P2"), ("hex", "Q2")])
def test_spaces_on_3d_meshes(cell, element):
    space = dfem.FunctionSpace(dfem.mesh.box(2, 2, 1, cell=cell), element)
    check(space.cell_dofs.numpy(), space.n_dofs)


def test_a_vector_space_with_permuted_cells():
    mesh = dfem.mesh.rectangle(3, 3, "tri")
    space = dfem.VectorSpace(dfem.FunctionSpace(mesh, "P2"), 2)
    dofs = space.cell_dofs.numpy()[np.random.default_rng(1).permutation(mesh.n_cells)]
    check(dofs, space.n_dofs)


def test_a_space_and_its_pattern_are_freed_without_the_cycle_collector():
    gc.disable()
    try:
        space = dfem.FunctionSpace(dfem.mesh.box(3, 3, 3, cell="tet"), "P1")
        pattern = weakref.ref(space.pattern)
        space.pattern.points  # noqa: B018 (the pattern's reference to the space is used)
        del space
        assert pattern() is None
    finally:
        gc.enable()
