"""The dfem command line and case files."""

import json
from pathlib import Path

import pytest

from dfem.cli import main
from dfem.problems.case import Case

ROOT = Path(__file__).resolve().parents[1]


def write_case(tmp_path, text):
    path = tmp_path / "case.toml"
    path.write_text(text)
    return path


SMALL = """
name = "small"
[mesh]
nx = 8
cell = "tri"
[element]
name = "P2"
[problem]
nu = "1 + x**2*y"
f = '''-(2*x*y*pi*cos(pi*x)*exp(y) - (1 + x**2*y)*pi**2*sin(pi*x)*exp(y)
       + x**2*sin(pi*x)*exp(y) + (1 + x**2*y)*sin(pi*x)*exp(y))'''
[boundary.left]
dirichlet = "sin(pi*x)*exp(y)"
[boundary.bottom]
dirichlet = "sin(pi*x)*exp(y)"
[boundary.top]
dirichlet = "sin(pi*x)*exp(y)"
[boundary.right]
neumann = "(1 + x**2*y)*pi*cos(pi*x)*exp(y)"
[exact]
u = "sin(pi*x)*exp(y)"
"""


def test_solve_writes_report_and_vtu(tmp_path, capsys):
    case = write_case(tmp_path, SMALL)
    assert main(["solve", str(case), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    for key in (
        "case",
        "element",
        "degree",
        "cells",
        "dofs",
        "solver",
        "assemble_s",
        "solve_s",
        "l2_error",
        "h1_error",
    ):
        assert key in report
    assert report["element"] == "P2" and report["cells"] == 128
    # P2 on 8x8: the error of this smooth solution is small but not round-off
    assert 1e-6 < report["l2_error"] < 1e-3
    assert (tmp_path / "out" / "solution.vtu").stat().st_size > 0
    assert "l2_error" in capsys.readouterr().out


def test_refined_case_error_drops_at_p_plus_one(tmp_path):
    coarse = Case.from_dict(__import__("tomllib").loads(SMALL)).solve()
    finer = __import__("tomllib").loads(SMALL)
    finer["mesh"]["nx"] = 16
    fine = Case.from_dict(finer).solve()
    rate = __import__("math").log2(coarse["l2_error"] / fine["l2_error"])
    assert rate == pytest.approx(3.0, abs=0.2)


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("[mesh]\nnx = 4\nbogus = 1\n", "unknown key\\(s\\) bogus in \\[mesh\\]"),
        ("[problem]\nf = 'import os'\n", "cannot parse"),
        ("[boundary.nowhere]\ndirichlet = 0\n", "boundary tag 'nowhere' does not exist"),
        ("[boundary.left]\ndirichlet = 0\nneumann = 1\n", "exactly one of"),
        ("[boundary.left]\nrobin = 1\n", "must be \\[alpha, g\\]"),
        ("[element]\nname = 'Q7'\n", "unknown element"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_case_files_exit_2_with_message(tmp_path, capsys, text, fragment):
    case = write_case(tmp_path, text)
    assert main(["solve", str(case)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dfem: error:")
    assert __import__("re").search(fragment, err)
    assert "Traceback" not in err


def test_missing_case_file(tmp_path, capsys):
    assert main(["solve", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("case", sorted((ROOT / "cases").glob("*.toml")))
def test_shipped_cases_load(case):
    problem = Case.load(case).problem()
    assert problem.space.n_dofs > 0
