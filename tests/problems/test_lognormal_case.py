"""The shipped log-normal diffusivity case, field tables in case files, and the energy solver."""

from pathlib import Path

import pytest
import torch

from dfem.cli import main
from dfem.exceptions import DfemError
from dfem.problems.case import Case
from dfem.surrogates import LogNormalDiffusivity

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "cases" / "lognormal.toml"


def test_field_table_is_the_paper_family():
    problem = Case.load(CASE).problem()
    x = problem.space.mesh.nodes
    w = torch.tensor([-0.26, -0.77, -0.37, -0.92], dtype=torch.float64)
    expected = LogNormalDiffusivity()(x, w)
    torch.testing.assert_close(problem.nu(x), expected, rtol=1e-14, atol=0)


def test_maximum_principle_and_convergence_to_a_fine_reference():
    """0 <= u <= 1, and Q1 approaches a Q2 solve on a twice finer mesh at rate ~2."""
    reference_case = Case.load(CASE, ["mesh.n=64", "element='Q2'"])
    ref_problem = reference_case.problem()
    ref = ref_problem.solve()
    ref_space = ref_problem.space
    diffs = []
    for n in (16, 32):
        problem = Case.load(CASE, [f"mesh.n={n}"]).problem()
        u = problem.solve()
        assert float(u.min()) >= -1e-12 and float(u.max()) <= 1 + 1e-12
        # Q1 nodes of the n-mesh are vertices of the reference mesh (n divides 64)
        nodes = problem.space.mesh.nodes
        ids = torch.round(nodes[:, 0] * 64) * 65 + torch.round(nodes[:, 1] * 64)
        ref_nodes = ref_space.mesh.nodes
        ref_ids = torch.round(ref_nodes[:, 0] * 64) * 65 + torch.round(ref_nodes[:, 1] * 64)
        order = torch.argsort(ref_ids)
        at = order[torch.searchsorted(ref_ids[order], ids)]
        torch.testing.assert_close(ref_nodes[at], nodes)
        diffs.append(float((u - ref[at]).abs().max()))
    assert diffs[1] < 1e-2
    assert 3.0 < diffs[0] / diffs[1] < 5.0


def test_energy_minimisation_from_the_case_file_matches_the_direct_solve(tmp_path):
    direct = Case.load(CASE, ["mesh.n=16"])
    energy = Case.load(CASE, ["mesh.n=16", 'solver.method="energy"', 'solver.optimizer="lbfgs"'])
    u_direct = direct.problem().solve(**direct.solver_options())
    problem = energy.problem()
    u_energy = problem.solve(**energy.solver_options())
    assert float((u_energy - u_direct).abs().max()) < 1e-8
    report = energy.solve(out=tmp_path)
    assert report["solver"] == "energy" and report["optimizer"] == "lbfgs"
    assert report["energy_iterations"] > 0 and report["relative_residual"] <= 1e-10


def test_solver_that_stops_short_exits_1_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["solve", str(CASE), "--out", str(out), "--set", "mesh.n=16",
                 "--method", "energy", "--set", 'solver.optimizer="adam"',
                 "--set", "solver.maxiter=20"])
    err = capsys.readouterr().err
    assert code == 1
    assert "adam did not reach rtol" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    "table,fragment",
    [
        ('{field = "gaussian", w = [1]}', "must be one of 'lognormal', 'karhunen-loeve'"),
        ('{field = "lognormal", w = [1, 2]}', "4 parameters"),
        ('{field = "lognormal", w = [1, 2, 3, 4], seed = 1}', "exactly one of w"),
        ('{field = "lognormal"}', "exactly one of w"),
        ('{field = "lognormal", w = [0, 0, 0, 0], scale = 2}', "unknown key\\(s\\) scale"),
        ('{field = "lognormal", w = ["a", 0, 0, 0]}', "list of 4 numbers"),
        ('{field = "karhunen-loeve", modes = -2, seed = 0}', "modes must be a positive"),
        ('{field = "karhunen-loeve", length = "long", seed = 0}', "length must be a number"),
        ('{field = "lognormal", w = [300, 300, 300, 300]}', "finite"),
    ],
)
def test_bad_field_tables(table, fragment):
    with pytest.raises(DfemError, match=fragment):
        Case.from_dict(_case_with_nu(table)).problem().solve()


def test_field_table_draws_from_a_seed_and_rejects_nu_of_u():
    problem = Case.from_dict(_case_with_nu('{field = "karhunen-loeve", seed = 3, modes = 8}'))
    u = problem.problem().solve()
    assert torch.isfinite(u).all()
    nonlinear = _case_with_nu('{field = "lognormal", seed = 1}')
    nonlinear["problem"]["nonlinear"] = True
    with pytest.raises(DfemError, match="must be an expression"):
        Case.from_dict(nonlinear).problem()


@pytest.mark.parametrize(
    "solver,fragment",
    [
        ({"method": "direct", "optimizer": "adam"}, "applies to energy minimisation only"),
        ({"method": "energy", "optimizer": "sgd"}, "solver.optimizer must be"),
        ({"method": "energy", "lr": -1.0}, "solver.lr must be a positive number"),
    ],
)
def test_bad_solver_tables(solver, fragment):
    data = _case_with_nu("1.0")
    data["solver"] = solver
    with pytest.raises(DfemError, match=fragment):
        case = Case.from_dict(data)
        case.problem().solve(**case.solver_options())


def test_energy_method_refused_for_nonlinear_cases():
    case = Case.load(ROOT / "cases" / "nonlinear.toml", ['solver.method="energy"'])
    with pytest.raises(DfemError, match="Newton"):
        case.solver_options()


def _case_with_nu(table: str) -> dict:
    import tomllib

    text = f"[mesh]\nn = 4\n[problem]\nnu = {table}\n[boundary.left]\ndirichlet = 0.0\n"
    return tomllib.loads(text)
