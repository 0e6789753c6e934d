"""Evaluate a trained surrogate against FEM solves: ``metrics.json`` and ``compare.png``.

The figures, all measured here:

- ``val_rel_l2_mean``, ``val_rel_l2_max``, ``val_max_abs_err``: on the held-out samples
  (the training run's validation stream; ``samples`` of them, solved by the FEM core, the
  first ones taken from the run's cached reference solves);
- ``paper_case_max_abs_err``: for the paper's ``w = (-0.26, -0.77, -0.37, -0.92)`` (the
  log-normal family only);
- ``train_seconds``, ``steps``, ``samples_per_s`` (training throughput);
- ``fem_solve_s_per_sample``: one sparse direct solve per sample, assembly included (as
  timed when the references were solved);
- ``surrogate_s_per_sample``: batched inference over the held-out samples, divided by
  their number; ``surrogate_speedup`` is the ratio of the two.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from dfem.errors import DfemError
from dfem.fileio import write_json_atomic
from dfem.plots import plot_surrogate_comparison
from dfem.surrogates.config import from_dict
from dfem.surrogates.model import relative_l2
from dfem.surrogates.training import VALIDATION_STREAM, Trainer

__all__ = ["PAPER_W", "evaluate"]

PAPER_W = (-0.26, -0.77, -0.37, -0.92)


def load_trained(folder, device=None) -> Trainer:
    """The trainer of a finished (or stopped) run, weights loaded from its checkpoint."""
    path = Path(folder) / "checkpoint.pt"
    if not path.exists():
        raise DfemError(f"no checkpoint.pt in {folder}; train with `dfem surrogate train` first")
    try:
        config = torch.load(path, map_location="cpu", weights_only=True)["config"]
    except Exception as err:  # a truncated or foreign file
        raise DfemError(f"cannot read the checkpoint {path}: {err}") from None
    trainer = Trainer(from_dict(config), folder, device=device)
    trainer.load()
    return trainer


@torch.no_grad()
def _predict(trainer: Trainer, log_nu: torch.Tensor) -> torch.Tensor:
    trainer.model.eval()
    return torch.cat([trainer.model(chunk) for chunk in log_nu.split(16)])


def evaluate(folder, samples: int | None = None, device=None) -> dict:
    """Write ``metrics.json`` and ``compare.png`` into ``folder``; returns the metrics."""
    folder = Path(folder)
    trainer = load_trained(folder, device)
    t = trainer.config.training
    n = t["validation_samples"] if samples is None else int(samples)
    if n < 1:
        raise DfemError(f"--samples must be at least 1, got {n}")
    cached = trainer.references()  # solved once during training
    if n <= len(cached["u"]):
        log_nu, reference = cached["log_nu"][:n], cached["u"][:n]
        fem_s = cached["fem_solve_s_per_sample"]
    else:
        log_nu, nu_q = trainer.fields(trainer.parameters_for(VALIDATION_STREAM, n))
        t0 = time.perf_counter()
        reference = trainer.grid.solve(nu_q)
        fem_s = (time.perf_counter() - t0) / n

    _predict(trainer, log_nu[:1])  # warm-up
    t0 = time.perf_counter()
    pred = _predict(trainer, log_nu)
    surrogate_s = (time.perf_counter() - t0) / n
    rel = relative_l2(pred, reference)
    worst = int(rel.argmax())
    metrics = {
        "samples": n,
        "val_rel_l2_mean": rel.mean().item(),
        "val_rel_l2_max": rel.max().item(),
        "val_max_abs_err": (pred - reference).abs().max().item(),
        "train_seconds": trainer.seconds,
        "steps": trainer.step,
        "samples_per_s": trainer.step * t["batch_size"] / max(trainer.seconds, 1e-12),
        "fem_solve_s_per_sample": fem_s,
        "surrogate_s_per_sample": surrogate_s,
        "surrogate_speedup": fem_s / surrogate_s,
        "paper_case_max_abs_err": None,
        "device": str(trainer.device),
        "torch_threads": torch.get_num_threads(),
    }
    rows = [(f"held-out #{worst} (worst)", log_nu[worst], pred[worst], reference[worst])]
    if trainer.config.sampler["field"] == "lognormal" and trainer.family.m == len(PAPER_W):
        w = torch.tensor([PAPER_W], dtype=torch.float64)
        p_log_nu, p_nu_q = trainer.fields(w)
        p_ref = trainer.grid.solve(p_nu_q)
        p_pred = _predict(trainer, p_log_nu)
        metrics["paper_case_max_abs_err"] = (p_pred - p_ref).abs().max().item()
        rows.insert(0, ("paper w", p_log_nu[0], p_pred[0], p_ref[0]))
    write_json_atomic(folder / "metrics.json", metrics)
    plot_surrogate_comparison(
        [tuple(r[0:1]) + tuple(a.cpu() for a in r[1:]) for r in rows], folder / "compare.png"
    )
    return metrics
