"""NURBS curves and surfaces against geomdl (points and first derivatives) and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from dfem.basis.nurbs import clamped_knots, curve_points, surface_points

NURBS = pytest.importorskip("geomdl.NURBS")

TOL = 1e-12  # relative to the largest value compared


def assert_close(a, b, tol=TOL):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(), 1.0)
    err = np.abs(a - b).max() / scale
    assert err < tol, f"relative error {err:.3e}"


def geomdl_curve(cp, w, t, p):
    crv = NURBS.Curve(normalize_kv=False)
    crv.degree = p
    crv.ctrlptsw = np.concatenate([cp * w[:, None], w[:, None]], axis=1).tolist()
    crv.knotvector = t.tolist()
    return crv


def geomdl_surface(cp, w, tu, tv, p, q):
    srf = NURBS.Surface(normalize_kv=False)
    srf.degree_u, srf.degree_v = p, q
    srf.ctrlpts_size_u, srf.ctrlpts_size_v = cp.shape[0], cp.shape[1]
    # geomdl's weighted points (x w, y w, z w, w), v running fastest
    srf.ctrlptsw = (
        np.concatenate([cp * w[..., None], w[..., None]], axis=-1)
        .reshape(-1, cp.shape[-1] + 1)
        .tolist()
    )
    srf.knotvector_u, srf.knotvector_v = tu.tolist(), tv.tolist()
    return srf


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("clamped", [True, False])
def test_curve_matches_geomdl(p, clamped, rng, random_knots, parameter_values):
    t = random_knots(rng, p, 4, clamped=clamped)
    n = len(t) - p - 1
    cp = rng.uniform(-1, 1, (n, 3))
    w = rng.uniform(0.3, 3.0, n)
    u = parameter_values(rng, t, p)
    C, dC = curve_points(
        torch.tensor(cp), torch.tensor(w), torch.tensor(t), p, torch.tensor(u), derivatives=True
    )
    assert C.shape == dC.shape == (50, 3)
    crv = geomdl_curve(cp, w, t, p)
    ref = np.array([crv.derivatives(x, order=1) for x in u.tolist()])  # (50, 2, 3)
    assert_close(C.numpy(), ref[:, 0])
    assert_close(dC.numpy(), ref[:, 1])
    # without derivatives, the same points
    assert_close(curve_points(cp, w, t, p, u).numpy(), C.numpy(), 1e-15)


@pytest.mark.parametrize("p,q", [(1, 2), (2, 2), (3, 3), (4, 2), (5, 3), (2, 5)])
def test_surface_matches_geomdl(p, q, rng, random_knots, parameter_values):
    tu = random_knots(rng, p, 3)
    tv = random_knots(rng, q, 3, clamped=p != q)  # unclamped in v for some
    nu, nv = len(tu) - p - 1, len(tv) - q - 1
    cp = rng.uniform(-1, 1, (nu, nv, 3))
    w = rng.uniform(0.3, 3.0, (nu, nv))
    u = parameter_values(rng, tu, p)
    v = rng.permutation(parameter_values(rng, tv, q))
    u[-4:], v[-4:] = [0, 0, 1, 1], [0, 1, 0, 1]  # the corners
    args = (torch.tensor(cp), torch.tensor(w), torch.tensor(tu), torch.tensor(tv), p, q)
    S, Su, Sv = surface_points(
        *args, torch.tensor(u), torch.tensor(v), derivatives=True, grid=False
    )
    assert S.shape == Su.shape == Sv.shape == (50, 3)
    srf = geomdl_surface(cp, w, tu, tv, p, q)
    ref = np.array(
        [srf.derivatives(a, b, order=1) for a, b in zip(u.tolist(), v.tolist(), strict=True)]
    )
    assert_close(S.numpy(), ref[:, 0, 0])
    assert_close(Su.numpy(), ref[:, 1, 0])
    assert_close(Sv.numpy(), ref[:, 0, 1])
    # the grid evaluation agrees with the pairs
    G, Gu, Gv = surface_points(*args, torch.tensor(u[:7]), torch.tensor(v[:5]), derivatives=True)
    assert G.shape == (7, 5, 3)
    Pu, Pv = np.meshgrid(u[:7], v[:5], indexing="ij")
    H, Hu, Hv = surface_points(
        *args, torch.tensor(Pu.ravel()), torch.tensor(Pv.ravel()), derivatives=True, grid=False
    )
    for a, b in ((G, H), (Gu, Hu), (Gv, Hv)):
        assert_close(a.reshape(-1, 3).numpy(), b.numpy(), 1e-14)


def test_geomdl_grid_evaluation_matches(rng):
    """geomdl's own sampled grid (evalpts) equals the dfem grid."""
    p = 3
    cp = rng.uniform(-1, 1, (6, 5, 3))
    w = rng.uniform(0.5, 2.0, (6, 5))
    tu, tv = clamped_knots(6, p).numpy(), clamped_knots(5, 2).numpy()
    srf = geomdl_surface(cp, w, tu, tv, p, 2)
    srf.sample_size_u, srf.sample_size_v = 9, 7
    ref = np.array(srf.evalpts).reshape(9, 7, 3)
    S = surface_points(cp, w, tu, tv, p, 2, np.linspace(0, 1, 9), np.linspace(0, 1, 7))
    assert_close(S.numpy(), ref)


@pytest.mark.parametrize("p", [1, 3, 5])
def test_bspline_curve_matches_scipy(p, rng, random_knots, parameter_values):
    """weights=None is the polynomial B-spline; scipy on homogeneous coordinates as oracle."""
    t = random_knots(rng, p, 5, clamped=False)
    n = len(t) - p - 1
    cp = rng.uniform(-1, 1, (n, 2))
    u = parameter_values(rng, t, p)
    C, dC = curve_points(cp, None, t, p, u, derivatives=True)
    spl = BSpline(t, cp, p)
    assert_close(C.numpy(), spl(u))
    assert_close(dC.numpy(), spl(u, nu=1))
    # rational: C = A / W with A, W B-splines of (w P, w)
    w = rng.uniform(0.3, 3.0, n)
    A, W = BSpline(t, cp * w[:, None], p), BSpline(t, w, p)
    C, dC = curve_points(cp, w, t, p, u, derivatives=True)
    ref = A(u) / W(u)[:, None]
    assert_close(C.numpy(), ref)
    assert_close(dC.numpy(), (A(u, nu=1) - ref * W(u, nu=1)[:, None]) / W(u)[:, None])


def test_bspline_surface_is_weight_one_nurbs(rng):
    tu, tv = clamped_knots(6, 3), clamped_knots(5, 2)
    cp = torch.tensor(rng.uniform(-1, 1, (6, 5, 3)))
    u, v = torch.rand(11, dtype=torch.float64), torch.rand(9, dtype=torch.float64)
    a = surface_points(cp, None, tu, tv, 3, 2, u, v, derivatives=True)
    b = surface_points(
        cp, torch.ones(6, 5, dtype=torch.float64), tu, tv, 3, 2, u, v, derivatives=True
    )
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-14)


def test_quarter_circle_is_exact():
    cp = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    w = torch.tensor([1.0, 2**-0.5, 1.0], dtype=torch.float64)
    u = torch.linspace(0, 1, 101, dtype=torch.float64)
    C, dC = curve_points(cp, w, clamped_knots(3, 2), 2, u, derivatives=True)
    torch.testing.assert_close(C.norm(dim=1), torch.ones(101, dtype=torch.float64))
    torch.testing.assert_close((C * dC).sum(dim=1), torch.zeros(101, dtype=torch.float64))


def test_batched_equals_per_sample(rng):
    B, p, q = 4, 3, 2
    tu, tv = clamped_knots(7, p), clamped_knots(5, q)
    cp = torch.tensor(rng.uniform(-1, 1, (B, 7, 5, 3)))
    w = torch.tensor(rng.uniform(0.5, 2.0, (B, 7, 5)))
    u, v = torch.rand(13, dtype=torch.float64), torch.rand(6, dtype=torch.float64)
    S, Su, Sv = surface_points(cp, w, tu, tv, p, q, u, v, derivatives=True)
    assert S.shape == (B, 13, 6, 3)
    for b in range(B):
        s, su, sv = surface_points(cp[b], w[b], tu, tv, p, q, u, v, derivatives=True)
        torch.testing.assert_close(S[b], s, rtol=0, atol=1e-14)
        torch.testing.assert_close(Su[b], su, rtol=0, atol=1e-13)
        torch.testing.assert_close(Sv[b], sv, rtol=0, atol=1e-13)
    # shared weights broadcast over the batch
    S1 = surface_points(cp, w[0], tu, tv, p, q, u, v)
    torch.testing.assert_close(S1[2], surface_points(cp[2], w[0], tu, tv, p, q, u, v))
    # curves
    t = clamped_knots(7, p)
    C, dC = curve_points(cp[:, :, 0], w[:, :, 0], t, p, u, derivatives=True)
    assert C.shape == (B, 13, 3)
    for b in range(B):
        c, dc = curve_points(cp[b, :, 0], w[b, :, 0], t, p, u, derivatives=True)
        torch.testing.assert_close(C[b], c, rtol=0, atol=1e-14)
        torch.testing.assert_close(dC[b], dc, rtol=0, atol=1e-13)


def test_degree_zero_surface_values():
    """Degree 0: piecewise constant, the span's control point (u = 1 -> the last one)."""
    cp = torch.arange(6, dtype=torch.float64).reshape(3, 2, 1)
    tu = torch.tensor([0.0, 0.3, 0.6, 1.0], dtype=torch.float64)
    tv = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    S = surface_points(
        cp, None, tu, tv, 0, 0, torch.tensor([0.0, 0.3, 0.99, 1.0]), torch.tensor([0.2, 1.0])
    )
    assert S[..., 0].tolist() == [[0, 1], [2, 3], [4, 5], [4, 5]]
