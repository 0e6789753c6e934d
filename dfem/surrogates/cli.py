"""``dfem surrogate train CONFIG --out DIR [--resume]`` and ``dfem surrogate eval DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_cli"]


class _Report:
    """Training progress: a progress bar with the loss on a terminal, a line per
    validation otherwise (logs stay short). The bar starts at the first step reported, so
    a resumed run shows where it picked up."""

    def __init__(self, total: int):
        from dfem.progress import ProgressBar

        self.total = total
        self.bar = ProgressBar(total, unit="step")

    def __call__(self, step, loss, validation):
        shown = {"loss": f"{loss:.4g}"}
        if validation is not None:
            shown["val_rel_l2"] = f"{validation['val_rel_l2_mean']:.3g}"
            self.bar.log(
                f"step {step}/{self.total}: loss {loss:.5g}, validation relative L2 "
                f"{validation['val_rel_l2_mean']:.4g} (max {validation['val_rel_l2_max']:.3g})")
        self.bar.update(1, shown, at=step)

    def close(self):
        self.bar.close()


def _train(args) -> int:
    from dfem.cli_tools import Interrupted
    from dfem.exceptions import DfemError
    from dfem.fileio import toml_text, write_atomically
    from dfem.surrogates.config import load_config
    from dfem.surrogates.training import Trainer, TrainingStopped

    config = load_config(args.config, overrides=args.set)
    out = Path(args.out)
    checkpoint = out / "checkpoint.pt"
    # every refusal comes before the (slow) set-up and before anything is written
    if args.resume and not checkpoint.is_file():
        raise DfemError(f"--resume: no checkpoint at {checkpoint}; train without --resume "
                        f"first")
    if not args.resume and checkpoint.exists():
        raise DfemError(
            f"{out} already holds a training run; continue it with --resume or choose another --out"
        )
    trainer = Trainer(config, out, device=args.device)
    main_rank = trainer.rank == 0  # under torchrun, rank 0 writes and reports for all
    out.mkdir(parents=True, exist_ok=True)
    # the config this run trains with (after --set, defaults filled in); a resumed run keeps
    # the copy it started with (run() refuses a different config)
    if main_rank and not args.resume:
        given = " ".join(["dfem surrogate train", str(args.config),
                          *(f"--set {item}" for item in args.set)])
        text = toml_text({"description": config.description, **config.to_dict()},
                         header=f"The config of this run: {given}, defaults filled in.")
        write_atomically(out / "config.toml", lambda tmp: Path(tmp).write_text(text))
    report = _Report(config.training["steps"]) if main_rank else None
    try:
        last = trainer.run(resume=args.resume, report=report)
    except TrainingStopped as err:
        if main_rank:
            print(f"dfem: training stopped: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        kept = (f"{checkpoint} holds the last checkpoint; continue with --resume"
                if checkpoint.is_file() else "no checkpoint was written yet")
        raise Interrupted(kept) from None
    finally:
        if report is not None:
            report.close()
    if not main_rank:
        return 0
    print(
        f"step {last['step']}: validation relative L2 mean {last['val_rel_l2_mean']:.4g}, "
        f"max {last['val_rel_l2_max']:.4g}, max abs {last['val_max_abs_err']:.3g}; "
        f"{trainer.seconds:.0f} s of training"
    )
    if trainer.step < config.training["steps"]:
        print(
            f"stopped by the time budget at step {trainer.step} of "
            f"{config.training['steps']}; continue with --resume"
        )
    print(f"wrote {out}/checkpoint.pt and history.json")
    return 0


def _eval(args) -> int:
    from dfem.fileio import check_output_folder
    from dfem.surrogates.evaluate import evaluate

    check_output_folder(args.folder, "the run folder", exists=True)  # it gets metrics.json
    m = evaluate(args.folder, args.samples, device=args.device, batch=args.batch)
    print(
        f"{m['samples']} held-out samples: relative L2 mean {m['val_rel_l2_mean']:.4g}, max "
        f"{m['val_rel_l2_max']:.4g}; max abs error {m['val_max_abs_err']:.3g}"
    )
    if "prior_val_rel_l2_mean" in m:
        print(f"the prior alone: relative L2 mean {m['prior_val_rel_l2_mean']:.4g}")
    if m["paper_case_max_abs_err"] is not None:
        print(f"paper's w: max abs error {m['paper_case_max_abs_err']:.3g}")
    print(
        f"FEM solve {m['fem_solve_s_per_sample'] * 1e3:.2f} ms a sample, surrogate "
        f"{m['surrogate_s_per_sample'] * 1e3:.3f} ms ({m['surrogate_speedup']:.0f}x faster)"
    )
    print(f"wrote {args.folder}/metrics.json and compare.png")
    return 0


def add_cli(subparsers) -> None:
    """Register ``dfem surrogate {train, eval}``."""
    from dfem.cli_tools import add_set_option, positive_int, torch_device

    cmd = subparsers.add_parser("surrogate", help="train and evaluate FEM-energy surrogates")
    sub = cmd.add_subparsers(dest="surrogate_command", required=True)
    train = sub.add_parser("train", help="train a surrogate from a TOML config")
    train.add_argument("config", help="the config file (TOML; see docs/surrogates.md)")
    train.add_argument("--out", required=True, help="folder for checkpoints and history")
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    add_set_option(train, "training.steps=200")
    train.set_defaults(run=_train)
    ev = sub.add_parser("eval", help="metrics.json and compare.png for a trained surrogate")
    ev.add_argument("folder", help="the --out folder of a training run")
    ev.add_argument("--samples", type=positive_int,
                    help="held-out samples (default: the config's)")
    ev.add_argument("--batch", type=positive_int, default=64,
                    help="samples per inference batch")
    ev.set_defaults(run=_eval)
    for command in (train, ev):
        command.add_argument("--device", type=torch_device, default=None,
                             help="torch device (default cpu)")
