"""``dfem optimize``: the shipped configs run end to end (made tiny with --set), a resumed
run ends with the history of an uninterrupted one, a non-finite compliance and Ctrl-C stop
cleanly, and bad input is one clear error line that writes nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from dfem.cli import main
from dfem.design.config import load_optimize_config
from dfem.problems.case import case_files

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "cases"
SHIPPED = ["optimize_mbb", "optimize_cantilever", "optimize_cantilever_3d",
           "optimize_heat_sink"]
#: --set overrides that make each shipped config tiny.
TINY = {
    "optimize_mbb": ["problem.nelx=12", "problem.nely=4"],
    "optimize_cantilever": ["problem.nelx=12", "problem.nely=6"],
    "optimize_cantilever_3d": ["problem.nx=6", "problem.ny=3", "problem.nz=3"],
    "optimize_heat_sink": ["problem.n=10"],
}
OUTPUTS = ("checkpoint.pt", "history.json", "report.json", "density.png", "convergence.png",
           "design.vtu")


def _sets(*items) -> list[str]:
    return [a for item in items for a in ("--set", item)]


def _optimize(name, out, *overrides, resume=False) -> int:
    argv = ["optimize", str(CASES / f"{name}.toml"), "--out", str(out), *_sets(*overrides)]
    return main(argv + (["--resume"] if resume else []))


def _without_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_shipped_configs_parse_and_are_not_cases(capsys):
    for name in SHIPPED:
        config = load_optimize_config(CASES / f"{name}.toml")
        assert config.name == name and config.description
        assert CASES / f"{name}.toml" not in case_files(CASES)
    mbb = load_optimize_config(CASES / "optimize_mbb.toml")  # the classic settings
    assert (mbb.problem["nelx"], mbb.problem["nely"], mbb.material["penal"]) == (60, 20, 3.0)
    assert (mbb.filter, mbb.optimizer["volume_fraction"]) == (
        {"type": "density", "r_min": 1.5}, 0.5)
    assert mbb.optimizer["type"] == "oc" and mbb.optimizer["iterations"] == 200
    assert main(["cases"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if "optimize_" in line]
    assert len(listed) == 4 and all("dfem optimize" in line for line in listed)


@pytest.mark.parametrize("command", ["solve", "convergence"])
def test_solve_on_an_optimisation_config_points_to_optimize(command, capsys):
    path = CASES / "optimize_mbb.toml"
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path} is an optimisation config: run dfem optimize {path} --out DIR" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_runs_end_to_end(name, tmp_path, capsys):
    out = tmp_path / "run"
    code = _optimize(name, out, *TINY[name], "optimizer.iterations=4",
                     "output.plot_every=2", "output.checkpoint_every=3")
    assert code == 0
    for file in (*OUTPUTS, "density_0002.png", "density_0004.png"):
        assert (out / file).stat().st_size > 0, file
    assert not (out / "density_0001.png").exists()
    history = json.loads((out / "history.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert [row["iteration"] for row in history] == [1, 2, 3, 4]
    assert history[-1]["compliance"] < history[0]["compliance"]
    assert report["name"] == name and report["iterations"] == 4
    assert report["problem"] == name.removeprefix("optimize_")
    assert report["compliance"] == history[-1]["compliance"]
    assert report["cells"] > 0 and report["dofs"] > 0
    assert math.isfinite(report["seconds_per_iteration"])  # reported, not a timing bound
    assert report["converged"] is False and report["stopped"] == "iterations"
    assert report["checkpoint_iteration"] == 4
    import meshio

    vtu = meshio.read(out / "design.vtu")
    density = vtu.cell_data["density"][0]
    assert len(density) == report["cells"] and 0 <= density.min() <= density.max() <= 1
    assert "x" in vtu.cell_data
    assert (out / "density.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "iteration 4/4: compliance" in captured.err
    assert len(captured.err.splitlines()) == 4  # one progress line per iteration
    assert "compliance" in captured.out and "wrote" in captured.out


def test_a_tolerance_met_stops_as_converged(tmp_path, capsys):
    out = tmp_path / "run"
    assert _optimize("optimize_mbb", out, *TINY["optimize_mbb"], "optimizer.tolerance=0.15",
                     "output.plot_every=0") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["converged"] is True and report["stopped"] == "converged"
    assert report["change"] < 0.15 and report["iterations"] < 200
    assert not list(out.glob("density_*.png"))
    # resuming a converged run changes nothing
    before = json.loads((out / "history.json").read_text())
    assert _optimize("optimize_mbb", out, *TINY["optimize_mbb"], "optimizer.tolerance=0.15",
                     "output.plot_every=0", resume=True) == 0
    assert json.loads((out / "history.json").read_text()) == before


@pytest.mark.parametrize("optimizer,projection", [("oc", False), ("mma", True)])
def test_resume_continues_exactly(tmp_path, capsys, monkeypatch, optimizer, projection):
    """A run interrupted by Ctrl-C after iteration 5 (checkpoint at 4) and resumed ends with
    the history and design of an uninterrupted run of 7 iterations."""
    from dfem.design.topology import TopologyOptimization

    settings = [*TINY["optimize_cantilever"], f"optimizer.type=\"{optimizer}\"",
                "optimizer.iterations=7", "output.checkpoint_every=2", "output.plot_every=0"]
    if projection:
        settings += ["projection.continuation_every=3", "projection.beta_max=4.0"]
    straight = tmp_path / "straight"
    assert _optimize("optimize_cantilever", straight, *settings) == 0

    step = TopologyOptimization.step

    def interrupted(self):
        if self.iteration == 5:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(TopologyOptimization, "step", interrupted)
    resumed = tmp_path / "resumed"
    capsys.readouterr()
    assert _optimize("optimize_cantilever", resumed, *settings) == 130
    err = capsys.readouterr().err
    assert "interrupted at iteration 5" in err and "holds iteration 4" in err
    assert "Traceback" not in err
    assert torch.load(resumed / "checkpoint.pt", weights_only=True)["design"]["iteration"] == 4
    assert not (resumed / "report.json").exists()
    monkeypatch.setattr(TopologyOptimization, "step", step)
    assert _optimize("optimize_cantilever", resumed, *settings, resume=True) == 0
    ours = json.loads((resumed / "history.json").read_text())
    theirs = json.loads((straight / "history.json").read_text())
    assert _without_seconds(ours) == _without_seconds(theirs)
    a = torch.load(resumed / "checkpoint.pt", weights_only=True)
    b = torch.load(straight / "checkpoint.pt", weights_only=True)
    assert torch.equal(a["design"]["x"], b["design"]["x"])
    assert a["config_hash"] == b["config_hash"]
    report = json.loads((resumed / "report.json").read_text())
    assert report["resumed_from"] == 4 and report["iterations"] == 7


def test_resume_may_extend_a_run_but_not_change_the_design(tmp_path, capsys):
    out = tmp_path / "run"
    settings = [*TINY["optimize_mbb"], "optimizer.iterations=3", "output.plot_every=0"]
    assert _optimize("optimize_mbb", out, *settings) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    # a different design setting: named, status 2, nothing overwritten
    code = _optimize("optimize_mbb", out, *settings, "material.penal=2.0",
                     "filter.r_min=2.0", resume=True)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("dfem: error: --resume with a different config")
    assert "material.penal = 3.0 in the checkpoint, 2.0 now" in err
    assert "filter.r_min" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    # a projection added on resume is a difference too
    assert _optimize("optimize_mbb", out, *settings, "projection.beta=2.0", resume=True) == 2
    assert "projection.beta = (absent) in the checkpoint, 2.0 now" in capsys.readouterr().err
    # more iterations: the run continues
    assert _optimize("optimize_mbb", out, *TINY["optimize_mbb"], "optimizer.iterations=5",
                     "output.plot_every=0", resume=True) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["iterations"] == 5 and report["resumed_from"] == 3


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_a_non_finite_compliance_stops_cleanly(tmp_path, capsys, monkeypatch, bad):
    from dfem.design.compliance import StructuralCompliance

    calls = {"n": 0}
    call = StructuralCompliance.__call__

    def failing(self, rho):  # the 4th compliance is NaN (or inf), its gradient finite
        calls["n"] += 1
        c = call(self, rho)
        return c + float(bad) if calls["n"] == 4 else c

    monkeypatch.setattr(StructuralCompliance, "__call__", failing)
    out = tmp_path / "run"
    code = _optimize("optimize_mbb", out, *TINY["optimize_mbb"], "optimizer.iterations=10",
                     "output.checkpoint_every=2", "output.plot_every=0")
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("iteration 1/10") and "dfem: optimisation stopped: iteration 4" in err
    assert "not finite" in err and "Traceback" not in err
    report = json.loads((out / "report.json").read_text())
    assert report["stopped"] == "failed" and "not finite" in report["message"]
    assert report["converged"] is False and report["iterations"] == 3
    assert report["checkpoint_iteration"] == 2
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["design"]["iteration"] == 2  # the last good checkpoint stays
    assert len(json.loads((out / "history.json").read_text())) == 3
    assert not (out / "design.vtu").exists()


@pytest.mark.parametrize("setting,message", [
    ("optimizer.volume_fraction=0.0", "optimizer.volume_fraction must be a number in (0, 1]"),
    ("optimizer.volume_fraction=1.5", "optimizer.volume_fraction must be a number in (0, 1]"),
    ("material.penal=0.5", "material.penal must be a number >= 1"),
    ("filter.r_min=0.0", "filter.r_min must be a positive number"),
    ("filter.r_min=-1.5", "filter.r_min must be a positive number"),
    ("filter.type=\"gauss\"", "filter.type must be one of 'density', 'helmholtz', 'none'"),
    ("problem.type=\"bridge\"", "problem.type must be one of 'mbb', 'cantilever'"),
    ("problem.nz=4", "unknown key(s) nz in [problem] of the config file; known keys for "
                     "problem.type = \"mbb\": nelx, nely, type"),
    ("material.k0=2.0", "unknown key(s) k0 in [material]"),
    ("optimizer.lr=0.1", "unknown key(s) lr in [optimizer] of the config file; known keys: "
                         "iterations, move, tolerance, type, volume_fraction"),
    ("solver.method=\"cg\"", "unknown key(s) solver in the top level"),
    ("optimizer.type=\"sgd\"", "optimizer.type must be \"oc\" or \"mma\""),
    ("optimizer.iterations=0", "optimizer.iterations must be a positive integer"),
    ("material.E_min=2.0", "SIMP needs 0 < material.E_min < material.E0"),
    ("projection.eta=1.5", "projection.eta must be a number in (0, 1)"),
    ("output.checkpoint_every=0", "output.checkpoint_every must be a positive integer"),
    ("problem.nelx=2.5", "problem.nelx must be a positive integer"),
])
def test_bad_input_is_one_line_status_2_and_writes_nothing(tmp_path, capsys, setting,
                                                           message):
    out = tmp_path / "run"
    assert _optimize("optimize_mbb", out, *TINY["optimize_mbb"], setting) == 2
    err = capsys.readouterr().err
    assert err.startswith("dfem: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_bad_problem_settings_of_other_types(tmp_path, capsys):
    out = tmp_path / "run"
    for name, setting, message in [
        ("optimize_cantilever", "problem.nely=5", "needs an even problem.nely"),
        ("optimize_cantilever", "problem.load=\"top\"", "problem.load must be"),
        ("optimize_heat_sink", "material.E0=1.0", "unknown key(s) E0 in [material]"),
        ("optimize_heat_sink", "problem.sink=1.5", "problem.sink must be a number in (0, 1]"),
        ("optimize_heat_sink", "material.penal=0.9", "material.penal must be a number >= 1"),
    ]:
        assert _optimize(name, out, setting) == 2
        err = capsys.readouterr().err
        assert err.startswith("dfem: error: ") and message in err, err
        assert not out.exists()


def test_out_and_resume_errors_before_any_work(tmp_path, capsys):
    file = tmp_path / "a_file"
    file.write_text("keep me")
    assert _optimize("optimize_mbb", file, *TINY["optimize_mbb"]) == 2
    assert "is a file" in capsys.readouterr().err and file.read_text() == "keep me"
    missing = tmp_path / "nothing_here"
    assert _optimize("optimize_mbb", missing, *TINY["optimize_mbb"], resume=True) == 2
    assert "does not exist; start the run without --resume" in capsys.readouterr().err
    assert not missing.exists()
    out = tmp_path / "run"
    assert _optimize("optimize_mbb", out, *TINY["optimize_mbb"], "optimizer.iterations=2",
                     "output.plot_every=0") == 0
    capsys.readouterr()
    before = (out / "checkpoint.pt").read_bytes()
    assert _optimize("optimize_mbb", out, *TINY["optimize_mbb"], "optimizer.iterations=2",
                     "output.plot_every=0") == 2
    assert "already holds an optimisation run" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == before
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert _optimize("optimize_mbb", out, *TINY["optimize_mbb"], "optimizer.iterations=2",
                     resume=True) == 2
    assert "cannot read the checkpoint" in capsys.readouterr().err
    assert main(["optimize", str(tmp_path / "nope.toml"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_config_without_name_or_tables_runs_and_resumes(tmp_path, capsys):
    """Every key has a default; the name is the file's (also when resumed)."""
    config = tmp_path / "my_beam.toml"
    config.write_text("[optimizer]\niterations = 2\n[problem]\nnelx = 8\nnely = 4\n")
    out = tmp_path / "run"
    assert main(["optimize", str(config), "--out", str(out)]) == 0
    assert main(["optimize", str(config), "--out", str(out), "--resume",
                 "--set", "optimizer.iterations=3"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["name"] == "my_beam" and report["problem"] == "mbb"
    assert report["iterations"] == 3 and report["cells"] == 32
