"""The plate with a circular hole (Kirsch) by isogeometric analysis.

1. The exact solution checked against itself: the displacement's strain (by autograd),
   through Hooke's law written here, is the stress; the stress is in equilibrium, free on the
   hole and tends to the far field; the polar form agrees with the Cartesian closed form of
   Hughes et al. (2005, eq. 97), written here independently.
2. The patch: the hole exactly circular, the outer and symmetry edges straight, the control
   net of Hughes et al. for R = 1, L = 4, the area ``L^2 - pi R^2 / 4``.
3. Point evaluation of gradients against :func:`surface_points` (an independent evaluator).
4. The IGA solutions: displacement and stress rates within 0.3 of ``p + 1`` and ``p``, and
   ``sigma_xx(0, R) -> 3 T``.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

import dfem
from dfem.basis.nurbs.geometry import surface_points
from dfem.basis.nurbs.patch import plate_with_hole
from dfem.basis.nurbs.space import IsogeometricSpace
from dfem.validation import kirsch
from dfem.validation.error_norms import fitted_rate

ROOT = Path(__file__).resolve().parents[2]
f64 = torch.float64
R, L, T, E, NU = 1.0, 4.0, 10.0, 1e5, 0.3


def annulus_points(n=400, r_max=12.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = R + (r_max - R) * torch.rand(n, generator=g, dtype=f64)
    theta = 2 * math.pi * torch.rand(n, generator=g, dtype=f64)
    return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], -1)


def jacobian(fn, x):
    """(n, k, 2): d fn_k / d x_j at each point, by autograd."""
    x = x.clone().requires_grad_(True)
    y = fn(x)
    rows = [torch.autograd.grad(y[..., k].sum(), x, retain_graph=True)[0]
            for k in range(y.shape[-1])]
    return torch.stack(rows, -2)


# --------------------------------------------------------------------- the exact solution
@pytest.mark.parametrize("plane", ["stress", "strain"])
def test_displacement_strain_through_hooke_is_the_stress(plane):
    x = annulus_points()
    grad = jacobian(lambda y: kirsch.displacement(y, R, T, E, NU, plane), x)
    eps = 0.5 * (grad + grad.transpose(-1, -2))
    exx, eyy, exy = eps[:, 0, 0], eps[:, 1, 1], eps[:, 0, 1]
    if plane == "stress":  # sigma_zz = 0
        c = E / (1 - NU**2)
        sxx, syy = c * (exx + NU * eyy), c * (eyy + NU * exx)
    else:  # eps_zz = 0
        c = E / ((1 + NU) * (1 - 2 * NU))
        sxx, syy = c * ((1 - NU) * exx + NU * eyy), c * ((1 - NU) * eyy + NU * exx)
    sxy = E / (1 + NU) * exy
    s = kirsch.stress(x, R, T)
    scale = 3 * T
    torch.testing.assert_close(sxx / scale, s[:, 0, 0] / scale, rtol=0, atol=1e-12)
    torch.testing.assert_close(syy / scale, s[:, 1, 1] / scale, rtol=0, atol=1e-12)
    torch.testing.assert_close(sxy / scale, s[:, 0, 1] / scale, rtol=0, atol=1e-12)
    torch.testing.assert_close(s[:, 0, 1], s[:, 1, 0], rtol=0, atol=0)


def test_stress_equilibrium_hole_and_far_field():
    x = annulus_points()
    rows = [jacobian(lambda y, i=i: kirsch.stress(y, R, T)[..., i, :], x) for i in range(2)]
    divergence = torch.stack([rows[i].diagonal(dim1=-2, dim2=-1).sum(-1) for i in range(2)], -1)
    assert divergence.abs().max() < 1e-12 * T
    theta = torch.linspace(0, 2 * math.pi, 97, dtype=f64)
    n = torch.stack([torch.cos(theta), torch.sin(theta)], -1)
    on_hole = kirsch.stress(R * n, R, T) @ n[..., None]
    assert on_hole.abs().max() < 1e-13 * T
    far = kirsch.stress(1e5 * R * n, R, T)
    expected = torch.tensor([[T, 0.0], [0.0, 0.0]], dtype=f64)
    assert (far - expected).abs().max() < 1e-8 * T
    top = kirsch.stress(torch.tensor([0.0, R], dtype=f64), R, T)
    side = kirsch.stress(torch.tensor([R, 0.0], dtype=f64), R, T)
    assert top[0, 0].item() == pytest.approx(3 * T, rel=1e-14)
    assert side[1, 1].item() == pytest.approx(-T, rel=1e-14)


def test_cartesian_closed_form_of_hughes_et_al():
    x = annulus_points(seed=1)
    r, th = x.norm(dim=-1), torch.atan2(x[:, 1], x[:, 0])
    a2, a4 = (R / r) ** 2, (R / r) ** 4
    sxx = T * (1 - a2 * (1.5 * torch.cos(2 * th) + torch.cos(4 * th))
               + 1.5 * a4 * torch.cos(4 * th))
    syy = T * (-a2 * (0.5 * torch.cos(2 * th) - torch.cos(4 * th)) - 1.5 * a4 * torch.cos(4 * th))
    sxy = T * (-a2 * (0.5 * torch.sin(2 * th) + torch.sin(4 * th)) + 1.5 * a4 * torch.sin(4 * th))
    s = kirsch.stress(x, R, T)
    for got, want in ((s[:, 0, 0], sxx), (s[:, 1, 1], syy), (s[:, 0, 1], sxy)):
        assert (got - want).abs().max() < 1e-13 * T


def test_displacement_respects_the_symmetry_rollers():
    t = torch.linspace(R, L, 31, dtype=f64)
    zero = torch.zeros_like(t)
    u_axis = kirsch.displacement(torch.stack([t, zero], -1), R, T, E, NU)
    u_side = kirsch.displacement(torch.stack([zero, t], -1), R, T, E, NU)
    scale = u_axis.abs().max()  # cos(pi / 2) is 6e-17 in floating point, not 0
    assert u_axis[:, 1].abs().max() == 0 and u_side[:, 0].abs().max() < 1e-15 * scale
    assert (u_axis[:, 0] > 0).all() and (u_side[:, 1] < 0).all()  # pulled in x, contracts in y


def test_outer_traction_is_sigma_n_on_each_edge():
    t = kirsch.outer_traction(R, L, T)
    s = torch.linspace(0.05, L - 0.05, 13, dtype=f64)
    right = torch.stack([torch.full_like(s, L), s], -1)
    upper = torch.stack([s, torch.full_like(s, L)], -1)
    torch.testing.assert_close(t(right), kirsch.stress(right, R, T)[..., :, 0])
    torch.testing.assert_close(t(upper), kirsch.stress(upper, R, T)[..., :, 1])


# --------------------------------------------------------------------- the geometry
def test_patch_is_the_exact_plate_with_a_hole():
    patch = plate_with_hole(R, L)
    t = torch.linspace(0, 1, 201, dtype=f64)
    x, xu, xv = surface_points(patch.control_points, patch.weights, patch.knots_u,
                               patch.knots_v, 2, 2, t, t, derivatives=True)
    assert (x[0].norm(dim=-1) - R).abs().max() < 1e-14  # the hole
    assert (x[-1, :101, 0] - L).abs().max() < 1e-14  # x = L for v <= 1/2
    assert (x[-1, 100:, 1] - L).abs().max() < 1e-14  # y = L for v >= 1/2
    assert x[:, 0, 1].abs().max() == 0 and x[:, -1, 0].abs().max() == 0  # symmetry edges
    det = xu[..., 0] * xv[..., 1] - xu[..., 1] * xv[..., 0]
    inner = det[1:-1, 1:-1]
    assert (inner > 0).all()  # right-handed and regular inside
    assert det[-1, 100] == 0  # the corner (L, L): the one degenerate point
    # Hughes et al. 2005 (their quadrant x <= 0), mirrored x -> -x, rows: hole, middle, outer
    s2 = math.sqrt(2) - 1
    hughes = torch.tensor([[[-1, 0], [-1, s2], [-s2, 1], [0, 1]],
                           [[-2.5, 0], [-2.5, 0.75], [-0.75, 2.5], [0, 2.5]],
                           [[-4, 0], [-4, 4], [-4, 4], [0, 4]]], dtype=f64)
    mirrored = hughes * torch.tensor([-1.0, 1.0], dtype=f64)
    torch.testing.assert_close(plate_with_hole(1.0, 4.0).control_points, mirrored)
    c = (1 + 1 / math.sqrt(2)) / 2
    torch.testing.assert_close(patch.weights[0], torch.tensor([1, c, c, 1], dtype=f64))


@pytest.mark.parametrize("radius,length", [(1.0, 4.0), (0.5, 3.0)])
def test_area_and_refinement_keep_the_geometry(radius, length):
    base = plate_with_hole(radius, length)
    for patch in (base, base.elevate(3).subdivide(2, 4)):
        g = IsogeometricSpace(patch).geometry(24)
        area = float(g.weights.sum())
        assert area == pytest.approx(length**2 - math.pi * radius**2 / 4, rel=1e-10)
    space = IsogeometricSpace(base.subdivide(2, 4))
    hole = space.facet_geometry("left")
    # outward normals of the domain on the hole point to its centre
    torch.testing.assert_close(hole.normals, -hole.points / radius, rtol=0, atol=1e-13)


def test_bad_input_raises():
    with pytest.raises(dfem.DfemError, match="radius < length"):
        plate_with_hole(4.0, 4.0)
    with pytest.raises(dfem.DfemError, match="degree >= 2"):
        kirsch.problem(degree=1)
    with pytest.raises(dfem.DfemError, match="positive integer"):
        kirsch.problem(elements=0)
    with pytest.raises(dfem.DfemError, match="unknown Kirsch parameter"):
        kirsch.problem(poisson=0.3)
    with pytest.raises(dfem.DfemError, match="plane"):
        kirsch.kolosov(0.3, "membrane")


# --------------------------------------------------------------------- point evaluation
def test_gradient_at_agrees_with_surface_points(one_thread):
    patch = plate_with_hole(R, L).elevate(3).subdivide(2, 4)
    space = IsogeometricSpace(patch, shape=(2,))
    g = torch.Generator().manual_seed(3)
    c = torch.randn(*patch.shape, 2, generator=g, dtype=f64)
    uv = torch.rand(7, 2, generator=g, dtype=f64)
    uv[0] = torch.tensor([0.0, 1.0])  # the corner (0, R), a domain end
    x, grad = kirsch.gradient_at(space, c.reshape(-1), uv)
    args = (patch.weights, patch.knots_u, patch.knots_v, 3, 3, uv[:, 0], uv[:, 1])
    xs, xu, xv = surface_points(patch.control_points, *args, derivatives=True, grid=False)
    f, fu, fv = surface_points(c, *args, derivatives=True, grid=False)
    J = torch.stack([xu, xv], -1)  # dx_i / dxi_j
    expected = torch.stack([fu, fv], -1) @ torch.linalg.inv(J)
    torch.testing.assert_close(x, xs, rtol=0, atol=1e-13)
    torch.testing.assert_close(grad, expected, rtol=1e-11, atol=1e-11)
    # the geometry's own control points are the field u_h(x) = x
    _, identity = kirsch.gradient_at(space, patch.control_points.reshape(-1), uv)
    torch.testing.assert_close(identity, torch.eye(2, dtype=f64).expand(7, 2, 2),
                               rtol=0, atol=1e-12)


def test_stress_of_solve_matches_problem_stress(one_thread):
    problem = kirsch.problem(2, 2)
    u = problem.solve()
    g = problem.space.geometry()
    _, grad_u = problem.space.at_quadrature(u, g)
    mu, lam = E / (2 * (1 + NU)), E * NU / (1 - NU**2)  # plane stress lambda*
    ours = kirsch._hooke(0.5 * (grad_u + grad_u.transpose(-1, -2)), mu, lam)
    torch.testing.assert_close(problem.stress(u), ours, rtol=1e-12, atol=1e-9)


# --------------------------------------------------------------------- convergence
def check_study(degree, levels):
    study = kirsch.convergence_study(degree, levels)
    rows = study["levels"]
    assert study["l2_displacement_rate"] == pytest.approx(degree + 1, abs=0.3)
    assert study["l2_stress_rate"] == pytest.approx(degree, abs=0.3)
    assert study["energy_rate"] == pytest.approx(degree, abs=0.3)
    top = [abs(r["sigma_xx_top"] - 3 * T) for r in rows]
    assert all(a > b for a, b in zip(top, top[1:], strict=False))
    return rows, top


@pytest.mark.parametrize("degree,levels,tol", [(2, (16, 32, 64), 1e-3), (3, (8, 16), 2e-3)])
def test_convergence_rates_and_hole_stress(one_thread, degree, levels, tol):
    rows, top = check_study(degree, levels)
    assert top[-1] < tol * 3 * T
    assert rows[-1]["rel_l2_displacement"] < 1e-4


def test_exact_displacement_as_dirichlet_data_on_curved_sides(one_thread):
    """The vector Dirichlet path on NURBS sides: the exact displacement (a callable returning
    (n, 2)) imposed on the hole (curved) and the outer edges, by Greville interpolation per
    component, with the rollers; L2 and H1 rates p + 1 and p."""
    exact = lambda x: kirsch.displacement(x, R, T, E, NU, "stress")  # noqa: E731
    rows = []
    for k in (8, 16):
        space = kirsch.patch_space(2, k)
        problem = dfem.LinearElasticity(
            space, E=E, poisson_ratio=NU, plane="stress",
            dirichlet={"left": exact, "right": exact, "bottom": {"y": 0.0}, "top": {"x": 0.0}})
        rows.append(dfem.errors(space, problem.solve(), exact))
    h = [1 / 8, 1 / 16]
    assert fitted_rate(h, [r["l2"] for r in rows]) == pytest.approx(3, abs=0.3)
    assert fitted_rate(h, [r["h1"] for r in rows]) == pytest.approx(2, abs=0.3)


@pytest.mark.slow
@pytest.mark.parametrize("degree,levels", [(2, (32, 64, 128)), (3, (32, 64, 128))])
def test_convergence_rates_fine(one_thread, degree, levels):
    _, top = check_study(degree, levels)
    assert top[-1] < 2e-4 * 3 * T


def test_rates_of_the_committed_benchmark():
    path = ROOT / "benchmarks" / "results" / "iga_plate_hole.json"
    if not path.exists():
        pytest.skip("benchmarks/results/iga_plate_hole.json not written yet")
    result = json.loads(path.read_text())
    for study in result["iga"]:
        p = study["degree"]
        assert study["l2_displacement_rate"] == pytest.approx(p + 1, abs=0.3)
        assert study["l2_stress_rate"] == pytest.approx(p, abs=0.3)
        rows = study["levels"]
        h = [r["h"] for r in rows[-3:]]
        assert study["energy_rate"] == pytest.approx(
            fitted_rate(h, [r["energy"] for r in rows[-3:]]), abs=1e-12)
    page = (ROOT / "docs" / "elasticity_iga.md").read_text()
    assert load_benchmark().markdown(result) in page, "docs/elasticity_iga.md is out of date"


# --------------------------------------------------------------------- benchmark and docs
def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "iga_plate_hole", ROOT / "benchmarks" / "iga_plate_hole.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_quick_run(tmp_path, monkeypatch, one_thread):
    module = load_benchmark()
    monkeypatch.setattr(module, "QUICK_LEVELS", (2, 4))
    out = tmp_path / "kirsch.json"
    assert module.main(["--quick", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [s["degree"] for s in result["iga"]] == [2, 3]
    if result.get("peer") is not None:
        peer = result["peer"]["levels"]
        nurbs2 = result["iga"][0]["levels"]
        # the same k x 2k layout of quadratic elements: errors of the same size
        for a, b in zip(peer, nurbs2, strict=True):
            assert a["elements"] == b["elements"]
            assert 0.3 < a["l2_displacement"] / b["l2_displacement"] < 3
            assert 0.3 < a["l2_stress"] / b["l2_stress"] < 3


def test_docs_example_runs(run_doc_example, one_thread):
    out = run_doc_example(ROOT / "docs" / "elasticity_iga.md")
    assert "sigma_xx(0, R)" in out
