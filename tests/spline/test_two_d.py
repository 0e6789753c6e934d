"""2D piecewise-constant projection (DSA appendix B.1): partition, forward mean, eq. 19 backward."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from dfem.exceptions import DfemError
from dfem.spline.two_d import (
    PiecewiseConstant2d,
    _label_torch,
    connected_components,
    project_2d,
)


def scipy_partition(mask: np.ndarray, connectivity: int) -> np.ndarray:
    """Expected partition built map by map from raw ``scipy.ndimage.label`` output:
    foreground and background labelled separately, offset so every label is unique."""
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    out = np.zeros(mask.shape, dtype=np.int64)
    offset = 0
    for b in range(mask.shape[0]):
        for c in range(mask.shape[1]):
            fg, k_fg = ndimage.label(mask[b, c], structure=structure)
            bg, k_bg = ndimage.label(~mask[b, c], structure=structure)
            out[b, c] = np.where(mask[b, c], fg, bg + k_fg) + offset
            offset += k_fg + k_bg
    return out


def same_partition(a, b) -> bool:
    """True if the label maps a -> b and b -> a are both functions (a bijection of classes)."""
    a = np.asarray(a).ravel()
    b = np.asarray(b).ravel()
    pairs = np.unique(np.stack([a, b]), axis=1).shape[1]
    return pairs == np.unique(a).size == np.unique(b).size


def spiral(n: int) -> np.ndarray:
    """A square spiral wall of width 1 with a corridor of width 1 (one long path each)."""
    a = np.zeros((n, n), dtype=bool)
    r = c = 0
    dr, dc = 0, 1
    a[0, 0] = True

    def can_step(r, c, dr, dc):
        r1, c1, r2, c2 = r + dr, c + dc, r + 2 * dr, c + 2 * dc
        if not (0 <= r1 < n and 0 <= c1 < n) or a[r1, c1]:
            return False
        return not (0 <= r2 < n and 0 <= c2 < n and a[r2, c2])

    first = True
    while True:
        moved = False
        while can_step(r, c, dr, dc):
            r, c = r + dr, c + dc
            a[r, c] = True
            moved = True
        if not moved and not first:
            return a
        first = False
        dr, dc = dc, -dr


def snake(h: int, w: int) -> np.ndarray:
    """Vertical boustrophedon: columns 0, 2, 4, ... joined alternately at the bottom and top."""
    a = np.zeros((h, w), dtype=bool)
    a[:, ::2] = True
    for j in range(1, w - 1, 2):
        a[h - 1 if (j // 2) % 2 == 0 else 0, j] = True
    return a


# ---------------------------------------------------------------- partition


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("density", [0.1, 0.45, 0.59, 0.9])
@pytest.mark.parametrize("shape", [(2, 3, 17, 29), (1, 1, 64, 64), (3, 1, 1, 50), (1, 2, 40, 1)])
def test_partition_matches_scipy(connectivity, density, shape):
    gen = torch.Generator().manual_seed(hash((connectivity, density, shape)) % 2**31)
    mask = torch.rand(shape, generator=gen) < density
    expected = scipy_partition(mask.numpy(), connectivity)
    by_torch = connected_components(mask, connectivity, backend="torch")
    by_scipy = connected_components(mask, connectivity, backend="scipy")
    assert by_torch.dtype == torch.int64 and by_torch.shape == mask.shape
    assert same_partition(by_torch, expected)
    assert same_partition(by_scipy, expected)
    # both backends label a component by its smallest flat index into the whole batch
    assert torch.equal(by_torch, by_scipy)
    assert torch.equal(connected_components(mask, connectivity), by_scipy)  # auto on CPU
    flat = by_torch.reshape(-1)
    assert torch.equal(flat[flat], flat)  # the label is a pixel of the component


def test_constant_maps_are_one_component_each():
    mask = torch.zeros(2, 1, 5, 7, dtype=torch.bool)
    mask[1] = True
    for backend in ("torch", "scipy"):
        labels = connected_components(mask, backend=backend)
        assert labels[0].unique().tolist() == [0]
        assert labels[1].unique().tolist() == [35]


def test_checkerboard_connectivity():
    board = (torch.arange(6)[:, None] + torch.arange(6)[None, :]) % 2 == 0
    mask = board[None, None]
    for backend in ("torch", "scipy"):
        assert connected_components(mask, 4, backend).unique().numel() == 36
        # with 8 the same connectivity for both values gives one fg and one bg component
        assert connected_components(mask, 8, backend).unique().numel() == 2


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("maze", ["spiral", "snake"])
def test_maze_converges_in_few_rounds(maze, connectivity):
    m = spiral(129) if maze == "spiral" else snake(64, 121)
    mask = torch.from_numpy(m)[None, None]
    labels, rounds = _label_torch(mask, connectivity)
    assert rounds <= 8  # pointer jumping: not one round per pixel of a path of ~8000 pixels
    expected = scipy_partition(mask.numpy(), connectivity)
    assert same_partition(labels, expected)
    assert labels[mask].unique().numel() == 1  # the wall is one path
    if maze == "spiral":
        assert labels.unique().numel() == 2  # ... and so is the corridor


# ---------------------------------------------------------------- forward and backward


def brute_force_projection(x: np.ndarray, threshold: float, connectivity: int) -> np.ndarray:
    parts = scipy_partition(x > threshold, connectivity)
    out = np.empty_like(x)
    for label in np.unique(parts):
        sel = parts == label
        out[sel] = x[sel].mean()
    return out


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("backend", ["torch", "scipy"])
def test_forward_is_component_mean(connectivity, backend):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 2, 9, 11, generator=gen, dtype=torch.float64)
    h = project_2d(x, 0.4, connectivity, backend)
    np.testing.assert_allclose(
        h.numpy(), brute_force_projection(x.numpy(), 0.4, connectivity), rtol=1e-12, atol=1e-14
    )
    # a projection: applying it twice changes nothing
    torch.testing.assert_close(project_2d(h, 0.4, connectivity, backend), h)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_backward_is_dense_eq19(connectivity):
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(2, 2, 6, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad(project_2d(x, connectivity=connectivity), x, v)
    parts = scipy_partition(x.detach().numpy() > 0.5, connectivity).ravel()
    same = parts[:, None] == parts[None, :]
    jac = same / same.sum(axis=1, keepdims=True)  # J(s, t) = 1/|I_i| if s, t in I_i (eq. 19)
    np.testing.assert_allclose(grad.numpy().ravel(), jac.T @ v.numpy().ravel(), rtol=1e-12)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("backend", ["torch", "scipy"])
def test_gradcheck(connectivity, backend):
    gen = torch.Generator().manual_seed(7)
    # keep every pixel at least 0.05 from the threshold so finite differences keep the partition
    size = torch.rand(1, 2, 4, 5, generator=gen, dtype=torch.float64) * 0.4 + 0.05
    sign = torch.where(torch.rand(size.shape, generator=gen) < 0.5, -1.0, 1.0).double()
    x = (0.5 + sign * size).requires_grad_()

    def f(t):
        return project_2d(t, 0.5, connectivity, backend)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtypes(dtype):
    x = torch.rand(2, 1, 8, 8).to(dtype).requires_grad_()
    h = project_2d(x)
    h.sum().backward()
    assert h.dtype == dtype and x.grad.dtype == dtype
    # the gradient of sum(h) = sum(x) is one everywhere
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_empty_batch():
    x = torch.rand(0, 1, 4, 4)
    assert project_2d(x).shape == (0, 1, 4, 4)


# ---------------------------------------------------------------- module


def test_module_trains_one_step():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 1, 3, padding=1),
        nn.Sigmoid(),
        PiecewiseConstant2d(threshold=0.5, connectivity=8),
    )
    image = torch.rand(4, 1, 16, 16)
    target = (image > 0.5).float()
    before = net[0].weight.detach().clone()
    loss = nn.functional.mse_loss(net(image), target)
    loss.backward()
    for p in net.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert net[0].weight.grad.abs().sum() > 0
    with torch.no_grad():  # one plain SGD step (torch.optim is slow to import)
        for p in net.parameters():
            p -= 0.1 * p.grad
    assert not torch.equal(net[0].weight, before)
    assert "threshold=0.5, connectivity=8, backend='auto'" in repr(net[-1])


# ---------------------------------------------------------------- bad input


def test_bad_input():
    x = torch.rand(1, 1, 4, 4)
    with pytest.raises(DfemError, match=r"4-D tensor.*x\[None, None\]"):
        project_2d(torch.rand(4, 4))
    with pytest.raises(DfemError, match=r"4-D tensor"):
        connected_components(torch.ones(2, 4, 4, dtype=torch.bool))
    with pytest.raises(DfemError, match=r"connectivity must be 4 .* or 8"):
        project_2d(x, connectivity=6)
    with pytest.raises(DfemError, match=r"unknown backend 'cuda'; use one of auto, torch, scipy"):
        project_2d(x, backend="cuda")
    with pytest.raises(DfemError, match=r"NaN or infinite"):
        project_2d(torch.tensor([[[[0.1, float("nan")]]]]))
    with pytest.raises(DfemError, match=r"NaN or infinite"):
        project_2d(torch.tensor([[[[0.1, float("inf")]]]]))
    meta = torch.empty(1, 1, 4, 4, dtype=torch.bool, device="meta")
    with pytest.raises(DfemError, match=r"CPU only.*backend='torch'"):
        connected_components(meta, backend="scipy")
    with pytest.raises(DfemError, match=r"bool tensor.*x > 0.5"):
        connected_components(x)
    with pytest.raises(DfemError, match=r"float tensor"):
        project_2d(torch.ones(1, 1, 2, 2, dtype=torch.int64))
    with pytest.raises(DfemError, match=r"connectivity"):
        PiecewiseConstant2d(connectivity=5)
    with pytest.raises(DfemError, match=r"unknown backend"):
        PiecewiseConstant2d(backend="numpy")
