"""Run a topology optimisation config: ``dfem optimize CONFIG --out DIR [--resume]``.

Each iteration is reported as it finishes (compliance, volume, change: a tqdm bar on a
terminal, one line per iteration in a log). Under ``DIR`` it writes

- ``checkpoint.pt`` every ``output.checkpoint_every`` iterations and at the end, atomically:
  ``design`` (:meth:`~dfem.design.TopologyOptimization.state_dict`, the design, the
  iteration, the history, beta and the MMA state), ``config`` (the config table as read,
  after the ``--set`` overrides), ``settings`` (with the defaults filled in) and
  ``config_hash`` (the SHA-256 of the settings); ``history.json`` is written with it;
- ``density_NNNN.png`` every ``output.plot_every`` iterations and ``density.png`` at the
  end: the physical density, black = solid (:func:`dfem.plots.plot_density`);
- ``history.json``: every history row (``iteration``, ``compliance``, ``volume``,
  ``change``, ``seconds`` and, with a projection, ``beta``);
- ``convergence.png``: compliance and volume against the iteration;
- ``design.vtu``: the design variables ``x`` and the physical ``density`` as cell data;
- ``report.json`` (last): the config name, the problem, cells, dofs, iterations, the final
  compliance, volume and change, seconds per iteration, whether it converged, why it
  stopped.

``--resume`` continues the run in ``DIR`` from its checkpoint exactly (the history of a
resumed run equals that of an uninterrupted one, the seconds aside); a config that
differs from the checkpoint's, except in the keys of
:data:`~dfem.design.config.RESUMABLE_CHANGES` (how long to run and what to write), is a
:class:`~dfem.exceptions.DfemError` naming the differing keys, raised before anything is
written. A compliance or gradient that is not finite (or a solver failure) stops the
run: the last checkpoint stays as it was, ``history.json`` holds the good iterations and
``report.json`` says why it stopped (:class:`OptimizationStopped`, exit status 1). Ctrl-C
stops it too (exit status 130), the last checkpoint intact.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from dfem.design.config import OptimizeConfig, load_optimize_config
from dfem.exceptions import ConvergenceError, DfemError

__all__ = ["CHECKPOINT", "OptimizationStopped", "add_cli", "read_checkpoint", "run_optimize"]

#: The checkpoint's file name under the output folder.
CHECKPOINT = "checkpoint.pt"
#: The version of the checkpoint's layout.
CHECKPOINT_FORMAT = 1


class OptimizationStopped(Exception):
    """A run that stopped before its end: ``status`` 1 for a failure (a non-finite
    compliance, a solver failure), 130 for an interrupt; ``report`` the report written
    (None for an interrupt)."""

    def __init__(self, message: str, status: int, report: dict | None = None):
        super().__init__(message)
        self.status, self.report = status, report


def check_out(out) -> Path:
    """``out`` as a Path; a :class:`DfemError` if it is not a folder outputs can be written
    to (:func:`dfem.fileio.check_output_folder`: a file, inside a file, unwritable)."""
    from dfem.fileio import check_output_folder

    return check_output_folder(out)


def _tensors(value):
    """``value`` with its numpy arrays as tensors (so ``torch.load(weights_only=True)``
    reads the checkpoint), recursively through dicts and lists."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tensors(v) for v in value]
    return value


def read_checkpoint(path, config: OptimizeConfig) -> dict:
    """The checkpoint at ``path``, checked against ``config``.

    Raises
    ------
    DfemError
        If the file is missing or unreadable, or if its config differs from ``config`` in
        a key that decides the design (the message names each one with both values).
    """
    path = Path(path)
    if not path.is_file():
        raise DfemError(f"--resume: {str(path)!r} does not exist; start the run without "
                        f"--resume.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        settings = state["settings"]
        state["design"]["iteration"]  # noqa: B018 - checked to be there
    except Exception as exc:  # a truncated or foreign file: say so, without a traceback
        raise DfemError(f"cannot read the checkpoint {str(path)!r}: {exc}") from exc
    if state.get("config_hash") != config.digest():
        differing = config.differences(settings)
        if differing:
            raise DfemError(f"--resume with a different config than the checkpoint "
                            f"{str(path)!r}: {'; '.join(differing)}. Resume with the "
                            f"config it was started with, or start a new run in another "
                            f"--out.")
    return state


def _settled(design) -> bool:
    p = design.projection
    return p is None or p["beta"] >= p["beta_max"]


def _converged(design, tolerance: float) -> bool:
    """The stopping rule of :meth:`~dfem.design.TopologyOptimization.run` for the last row."""
    return bool(design.history) and design.history[-1]["change"] < tolerance and \
        _settled(design)


class _Progress:
    """Compliance, volume and change per iteration: a progress bar on a terminal (opened
    at the first iteration reported, so a resumed run shows where it picked up), a line
    per iteration otherwise."""

    def __init__(self, total: int, stream=None):
        from dfem.progress import ProgressBar

        self.total = total
        self.bar = ProgressBar(total, "optimize", stream=stream)

    def __call__(self, row: dict) -> None:
        shown = {"compliance": f"{row['compliance']:.5g}", "volume": f"{row['volume']:.4f}",
                 "change": f"{row['change']:.4f}"}
        if "beta" in row:
            shown["beta"] = f"{row['beta']:g}"
        self.bar.update(1, shown, at=row["iteration"])
        text = ", ".join(f"{k} {v}" for k, v in shown.items())
        self.bar.log(f"iteration {row['iteration']}/{self.total}: {text}")

    def close(self) -> None:
        self.bar.close()


class _Run:
    """The state of one invocation: the config, the problem, the design and the outputs."""

    def __init__(self, config: OptimizeConfig, out: Path, state: dict | None):
        self.config, self.out = config, out
        self.mesh, self.objective, self.design = config.build()
        self.resumed_from = None
        if state is not None:
            self.design.load_state_dict(state["design"])
            self.resumed_from = self.design.iteration
        self.checkpointed = self.resumed_from  # the iteration checkpoint.pt holds
        self.started = time.perf_counter()

    def checkpoint(self) -> None:
        from dfem.fileio import interrupts_deferred, torch_save_atomic, write_json_atomic

        state = {"format": CHECKPOINT_FORMAT,
                 "design": _tensors(self.design.state_dict()),
                 "config": self.config.data, "settings": self.config.settings(),
                 "config_hash": self.config.digest()}
        with interrupts_deferred():  # the file and self.checkpointed change together
            torch_save_atomic(state, self.out / CHECKPOINT)
            self.checkpointed = self.design.iteration
        write_json_atomic(self.out / "history.json", self.design.history)

    def density(self) -> torch.Tensor:
        with torch.no_grad():
            return self.design.physical(self.design.x).detach()

    def plot(self, name: str) -> None:
        from dfem.plots import plot_density

        it = self.design.iteration
        c = self.design.history[-1]["compliance"] if self.design.history else float("nan")
        plot_density(self.mesh, self.density(), self.out / name,
                     title=f"{self.config.name}: iteration {it}, compliance {c:.5g}")

    def report(self, stopped: str, message: str) -> dict:
        history = self.design.history
        last = history[-1] if history else {}
        seconds = [row["seconds"] for row in history]
        opt = self.config.optimizer
        report = {
            "name": self.config.name,
            "problem": self.config.kind,
            "dim": self.mesh.dim,
            "cells": self.mesh.n_cells,
            "dofs": self.objective.space.n_dofs,
            "optimizer": opt["type"],
            "filter": self.config.filter["type"],
            "r_min": self.config.filter["r_min"],
            "volume_fraction": opt["volume_fraction"],
            "iterations": self.design.iteration,
            "max_iterations": opt["iterations"],
            "tolerance": opt["tolerance"],
            "compliance": last.get("compliance"),
            "volume": last.get("volume"),
            "change": last.get("change"),
            "seconds_per_iteration": float(np.mean(seconds)) if seconds else None,
            "optimization_seconds": float(np.sum(seconds)),
            "wall_seconds": time.perf_counter() - self.started,
            "converged": stopped == "converged",
            "stopped": stopped,
            "message": message,
            "checkpoint_iteration": self.checkpointed,
            "resumed_from": self.resumed_from,
        }
        if "beta" in last:
            report["beta"] = last["beta"]
        return report

    def finish(self, stopped: str, message: str) -> dict:
        from dfem.fileio import write_json_atomic
        from dfem.mesh import write_mesh
        from dfem.plots import plot_design_history

        self.checkpoint()
        self.plot("density.png")
        if self.design.history:
            plot_design_history(self.design.history, self.config.optimizer["volume_fraction"],
                                self.out / "convergence.png",
                                title=f"{self.config.name}: {self.config.kind}, "
                                      f"{self.config.optimizer['type'].upper()}")
        write_mesh(self.out / "design.vtu", self.mesh,
                   cell_data={"x": self.design.x.detach(), "density": self.density()})
        report = self.report(stopped, message)
        write_json_atomic(self.out / "report.json", report)
        return report

    def fail(self, exc: Exception) -> OptimizationStopped:
        """Stop after a failed iteration: the good history and the report, not the
        checkpoint (it keeps the last good state)."""
        from dfem.fileio import write_json_atomic

        message = str(exc).rstrip(".")
        if not message.startswith("iteration"):
            message = f"iteration {self.design.iteration + 1}: {message}"
        message += (f". The checkpoint of iteration {self.checkpointed} stays in "
                    f"{self.out / CHECKPOINT}." if self.checkpointed is not None else
                    "; no checkpoint was written yet.")
        write_json_atomic(self.out / "history.json", self.design.history)
        report = self.report("failed", message)
        write_json_atomic(self.out / "report.json", report)
        return OptimizationStopped(message, 1, report)


def run_optimize(config: OptimizeConfig, out, resume: bool = False, progress=None) -> dict:
    """Run ``config``, writing the outputs of the module docstring under ``out``.

    Parameters
    ----------
    config : OptimizeConfig
    out : path-like
        The output folder (created if missing).
    resume : bool
        Continue the run whose checkpoint is in ``out``.
    progress : callable, optional
        ``progress(row)`` after each iteration.

    Returns
    -------
    dict
        The report.

    Raises
    ------
    DfemError
        Before anything is written: ``out`` is a file, it holds a run and ``resume`` is
        False, its checkpoint is missing or has a different config, or the problem cannot
        be built.
    OptimizationStopped
        A failed iteration (status 1; the report is written) or Ctrl-C (status 130).
    """
    out = check_out(out)
    state = None
    if resume:
        state = read_checkpoint(out / CHECKPOINT, config)
    elif (out / CHECKPOINT).exists():
        raise DfemError(f"{str(out)!r} already holds an optimisation run ({CHECKPOINT}); "
                        f"continue it with --resume or choose another --out.")
    run = _Run(config, out, state)
    design, opt, every = run.design, config.optimizer, config.output
    out.mkdir(parents=True, exist_ok=True)
    try:
        while design.iteration < opt["iterations"] and not _converged(design, opt["tolerance"]):
            try:
                row = design.step()
            except (DfemError, ConvergenceError) as exc:
                raise run.fail(exc) from None
            if progress is not None:
                progress(row)
            if design.iteration % every["checkpoint_every"] == 0:
                run.checkpoint()
            if every["plot_every"] and design.iteration % every["plot_every"] == 0:
                run.plot(f"density_{design.iteration:04d}.png")
    except KeyboardInterrupt:
        held = ("no checkpoint was written yet" if run.checkpointed is None else
                f"{out / CHECKPOINT} holds iteration {run.checkpointed}; continue with "
                f"--resume")
        raise OptimizationStopped(f"interrupted at iteration {design.iteration}; {held}.",
                                  130) from None
    if _converged(design, opt["tolerance"]):
        change = design.history[-1]["change"]
        return run.finish("converged", f"the largest change {change:.3g} fell below the "
                          f"tolerance {opt['tolerance']:g}")
    return run.finish("iterations", f"reached optimizer.iterations = {opt['iterations']} "
                      f"before the tolerance {opt['tolerance']:g}")


def _optimize(args) -> int:
    from dfem.cli_tools import print_table

    out = check_out(args.out)
    config = load_optimize_config(args.config, overrides=args.set)
    progress = _Progress(config.optimizer["iterations"])
    try:  # Ctrl-C outside the iterations (building, the last outputs): dfem.cli.main
        report = run_optimize(config, out, resume=args.resume, progress=progress)
    except OptimizationStopped as stop:
        progress.close()
        print(f"dfem: optimisation stopped: {stop}", file=sys.stderr)
        return stop.status
    finally:
        progress.close()
    shown = ("name", "problem", "cells", "dofs", "optimizer", "iterations", "compliance",
             "volume", "change", "seconds_per_iteration", "converged", "message")
    print_table({k: report[k] for k in shown})
    print(f"wrote {out}/report.json, history.json, convergence.png, density.png, design.vtu "
          f"and checkpoint.pt")
    return 0


def add_cli(sub) -> None:
    """Register ``dfem optimize`` on the top-level subparsers."""
    from dfem.cli_tools import add_set_option

    parser = sub.add_parser("optimize", help="SIMP topology optimisation from a config file")
    parser.add_argument("config", help="the config (TOML: [problem], [material], [filter], "
                        "[projection], [optimizer], [output]; see docs/optimization.md)")
    parser.add_argument("--out", required=True, help="folder for checkpoint.pt, history.json, "
                        "report.json, density PNGs, convergence.png and design.vtu")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint")
    add_set_option(parser, "problem.nelx=30")
    parser.set_defaults(run=_optimize)
