"""docs/segmentation.md: its example runs, and its numbers are those of
dfem/data/results/segmentation_compare.json (``dfem segment compare``'s compare.json)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "segmentation.md"
RESULT = ROOT / "dfem" / "data" / "results" / "segmentation_compare.json"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_example_runs(run_doc_example):
    out = run_doc_example(DOC)
    changed = float(re.search(r"changed pixels ([0-9.]+)", out).group(1))
    assert 0.0 < changed < 0.1
    assert "prediction (4, 32, 32)" in out


def _final(data, labels, model):
    return sorted((r["seed"], r["history"][-1]) for r in data["runs"]
                  if r["labels"] == labels and r["model"] == model)


def test_page_quotes_the_comparison():
    data = json.loads(RESULT.read_text())
    page = DOC.read_text()
    for row in data["table"]:
        line = (f"| {row['labels']} | {row['model']} | {100 * row['dice_mean']:.1f} ± "
                f"{100 * row['dice_mean_std']:.1f} | {100 * row['iou_mean']:.1f} ± "
                f"{100 * row['iou_mean_std']:.1f} | {row['train_s_mean']:.0f} |")
        assert line in page, line
    assert f"**{data['seconds']:.0f} s** ({data['seconds'] / 60:.1f} min" in page
    assert len(data["runs"]) == 18
    table = {(r["labels"], r["model"]): r for r in data["table"]}
    gain = 100 * (table["noisy", "iel"]["dice_mean"] - table["noisy", "baseline"]["dice_mean"])
    assert f"+{gain:.1f} Dice points" in page
    cost = 100 * (table["clean", "baseline"]["dice_mean"] - table["noisy", "baseline"]["dice_mean"])
    assert f"cost the baseline only {cost:.1f} points" in page
    clean_gap = 100 * (table["clean", "baseline"]["dice_mean"] - table["clean", "iel"]["dice_mean"])
    assert f"IEL is {clean_gap:.1f} points below the baseline" in page
    iel = [100 * h["val_dice_mean"] for _, h in _final(data, "noisy", "iel")]
    assert f"between {min(iel):.1f} and {max(iel):.1f}" in page
    base = [100 * h["val_dice_mean"] for _, h in _final(data, "noisy", "baseline")]
    assert f"worst seed fell to {min(base):.1f}" in page
    # the stalled DSA runs: class 1 (the small bright cells) below 5 % Dice
    stalled = {labels: sum(h["val_dice"][1] < 0.05 for _, h in _final(data, labels, "dsa"))
               for labels in ("clean", "noisy")}
    assert stalled == {"clean": 2, "noisy": 1}
    assert "On clean labels 2 of 3 seeds stall, and on noisy labels 1\nof 3 does" in page


def test_page_quotes_the_dsa_ablation():
    data = json.loads((ROOT / "benchmarks" / "results"
                       / "segmentation_dsa_warmup20.json").read_text())
    base = json.loads(RESULT.read_text())
    page = DOC.read_text()
    assert data["config"]["dsa"]["warmup_epochs"] == 20
    baseline = {r["labels"]: r["dice_mean"] for r in base["table"] if r["model"] == "baseline"}
    for row in data["table"]:
        line = (f"| {row['labels']} | dsa, 20-epoch warm-up | {100 * row['dice_mean']:.1f} ± "
                f"{100 * row['dice_mean_std']:.1f} | {100 * row['iou_mean']:.1f} ± "
                f"{100 * row['iou_mean_std']:.1f} | {row['train_s_mean']:.0f} |")
        assert line in page, line
    gaps = {r["labels"]: 100 * (baseline[r["labels"]] - r["dice_mean"]) for r in data["table"]}
    assert (f"{gaps['clean']:.1f} points below the baseline on clean labels and "
            f"{gaps['noisy']:.1f} points below\non noisy labels") in page
    worst = min(100 * r["history"][-1]["val_dice_mean"] for r in data["runs"]
                if r["labels"] == "noisy")
    assert f"one noisy seed reached {worst:.1f}" in page
    assert all(r["history"][-1]["val_dice"][1] > 0.5 for r in data["runs"])  # none stalls


def test_page_quotes_the_long_training_ablation():
    data = json.loads((ROOT / "benchmarks" / "results"
                       / "segmentation_noisy_120epochs.json").read_text())
    page = DOC.read_text()
    assert data["config"]["training"]["epochs"] == 120
    for row in data["table"]:
        line = (f"| {row['labels']} | {row['model']}, 120 epochs | {100 * row['dice_mean']:.1f} ± "
                f"{100 * row['dice_mean_std']:.1f} | {100 * row['iou_mean']:.1f} ± "
                f"{100 * row['iou_mean_std']:.1f} | {row['train_s_mean']:.0f} |")
        assert line in page, line
    table = {r["model"]: r["dice_mean"] for r in data["table"]}
    gain = 100 * (table["iel"] - table["baseline"])
    assert f"IEL is +{gain:.1f} Dice points above the baseline" in page
    assert f"IEL ends {gain:.1f} points above" in page
    assert f"The 6 runs took\n{data['seconds']:.0f} s" in page
    finals = {m: [100 * h["val_dice_mean"] for _, h in _final(data, "noisy", m)]
              for m in ("baseline", "iel")}
    assert f"end between {min(finals['iel']):.1f} and {max(finals['iel']):.1f}" in page
    assert f"between {min(finals['baseline']):.1f} and {max(finals['baseline']):.1f}" in page
    assert min(finals["iel"]) > max(finals["baseline"])  # "it holds for every seed"
    curves = {m: [sum(r["history"][e]["val_dice_mean"] for r in data["runs"] if r["model"] == m)
                  / 3 for e in range(120)] for m in ("baseline", "iel")}
    for model in ("baseline", "iel"):
        peak = max(curves[model])
        assert f"{100 * peak:.1f} (epoch {curves[model].index(peak) + 1})" in page
    assert f"{100 * curves['baseline'][39]:.1f} and {100 * curves['iel'][39]:.1f}" in page
