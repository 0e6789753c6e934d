"""Atomic output files: written under a temporary name in the target folder, then renamed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def temporary_beside(path, suffix: str = ".tmp") -> str:
    """A new empty file next to ``path`` with the permissions a plain ``open`` would give.

    ``mkstemp`` creates files readable by their owner only; outputs should follow the
    umask like any other file, so the mode is reset before the file is renamed into place.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def write_atomically(path, write, suffix: str = ".tmp") -> None:
    """Run ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    A failure (or an interrupt) leaves ``path`` as it was and no temporary file behind.
    ``suffix`` keeps the extension that writers such as matplotlib or meshio read.
    """
    tmp = temporary_beside(path, suffix=suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def torch_save_atomic(obj, path) -> None:
    """``torch.save`` through a temporary file: a crash leaves the old file intact."""
    import torch

    write_atomically(path, lambda tmp: torch.save(obj, tmp))


def write_json_atomic(path, data) -> None:
    """Write JSON to ``path`` through a temporary file, so a failure leaves no half-written file."""

    def dump(tmp):
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")

    write_atomically(path, dump)


def read_toml(path, what: str = "config file") -> dict:
    """The parsed TOML file at ``path``; a missing, unreadable or invalid file is a
    :class:`~dfem.errors.DfemError` that names it (``what`` says what kind of file it is)."""
    import tomllib

    from dfem.errors import DfemError

    path = Path(path)
    if not path.is_file():
        raise DfemError(f"{what} {str(path)!r} does not exist.")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise DfemError(f"{what} {str(path)!r} is not valid TOML: {exc}.") from exc
    except UnicodeDecodeError as exc:
        raise DfemError(f"{what} {str(path)!r} is not UTF-8 text: {exc}.") from exc
