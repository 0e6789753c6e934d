"""Training, resume, the comparison and the ``dfem segment`` commands on tiny configs; the
shipped comparison itself is marked slow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dfem.cli import main
from dfem.exceptions import DfemError
from dfem.segmentation.comparison import compare
from dfem.segmentation.config import config_from_dict, load_segmentation_config
from dfem.segmentation.training import SegmentationRun

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "cases" / "segmentation_noisy.toml"
TINY = [
    "data.train=12", "data.val=6", "data.size=16", "model.width=4", "model.depth=2",
    "training.epochs=3", "training.batch_size=4", "iel.steps=3", "dsa.warmup_epochs=1",
]


def tiny_config(*extra):
    return load_segmentation_config(SHIPPED, [*TINY, *extra])


@pytest.mark.parametrize("kind", ["baseline", "iel", "dsa"])
def test_resume_continues_exactly(tmp_path, kind):
    config = tiny_config()
    straight = SegmentationRun(config, kind, "noisy", 1, tmp_path / "straight")
    straight.train()
    stopped = SegmentationRun(tiny_config("training.epochs=2"), kind, "noisy", 1,
                              tmp_path / "resumed")
    stopped.train()
    resumed = SegmentationRun(config, kind, "noisy", 1, tmp_path / "resumed")
    resumed.resume()
    resumed.train()
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    assert [r["val_dice_mean"] for r in straight.history] == \
        [r["val_dice_mean"] for r in resumed.history]
    assert len(json.loads((tmp_path / "resumed" / "history.json").read_text())) == 3


def test_noisy_and_clean_labels_differ_and_validation_is_clean():
    run = SegmentationRun(tiny_config("noise.fraction=0.3"), "baseline", "noisy", 0, "unused")
    data = run.data
    changed = (data["train_noisy"] != data["train_clean"]).double().mean()
    assert 0.1 < float(changed) < 0.3  # 30 % of the area, a third of it keeps its class
    assert data["val_masks"].shape[0] == 6


def test_bad_checkpoints_are_clear_errors(tmp_path):
    run = SegmentationRun(tiny_config(), "baseline", "clean", 0, tmp_path)
    with pytest.raises(DfemError, match="does not exist"):
        run.resume()
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DfemError, match="unreadable"):
        run.resume()
    SegmentationRun(tiny_config("training.epochs=1"), "iel", "clean", 0, tmp_path).train()
    with pytest.raises(DfemError, match="belongs to the run"):
        run.resume()


def test_compare_writes_everything_and_skips_finished_runs(tmp_path):
    config = tiny_config("training.epochs=2")
    summary = compare(config, tmp_path, seeds=2, workers=1)
    assert len(summary["runs"]) == 12 and len(summary["table"]) == 6
    for name in ("compare.json", "table.md", "curves.png", "grid.png"):
        assert (tmp_path / name).stat().st_size > 0
    table = (tmp_path / "table.md").read_text()
    assert table.count("\n") == 2 + 6 and "± " in table
    checkpoint = tmp_path / "runs" / "noisy_iel_seed1" / "checkpoint.pt"
    before = checkpoint.stat().st_mtime_ns
    again = compare(config, tmp_path, seeds=2, workers=1)
    assert checkpoint.stat().st_mtime_ns == before
    assert [r["dice_mean"] for r in again["table"]] == [r["dice_mean"] for r in summary["table"]]


def test_compare_in_two_processes(tmp_path):
    config = tiny_config("training.epochs=1", 'compare.labels=["noisy"]',
                         'compare.models=["baseline", "dsa"]')
    summary = compare(config, tmp_path, seeds=1, workers=2)
    single = compare(tiny_config("training.epochs=1", 'compare.labels=["noisy"]',
                                 'compare.models=["baseline", "dsa"]'),
                     tmp_path / "single", seeds=1, workers=1)
    def losses(result):  # the same runs, whichever process trains them
        return sorted((r["model"], [row["loss"] for row in r["history"]])
                      for r in result["runs"])

    assert losses(summary) == losses(single)


def test_cli_train_eval_and_errors(tmp_path, capsys):
    args = [f"--set={s}" for s in TINY]
    assert main(["segment", "train", str(SHIPPED), "--out", str(tmp_path / "run"),
                 "--model", "dsa", *args]) == 0
    assert main(["segment", "train", str(SHIPPED), "--out", str(tmp_path / "run"),
                 "--model", "dsa", *args]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["segment", "eval", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["dice"]) == 3 and 0 <= metrics["dice_mean"] <= 1
    assert (tmp_path / "run" / "predictions.png").stat().st_size > 0
    assert main(["segment", "eval", str(tmp_path / "empty")]) == 2
    for setting, message in [("training.lr=-1", "training.lr"), ("iel.operator='x'", "iel.op"),
                             ("data.colour=1", "unknown key"), ("noise.fraction=2", "noise.fr")]:
        assert main(["segment", "compare", str(SHIPPED), "--out", str(tmp_path / "c"),
                     f"--set={setting}"]) == 2
        assert message in capsys.readouterr().err


def test_shipped_config_is_not_a_case():
    from dfem.problems.case import case_files

    assert SHIPPED not in case_files(SHIPPED.parent)
    config = load_segmentation_config(SHIPPED)
    assert config["noise"] == dict(block=2, fraction=0.1, aligned=True)
    assert config_from_dict(config.to_dict()).to_dict() == config.to_dict()


@pytest.mark.slow
def test_shipped_comparison(tmp_path):
    """The full 3 seeds x 3 models x 2 label settings (about 15 minutes on 2 cores)."""
    summary = compare(load_segmentation_config(SHIPPED), tmp_path)
    assert len(summary["runs"]) == 18
