"""method="petsc" on one process: PETSc's KSP (CG + GAMG by default, or any ksp/pc pair)
solves and adjoint-solves dfem's assembled systems; solutions and gradients equal the
direct backend's to the solver tolerance."""

import importlib.util
import sys

import pytest
import torch

import dfem
from dfem.exceptions import ConvergenceError, DfemError
from dfem.mesh import rectangle
from dfem.mesh.structured import box, perturb_interior
from dfem.solvers import sparse_solve

PETSC_MISSING = "petsc4py is not installed (pip install 'dfem[petsc]', docs/petsc.md)"


def test_without_petsc4py_the_method_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "petsc4py", None)  # import petsc4py now fails
    space = dfem.FunctionSpace(rectangle(4, 4), "Q1")
    problem = dfem.Poisson(space, f=1.0, dirichlet={"boundary": 0.0})
    with pytest.raises(DfemError, match=r"petsc4py.*pip install 'dfem\[petsc\]'"):
        problem.solve(method="petsc")


needs_petsc = pytest.mark.skipif(importlib.util.find_spec("petsc4py") is None,
                                 reason=PETSC_MISSING)


def poisson(space, nu):
    return dfem.Poisson(space, nu=nu, f=lambda x: 1 + x[..., 0] * x[..., 1],
                        dirichlet={"left": 0.0, "bottom": lambda x: x[..., 0]},
                        neumann={"right": 0.5})


@needs_petsc
@pytest.mark.parametrize("options", [
    {},                                                    # CG + GAMG
    {"ksp_type": "preonly", "pc_type": "cholesky"},        # direct
    {"ksp_type": "gmres", "pc_type": "ilu"},
], ids=["cg-gamg", "cholesky", "gmres-ilu"])
def test_solution_and_gradient_equal_the_direct_backend(options):
    space = dfem.FunctionSpace(perturb_interior(rectangle(12, 12, cell="tri")), "P2")
    nu = (1.0 + torch.rand(space.mesh.n_cells, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(0))).requires_grad_()
    u_direct = poisson(space, dfem.PerCell(nu)).solve(method="direct")
    (g_direct,) = torch.autograd.grad((u_direct ** 2).sum(), nu)
    u_petsc = poisson(space, dfem.PerCell(nu)).solve(method="petsc", rtol=1e-13, **options)
    (g_petsc,) = torch.autograd.grad((u_petsc ** 2).sum(), nu)
    scale = float(u_direct.detach().abs().max())
    assert float((u_petsc - u_direct).abs().max()) <= 1e-9 * scale
    assert float((g_petsc - g_direct).abs().max()) <= 1e-8 * float(g_direct.abs().max())


@needs_petsc
def test_elasticity_uses_gamg_with_the_rigid_body_modes():
    space = dfem.FunctionSpace(box(8, 4, 4, x=(0.0, 2.0)), "Q1", shape=(3,))
    problem = dfem.LinearElasticity(space, E=1.0, poisson_ratio=0.3, dirichlet={"left": 0.0},
                                    traction={"right": [0.0, -1.0, 0.0]})
    u_direct = problem.solve(method="direct")
    u_petsc = problem.solve(method="petsc", rtol=1e-12)
    assert float((u_petsc - u_direct).abs().max()) <= 1e-8 * float(u_direct.abs().max())
    # without the modes GAMG needs more iterations on the same system
    with_modes = _iterations(problem, {})
    without = _iterations(problem, {"near_nullspace": None})
    assert with_modes < without, (with_modes, without)


def _iterations(problem, options):
    from dfem.solvers.linear import factorize

    free = torch.ones(problem.space.n_dofs, dtype=torch.bool)
    free[problem.space.boundary_dofs("left")] = False
    restricted = problem.space.pattern.restrict(free)
    u = torch.zeros(problem.space.n_dofs, dtype=torch.float64)
    values = _tangent_values(problem, u)
    options = problem._amg_options("petsc", options, restricted.free_dofs)
    options = {k: v for k, v in options.items() if v is not None}
    factor = factorize(restricted.pattern, values[restricted.ff], "petsc", rtol=1e-10,
                       **options)
    factor.solve(torch.ones(restricted.n, dtype=torch.float64))
    return factor.info.iterations


def _tangent_values(problem, u):
    """The CSR values of the tangent on the space's pattern."""
    K = problem.tangent(u).coalesce()
    rows, cols = K.indices()
    positions = problem.space.pattern.positions(rows, cols)
    values = torch.zeros(problem.space.pattern.nnz, dtype=torch.float64)
    values[positions] = K.values()
    return values


@needs_petsc
def test_a_nonsymmetric_system_and_its_transpose():
    # A = K + skew: GMRES solves A x = b and, in the backward pass, A^T lam = g
    space = dfem.FunctionSpace(rectangle(6, 6), "Q1")
    pattern = space.pattern
    K = poisson(space, 1.0).assemble(format="scipy")[0].tocsr()
    K.sort_indices()
    rows = pattern.rows.numpy()
    skew = 0.1 * torch.as_tensor(rows - pattern.indices.numpy(), dtype=torch.float64)
    values = torch.as_tensor(K.data) + skew
    values = values.clone().requires_grad_()
    b = torch.linspace(0.0, 1.0, pattern.n, dtype=torch.float64).requires_grad_()

    def objective(method, **options):
        x = sparse_solve(pattern, values, b, method=method, symmetric=False, **options)
        return (x ** 2).sum()

    direct = objective("direct")
    g_direct = torch.autograd.grad(direct, (values, b))
    petsc = objective("petsc", ksp_type="gmres", pc_type="ilu", rtol=1e-13)
    g_petsc = torch.autograd.grad(petsc, (values, b))
    assert abs(float(petsc - direct)) <= 1e-9 * abs(float(direct))
    for a, c in zip(g_petsc, g_direct, strict=True):
        assert float((a - c).abs().max()) <= 1e-8 * float(c.abs().max())


@needs_petsc
def test_bad_options_and_a_solve_that_stops_short():
    space = dfem.FunctionSpace(rectangle(16, 16), "Q1")
    problem = poisson(space, 1.0)
    with pytest.raises(DfemError, match="unknown option.*hierarchy"):
        problem.solve(method="petsc", hierarchy="sa")
    with pytest.raises(DfemError, match="cg.*symmetric"):
        sparse_solve(space.pattern, torch.ones(space.pattern.nnz, dtype=torch.float64),
                     torch.ones(space.n_dofs, dtype=torch.float64), method="petsc",
                     symmetric=False)
    with pytest.raises(ConvergenceError, match="stopped short.*DIVERGED_MAX_IT"):
        problem.solve(method="petsc", pc_type="none", maxiter=2, rtol=1e-12)
    with pytest.raises(DfemError, match="did not use the option.*pc_gamg_treshold"):
        problem.solve(method="petsc", options={"pc_gamg_treshold": 0.02})  # misspelt
    with pytest.raises(DfemError, match="could not set up cg \\+ no_such_pc"):
        problem.solve(method="petsc", pc_type="no_such_pc")
    # a known option is used and changes nothing but the preconditioner
    u = problem.solve(method="petsc", options={"pc_gamg_threshold": 0.02}, rtol=1e-12)
    assert float((u - problem.solve()).abs().max()) <= 1e-9


def test_case_file_options_of_petsc_need_the_petsc_method(tmp_path, capsys):
    from dfem.cli import main

    status = main(["solve", "poisson_sine", "--set", "solver.ksp_type=gmres"])
    assert status == 2
    assert 'solver.ksp_type applies to method = "petsc" only' in capsys.readouterr().err
    status = main(["solve", "poisson_sine", "--set", "solver.petsc_options={ a = 1 }"])
    assert status == 2
    assert 'solver.petsc_options applies to method = "petsc" only' in capsys.readouterr().err
    status = main(["solve", "poisson_sine", "--set", "solver.method=petsc", "--set",
                   "solver.petsc_options=[1, 2]"])
    assert status == 2
    assert "solver.petsc_options" in capsys.readouterr().err


@needs_petsc
def test_dfem_solve_with_petsc_equals_the_direct_solve(tmp_path):
    from dfem.problems.case import Case
    from dfem.shipped import cases_dir

    reports = {}
    for method, sets in (("direct", []), ("petsc", ["solver.ksp_type=cg", "solver.pc_type=gamg",
                                                    "solver.rtol=1e-12"])):
        case = Case.load(cases_dir() / "cantilever_3d.toml", overrides=sets)
        reports[method] = case.solve(method=method)
    assert reports["petsc"]["solver"] == "petsc"
    direct, petsc = reports["direct"], reports["petsc"]
    assert abs(petsc["max_displacement"] - direct["max_displacement"]) <= \
        1e-8 * direct["max_displacement"]
    assert abs(petsc["compliance"] - direct["compliance"]) <= 1e-8 * direct["compliance"]
