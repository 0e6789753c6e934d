"""Inverse evolution layers: exact mode gains, numpy references, train/eval, gradients."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from dfem.exceptions import DfemError
from dfem.iel import (
    BOUNDARIES,
    HeatIEL,
    InverseEvolution,
    PeronaMalikIEL,
    TVFlowIEL,
    laplacian,
    perona_malik,
    tv_flow,
)

pytestmark = pytest.mark.usefixtures("one_thread")

NP_MODE = {"zero": "constant", "replicate": "edge", "reflect": "reflect"}
LAYERS = {
    "heat": lambda b: HeatIEL(dt=0.1, steps=3, boundary=b),
    "perona_malik": lambda b: PeronaMalikIEL(dt=0.1, steps=3, kappa=0.7, boundary=b),
    "tv_flow": lambda b: TVFlowIEL(dt=0.05, steps=3, epsilon=0.5, boundary=b),
}
OPERATORS = {
    "laplacian": laplacian,
    "perona_malik": functools.partial(perona_malik, kappa=0.7),
    "tv_flow": functools.partial(tv_flow, epsilon=0.3),
}


def _close(a, b, rtol=1e-13, atol=1e-13):
    # np.testing, not torch.testing.assert_close: that one's first call costs seconds (imports)
    np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().cpu().numpy(), rtol, atol)


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------- numpy references


def _np_pad(u, boundary):
    return np.pad(u, ((0, 0), (0, 0), (1, 1), (1, 1)), mode=NP_MODE[boundary])


def np_laplacian(u, boundary):
    p = _np_pad(u, boundary)
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:] - 4 * u


def np_perona_malik(u, boundary, kappa):
    p = _np_pad(u, boundary)
    out = np.zeros_like(u)
    for nb in (p[..., :-2, 1:-1], p[..., 2:, 1:-1], p[..., 1:-1, :-2], p[..., 1:-1, 2:]):
        d = nb - u
        out += d / (1 + (np.abs(d) / kappa) ** 2)
    return out


def np_tv_flow(u, boundary, epsilon):
    p = _np_pad(u, boundary)
    gx = np.diff(p, axis=-1)[..., :-1, :]  # forward difference at padded (a, b), a, b <= H, W
    gy = np.diff(p, axis=-2)[..., :, :-1]
    norm = np.sqrt(gx**2 + gy**2 + epsilon**2)
    qx, qy = gx / norm, gy / norm
    div_x = np.diff(qx, axis=-1)[..., 1:, :]  # backward difference at the pixels
    div_y = np.diff(qy, axis=-2)[..., :, 1:]
    return div_x + div_y


NP_OPERATORS = {
    "laplacian": np_laplacian,
    "perona_malik": functools.partial(np_perona_malik, kappa=0.7),
    "tv_flow": functools.partial(np_tv_flow, epsilon=0.3),
}


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operators_match_numpy_reference(name, boundary):
    u = _rand(2, 3, 7, 9) * 2
    ours = OPERATORS[name](u, boundary=boundary).numpy()
    ref = NP_OPERATORS[name](u.numpy(), boundary)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- exact mode gains


def _mode(boundary, n, k):
    """1D eigenvector of the padded second difference and its eigenvalue."""
    i = np.arange(n)
    if boundary == "zero":  # Dirichlet, ghost 0: DST-I
        return np.sin(np.pi * k * (i + 1) / (n + 1)), -4 * np.sin(np.pi * k / (2 * (n + 1))) ** 2
    if boundary == "replicate":  # ghost = edge value: DCT-II
        return np.cos(np.pi * k * (i + 0.5) / n), -4 * np.sin(np.pi * k / (2 * n)) ** 2
    # reflect, ghost u[-1] = u[1]: DCT-I
    return np.cos(np.pi * k * i / (n - 1)), -4 * np.sin(np.pi * k / (2 * (n - 1))) ** 2


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("frequency", ["low", "highest"])
def test_heat_layers_scale_a_mode_by_the_symbol(boundary, frequency):
    h, w, dt, steps = 6, 7, 0.1, 20
    kmax, lmax = (h, w) if boundary == "zero" else (h - 1, w - 1)
    k, l = (1, 2) if frequency == "low" else (kmax, lmax)
    vi, li = _mode(boundary, h, k)
    vj, lj = _mode(boundary, w, l)
    mode = torch.from_numpy(np.outer(vi, vj))[None, None]
    lam = li + lj
    np.testing.assert_allclose(laplacian(mode, boundary), lam * mode, rtol=0, atol=1e-13)
    gain = (1 - dt * lam) ** steps  # lam <= 0: the layers amplify by 1 + dt |lam|
    out = HeatIEL(dt=dt, steps=steps, boundary=boundary)(mode)
    np.testing.assert_allclose(out, gain * mode, rtol=0, atol=1e-10 * gain)
    if frequency == "highest":
        assert gain > (1 + 7 * dt) ** steps  # noise grows by about (1 + 8 dt)^steps
        if boundary == "reflect":  # the checkerboard (-1)^(i+j) is exact here
            assert lam == pytest.approx(-8.0, abs=1e-12)


def test_authors_scaling_is_kernel_over_four():
    u = _rand(2, 3, 6, 5)
    kernel = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=torch.float64) / 4
    conv = torch.nn.functional.conv2d(u.reshape(6, 1, 6, 5), kernel[None, None], padding=1)
    conv = conv.reshape(u.shape)
    _close(laplacian(u, "zero", scale=0.25), conv, rtol=0, atol=1e-14)
    theirs = HeatIEL(dt=0.1, steps=5, scale=0.25)(u)
    _close(theirs, HeatIEL(dt=0.025, steps=5)(u))


# ---------------------------------------------------------------- constants


@pytest.mark.parametrize("boundary", ["replicate", "reflect"])
@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_constants_are_stationary(name, boundary):
    u = torch.full((1, 2, 5, 4), 3.7, dtype=torch.float64)
    assert torch.equal(OPERATORS[name](u, boundary=boundary), torch.zeros_like(u))


def test_zero_boundary_laplacian_of_constant_lives_on_the_border():
    c = 2.5
    out = laplacian(torch.full((1, 1, 5, 6), c, dtype=torch.float64), "zero")[0, 0]
    expected = torch.zeros(5, 6, dtype=torch.float64)
    expected[0, :] -= c
    expected[-1, :] -= c
    expected[:, 0] -= c
    expected[:, -1] -= c  # corners miss two neighbours: -2c
    assert torch.equal(out, expected)
    assert torch.equal(out[1:-1, 1:-1], torch.zeros(3, 4, dtype=torch.float64))


# ---------------------------------------------------------------- train / eval


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_active_in_training_identity_in_eval(name):
    layer = LAYERS[name]("zero")
    u = _rand(2, 3, 6, 5)
    assert layer.training
    assert not torch.allclose(layer(u), u)
    layer.eval()
    out = layer(u)
    assert out is u and torch.equal(out, u)


def test_inside_sequential_with_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1).double()
    model = nn.Sequential(conv, HeatIEL(dt=0.1, steps=4))
    x = _rand(2, 2, 8, 8)
    logits = conv(x)
    model.train()
    y = model(x)
    assert y.shape == logits.shape and not torch.allclose(y, logits)
    y.square().mean().backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), conv(x))


def test_repr_shows_dt_steps_and_operator():
    r = repr(HeatIEL(dt=0.025, steps=7, boundary="replicate"))
    assert "dt=0.025" in r and "steps=7" in r
    assert "laplacian(boundary='replicate', scale=1.0)" in r
    assert "kappa=0.5" in repr(PeronaMalikIEL(kappa=0.5))
    assert "tv_flow(boundary='zero', epsilon=0.2)" in repr(TVFlowIEL(epsilon=0.2))
    assert "operator=laplacian" in repr(InverseEvolution(laplacian, 0.1, 2))


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradcheck(name, boundary):
    layer = LAYERS[name](boundary).train()
    u = _rand(1, 2, 5, 6).requires_grad_(True)
    assert torch.autograd.gradcheck(layer, (u,))


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_gradgradcheck_heat(boundary):
    layer = HeatIEL(dt=0.1, steps=3, boundary=boundary).train()
    u = _rand(1, 2, 5, 6).requires_grad_(True)
    assert torch.autograd.gradgradcheck(layer, (u,))


# ---------------------------------------------------------------- batching


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_batched_and_channels_independent(name):
    layer = LAYERS[name]("reflect")
    u = _rand(3, 2, 6, 7)
    out = layer(u)
    for n in range(3):
        for c in range(2):
            _close(layer(u[n : n + 1, c : c + 1])[0, 0], out[n, c])
    v = u.clone()
    v[:, 0] += _rand(3, 6, 7, seed=1)
    out_v = layer(v)
    assert torch.equal(out_v[:, 1], out[:, 1])
    assert not torch.allclose(out_v[:, 0], out[:, 0])


def test_keeps_dtype_float32():
    u = _rand(1, 1, 4, 4).float()
    assert HeatIEL(steps=2)(u).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda():
    u = _rand(2, 3, 9, 8)
    for name in LAYERS:
        layer = LAYERS[name]("replicate")
        out = layer(u.cuda())
        assert out.is_cuda
        _close(out, layer(u), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: HeatIEL(dt=0.0), "dt must be a finite number > 0"),
        (lambda: HeatIEL(dt=-0.1), "dt must be"),
        (lambda: HeatIEL(dt=float("nan")), "dt must be"),
        (lambda: HeatIEL(dt=float("inf")), "dt must be"),
        (lambda: HeatIEL(steps=0), "steps must be a positive integer"),
        (lambda: HeatIEL(steps=2.0), "steps must be a positive integer"),
        (lambda: HeatIEL(steps=True), "steps must be a positive integer"),
        (lambda: HeatIEL(boundary="periodic"), "zero, replicate, reflect"),
        (lambda: PeronaMalikIEL(boundary="Zero"), "unknown boundary 'Zero'"),
        (lambda: TVFlowIEL(boundary="circular"), "unknown boundary"),
        (lambda: PeronaMalikIEL(kappa=0), "kappa must be"),
        (lambda: TVFlowIEL(epsilon=-1), "epsilon must be"),
        (lambda: HeatIEL(scale=0), "scale must be"),
        (lambda: InverseEvolution("laplacian", 0.1, 2), "operator must be callable"),
    ],
)
def test_bad_construction(make, match):
    with pytest.raises(DfemError, match=match):
        make()


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_bad_boundary_in_operators(name):
    with pytest.raises(DfemError, match="use one of zero, replicate, reflect"):
        OPERATORS[name](_rand(1, 1, 3, 3), boundary="neumann")


@pytest.mark.parametrize(
    ("u", "match"),
    [
        (torch.zeros(3, 4, 5, dtype=torch.float64), "4-D tensor of shape"),
        (torch.zeros(1, 1, 4, 5, dtype=torch.int64), "floating-point tensor"),
        (np.zeros((1, 1, 4, 5)), "4-D tensor"),
    ],
)
def test_bad_input_tensor(u, match):
    for layer in (HeatIEL(), HeatIEL().eval()):
        with pytest.raises(DfemError, match=match):
            layer(u)
    with pytest.raises(DfemError, match=match):
        laplacian(u)


def test_reflect_needs_two_pixels():
    with pytest.raises(DfemError, match="H and W >= 2"):
        laplacian(torch.zeros(1, 1, 1, 5, dtype=torch.float64), "reflect")
    laplacian(torch.zeros(1, 1, 1, 5, dtype=torch.float64), "replicate")


def test_operator_with_wrong_output_shape():
    layer = InverseEvolution(lambda u: u[..., 1:], dt=0.1, steps=1)
    with pytest.raises(DfemError, match="same shape"):
        layer(_rand(1, 1, 4, 4))
