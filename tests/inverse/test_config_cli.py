"""``dfem inverse``: the shipped configs parse, a small run writes its outputs, and bad
configs get clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfem.cli import main
from dfem.exceptions import DfemError
from dfem.inverse.config import load_inverse_config
from dfem.problems.case import case_files

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "cases"


def test_shipped_configs_parse_and_are_not_cases():
    for name in ("inverse_field", "inverse_w"):
        config = load_inverse_config(CASES / f"{name}.toml")
        assert config.case.space().mesh.n_cells == 64 * 64
        assert CASES / f"{name}.toml" not in case_files(CASES)


@pytest.mark.parametrize("name", ["inverse_field", "inverse_w"])
def test_small_run_writes_every_output(tmp_path, name, capsys):
    code = main(["inverse", str(CASES / f"{name}.toml"), "--out", str(tmp_path),
                 "--set", "mesh.n=10", "--set", "inverse.max_iter=15"])
    assert code == 0
    for file in ("report.json", "history.json", "history.png", "recovered.vtu",
                 "recovered.png"):
        assert (tmp_path / file).stat().st_size > 0, file
    report = json.loads((tmp_path / "report.json").read_text())
    history = json.loads((tmp_path / "history.json").read_text())
    assert report["iterations"] == len(history) - 1 <= 15
    assert history[-1]["misfit"] < history[0]["misfit"]
    assert report["log_nu_rel_l2_error"] < 1.0  # better than the start, nu = 1
    if name == "inverse_w":
        assert len(report["w"]) == 4 and report["w_max_abs_error"] < 0.5
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("setting,message", [
    ("inverse.weight=-1.0", "weight must be a finite number >= 0"),
    ("inverse.unknown=\"nu\"", "inverse.unknown must be one of"),
    ("inverse.regularization=\"l1\"", "unknown regularization"),
    ("inverse.bounds=[3.0, -3.0]", "low < high"),
    ("inverse.colour=1", "unknown key"),
    ("observations.noise=-0.1", "observations.noise"),
    ("observations.sensors=[[0.5, 1.5]]", "outside the mesh"),
    ("observations.sensors=0", "observations.sensors"),
    ("observations.file=\"missing.npz\"", "does not exist"),
    ("problem.nu=1.0", "give problem.nu as a field table"),
])
def test_bad_configs_are_clear_errors(setting, message, capsys):
    overrides = ["mesh.n=4", setting]
    if setting.startswith("problem.nu"):
        overrides.append("inverse.unknown=\"w\"")
    code = main(["inverse", str(CASES / "inverse_w.toml"), *[a for s in overrides
                                                              for a in ("--set", s)]])
    assert code == 2
    assert message in capsys.readouterr().err


def test_observation_file_without_values(tmp_path):
    import numpy as np

    from dfem.inverse.config import read_observation_file

    np.savez(tmp_path / "data.npz", u=np.zeros(3))
    with pytest.raises(DfemError, match="no array named 'values'"):
        read_observation_file(tmp_path / "data.npz")
    (tmp_path / "bad.npz").write_text("not a numpy file")
    with pytest.raises(DfemError, match="cannot read observations"):
        read_observation_file(tmp_path / "bad.npz")
