"""``dfem inverse CONFIG.toml --out DIR``: recover a diffusivity (steady) or a conductivity
or an initial condition (transient) from observations."""

from __future__ import annotations

import sys

__all__ = ["add_cli"]


class _Progress:
    """A tqdm bar with the misfit on a terminal; a line every 25 iterations otherwise."""

    def __init__(self, total: int, error_label: str = "log_nu_error"):
        self.error_label = error_label
        self.bar = None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="it", desc="L-BFGS", file=sys.stderr)
            except ImportError:
                pass

    def __call__(self, row: dict) -> None:
        shown = {"misfit": f"{row['misfit']:.4g}"}
        if "error" in row:
            shown[self.error_label] = f"{row['error']:.3g}"
        if self.bar is not None:
            if row["iteration"]:
                self.bar.update(1)
            self.bar.set_postfix(shown, refresh=False)
        elif row["iteration"] % 25 == 0:
            text = ", ".join(f"{k} {v}" for k, v in shown.items())
            print(f"iteration {row['iteration']}: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _inverse(args) -> int:
    from dfem.cli import _print_table
    from dfem.inverse.config import load_inverse_config
    from dfem.inverse.run import run_inverse

    config = load_inverse_config(args.config, overrides=args.set)
    label = "u0_error" if config.inverse["unknown"] == "initial_condition" else "log_nu_error"
    progress = _Progress(config.inverse["max_iter"], label)
    try:
        report = run_inverse(config, out=args.out, progress=progress)
    finally:
        progress.close()
    _print_table({k: (", ".join(f"{x:.4f}" for x in v) if isinstance(v, list) else v)
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
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set inverse.weight=1e-2")
    parser.set_defaults(run=_inverse)
