"""A coefficient that is NaN or inf anywhere it is evaluated is an error naming it."""

import pytest

from dfem.cli import main
from dfem.exceptions import DfemError
from dfem.problems.case import Case

CASE = """
element = "Q1"
[mesh]
n = 8
[problem]
{problem}
[boundary.boundary]
dirichlet = {dirichlet}
{extra}
"""


def _case(tmp_path, problem="f = 1.0", dirichlet="0.0", extra=""):
    path = tmp_path / "case.toml"
    path.write_text(CASE.format(problem=problem, dirichlet=dirichlet, extra=extra))
    return path


@pytest.mark.parametrize("key", ["f", "nu", "c"])
def test_nan_at_the_output_vertices_fails_and_writes_nothing(tmp_path, capsys, key):
    # x = 0.5 is a mesh line: (x-0.5)/abs(x-0.5) is 0/0 at 9 vertices, never at a
    # quadrature point; today's solve would have written NaNs into solution.vtu
    problem = f'{key} = "(x-0.5)/abs(x-0.5) + 2"'
    out = tmp_path / "out"
    assert main(["solve", str(_case(tmp_path, problem)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dfem: error: ") and "Traceback" not in err
    assert f"problem.{key} = '(x-0.5)/abs(x-0.5) + 2' is not finite: NaN at 9 of 81" in err
    assert "x = 0.5" in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("problem,dirichlet,extra,fragment", [
    ('f = "log(x - 0.5)"', "0.0", "", r"problem.f = 'log\(x - 0.5\)' is not finite: NaN"),
    ('nu = "1/(x - x)"', "0.0", "", r"problem.nu = '1/\(x - x\)' is not finite: inf"),
    ("f = 1.0", '"1/x"', "", r"boundary.boundary.dirichlet = '1/x' is not finite: inf"),
    ("f = 1.0", "0.0", '[exact]\nu = "sqrt(x - 0.5)"', r"exact.u = 'sqrt\(x - 0.5\)' is not "),
    ('f = "exp(1000*x)"', "0.0", "", r"problem.f = 'exp\(1000\*x\)' is not finite: inf"),
])
def test_nan_or_inf_at_quadrature_or_boundary_points(tmp_path, problem, dirichlet, extra,
                                                      fragment):
    case = Case.load(_case(tmp_path, problem, dirichlet, extra))
    with pytest.raises(DfemError, match=fragment):
        case.solve()


def test_where_may_guard_a_singular_branch(tmp_path):
    # both branches are evaluated, but only the value taken must be finite
    path = _case(tmp_path, 'f = "where(x > 0.5, 1/(x - 0.5), 0)"')
    report = Case.load(path).solve(out=tmp_path / "out")
    assert report["dofs"] == 81
    assert (tmp_path / "out" / "solution.vtu").exists()
