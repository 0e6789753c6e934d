"""The torch V-cycle (dfem.solvers.multigrid) and the CG loop it preconditions.

Checked against independent computations: scipy's eigensolver for the spectral bound,
the cycle's own definition (symmetry and definiteness, which CG needs), pyamg's own
aggregation for the level sizes, the direct solve for the solutions, and scipy for the
matrix products of the int32-indexed CSR tensors.
"""

import numpy as np
import pytest
import scipy.sparse as sps
import scipy.sparse.linalg as spla
import torch

import dfem
from dfem.exceptions import ConvergenceError, DfemError
from dfem.solvers.amg import rigid_body_modes
from dfem.solvers.krylov import pcg
from dfem.solvers.linear import factorize
from dfem.solvers.multigrid import (
    MAX_DENSE,
    SAFETY,
    VCycle,
    make_level,
    ruge_stuben,
    smoothed_aggregation,
    spectral_radius,
    torch_csr,
)

pytest.importorskip("pyamg")


def poisson_matrix(n=24, element="Q1"):
    space = dfem.FunctionSpace(dfem.mesh.rectangle(n, n, "quad"), element)
    problem = dfem.Poisson(space, nu=1.0, f=1.0, dirichlet={"left": 0.0})
    fixed, _ = problem.dirichlet_data()
    restricted = problem.restricted_pattern(fixed)
    values = problem.tangent_values()[restricted.ff]
    return restricted.pattern, values.detach()


def elasticity_matrix(n=12, supports="clamp"):
    mesh = dfem.mesh.rectangle(2 * n, n, "quad", x=(0.0, 2.0), y=(0.0, 1.0))
    space = dfem.FunctionSpace(mesh, "Q1", shape=(2,))
    dirichlet = {"left": 0.0} if supports == "clamp" else {"left": {"x": 0.0},
                                                           "bottom": {"y": 0.0}}
    problem = dfem.LinearElasticity(space, E=1.0, poisson_ratio=0.3, plane="strain",
                                    dirichlet=dirichlet, traction={"right": [0.0, -1.0]})
    fixed, _ = problem.dirichlet_data()
    restricted = problem.restricted_pattern(fixed)
    values = problem.tangent_values()[restricted.ff].detach()
    free = restricted.free_dofs
    coords = space.scalar.dof_coordinates[free // 2]
    return restricted.pattern, values, rigid_body_modes(coords, free, 2)


def test_int32_csr_products_equal_scipy():
    pattern, values = poisson_matrix(10)
    A = pattern.csr(values)
    assert A.crow_indices().dtype == torch.int32
    x = torch.randn(pattern.n, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    reference = pattern.to_scipy(values) @ x.numpy()
    np.testing.assert_allclose((A @ x).numpy(), reference, rtol=1e-13, atol=1e-13)


def test_spectral_radius_bounds_the_eigensolver_value_from_below():
    pattern, values = poisson_matrix(16, "Q2")
    A = pattern.to_scipy(values)
    d = A.diagonal()
    scaled = sps.diags(d**-0.5) @ A @ sps.diags(d**-0.5)
    exact = spla.eigsh(scaled, k=1, which="LA", return_eigenvectors=False)[0]
    estimate = spectral_radius(pattern.csr(values), torch.as_tensor(1.0 / d))
    assert 0.9 * exact <= estimate <= exact * (1 + 1e-10)
    assert SAFETY * estimate >= exact  # the smoother's upper bound lies above the spectrum


def _cycle_is_symmetric_positive_definite(cycle, n):
    g = torch.Generator().manual_seed(0)
    u, v = (torch.randn(n, dtype=torch.float64, generator=g) for _ in range(2))
    uMv, vMu = float(u @ cycle(v)), float(v @ cycle(u))
    assert abs(uMv - vMu) <= 1e-12 * (abs(uMv) + abs(vMu))
    for w in (u, v):
        assert float(w @ cycle(w)) > 0


@pytest.mark.parametrize("kind", ["rs", "sa", "sa-modes", "sa-rollers"])
def test_the_v_cycle_is_symmetric_positive_definite(kind):
    if kind in ("rs", "sa"):
        pattern, values = poisson_matrix(20)
        A = pattern.to_scipy(values)
        At = pattern.csr(values)
        levels = (ruge_stuben(A, At, max_coarse=20) if kind == "rs" else
                  smoothed_aggregation(A, At, np.ones((pattern.n, 1)), max_coarse=20))
    else:
        pattern, values, nn = elasticity_matrix(10, "clamp" if kind == "sa-modes" else "rollers")
        position, n_padded = nn.padded()
        A = pattern.to_scipy(values)
        levels = smoothed_aggregation(A, pattern.csr(values), nn.modes, 2, position, n_padded,
                                      max_coarse=20)
        if kind == "sa-rollers":
            assert n_padded > pattern.n  # nodes with one fixed component were padded
    assert len(levels) >= 2
    assert levels[0].A.shape == (pattern.n, pattern.n)  # the padding never reaches the cycle
    _cycle_is_symmetric_positive_definite(VCycle(levels), pattern.n)


def test_smoothed_aggregation_levels_match_pyamgs_aggregation():
    import pyamg

    pattern, values = poisson_matrix(32)
    A = pattern.to_scipy(values)
    ours = smoothed_aggregation(A, pattern.csr(values), np.ones((pattern.n, 1)), max_coarse=40)
    ref = pyamg.smoothed_aggregation_solver(A, symmetry="symmetric", max_coarse=40,
                                            improve_candidates=None)
    # the same aggregates (pyamg's standard aggregation of the same strength graph)
    assert [lv.A.shape[0] for lv in ours] == [lv.A.shape[0] for lv in ref.levels]
    # and the same Galerkin operators up to the prolongator damping, which differs only
    # by the spectral estimate (Lanczos here, pyamg's Arnoldi there): within a few per cent
    for mine, theirs in zip(ours[1:], ref.levels[1:], strict=True):
        dense = mine.A.to_dense().numpy()
        assert np.abs(dense - theirs.A.toarray()).max() <= 0.05 * np.abs(dense).max()


@pytest.mark.parametrize("hierarchy", ["rs", "sa"])
def test_amg_cg_equals_the_direct_solve(hierarchy):
    pattern, values = poisson_matrix(28, "Q2")
    b = torch.randn(pattern.n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    factor = factorize(pattern, values, "amg", rtol=1e-11, hierarchy=hierarchy, max_coarse=30)
    x = factor.solve(b)
    ref = spla.spsolve(pattern.to_scipy(values).tocsc(), b.numpy())
    np.testing.assert_allclose(x.numpy(), ref, atol=1e-9 * np.abs(ref).max())
    assert 0 < factor.info.iterations < 40


def test_a_single_precision_cycle_still_reaches_a_double_precision_tolerance():
    # Polak-Ribiere's beta keeps CG converging with a preconditioner that is linear only
    # to rounding (here a float32 V-cycle) down to a tolerance far below float32's epsilon
    pattern, values, nn = elasticity_matrix(16)
    position, n_padded = nn.padded()
    A32 = torch_csr(pattern.to_scipy(values), "cpu", torch.float32)
    levels = smoothed_aggregation(pattern.to_scipy(values), A32, nn.modes, 2, position,
                                  n_padded, max_coarse=30)
    cycle = VCycle(levels)
    b = torch.randn(pattern.n, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x, iterations, residual = pcg(pattern.csr(values), b,
                                  lambda r: cycle(r.to(torch.float32)).to(torch.float64),
                                  rtol=1e-11, atol=0.0, maxiter=200)
    assert residual <= 1e-11
    ref = spla.spsolve(pattern.to_scipy(values).tocsc(), b.numpy())
    np.testing.assert_allclose(x.numpy(), ref, atol=1e-8 * np.abs(ref).max())


def test_indefinite_and_singular_matrices_are_refused_by_name():
    pattern, values = poisson_matrix(8)
    with pytest.raises(DfemError, match="positive definite"):
        factorize(pattern, -values, "amg")
    # a pure Neumann problem: the coarsest operator of the constant mode is singular
    space = dfem.FunctionSpace(dfem.mesh.rectangle(30, 30, "quad"), "Q1")
    problem = dfem.Poisson(space, f=1.0)
    with pytest.raises((DfemError, ConvergenceError), match="singular|positive definite"):
        problem.solve(method="amg", hierarchy="sa")


def test_cg_reports_a_breakdown_instead_of_a_wrong_answer():
    A = torch_csr(sps.csr_matrix(np.diag([1.0, -1.0, 2.0])), "cpu", torch.float64)
    with pytest.raises(ConvergenceError, match="broke down"):
        pcg(A, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), lambda r: r, 1e-10, 0.0, 10)


def test_a_large_coarsest_level_is_smoothed_not_factorised_densely():
    # a hierarchy whose coarsening stopped at a level too large for a dense factorisation
    # (here the only level): the cycle smooths it, and stays symmetric positive definite
    n = MAX_DENSE + 1000
    diagonal = np.linspace(1.0, 3.0, n)
    A = sps.csr_matrix(sps.diags(diagonal) + sps.diags(-0.3 * np.ones(n - 1), 1)
                       + sps.diags(-0.3 * np.ones(n - 1), -1))
    At = torch_csr(A, "cpu", torch.float64)
    cycle = VCycle([make_level(At, A.diagonal(), 0)])
    assert cycle.coarse_factor is None
    _cycle_is_symmetric_positive_definite(cycle, n)
    b = torch.ones(n, dtype=torch.float64)
    x, _, residual = pcg(At, b, cycle, 1e-12, 0.0, 100)
    assert residual <= 1e-12
    np.testing.assert_allclose(x.numpy(), spla.spsolve(A.tocsc(), b.numpy()), rtol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_amg_cg_runs_on_the_gpu_and_equals_the_cpu_solve():
    pattern, values, nn = elasticity_matrix(16)
    b = torch.randn(pattern.n, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    cpu = factorize(pattern, values, "amg", rtol=1e-11, near_nullspace=nn).solve(b)
    gpu_pattern = type(pattern)(n=pattern.n, indptr=pattern.indptr.cuda(),
                                indices=pattern.indices.cuda())
    factor = factorize(gpu_pattern, values.cuda(), "amg", rtol=1e-11, near_nullspace=nn)
    assert factor.hierarchy.levels[0].P.device.type == "cuda"
    x = factor.solve(b.cuda())
    assert x.device.type == "cuda"
    assert float((x.cpu() - cpu).abs().max()) <= 1e-8 * float(cpu.abs().max())
