"""Evaluate a trained surrogate against FEM solves: ``metrics.json`` and ``compare.png``.

The figures, all measured here:

- ``val_rel_l2_mean``, ``val_rel_l2_max``, ``val_max_abs_err``: on the held-out samples
  (the training run's validation stream; ``samples`` of them, solved by the FEM core, the
  first ones taken from the run's cached reference solves);
- ``paper_case_max_abs_err``: for the paper's ``w = (-0.26, -0.77, -0.37, -0.92)`` (the
  log-normal family only);
- ``train_seconds``, ``steps``, ``samples_per_s`` (training throughput);
- ``fem_solve_s_per_sample``: one sparse direct solve per sample, assembly included, timed
  here over the first 16 held-out samples (the median of 5 passes after 2 warm-up passes);
- ``surrogate_s_per_sample``: batched inference (batches of ``batch`` samples, the
  network prepared by :func:`dfem.surrogates.for_inference`, the prior included) over the
  held-out samples, divided by their number (timed like the FEM solves);
  ``surrogate_speedup`` is the ratio of the two;
- with a prior (``[network] prior``): ``prior_val_rel_l2_mean``, ``prior_val_rel_l2_max``
  and ``prior_paper_case_max_abs_err``, the same figures for the prior alone, so the
  network's share of the accuracy is visible.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from dfem.exceptions import DfemError
from dfem.fileio import write_json_atomic
from dfem.plots import plot_surrogate_comparison
from dfem.surrogates.config import from_dict
from dfem.surrogates.model import Surrogate, relative_l2
from dfem.surrogates.networks import for_inference
from dfem.surrogates.training import VALIDATION_STREAM, Trainer

__all__ = ["PAPER_W", "evaluate"]

PAPER_W = (-0.26, -0.77, -0.37, -0.92)
FEM_TIMING_SAMPLES = 16
TIMING_REPEATS = 5


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


def inference_model(trainer: Trainer) -> Surrogate:
    """The trained surrogate with its network prepared for fast evaluation."""
    model = trainer.model
    return Surrogate(
        trainer.grid, for_inference(trainer.network), model.log_scale, model.coordinates,
        model.prior,
    )


def _timed(run):
    """``(median seconds of TIMING_REPEATS calls after two warm-up calls, last result)``."""
    run(), run()  # warm-up: allocator, oneDNN kernels, caches
    seconds = []
    for _ in range(TIMING_REPEATS):
        t0 = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - t0)
    return sorted(seconds)[len(seconds) // 2], result


def _predict(model: Surrogate, log_nu: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([model(chunk) for chunk in log_nu.split(batch)])


@torch.no_grad()
def evaluate(folder, samples: int | None = None, device=None, batch: int = 64) -> dict:
    """Write ``metrics.json`` and ``compare.png`` into ``folder``; returns the metrics."""
    folder = Path(folder)
    trainer = load_trained(folder, device)
    t = trainer.config.training
    n = t["validation_samples"] if samples is None else int(samples)
    if n < 1:
        raise DfemError(f"--samples must be at least 1, got {n}")
    if batch < 1:
        raise DfemError(f"--batch must be at least 1, got {batch}")
    model = inference_model(trainer)
    cached = trainer.references()  # solved once during training
    if n <= len(cached["u"]):
        log_nu, nu_q, reference = cached["log_nu"][:n], cached["nu_q"][:n], cached["u"][:n]
    else:
        log_nu, nu_q = trainer.fields(trainer.parameters_for(VALIDATION_STREAM, n))
        reference = trainer.grid.solve(nu_q)
    # both timings here, in one process under the same threads, each the median of
    # TIMING_REPEATS passes after warm-up passes: FEM solves one sample at a time, the surrogate
    # in batches
    timed = nu_q[: min(n, FEM_TIMING_SAMPLES)]
    fem_s = _timed(lambda: trainer.grid.solve(timed))[0] / len(timed)
    surrogate_s, pred = _timed(lambda: _predict(model, log_nu, batch))
    surrogate_s /= n
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
        "inference_batch": batch,
        "device": str(trainer.device),
        "torch_threads": torch.get_num_threads(),
    }
    prior = model.prior
    if prior is not None:
        prior_rel = relative_l2(trainer.grid.impose(prior(log_nu)), reference)
        metrics["prior_val_rel_l2_mean"] = prior_rel.mean().item()
        metrics["prior_val_rel_l2_max"] = prior_rel.max().item()
    rows = [(f"held-out #{worst} (worst)", log_nu[worst], pred[worst], reference[worst])]
    if trainer.config.sampler["field"] == "lognormal" and trainer.family.m == len(PAPER_W):
        w = torch.tensor([PAPER_W], dtype=torch.float64)
        p_log_nu, p_nu_q = trainer.fields(w)
        p_ref = trainer.grid.solve(p_nu_q)
        p_pred = _predict(model, p_log_nu, batch)
        metrics["paper_case_max_abs_err"] = (p_pred - p_ref).abs().max().item()
        if prior is not None:
            p_prior = trainer.grid.impose(prior(p_log_nu))
            metrics["prior_paper_case_max_abs_err"] = (p_prior - p_ref).abs().max().item()
        rows.insert(0, ("paper w", p_log_nu[0], p_pred[0], p_ref[0]))
    write_json_atomic(folder / "metrics.json", metrics)
    plot_surrogate_comparison(
        [tuple(r[0:1]) + tuple(a.cpu() for a in r[1:]) for r in rows], folder / "compare.png"
    )
    return metrics
