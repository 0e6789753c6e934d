"""Ctrl-C (SIGINT) in a real ``dfem`` process, once the run is under way: exit status 130,
one ``dfem:`` line after the progress lines, no traceback, no partial output, and the
checkpoint of a training or an optimisation intact (it loads, and the run resumes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dfem.cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"


def sets(*items) -> list[str]:
    return [a for item in items for a in ("--set", item)]


def interrupt(tmp_path, argv, ready, timeout: float = 120.0) -> tuple[int, list[str]]:
    """Run ``python -m dfem.cli ARGV`` in ``tmp_path``, send SIGINT as soon as ``ready()``
    holds, and return the exit status and the lines of stderr."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "dfem.cli", *map(str, argv)],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + timeout
            while not ready():
                assert proc.poll() is None, f"ended before the interrupt: {log.read_text()}"
                assert time.monotonic() < deadline, "the run did not get under way"
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            status = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return status, log.read_text().splitlines()


def assert_clean_stop(lines, progress_prefix: str | None = None) -> str:
    """The last line is the only ``dfem:`` line; the others are progress lines."""
    text = "\n".join(lines)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert lines and lines[-1].startswith("dfem: "), text
    others = lines[:-1]
    if progress_prefix is None:
        assert others == [], text
    else:
        assert all(line.startswith(progress_prefix) for line in others), text
    return lines[-1]


def hidden(folder: Path) -> list[str]:
    """Temporary files and staging folders left under ``folder`` (names with a dot)."""
    return [str(p) for p in folder.rglob(".*")]


def test_solve_interrupted_leaves_the_output_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"an": "earlier run"}\n')

    def staging():  # the solve is under way once its outputs' staging folder exists
        return any(p.name.startswith(".staging-") for p in out.iterdir())

    status, lines = interrupt(tmp_path, ["solve", CASES / "poisson_sine.toml", "--out", out,
                                         *sets("mesh.n=200")], staging)
    assert status == 130
    assert assert_clean_stop(lines) == "dfem: interrupted"
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text() == '{"an": "earlier run"}\n'


def test_solve_interrupted_creates_no_output_folder(tmp_path):
    out = tmp_path / "new" / "out"

    def staging():
        return out.is_dir() and any(out.iterdir())

    status, lines = interrupt(tmp_path, ["solve", CASES / "poisson_sine.toml", "--out", out,
                                         *sets("mesh.n=200")], staging)
    assert status == 130 and assert_clean_stop(lines) == "dfem: interrupted"
    assert not out.exists()


OPTIMIZE = ["problem.nelx=30", "problem.nely=10", "optimizer.tolerance=1e-9",
            "output.checkpoint_every=1", "output.plot_every=0"]


def test_optimize_interrupted_keeps_a_checkpoint_that_resumes(tmp_path, capsys):
    from dfem.design.config import load_optimize_config
    from dfem.design.run import read_checkpoint

    out = tmp_path / "run"
    config = CASES / "optimize_mbb.toml"
    status, lines = interrupt(
        tmp_path, ["optimize", config, "--out", out,
                   *sets(*OPTIMIZE, "optimizer.iterations=100000")],
        lambda: (out / "checkpoint.pt").is_file())
    assert status == 130
    last = assert_clean_stop(lines, progress_prefix="iteration ")
    assert last.startswith("dfem: optimisation stopped: interrupted at iteration ")
    assert "continue with --resume" in last
    assert hidden(out) == []
    assert not (out / "report.json").exists()  # written only by a finished run
    state = read_checkpoint(out / "checkpoint.pt", load_optimize_config(
        config, [*OPTIMIZE, "optimizer.iterations=100000"]))
    held = state["design"]["iteration"]
    assert held >= 1 and f"holds iteration {held}" in last
    # the run continues from the checkpoint to two iterations more
    assert main(["optimize", str(config), "--out", str(out), "--resume",
                 *sets(*OPTIMIZE, f"optimizer.iterations={held + 2}")]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["resumed_from"] == held and report["iterations"] == held + 2


SURROGATE = ["problem.n=8", "network.width=4", "network.depth=2", "training.steps=100000",
             "training.batch_size=2", "training.validation_samples=2",
             "training.validate_every=2"]


def test_surrogate_train_interrupted_keeps_a_checkpoint_that_resumes(tmp_path):
    from dfem.surrogates.config import load_config
    from dfem.surrogates.training import Trainer

    out = tmp_path / "run"
    config = CASES / "surrogate_poisson64.toml"
    status, lines = interrupt(tmp_path, ["surrogate", "train", config, "--out", out,
                                         *sets(*SURROGATE)],
                              lambda: (out / "checkpoint.pt").is_file())
    assert status == 130
    last = assert_clean_stop(lines, progress_prefix="step ")
    assert last == (f"dfem: interrupted: {out / 'checkpoint.pt'} holds the last checkpoint; "
                    f"continue with --resume")
    assert hidden(out) == []
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] >= 2 and state["step"] % 2 == 0
    resumed = Trainer(load_config(config, SURROGATE), out)
    resumed.run(resume=True, stop_after=2)
    assert resumed.step == state["step"] + 2


SEGMENT = ["data.train=12", "data.val=6", "data.size=16", "model.width=4", "model.depth=2",
           "training.batch_size=4"]


def test_segment_train_interrupted_keeps_a_checkpoint_that_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    config = CASES / "segmentation_noisy.toml"
    status, lines = interrupt(tmp_path, ["segment", "train", config, "--out", out,
                                         *sets(*SEGMENT, "training.epochs=100000")],
                              lambda: (out / "checkpoint.pt").is_file())
    assert status == 130
    last = assert_clean_stop(lines, progress_prefix="epoch ")
    assert last == (f"dfem: interrupted: {out / 'checkpoint.pt'} holds the last finished "
                    f"epoch; continue with --resume")
    assert hidden(out) == []
    epoch = torch.load(out / "checkpoint.pt", weights_only=False)["epoch"]
    assert epoch >= 1
    assert main(["segment", "train", str(config), "--out", str(out), "--resume",
                 *sets(*SEGMENT, f"training.epochs={epoch + 1}")]) == 0
    assert len(json.loads((out / "history.json").read_text())) == epoch + 1
