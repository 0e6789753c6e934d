"""``dfem inverse`` on transient configs: the shipped ones recover the conductivity and the
initial condition from sensor histories through the CLI, measured data are read, and bad
input is one clear error with nothing written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dfem.cli import main
from dfem.inverse.config import load_inverse_config
from dfem.problems.case import case_files

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "cases"
OUTPUTS = ("report.json", "history.json", "history.png", "recovered.vtu", "recovered.png",
           "sensors.png")

# (config, report key of the error, bound): measured 0.312 and 0.0132 (docs/inverse.md)
SHIPPED = [("inverse_heat_k", "log_nu_rel_l2_error", 0.36),
           ("inverse_heat_initial", "u0_rel_l2_error", 0.02)]


@pytest.mark.parametrize("name,key,bound", SHIPPED)
def test_shipped_config_recovers_through_the_cli(tmp_path, capsys, name, key, bound):
    out = tmp_path / "run"
    assert main(["inverse", str(CASES / f"{name}.toml"), "--out", str(out)]) == 0
    for file in OUTPUTS:
        assert (out / file).stat().st_size > 0, file
    report = json.loads((out / "report.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert report[key] < bound
    assert report["problem"] == "heat" and report["scheme"] == "crank-nicolson"
    assert (report["time_levels"], report["steps"], report["sensors_per_level"]) == (11, 10, 40)
    assert report["observations"] == 11 * 40
    assert report["misfit"] < 0.6  # about the noise level, 1/2
    assert report["iterations"] == len(history) - 1
    assert history[0]["error"] == pytest.approx(1.0)  # the start: log k = 0, or u0 = 0
    assert history[-1]["error"] == pytest.approx(report[key])

    import meshio

    mesh = meshio.read(out / "recovered.vtu")
    field = "log_nu" if name == "inverse_heat_k" else "u0"
    assert {field, f"{field}_true", "u_end_recovered", "u_end_true"} <= set(mesh.point_data)
    assert {field, f"{field}_true"} <= set(mesh.cell_data)
    assert "wrote" in capsys.readouterr().out


def test_shipped_configs_are_listed_as_inverse_configs(capsys):
    assert main(["cases"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for name, _, _ in SHIPPED:
        assert "inverse config" in listed[name] and "dfem inverse" in listed[name]
        assert CASES / f"{name}.toml" not in case_files(CASES)
        assert load_inverse_config(CASES / f"{name}.toml").case.transient


def test_cell_conductivity_on_a_small_run(tmp_path):
    out = tmp_path / "cell"
    code = main(["inverse", str(CASES / "inverse_heat_k.toml"), "--out", str(out),
                 "--set", "mesh.n=4", "--set", "inverse.unknown=\"log_nu_cell\"",
                 "--set", "inverse.max_iter=15"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["unknowns"] == 16 and report["log_nu_rel_l2_error"] < 1.0
    assert (out / "recovered.png").stat().st_size > 0


def _measured_histories(path, levels: int, with_points: bool = True):
    """Noise-free histories of the initial-condition config on a 4 x 4 mesh, from
    u0 = sin(pi x) sin(pi y), at 10 sensors, saved as an observation file."""
    from dfem.inverse.run import _histories, _Time, random_points_in_cells

    config = load_inverse_config(CASES / "inverse_heat_initial.toml", ["mesh.n=4"])
    space = config.case.space()
    points = random_points_in_cells(space.mesh, 10, seed=3)
    u0 = space.interpolate(lambda x: torch.sin(math.pi * x[..., 0])
                           * torch.sin(math.pi * x[..., 1]))
    history, _ = _histories(config.case.problem(space), u0, space, points,
                            _Time.of(config.case))
    values = history.numpy()[:levels]
    arrays = dict(values=values, points=points.numpy()) if with_points else dict(values=values)
    np.savez(path, **arrays)
    return u0, space


def test_measured_histories_from_a_file(tmp_path):
    u0, space = _measured_histories(tmp_path / "data.npz", levels=11)
    out = tmp_path / "measured"
    code = main(["inverse", str(CASES / "inverse_heat_initial.toml"), "--out", str(out),
                 "--set", "mesh.n=4", "--set", f"observations.file=\"{tmp_path / 'data.npz'}\"",
                 "--set", "observations.sigma=0.01", "--set", "inverse.weight=1e-3"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["u0_rel_l2_error"] is None  # no truth with measured data
    assert report["observations"] == 110 and report["noise_sigma"] == 0.01

    import meshio

    mesh = meshio.read(out / "recovered.vtu")
    assert "u0_true" not in mesh.point_data
    recovered = torch.as_tensor(mesh.point_data["u0"])
    error = float(torch.linalg.vector_norm(recovered - u0) / torch.linalg.vector_norm(u0))
    assert error < 1e-3, error  # exact data at 10 sensors x 11 levels: measured 5e-5


@pytest.mark.parametrize("config,settings,message", [
    ("inverse_w", ["inverse.unknown=\"initial_condition\""],
     "inverse.unknown = \"initial_condition\" recovers the initial state of a transient"),
    ("inverse_heat_k", ["solver.method=\"energy\""], "solver.method = \"energy\""),
    ("inverse_heat_initial", ["observations.sensors=[[0.5, 1.5]]"], "outside the mesh"),
    ("inverse_heat_initial", ["inverse.unknown=\"heat\""], "inverse.unknown must be one of"),
    ("inverse_heat_initial", ["time.dt=-0.1"], "dt"),
])
def test_bad_transient_configs_are_one_error_line(tmp_path, capsys, config, settings, message):
    out = tmp_path / "never"
    code = main(["inverse", str(CASES / f"{config}.toml"), "--out", str(out),
                 *[a for s in ["mesh.n=4", *settings] for a in ("--set", s)]])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("dfem: error: ") and message in err, err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("levels,with_points,message", [
    (5, True, "'values' has shape (5, 10), but this run has 11 time levels"),
    (1, True, "give values of shape (11, 10)"),
    (11, False, "and 25 dofs (no 'points' in the file)"),
])
def test_observation_file_of_the_wrong_shape(tmp_path, capsys, levels, with_points, message):
    _measured_histories(tmp_path / "data.npz", levels, with_points)
    out = tmp_path / "never"
    code = main(["inverse", str(CASES / "inverse_heat_initial.toml"), "--out", str(out),
                 "--set", "mesh.n=4",
                 "--set", f"observations.file=\"{tmp_path / 'data.npz'}\""])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "observations.file" in err and message in err, err
    assert not out.exists()
