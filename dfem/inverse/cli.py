"""``dfem inverse CONFIG.toml --out DIR``: recover a diffusivity (steady) or a conductivity
or an initial condition (transient) from observations."""

from __future__ import annotations

from dfem.cli_tools import add_set_option, print_table

__all__ = ["add_cli"]


class _Progress:
    """A progress bar with the misfit on a terminal; a line every 25 iterations otherwise."""

    def __init__(self, total: int, error_label: str = "log_nu_error"):
        from dfem.progress import ProgressBar

        self.error_label = error_label
        self.bar = ProgressBar(total, "L-BFGS")

    def __call__(self, row: dict) -> None:
        shown = {"misfit": f"{row['misfit']:.4g}"}
        if "error" in row:
            shown[self.error_label] = f"{row['error']:.3g}"
        self.bar.update(1 if row["iteration"] else 0, shown, at=row["iteration"])
        if row["iteration"] % 25 == 0:
            text = ", ".join(f"{k} {v}" for k, v in shown.items())
            self.bar.log(f"iteration {row['iteration']}: {text}")

    def close(self) -> None:
        self.bar.close()


def _inverse(args) -> int:
    from dfem.fileio import staged_folder
    from dfem.inverse.config import load_inverse_config
    from dfem.inverse.run import run_inverse

    config = load_inverse_config(args.config, overrides=args.set)
    label = "u0_error" if config.inverse["unknown"] == "initial_condition" else "log_nu_error"
    progress = _Progress(config.inverse["max_iter"], label)
    try:
        if args.out is None:
            report = run_inverse(config, progress=progress)
        else:  # the outputs appear together, or (an error, Ctrl-C) not at all
            with staged_folder(args.out, last=("report.json",)) as stage:
                report = run_inverse(config, out=stage, progress=progress)
    finally:
        progress.close()
    print_table({k: (", ".join(f"{x:.4f}" for x in v) if isinstance(v, list) else v)
                  for k, v in report.items()})
    if args.out:
        extra = ", sensors.png" if config.case.transient else ""
        print(f"wrote {args.out}/report.json, history.json, history.png, recovered.vtu{extra} "
              f"and recovered.png")
    return 0


def add_cli(sub) -> None:
    """Register ``dfem inverse`` on the top-level subparsers."""
    parser = sub.add_parser(
        "inverse", help="recover a diffusivity (field or family parameters), or in time a "
        "conductivity or an initial condition, from observations")
    parser.add_argument("config", help="the inverse config (a case file plus [observations] "
                        "and [inverse]; see docs/inverse.md)")
    parser.add_argument("--out", help="folder for report.json, history.json/png, "
                        "recovered.vtu/png")
    add_set_option(parser, "inverse.weight=1e-2")
    parser.set_defaults(run=_inverse)
