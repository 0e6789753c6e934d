"""Surrogate training: exact resume, atomic checkpoints kept on a bad step, clear errors,
and the train/eval commands end to end at a tiny size."""

from __future__ import annotations

import json

import pytest
import torch

from dfem.cli import main
from dfem.exceptions import DfemError
from dfem.surrogates.config import from_dict, load_config
from dfem.surrogates.training import Trainer, TrainingStopped

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {
    "problem": {"n": 8},
    "network": {"width": 4, "depth": 2},
    "training": {"steps": 6, "batch_size": 2, "validation_samples": 3, "validate_every": 2},
}
TINY_TOML = """
[problem]
n = 8
[network]
width = 4
depth = 2
[training]
steps = 6
batch_size = 2
validation_samples = 3
validate_every = 2
"""


def test_resumed_run_ends_with_the_same_weights(tmp_path):
    config = from_dict(TINY)
    straight = Trainer(config, tmp_path / "a")
    straight.run()
    first = Trainer(config, tmp_path / "b")
    first.run(stop_after=3)  # interrupted after 3 of 6 steps
    assert first.step == 3
    resumed = Trainer(config, tmp_path / "b")
    resumed.run(resume=True)
    assert resumed.step == 6
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.history[-1]["val_rel_l2_mean"] == resumed.history[-1]["val_rel_l2_mean"]
    # a different seed draws different data
    other = Trainer(from_dict({**TINY, "training": {**TINY["training"], "seed": 1}}),
                    tmp_path / "c")
    other.run()
    c = other.model.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    trainer = Trainer(from_dict(TINY), tmp_path)
    real_loss = Trainer.loss

    def loss(self, log_nu, nu_q):
        value = real_loss(self, log_nu, nu_q)
        return value * float("nan") if self.step == 3 else value

    monkeypatch.setattr(Trainer, "loss", loss)
    with pytest.raises(TrainingStopped, match="step 3.*last good checkpoint \\(step 2\\)"):
        trainer.run()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_commands_train_and_evaluate(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    out = tmp_path / "run"
    assert main(["surrogate", "train", str(config), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {
        "checkpoint.pt", "config.toml", "history.json", "references.pt"}
    assert [h["step"] for h in json.loads((out / "history.json").read_text())] == [2, 4, 6]
    # a second run into the same folder is refused, not overwritten
    assert main(["surrogate", "train", str(config), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["surrogate", "eval", str(out), "--samples", "4"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("val_rel_l2_mean", "val_rel_l2_max", "val_max_abs_err", "paper_case_max_abs_err",
                "train_seconds", "samples_per_s", "fem_solve_s_per_sample",
                "surrogate_s_per_sample"):
        assert metrics[key] is not None and metrics[key] >= 0, key
    assert metrics["samples"] == 4
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_refuses_a_broken_or_foreign_checkpoint(tmp_path):
    config = from_dict(TINY)
    with pytest.raises(DfemError, match="no checkpoint"):
        Trainer(config, tmp_path).run(resume=True)
    Trainer(config, tmp_path).run(stop_after=2)
    other = from_dict({**TINY, "training": {**TINY["training"], "lr": 1e-4}})
    with pytest.raises(DfemError, match="different config"):
        Trainer(other, tmp_path).run(resume=True)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(DfemError, match="cannot read the checkpoint"):
        Trainer(config, tmp_path).run(resume=True)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"model": {}}, "unknown table"),
        ({"training": {"epochs": 3}}, "unknown key"),
        ({"training": {"lr": -1}}, "lr must be a positive number"),
        ({"training": {"batch_size": 0}}, "batch_size must be an integer >= 1"),
        ({"training": {"schedule": "step"}}, "schedule must be one of"),
        ({"sampler": {"field": "gaussian"}}, "field must be one of"),
        ({"problem": {"n": 1}}, "n must be an integer >= 2"),
        ({"problem": {"dirichlet": 1.0}}, "dirichlet must be a table"),
    ],
)
def test_bad_configs_give_clear_errors(data, match):
    with pytest.raises(DfemError, match=match):
        from_dict(data)


def test_config_files(tmp_path):
    with pytest.raises(DfemError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[training\n")
    with pytest.raises(DfemError, match="not valid TOML"):
        load_config(bad)


@pytest.mark.parametrize("name", ["surrogate_darcy64.toml", "surrogate_poisson64.toml"])
def test_shipped_configs_train_at_smoke_size(name, tmp_path):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "cases" / name
    config = load_config(path)
    assert config.problem["n"] == 64 and config.training["time_budget_s"] <= 900
    small = config.to_dict()
    small["problem"]["n"] = 8
    small["network"].update(width=4, depth=2)
    small["training"].update(steps=2, batch_size=2, validation_samples=2)
    trainer = Trainer(from_dict(small), tmp_path)
    last = trainer.run()
    assert last["step"] == 2 and 0 < last["val_rel_l2_mean"] < float("inf")
    # the boundary data of the config are met exactly by the prediction
    log_nu, _ = trainer.fields(trainer.parameters_for(0, 1))
    pred = trainer.model(log_nu)[0]
    if name == "surrogate_darcy64.toml":
        assert torch.all(pred[:, 0] == 1.0) and torch.all(pred[:, -1] == 0.0)
    else:
        edges = torch.cat([pred[0], pred[-1], pred[:, 0], pred[:, -1]])
        assert torch.all(edges == 0.0)


def test_torchrun_with_two_processes_matches_one(tmp_path):
    """DistributedDataParallel over 2 gloo processes, each with half of every batch, ends
    where one process with the whole batch does (up to float32 rounding)."""
    import os
    import subprocess
    import sys

    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.replace("batch_size = 2", "batch_size = 4"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "dfem.cli", "surrogate", "train", str(config),
               "--out", str(tmp_path / "two")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("wrote") == 1  # rank 0 reports for both
    assert main(["surrogate", "train", str(config), "--out", str(tmp_path / "one")]) == 0
    two = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["model"]
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["model"]
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-6)


def test_damaged_files_are_handled(tmp_path):
    trainer = Trainer(from_dict(TINY), tmp_path)
    trainer.run(stop_after=2)
    (tmp_path / "references.pt").write_bytes(b"not a torch file")
    again = Trainer(from_dict(TINY), tmp_path)
    assert again.references()["u"].shape == (3, 9, 9)  # solved again
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    assert main(["surrogate", "eval", str(tmp_path)]) == 2


@pytest.mark.slow
def test_shipped_darcy_config_meets_the_accuracy_targets(tmp_path):
    """The full 64² run of issue 6 (about 11-14 minutes on 2 CPU cores): train and evaluate
    ``cases/surrogate_darcy64.toml`` exactly as docs/surrogates.md says. The speed target is
    measured by ``dfem surrogate eval`` and quoted in the docs, not asserted here."""
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "cases" / "surrogate_darcy64.toml"
    out = tmp_path / "darcy64"
    assert main(["surrogate", "train", str(config), "--out", str(out)]) == 0
    assert main(["surrogate", "eval", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["samples"] == 64
    assert metrics["val_rel_l2_mean"] <= 0.03
    assert metrics["paper_case_max_abs_err"] <= 0.01
    assert metrics["val_rel_l2_mean"] < metrics["prior_val_rel_l2_mean"]  # the network helps
