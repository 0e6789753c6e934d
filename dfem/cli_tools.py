"""Pieces every ``dfem`` subcommand shares: the summary table, option types and ``--set``.

The top-level command (:mod:`dfem.cli`) and the subcommand modules (``dfem inverse``,
``dfem optimize``, ...) import these from here, so that no subcommand module imports
:mod:`dfem.cli` back.
"""

from __future__ import annotations

import argparse

__all__ = ["Interrupted", "add_set_option", "non_negative_int", "positive_float",
           "positive_int", "print_table", "shown", "torch_device"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, re-raised by a command with what the user should know (what was kept, how to
    continue); :func:`dfem.cli.main` prints ``dfem: interrupted: MESSAGE`` and exits with
    status 130."""


def shown(value) -> str:
    """``value`` as printed in a summary table: floats with 4 significant digits, None as
    ``-``, lists element by element."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return str(value)


def print_table(rows: dict) -> None:
    """Print ``key  value`` lines, the keys padded to one width.

    A dict value (the reactions) gives one line per entry, ``probes`` (a list of
    ``{"point", "u"}``) one line per point.

    Parameters
    ----------
    rows : dict
        The report to print, in the order of its keys.
    """
    lines = []
    for key, value in rows.items():
        if key == "probes":
            lines += [(f"u at {shown(p['point'])}", shown(p["u"])) for p in value]
        elif isinstance(value, dict):
            lines += [(f"{key[:-1] if key.endswith('s') else key} {k}", shown(v))
                      for k, v in value.items()]
        else:
            lines.append((key, shown(value)))
    if not lines:
        return
    width = max(len(k) for k, _ in lines)
    for key, text in lines:
        print(f"{key:<{width}}  {text}")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 1 (``--levels``, ``--samples``, ``--grid``)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 0 (a seed)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """An ``argparse`` type: a finite number > 0 (a bandwidth)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def torch_device(text: str) -> str:
    """An ``argparse`` type: a torch device that exists here (``cpu``, ``cuda``,
    ``cuda:1``, ``mps``), kept as the text."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a torch device; use e.g. cpu, cuda, cuda:1 or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{text}: no CUDA device is available here "
                                             f"(torch {torch.__version__}); use cpu")
        if device.index is not None and device.index >= count:
            raise argparse.ArgumentTypeError(f"{text}: there are {count} CUDA device(s) "
                                             f"here, cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: MPS is not available here; use cpu")
    return text


def add_set_option(parser, example: str = "mesh.n=64") -> None:
    """Add the repeatable ``--set KEY=VALUE`` option (``args.set``, a list of strings,
    checked and applied by :func:`dfem.fileio.apply_overrides` when the config is read).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    example : str
        An override shown in the help.
    """
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value (repeatable), e.g. --set {example}")
