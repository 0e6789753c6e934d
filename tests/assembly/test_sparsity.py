"""Scatter-adds into vectors and CSR values, and the Dirichlet lifting, against dense
matrices built entry by entry."""

import numpy as np
import pytest
import torch

import dfem
from dfem.assembly import SparsityPattern, add_at


def dense_sum(n, dofs, blocks):
    """``sum_k P_k^T B_k P_k`` as a dense (n, n) array, entry by entry."""
    A = np.zeros((n, n))
    for k, local in enumerate(dofs):
        for a, i in enumerate(local):
            for b, j in enumerate(local):
                A[i, j] += blocks[k, a, b]
    return A


def test_add_at_accumulates_repeated_indices_batched_and_differentiably():
    index = torch.tensor([[0, 2], [2, 3]])
    values = torch.arange(8, dtype=torch.float64).reshape(2, 2, 2).requires_grad_(True)
    target = torch.ones(5, dtype=torch.float64)
    out = add_at(target, index, values)  # a batch of 2 from one target
    expected = np.ones((2, 5))
    for b in range(2):
        np.add.at(expected[b], index.numpy(), values[b].detach().numpy())
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    assert target.tolist() == [1.0] * 5  # out of place
    weights = torch.arange(10, dtype=torch.float64).reshape(2, 5)
    (out * weights).sum().backward()  # the backward pass gathers
    torch.testing.assert_close(values.grad, weights.gather(1, index.reshape(1, -1).expand(2, -1))
                               .reshape(2, 2, 2))


def test_assemble_and_add_blocks_match_the_dense_sums():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(3, 2, "tri"), "P2")
    pattern = space.pattern
    dofs = space.cell_dofs.numpy()
    gen = torch.Generator().manual_seed(0)
    Ke = torch.rand(2, *dofs.shape, dofs.shape[1], generator=gen, dtype=torch.float64)
    values = pattern.assemble(Ke)  # a batch of two matrices
    assert values.shape == (2, pattern.nnz)
    for b in range(2):
        np.testing.assert_allclose(pattern.to_dense(values[b]).numpy(),
                                   dense_sum(space.n_dofs, dofs, Ke[b].numpy()), atol=1e-14)
    facet_dofs = space.facet_geometry("left").dofs
    blocks = torch.rand(len(facet_dofs), 3, 3, generator=gen, dtype=torch.float64)
    both = pattern.add_blocks(values[0], facet_dofs, blocks)
    expected = dense_sum(space.n_dofs, dofs, Ke[0].numpy()) + \
        dense_sum(space.n_dofs, facet_dofs.numpy(), blocks.numpy())
    np.testing.assert_allclose(pattern.to_dense(both).numpy(), expected, atol=1e-14)


def test_lift_is_the_free_fixed_block_times_the_fixed_values():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 3, "quad"), "Q2")
    values, _ = dfem.assemble(space, nu=lambda x: 1 + x[..., 0], format="values")
    free = torch.ones(space.n_dofs, dtype=torch.bool)
    free[space.boundary_dofs("boundary")] = False
    restricted = space.pattern.restrict(free)
    u = torch.randn(space.n_dofs, generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64)
    A = space.pattern.to_dense(values).numpy()
    f, d = free.numpy(), ~free.numpy()
    np.testing.assert_allclose(restricted.lift(values, u).numpy(), A[f][:, d] @ u.numpy()[d],
                               atol=1e-13)
    # batched over matrices, and blind to the free entries of u
    u_free_changed = u.masked_fill(free, 7.0)
    batch = torch.stack([values, 2 * values])
    lifted = restricted.lift(batch, u_free_changed)
    torch.testing.assert_close(lifted, torch.tensor([[1.0], [2.0]], dtype=u.dtype)
                               * restricted.lift(values, u))


def test_a_pattern_not_built_from_cells_cannot_assemble_cell_matrices():
    pattern = SparsityPattern(n=2, indptr=torch.tensor([0, 1, 2]), indices=torch.tensor([0, 1]))
    with pytest.raises(dfem.DfemError, match="not built from cells"):
        pattern.assemble(torch.ones(1, 2, 2))
