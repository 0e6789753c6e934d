"""Transient case files: the [time] and [initial] schema, expressions in t, the time
series written by Case.solve, and agreement with dfem.Heat posed directly."""

from __future__ import annotations

import json
import math
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import meshio
import numpy as np
import pytest
import torch

import dfem
from dfem.exceptions import DfemError
from dfem.problems.case import Case
from dfem.problems.expressions import Expression, coefficient
from dfem.problems.heat import depends_on_time
from dfem.problems.time_data import SpaceExpression, TimeExpression, time_coefficient
from dfem.problems.transient_case import run, strip_steps

ROOT = Path(__file__).resolve().parents[2]
DECAY = ROOT / "cases" / "heat_decay.toml"
MANUFACTURED = ROOT / "cases" / "heat_manufactured.toml"
# the decay case on a coarse mesh and few steps: a run takes milliseconds
SMALL = ["mesh.n=4", "time.dt=0.01", "time.t_end=0.05", "time.save_every=2"]


def small_decay(*extra):
    return Case.load(DECAY, overrides=[*SMALL, *extra])


# ----------------------------------------------------------------------------- expressions
def test_time_coefficient_gives_fn_of_x_and_t_only_when_t_is_used():
    x = torch.rand(5, 2, dtype=torch.float64)
    in_time = time_coefficient("x*exp(-t)", "problem.f")
    in_space = time_coefficient("x + y", "problem.f")
    assert isinstance(in_time, TimeExpression) and depends_on_time(in_time)
    assert isinstance(in_space, SpaceExpression) and not depends_on_time(in_space)
    torch.testing.assert_close(in_time(x, torch.tensor(2.0, dtype=torch.float64)),
                               x[:, 0] * math.exp(-2.0))
    torch.testing.assert_close(in_space(x), x[:, 0] + x[:, 1])
    assert time_coefficient(2, "problem.f") == 2.0
    with pytest.raises(DfemError, match="depends on t"):
        in_time(x)


def test_t_is_an_error_where_time_is_not_allowed():
    assert Expression("t*x", ("x", "y", "z", "t")).uses_t
    with pytest.raises(DfemError, match=r"problem.nu = 'sin\(t\)' uses the time t"):
        coefficient("sin(t)", "problem.nu")
    with pytest.raises(DfemError, match="initial.u = 't' uses the time t"):
        time_coefficient("t", "initial.u", time=False)
    with pytest.raises(DfemError, match=r"\[time\] table"):
        Expression("x + t")


# ----------------------------------------------------------------------------- schema
@pytest.mark.parametrize("sets,fragment", [
    (["time.dt=0"], "time.dt must be a positive number"),
    (["time.dt=-0.01"], "time.dt must be a positive number"),
    (["time.t_end=0.0001"], "time.t_end = 0.0001 is less than one step time.dt = 0.001"),
    (['time.scheme="rk4"'], "time.scheme must be one of .*got 'rk4'"),
    (["time.theta=0.7"], "gives scheme = 'crank-nicolson' and theta = 0.7"),
    (["time.theta=2"], r"time.theta must be a number in \[0, 1\]"),
    (["time.save_every=0"], "time.save_every must be a positive integer"),
    (["time.steps=10"], r"unknown key\(s\) steps in \[time\].*known keys: dt, save_every, "
                        "scheme, t_end, theta"),
    (["initial.v=1"], r"unknown key\(s\) v in \[initial\]"),
    (["initial.u=[1, 2]"], "initial.u must be a number, an expression"),
    (["time.dt=1e-9"], "at most 1000000"),
    (['problem.type="linear-elasticity"'], "unknown key"),
    (["problem.nonlinear=true"], "problem.nonlinear is not supported in transient cases"),
    (['exact.u=["x", "y"]'], "not a list"),
])
def test_schema_errors_name_the_key(sets, fragment):
    with pytest.raises(DfemError, match=fragment):
        Case.load(DECAY, overrides=sets)


def test_time_table_needs_t_end_and_dt_and_a_heat_problem():
    data = tomllib.loads(DECAY.read_text())
    del data["time"]["dt"]
    with pytest.raises(DfemError, match=r"\[time\] needs time.dt"):
        Case.from_dict(data)
    data = tomllib.loads((ROOT / "cases" / "cantilever.toml").read_text())
    data["time"] = {"t_end": 1.0, "dt": 0.1}
    with pytest.raises(DfemError, match='makes a case a transient heat problem, but '
                                        'problem.type = "linear-elasticity"'):
        Case.from_dict(data)


@pytest.mark.parametrize("sets,fragment", [
    (["initial.u=1"], r"an \[initial\] table belongs to a transient case"),
    (["problem.rho_c=2"], "problem.rho_c belongs to a transient case"),
])
def test_transient_keys_in_a_steady_case_are_errors(sets, fragment):
    with pytest.raises(DfemError, match=fragment):
        Case.load(ROOT / "cases" / "poisson_sine.toml", overrides=sets)


def test_t_in_a_steady_case_is_an_error():
    case = Case.load(ROOT / "cases" / "poisson_sine.toml",
                     overrides=["mesh.n=2", 'problem.f="t*x"'])
    with pytest.raises(DfemError, match=r"problem.f = 't\*x' uses the time t.*\[time\] table"):
        case.problem()


@pytest.mark.parametrize("sets,fragment", [
    (['problem.nu="1 + t"'], "problem.nu = '1 \\+ t' uses the time t"),
    (['problem.rho_c="t"'], "problem.rho_c = 't' uses the time t"),
    (['initial.u="t*x"'], "initial.u = 't\\*x' uses the time t"),
])
def test_t_in_coefficients_constant_in_time_is_an_error(sets, fragment):
    case = small_decay(*sets)
    with pytest.raises(DfemError, match=fragment):
        case.solve()


def test_t_in_a_robin_alpha_is_an_error():
    data = tomllib.loads(DECAY.read_text())
    data["boundary"] = {"boundary": {"robin": ["1 + t", 0.0]}}
    with pytest.raises(DfemError, match="robin alpha = '1 \\+ t' uses the time t"):
        Case.from_dict(data).problem()


# ----------------------------------------------------------------------------- the case
def test_kind_problem_and_exact_of_a_transient_case():
    case = small_decay()
    assert case.transient and case.kind == "heat" and not case.elastic
    heat = case.problem()
    assert isinstance(heat, dfem.Heat) and heat.k == 1.0
    # the exact solution of Case.exact() is the one at t_end
    x = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    assert float(case.exact()(x)[0]) == pytest.approx(math.exp(-2 * math.pi**2 * 0.05))
    assert not Case.load(ROOT / "cases" / "poisson_sine.toml").transient
    with pytest.raises(DfemError, match="does not support transient cases"):
        case.convergence(2)


def test_solve_writes_the_time_series(tmp_path):
    out = tmp_path / "out"
    report = small_decay().solve(out=out)
    for key in ("case", "problem", "element", "dofs", "scheme", "dt", "steps", "t_end",
                "factorizations", "solve_s", "l2_error", "h1_error", "energy",
                "energy_non_increasing", "saved_times"):
        assert key in report
    # every phase is timed, in order, and together they are the run
    timing = [k for k in report if k.endswith("_s")]
    assert timing == ["setup_s", "solve_s", "error_s", "energy_s", "output_s", "total_s"]
    assert sum(report[k] for k in timing[:-1]) <= report["total_s"]
    assert json.loads((out / "report.json").read_text())["output_s"] == report["output_s"]
    assert report["problem"] == "heat" and report["scheme"] == "crank-nicolson"
    assert report["steps"] == 5 and report["factorizations"] == 1 and report["theta"] == 0.5
    assert report["saved_times"] == pytest.approx([0.0, 0.02, 0.04, 0.05])
    assert len(report["energy"]) == 4 and report["energy_non_increasing"]
    vtus = sorted(p.name for p in out.glob("solution_*.vtu"))
    assert vtus == [f"solution_{i:04d}.vtu" for i in range(4)]
    root = ET.parse(out / "solution.pvd").getroot()
    assert root.tag == "VTKFile" and root.get("type") == "Collection"
    rows = [(float(d.get("timestep")), d.get("file")) for d in root.iter("DataSet")]
    assert rows == list(zip(report["saved_times"], vtus, strict=True))
    assert (out / "solution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in out.iterdir()} == {*vtus, "solution.pvd", "solution.png",
                                               "report.json"}  # no staging folder left
    # the last VTU holds the final state
    done = run(small_decay())
    last = meshio.read(out / vtus[-1]).point_data["u"]
    np.testing.assert_allclose(last, done.heat.space.vertex_values(done.result.u).numpy(),
                               atol=1e-14)


def test_a_shorter_series_replaces_a_longer_one(tmp_path):
    small_decay().solve(out=tmp_path)
    small_decay("time.save_every=5").solve(out=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("solution_*.vtu")) == [
        "solution_0000.vtu", "solution_0001.vtu"]
    assert len(re.findall("<DataSet", (tmp_path / "solution.pvd").read_text())) == 2


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_write_leaves_no_partial_series(tmp_path, monkeypatch, error):
    out = tmp_path / "new"

    def boom(*args, **kwargs):
        raise error("stop")

    monkeypatch.setattr("dfem.plots.plot_snapshots", boom)
    with pytest.raises(error):
        small_decay().solve(out=out)
    assert not out.exists()  # created by the run, removed again with the staged files
    # a folder holding an earlier series keeps it, whole
    monkeypatch.undo()
    small_decay().solve(out=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    monkeypatch.setattr("dfem.plots.plot_snapshots", boom)
    with pytest.raises(error):
        small_decay("time.save_every=1").solve(out=tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_case_file_equals_heat_posed_in_python():
    """The manufactured case through its case file and the same problem written with
    dfem.Heat and torch lambdas give the same trajectory to round-off."""
    sets = ["mesh.n=4", "time.dt=0.05", "time.t_end=0.2", "time.save_every=2"]
    done = run(Case.load(MANUFACTURED, overrides=sets))
    pi = math.pi

    def exact(x, t):
        X, Y = x[..., 0], x[..., 1]
        return torch.exp(-t) * torch.sin(pi * X) * torch.exp(Y) + t * X * Y

    def f(x, t):
        X, Y = x[..., 0], x[..., 1]
        return ((0.5 * pi**2 - 1.5) * torch.exp(-t) * torch.sin(pi * X) * torch.exp(Y)
                + (2 + t) * X * Y)

    def g(x, t):
        X, Y = x[..., 0], x[..., 1]
        return 0.5 * (pi * torch.cos(pi * X) * torch.exp(-t) * torch.exp(Y) + t * Y)

    def g_robin(x, t):
        X, Y = x[..., 0], x[..., 1]
        return (0.5 * (torch.exp(-t) * torch.sin(pi * X) * torch.exp(Y) + t * X)
                + 2 * exact(x, t))

    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 4, "quad"), "Q2")
    heat = dfem.Heat(space, rho_c=2.0, k=0.5, c=1.0, f=f,
                     dirichlet={"left": exact, "bottom": exact}, neumann={"right": g},
                     robin={"top": (2.0, g_robin)})
    result = heat.run(lambda x: exact(x, torch.tensor(0.0, dtype=x.dtype)), t_end=0.2,
                      dt=0.05, scheme="bdf2", save_every=2)
    assert done.result.saved_times == result.saved_times
    torch.testing.assert_close(done.result.snapshots, result.snapshots, atol=1e-12, rtol=0)
    # the strip of the plot: the first and the last state and evenly spread ones
    assert [t for t, _ in done.strip] == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    torch.testing.assert_close(done.strip[-1][1], result.u, atol=1e-12, rtol=0)


def test_strip_steps():
    assert strip_steps(100) == [0, 20, 40, 60, 80, 100]
    assert strip_steps(3) == [0, 1, 2, 3]
    assert strip_steps(1) == [0, 1]


def test_shipped_decay_case_meets_its_error_bound():
    """The issue's check: Q2 and Crank-Nicolson, L2 error at t = 0.1 below 1e-5, and the
    discrete energy decreasing at every saved step."""
    case = Case.load(DECAY)
    report = case.solve()
    assert report["t_end"] == pytest.approx(0.1) and report["steps"] == 100
    assert report["l2_error"] < 1e-5 <= case.data["exact"]["l2_error_max"]
    assert report["energy_non_increasing"]
    energy = np.array(report["energy"])
    assert (np.diff(energy) < 0).all()
    # the continuous energy of the decay: pi^2/4 exp(-4 pi^2 t)
    assert energy[-1] == pytest.approx(math.pi**2 / 4 * math.exp(-0.4 * math.pi**2), rel=1e-3)


def test_transient_cases_are_validated_against_their_error_bound(tmp_path):
    from dfem.validation.shipped import format_table, validate, validate_case

    row = validate_case(DECAY, quick=True)
    assert row["ok"] and row["l2_rate"] is None and row["l2_error"] < 1e-5
    assert re.search(r"heat_decay\.toml .* ok$", format_table([row]))
    # a transient case whose error exceeds its bound fails; one without a bound is skipped
    text = re.sub(r"(?m)^n = 16", "n = 4", DECAY.read_text())
    (tmp_path / "tight.toml").write_text(text.replace("l2_error_max = 1e-5",
                                                      "l2_error_max = 1e-9"))
    (tmp_path / "unbounded.toml").write_text(text.replace("l2_error_max = 1e-5", ""))
    rows = validate(tmp_path, quick=True)
    assert [r["case"] for r in rows] == ["tight.toml"] and not rows[0]["ok"]
    assert "FAIL" in format_table(rows)


# ----------------------------------------------------------------------------- progress
def test_progress_line_limit(capsys):
    """Off a terminal (pytest's captured stderr) plain lines: one per item by default, at
    most about max_lines of them with max_lines."""
    from dfem.progress import progress

    assert list(progress(range(7), "steps")) == list(range(7))
    assert len(capsys.readouterr().err.splitlines()) == 7  # the default: a line per item
    assert list(progress(range(1000), "steps", max_lines=20)) == list(range(1000))
    lines = capsys.readouterr().err.splitlines()
    assert 18 <= len(lines) <= 21 and lines[-1] == "steps: 1000/1000 999"
    assert len(list(progress(range(50), "steps", max_lines=5))) == 50
    assert len(capsys.readouterr().err.splitlines()) == 5
