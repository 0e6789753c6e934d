"""Reading config files, checking output folders, and atomic output files (written under
a temporary name in the target folder, then renamed)."""

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
    try:
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    except BaseException:  # an interrupt here must not leave the temporary file behind
        os.unlink(tmp)
        raise
    return tmp


def write_atomically(path, write, suffix: str = ".tmp") -> None:
    """Run ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    A failure (or an interrupt) leaves ``path`` as it was and no temporary file behind.
    ``suffix`` keeps the extension that writers such as matplotlib or meshio read.
    """
    tmp = None
    try:
        tmp = temporary_beside(path, suffix=suffix)
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def staged_folder(folder, last=()):
    """A temporary folder inside ``folder`` whose files move into ``folder`` at the end.

    Write a set of output files (a time series) into the yielded folder; when the block
    ends without an error each file is renamed into ``folder`` (replacing a file of the
    same name), those named in ``last`` after the others. On an error or an interrupt
    the staged files are deleted, so nothing of the unfinished set appears in
    ``folder`` (which is removed again, with the parents this call created, if this call
    created it and it is empty).

    Parameters
    ----------
    folder : path-like
        The output folder, created (with its parents) if missing.
    last : sequence of str
        File names to move last, in this order (e.g. ``("report.json",)``, the file that
        says the set is complete).
    """
    folder = Path(folder)
    created = []  # the folders this call makes, the deepest first
    missing = folder
    while not missing.exists() and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    folder.mkdir(parents=True, exist_ok=True)
    stage = None
    done = False
    try:
        stage = Path(tempfile.mkdtemp(dir=folder, prefix=".staging-"))
        yield stage
        names = sorted(p.name for p in stage.iterdir())
        order = [n for n in names if n not in last] + [n for n in last if n in names]
        for name in order:
            os.replace(stage / name, folder / name)
        done = True
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if not done:
            for made in created:
                with contextlib.suppress(OSError):
                    made.rmdir()  # only if empty


@contextlib.contextmanager
def interrupts_deferred():
    """Hold back Ctrl-C (SIGINT) for the duration of the block, then raise it.

    A checkpoint and the record of which step it holds are written together under this
    guard, so that an interrupt never lands between the two and the message after it names
    the step the file really holds. Outside the main thread (where signal handlers cannot
    be set) the block runs unguarded.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:  # None: a handler set outside Python, which cannot be put back; SIG_DFL is closest
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
    if received:
        raise KeyboardInterrupt


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

    return _parsed(path, what, "TOML", tomllib.TOMLDecodeError,
                   lambda p: tomllib.loads(p.read_bytes().decode("utf-8")))


def read_json(path, what: str = "JSON file"):
    """The parsed JSON file at ``path``; a missing, unreadable or invalid file is a
    :class:`~dfem.exceptions.DfemError` that names it (``what`` says what kind of file it is)."""
    return _parsed(path, what, "JSON", json.JSONDecodeError,
                   lambda p: json.loads(p.read_text(encoding="utf-8")))


def _parsed(path, what: str, language: str, syntax_error, parse):
    """``parse(path)`` of an existing file, its failures as a DfemError naming the file:
    invalid ``language`` (``syntax_error``), not UTF-8 text, or unreadable."""
    from dfem.exceptions import DfemError

    path = _existing_file(path, what)
    try:
        return parse(path)
    except syntax_error as exc:
        raise DfemError(f"{what} {str(path)!r} is not valid {language}: {exc}.") from exc
    except UnicodeDecodeError as exc:
        raise DfemError(f"{what} {str(path)!r} is not UTF-8 text: {exc}.") from exc
    except OSError as exc:
        raise DfemError(f"cannot read the {what} {str(path)!r}: {exc.strerror}.") from exc


def _existing_file(path, what: str) -> Path:
    """``path`` as a Path if it is a file; else a DfemError saying what it is instead."""
    from dfem.exceptions import DfemError

    path = Path(path)
    if path.is_dir():
        raise DfemError(f"{what} {str(path)!r} is a folder, not a file; give the file "
                        f"inside it.")
    if not path.is_file():
        raise DfemError(f"{what} {str(path)!r} does not exist.")
    return path


def check_output_folder(path, option: str = "--out", exists: bool = False) -> Path:
    """``path`` as a Path, checked to be a folder that outputs can be written to.

    Run by every command before any work, so that a bad output folder is a one-line error
    at once, not a traceback after a long run. Nothing is created: the folder, if missing,
    is made later by the command that writes into it.

    Parameters
    ----------
    path : path-like
        The output folder (it may be missing, with missing parents).
    option : str
        How the user gave it, for the message (``"--out"``, ``"the run folder"``).
    exists : bool
        The folder must exist already (the run folder of ``dfem surrogate eval``).

    Returns
    -------
    Path

    Raises
    ------
    DfemError
        If ``path`` is empty, is a file (or another non-folder), lies inside a file, is a
        dangling link, is missing while ``exists`` is set, or is in a place where files
        cannot be created (no permission, a read-only file system).
    """
    from dfem.exceptions import DfemError

    if str(path).strip() == "":
        raise DfemError(f"{option} is empty; name a folder for the outputs.")
    path = Path(path)
    shown = f"{option} {str(path)!r}"
    fix = f"; choose another {option}" if option.startswith("-") else ""
    if path.exists():
        if not path.is_dir():
            raise DfemError(f"{shown} is a file, not a folder{fix} (the file is left as it "
                            f"is).")
        existing = path
    else:
        if path.is_symlink():
            raise DfemError(f"{shown} is a link to {os.readlink(path)!r}, which does not "
                            f"exist{fix}.")
        if exists:
            raise DfemError(f"{shown} does not exist.")
        existing = path.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise DfemError(f"{shown} lies inside {str(existing)!r}, which is a file, not a "
                            f"folder{fix}.")
    try:  # the one test that holds for every user and file system: create a file there
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".dfem-write-test-")
    except OSError as exc:
        raise DfemError(f"{shown}: files cannot be created in {str(existing)!r} "
                        f"({exc.strerror}){fix}.") from None
    os.close(fd)
    os.unlink(probe)
    return path


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
        if not key.strip() or any(not part.strip() for part in key.split(".")):
            raise DfemError(f"--set takes key=value with a key such as mesh.n, got {item!r}.")
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


def toml_text(data: dict, header: str = "") -> str:
    """``data`` (nested dicts of strings, numbers, booleans and lists) as TOML text.

    Top-level tables become ``[table]`` sections, deeper ones inline tables; keys whose
    value is None are left out (TOML has no null). ``tomllib.loads(toml_text(d))`` gives
    ``d`` back (without the None values).

    Parameters
    ----------
    data : dict
    header : str
        Comment lines put first (each prefixed with ``# ``).
    """

    def key(name) -> str:
        name = str(name)
        return name if name and all(c.isalnum() or c in "-_" for c in name) else \
            json.dumps(name)

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v) if v == v else "nan"
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            items = [f"{key(k)} = {value(x)}" for k, x in v.items() if x is not None]
            return "{ " + ", ".join(items) + " }" if items else "{}"
        raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")

    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and v is not None}
    lines += [f"{key(k)} = {value(v)}" for k, v in scalars.items()]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{key(name)}]"]
            lines += [f"{key(k)} = {value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines).lstrip("\n") + "\n"
