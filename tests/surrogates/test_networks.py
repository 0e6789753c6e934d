"""Surrogate networks: shapes on odd node grids, no output squashing, exact boundary values,
gradients that reach the weights through the FEM energy."""

from __future__ import annotations

import pytest
import torch

from dfem.exceptions import DfemError
from dfem.surrogates import LogNormalDiffusivity
from dfem.surrogates.grid import GridProblem
from dfem.surrogates.model import Surrogate, relative_l2
from dfem.surrogates.networks import FNO, UNet, build_network

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("size", [17, 33, 40])
@pytest.mark.parametrize("kind", ["unet", "fno"])
def test_networks_keep_the_image_size(kind, size):
    torch.manual_seed(0)
    options = {"width": 4, "depth": 3} if kind == "unet" else {"width": 4, "modes": 4}
    net = build_network(kind, 2, **options)
    out = net(torch.randn(2, 2, size, size))
    assert out.shape == (2, 1, size, size)


def test_output_is_not_squashed():
    torch.manual_seed(0)
    net = UNet(1, width=4, depth=2, norm="none")
    with torch.no_grad():
        net.head.bias.fill_(5.0)
    assert net(torch.zeros(1, 1, 9, 9)).min() > 1.0


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_unet_norms(norm):
    net = UNet(1, width=4, depth=2, norm=norm)
    assert net(torch.randn(2, 1, 9, 9)).shape == (2, 1, 9, 9)


def test_surrogate_meets_dirichlet_values_and_trains_through_the_energy():
    torch.manual_seed(0)
    family = LogNormalDiffusivity()
    grid = GridProblem(8, "Q1")
    model = Surrogate(grid, UNet(Surrogate.in_channels(True), width=4, depth=2), coordinates=True)
    w = family.sample(4, seed=0)
    log_nu = family.log_field(grid.points, w)
    nu_q = family(grid.quadrature_points, w)
    pred = model(log_nu)
    assert pred.dtype == torch.float64
    assert torch.all(pred[:, :, 0] == 1.0) and torch.all(pred[:, :, -1] == 0.0)
    loss = model.energy_loss(log_nu, nu_q)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    ref = grid.solve(nu_q)
    assert relative_l2(ref, ref).max() == 0 and relative_l2(pred.detach(), ref).min() > 0


def test_fno_and_bad_options():
    assert FNO(1, width=4, modes=3, layers=2)(torch.randn(1, 1, 12, 12)).shape == (1, 1, 12, 12)
    with pytest.raises(DfemError, match="network must be one of"):
        build_network("resnet", 1)
    with pytest.raises(DfemError, match="bad option for network 'unet'"):
        build_network("unet", 1, modes=3)
    with pytest.raises(DfemError, match="norm must be"):
        UNet(1, norm="layer")
    with pytest.raises(DfemError, match="depth, width, in_channels, out_channels and patch >= 1"):
        UNet(1, depth=0)
    with pytest.raises(DfemError, match="padding must be one of"):
        UNet(1, padding="reflect")


@pytest.mark.parametrize("size", [17, 33])
def test_unet_with_patches_keeps_the_image_size_and_sees_every_pixel(size):
    torch.manual_seed(0)
    net = UNet(2, width=4, depth=2, patch=2).eval()
    x = torch.randn(1, 2, size, size, requires_grad=True)
    out = net(x)
    assert out.shape == (1, 1, size, size)
    out[0, 0, size // 2, size // 2].backward()
    assert x.grad[0, :, size // 2, size // 2].abs().sum() > 0


@pytest.mark.parametrize("kind, options", [("unet", {"norm": "batch"}), ("fno", {"modes": 4})])
def test_for_inference_computes_the_same_map(kind, options):
    from dfem.surrogates import for_inference

    torch.manual_seed(0)
    net = build_network(kind, 3, width=8, **options)
    net.train()
    with torch.no_grad():  # give the batch norms running statistics that are not trivial
        for _ in range(3):
            net(torch.randn(4, 3, 17, 17) * 2 + 1)
    net.eval()
    x = torch.randn(5, 3, 17, 17)
    with torch.no_grad():
        before = net(x)
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    fast = for_inference(net)
    assert not fast.training
    with torch.no_grad():
        torch.testing.assert_close(fast(x), before, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(net(x), before)  # the original is left as it was
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == norms
    if kind == "unet":  # folded into the convolutions
        assert norms > 0
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
