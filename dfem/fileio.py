"""Atomic output files: written under a temporary name in the target folder, then renamed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


@contextlib.contextmanager
def staged_folder(folder, last=()):
    """A temporary folder inside ``folder`` whose files move into ``folder`` at the end.

    Write a set of output files (a time series) into the yielded folder; when the block
    ends without an error each file is renamed into ``folder`` (replacing a file of the
    same name), those named in ``last`` after the others. On an error or an interrupt
    the staged files are deleted, so nothing of the unfinished set appears in
    ``folder`` (which is removed again if this call created it and it is empty).

    Parameters
    ----------
    folder : path-like
        The output folder, created (with its parents) if missing.
    last : sequence of str
        File names to move last, in this order (e.g. ``("report.json",)``, the file that
        says the set is complete).
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=folder, prefix=".staging-"))
    done = False
    try:
        yield stage
        names = sorted(p.name for p in stage.iterdir())
        order = [n for n in names if n not in last] + [n for n in last if n in names]
        for name in order:
            os.replace(stage / name, folder / name)
        done = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not done and created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty


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
    :class:`~dfem.exceptions.DfemError` that names it (``what`` says what kind of file it is)."""
    import tomllib

    from dfem.exceptions import DfemError

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


def apply_overrides(data: dict, overrides) -> dict:
    """A copy of ``data`` with ``key.path=value`` overrides applied (``--set`` on the command
    line): values are parsed as TOML, else kept as text; missing tables are created."""
    import copy
    import tomllib

    from dfem.exceptions import DfemError

    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise DfemError(f"--set takes key=value (e.g. mesh.n=128), got {item!r}.")
        key, text = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        *parents, leaf = key.strip().split(".")
        table = data
        for part in parents:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise DfemError(f"--set {key}: {part!r} is not a table in the case file.")
        table[leaf] = value
    return data
