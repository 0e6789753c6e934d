"""The comparison experiment: baseline, +IEL and +DSA on clean and on noisy labels.

``compare(config, out, seeds)`` trains every (labels, model, seed) run in
``out/runs/<labels>_<model>_seed<k>`` (in ``workers`` processes of one thread each: small
convolutions scale better over processes than over threads), then writes

- ``out/compare.json``: per run the final validation scores and the per-epoch history,
  per (labels, model) the mean and standard deviation over seeds;
- ``out/table.md``: mean ± std of Dice and IoU (foreground mean) on clean validation labels;
- ``out/curves.png``: validation Dice against epoch, one panel per label setting, one
  curve (mean over seeds, band ± std) per model: the IEL paper's Figure 2 layout;
- ``out/grid.png``: validation images with clean and noisy labels and the predictions of
  the three models trained on noisy labels (seed 0).

A run whose ``history.json`` already holds every epoch is not trained again, so an
interrupted comparison picks up where it stopped.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from dfem.fileio import write_json_atomic
from dfem.segmentation.config import SegmentationConfig, config_from_dict
from dfem.segmentation.training import SegmentationRun


def run_folder(out, labels: str, kind: str, seed: int) -> Path:
    return Path(out) / "runs" / f"{labels}_{kind}_seed{seed}"


def _train_one(job) -> dict:
    config_dict, out, labels, kind, seed = job
    torch.set_num_threads(1)
    config = config_from_dict(config_dict)
    run = SegmentationRun(config, kind, labels, seed, run_folder(out, labels, kind, seed))
    t0 = time.perf_counter()
    if run.checkpoint_path.is_file():
        run.resume()
    run.train()
    return dict(labels=labels, model=kind, seed=seed, history=run.history,
                train_s=sum(row["seconds"] for row in run.history),
                wall_s=time.perf_counter() - t0)


def _ignore_sigint() -> None:
    """In a worker: leave Ctrl-C to the parent, which stops the pool and reports once,
    instead of a traceback from every worker; the pool's SIGTERM then ends the worker
    through ``SystemExit``, so that a checkpoint being written removes its temporary file."""
    import signal

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop)


def _finished(config: SegmentationConfig, out, labels, kind, seed) -> dict | None:
    path = run_folder(out, labels, kind, seed) / "history.json"
    if not path.is_file():
        return None
    history = json.loads(path.read_text())
    if len(history) != config["training"]["epochs"]:
        return None
    return dict(labels=labels, model=kind, seed=seed, history=history,
                train_s=sum(row["seconds"] for row in history), wall_s=0.0)


def compare(config: SegmentationConfig, out, seeds: int | None = None,
            workers: int | None = None, progress=None) -> dict:
    """Train every run of the comparison and write its outputs (module docstring)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = config["compare"]
    seeds = settings["seeds"] if seeds is None else int(seeds)
    workers = settings["workers"] if workers is None else int(workers)
    jobs = [(labels, kind, seed) for labels in settings["labels"]
            for kind in settings["models"] for seed in range(seeds)]
    t0 = time.perf_counter()
    results, pending = [], []
    for job in jobs:
        done = _finished(config, out, *job)
        (results.append(done) if done else pending.append(job))
    payload = [(config.to_dict(), str(out), *job) for job in pending]
    if workers > 1 and len(payload) > 1:
        with multiprocessing.get_context("spawn").Pool(
                min(workers, len(payload)), initializer=_ignore_sigint) as pool:
            for result in pool.imap_unordered(_train_one, payload):
                results.append(result)
                if progress is not None:
                    progress(result, len(results), len(jobs))
    else:
        threads = torch.get_num_threads()
        try:
            for job in payload:
                results.append(_train_one(job))
                if progress is not None:
                    progress(results[-1], len(results), len(jobs))
        finally:
            torch.set_num_threads(threads)
    summary = _summarise(config, results, seeds, time.perf_counter() - t0, workers)
    write_json_atomic(out / "compare.json", summary)
    _write_table(summary, out / "table.md")
    from dfem.plots import plot_segmentation_curves

    plot_segmentation_curves(summary, out / "curves.png")
    _write_grid(config, out, settings["models"])
    return summary


def _summarise(config, results, seeds, seconds, workers) -> dict:
    groups = {}
    for result in sorted(results, key=lambda r: (r["labels"], r["model"], r["seed"])):
        groups.setdefault((result["labels"], result["model"]), []).append(result)
    table = []
    for (labels, kind), runs in groups.items():
        row = dict(labels=labels, model=kind, seeds=len(runs))
        for key in ("dice_mean", "iou_mean"):
            values = np.array([r["history"][-1][f"val_{key}"] for r in runs])
            row[key] = float(values.mean())
            row[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        row["train_s_mean"] = float(np.mean([r["train_s"] for r in runs]))
        table.append(row)
    machine = dict(platform=platform.platform(), cores=os.cpu_count(), torch=torch.__version__)
    return dict(config=config.to_dict(), seeds=seeds, workers=workers, seconds=seconds,
                machine=machine, table=table, runs=results)


def _write_table(summary: dict, path: Path) -> None:
    lines = ["| labels | model | Dice (mean ± std) | IoU (mean ± std) | train s/run |",
             "|---|---|---|---|---|"]
    for row in summary["table"]:
        lines.append(
            f"| {row['labels']} | {row['model']} | {100 * row['dice_mean']:.1f} ± "
            f"{100 * row['dice_mean_std']:.1f} | {100 * row['iou_mean']:.1f} ± "
            f"{100 * row['iou_mean_std']:.1f} | {row['train_s_mean']:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    from dfem.fileio import write_atomically

    write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def _write_grid(config, out: Path, models, rows: int = 3) -> None:
    from dfem.plots import plot_segmentation_grid
    from dfem.segmentation.data import corrupt_labels
    from dfem.segmentation.training import load_data

    data, noise = load_data(config), config["noise"]
    images, clean = data["val_images"][:rows], data["val_masks"][:rows]
    # validation labels stay clean; corrupt them here only to show what noisy labels look like
    noisy = corrupt_labels(clean, config["data"]["num_classes"], block=noise["block"],
                           fraction=noise["fraction"], seed=config["data"]["seed"] + 2,
                           aligned=noise["aligned"])
    columns = {"image": images, "clean label": clean, "noisy label": noisy}
    labels = "noisy" if "noisy" in config["compare"]["labels"] else "clean"
    for kind in models:
        run = SegmentationRun(config, kind, labels, 0, run_folder(out, labels, kind, 0))
        if run.checkpoint_path.is_file():
            run.resume()
            columns[f"{kind} ({labels} labels)"] = run.model.predict(images)
    plot_segmentation_grid(columns, config["data"]["num_classes"], out / "grid.png")
