"""``dfem solve`` on transient cases: the time series, the progress report and bad input."""

import json
from pathlib import Path

import pytest

from dfem.cli import main

ROOT = Path(__file__).resolve().parents[1]
DECAY = ROOT / "cases" / "heat_decay.toml"
SMALL = ["--set", "mesh.n=4", "--set", "time.dt=0.001", "--set", "time.t_end=0.1",
         "--set", "time.save_every=25"]


def test_solve_writes_a_time_series_with_a_progress_report(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["solve", str(DECAY), *SMALL, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    for key in ("problem", "scheme", "steps", "factorizations", "l2_error",
                "energy_non_increasing", "energy (t = t_end)"):
        assert key in captured.out
    assert "solution.pvd (5 VTU files" in captured.out
    # 100 steps, reported off a terminal in at most about 20 lines
    lines = captured.err.splitlines()
    assert 15 <= len(lines) <= 21 and lines[-1].startswith("time steps: 100/100")
    report = json.loads((out / "report.json").read_text())
    assert report["problem"] == "heat" and report["steps"] == 100 and report["saved"] == 5
    assert len(list(out.glob("solution_*.vtu"))) == 5
    assert (out / "solution.pvd").read_text().count("<DataSet") == 5
    assert (out / "solution.png").stat().st_size > 0


@pytest.mark.parametrize("sets,fragment", [
    (["time.dt=0"], "time.dt must be a positive number"),
    (["time.dt=-1"], "time.dt must be a positive number"),
    (["time.t_end=0.0005"], "time.t_end = 0.0005 is less than one step time.dt = 0.001"),
    (["initial.u=[1, 2]"], "initial.u must be a number"),
    (['time.scheme="leapfrog"'], "time.scheme must be one of .*'leapfrog'"),
    (["time.bogus=1"], r"unknown key\(s\) bogus in \[time\]"),
    (["initial.bogus=1"], r"unknown key\(s\) bogus in \[initial\]"),
    (['problem.nu="1 + t"'], "problem.nu = '1 \\+ t' uses the time t"),
    (['problem.rho_c="x - 0.5"'], "rho_c must be positive"),  # found when the run starts
    (['solver.method="energy"'], 'a transient case steps with method = "direct"'),
])
def test_bad_transient_input_exits_2_with_one_line_and_no_output(tmp_path, capsys, sets,
                                                                 fragment):
    out = tmp_path / "out"
    args = ["solve", str(DECAY), "--set", "mesh.n=2"]
    for item in sets:
        args += ["--set", item]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("dfem: error:")
    assert __import__("re").search(fragment, err)
    assert "Traceback" not in err
    assert not out.exists()


def test_solver_failure_exits_1_without_output(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["solve", str(DECAY), *SMALL, "--set", 'solver.method="cg"', "--set",
            "solver.maxiter=1", "--out", str(out)]
    assert main(args) == 1
    assert "dfem: solver failed:" in capsys.readouterr().err
    assert not out.exists()


def test_cases_lists_the_transient_cases_and_convergence_declines(capsys):
    assert main(["cases"]) == 0
    listing = capsys.readouterr().out
    for name in ("heat_decay", "heat_manufactured"):
        line = next(row for row in listing.splitlines() if row.startswith(f"{name} "))
        assert "solve case (transient)" in line
    assert main(["convergence", str(DECAY)]) == 2
    assert "does not support transient cases" in capsys.readouterr().err


def test_shipped_manufactured_case_meets_its_error_bound(tmp_path, capsys):
    """Time-dependent source, Dirichlet, Neumann and Robin data, BDF2: as shipped."""
    out = tmp_path / "out"
    assert main(["solve", str(ROOT / "cases" / "heat_manufactured.toml"), "--out",
                 str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    # BDF2 starts with an implicit Euler step: two step matrices, each factorised once
    assert report["scheme"] == "bdf2" and report["factorizations"] == 2
    assert report["l2_error"] <= 4e-5
    assert report["saved"] == len(list(out.glob("solution_*.vtu"))) == 11
