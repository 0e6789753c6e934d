"""Diffusivity identification: regularisers against hand values, gradients by the Taylor
test, recovery of w and of a field, and the errors bad input gets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dfem
from dfem.exceptions import DfemError
from dfem.inverse import (
    CellLogDiffusivity,
    FamilyParameters,
    NodalLogDiffusivity,
    Observations,
    check_gradients,
    identify,
)
from dfem.problems.random_fields import LogNormalDiffusivity

pytestmark = pytest.mark.usefixtures("one_thread")

W = torch.tensor([-0.26, -0.77, -0.37, -0.92], dtype=torch.float64)


def _problem(n=12, cell="quad"):
    space = dfem.FunctionSpace(dfem.mesh.rectangle(n, n, cell), "Q1" if cell == "quad" else "P1")
    return dfem.Poisson(space, nu=LogNormalDiffusivity().field(W), f=1.0,
                        dirichlet={"boundary": 0.0})


@pytest.mark.parametrize("n", [4, 7])
def test_regularizers_of_linear_fields(n):
    space = dfem.FunctionSpace(dfem.mesh.rectangle(n, n, "quad"), "Q1")
    a, b, eps = 0.7, -1.3, 0.2
    nodes = space.mesh.nodes
    nodal = NodalLogDiffusivity(space)
    m = a * nodes[:, 0] + b * nodes[:, 1]
    assert float(nodal.regularization(m, "tikhonov", 0.0)) == pytest.approx(0.5 * (a * a + b * b))
    assert float(nodal.regularization(m, "tv", eps)) == pytest.approx(np.sqrt(a * a + b * b
                                                                              + eps * eps))
    # per cell, m = a x_c: each of the n(n-1) edges between horizontal neighbours has
    # length h, centroid distance h and jump a h
    cells = CellLogDiffusivity(space)
    centroids = nodes[space.mesh.cells].mean(dim=1)
    mc = a * centroids[:, 0]
    assert float(cells.regularization(mc, "tikhonov", 0.0)) == pytest.approx(
        0.5 * a * a * (1 - 1 / n))
    assert float(cells.regularization(mc, "tv", 0.0)) == pytest.approx(abs(a) * (1 - 1 / n))


@pytest.mark.parametrize(("kind", "dim"), [("cell", 2), ("nodal", 2), ("cell", 3)])
@pytest.mark.parametrize("regularization", ["tikhonov", "tv"])
def test_objective_gradient_passes_the_taylor_test(kind, regularization, dim):
    if dim == 2:
        problem = _problem(6)
    else:  # Q1 hexes: the per-cell unknown's regularisation sums over faces
        problem = dfem.Poisson(dfem.FunctionSpace(dfem.mesh.box(3), "Q1"),
                               nu=lambda x: 1 + x[..., 0] * x[..., 2], f=1.0,
                               dirichlet={"boundary": 0.0})
    space = problem.space
    obs = Observations.synthetic(space, problem.solve(), 0.01, seed=0)
    unknown = (CellLogDiffusivity if kind == "cell" else NodalLogDiffusivity)(space)
    trial = dfem.Poisson(space, f=1.0, dirichlet={"boundary": 0.0})

    def objective(m):
        trial.nu = unknown.coefficient(m)
        return obs.misfit(trial.solve()) + 1e-2 * unknown.regularization(m, regularization, 0.1)

    m = 0.3 * torch.randn(unknown.size, generator=torch.Generator().manual_seed(0),
                          dtype=torch.float64)
    result = check_gradients(objective, m, h0=0.05)
    assert result.passed(0.1), result.report()


def test_recovers_w_without_noise_and_with_noise():
    problem = _problem(12)
    space = problem.space
    u = problem.solve()
    unknown = FamilyParameters(LogNormalDiffusivity())
    exact = identify(problem, Observations(space, u), unknown, regularization="none",
                     bounds=(-3, 3), gtol=1e-12)
    assert float((exact.m - W).abs().max()) < 1e-4
    noisy = identify(problem, Observations.synthetic(space, u, 0.01, seed=0), unknown,
                     regularization="none", bounds=(-3, 3))
    assert float((noisy.m - W).abs().max()) < 0.05
    assert noisy.converged and noisy.evaluations >= noisy.iterations


def test_recovers_w_from_sensors_and_from_a_file(tmp_path):
    problem = _problem(12, "tri")
    space = problem.space
    from dfem.inverse.run import random_points_in_cells

    points = random_points_in_cells(space.mesh, 60, seed=4)
    obs = Observations.synthetic(space, problem.solve(), 0.005, seed=1, points=points)
    unknown = FamilyParameters(LogNormalDiffusivity())
    result = identify(problem, obs, unknown, regularization="none", bounds=(-3, 3))
    assert float((result.m - W).abs().max()) < 0.1

    np.savez(tmp_path / "data.npz", values=obs.values.numpy(), points=points.numpy())
    from dfem.inverse.config import load_inverse_config
    from dfem.inverse.run import run_inverse

    config = tmp_path / "config.toml"
    config.write_text(
        'element = "P1"\n[mesh]\nn = 12\ncell = "tri"\n'
        '[problem]\nnu = { field = "lognormal", w = [0.0, 0.0, 0.0, 0.0] }\nf = 1.0\n'
        '[boundary.boundary]\ndirichlet = 0.0\n'
        f'[observations]\nfile = "data.npz"\nsigma = {obs.sigma}\n'
        '[inverse]\nunknown = "w"\nregularization = "none"\nbounds = [-3.0, 3.0]\n')
    report = run_inverse(load_inverse_config(config))
    assert report["w"] == pytest.approx(result.m.tolist(), abs=1e-6)
    assert report["sensors"] and report["log_nu_rel_l2_error"] is None


@pytest.mark.parametrize("dim", [2, 3])
def test_recovers_a_representable_field_from_clean_data(dim):
    # per-cell nu = exp(m*), more informative values (the interior dofs) than unknowns, so
    # clean data determine m* and L-BFGS must find it: 2D, Q2 on 10 x 10 quads (361 values,
    # 100 unknowns); 3D, P3 on 48 tets (125 values, 48 unknowns)
    if dim == 2:
        space = dfem.FunctionSpace(dfem.mesh.rectangle(10, 10, "quad"), "Q2")
    else:
        space = dfem.FunctionSpace(dfem.mesh.box(2, cell="tet"), "P3")
    unknown = CellLogDiffusivity(space)
    centroids = space.mesh.nodes[space.mesh.cells].mean(dim=1)
    if dim == 2:
        m_true = LogNormalDiffusivity().log_field(centroids, W)
    else:
        x, y, z = centroids.unbind(-1)
        m_true = 0.5 * torch.sin(3 * x) * y - 0.3 * z
    problem = dfem.Poisson(space, nu=unknown.coefficient(m_true), f=1.0,
                           dirichlet={"boundary": 0.0})
    u = problem.solve()
    obs = Observations(space, u, sigma=1e-4 * float(u.abs().max()))

    def error(m):
        return float(torch.linalg.norm(m - m_true) / torch.linalg.norm(m_true))

    result = identify(problem, obs, unknown, regularization="none", max_iter=500,
                      error=error)
    assert result.history[0]["error"] == pytest.approx(1.0)  # m = 0 to start
    assert result.history[-1]["error"] < (1e-4 if dim == 2 else 1e-3), result.history[-1]
    assert result.history[-1]["misfit"] < 1e-6 * result.history[0]["misfit"]


def test_bad_input():
    problem = _problem(6)
    space = problem.space
    with pytest.raises(DfemError, match="49 values are needed"):
        Observations(space, torch.zeros(50))
    with pytest.raises(DfemError, match="one per sensor point"):
        Observations(space, torch.zeros(3), points=[[0.5, 0.5], [0.2, 0.2]])
    with pytest.raises(DfemError, match="outside the mesh"):
        Observations(space, torch.zeros(2), points=[[0.5, 0.5], [1.5, 0.2]])
    with pytest.raises(DfemError, match="inf or NaN"):
        Observations(space, torch.full((49,), float("nan")))
    obs = Observations(space, torch.zeros(49))
    with pytest.raises(DfemError, match="weight must be a finite number >= 0"):
        identify(problem, obs, NodalLogDiffusivity(space), weight=-1.0)
    with pytest.raises(DfemError, match="unknown regularization"):
        identify(problem, obs, NodalLogDiffusivity(space), regularization="l1")
    with pytest.raises(DfemError, match="initial guess"):
        identify(problem, obs, NodalLogDiffusivity(space), m0=torch.zeros(3))
    other = dfem.FunctionSpace(space.mesh, "Q1")
    with pytest.raises(DfemError, match="problem's function space"):
        identify(problem, Observations(other, torch.zeros(49)), NodalLogDiffusivity(space))
