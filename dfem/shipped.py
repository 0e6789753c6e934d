"""The data shipped inside the package, and what kind of config a TOML file is.

dfem carries its example cases, their meshes and the committed result JSON that
``dfem paper`` quotes as package data under ``dfem/data``, so an installed dfem (a wheel,
not only a checkout) finds them the same way:

- :func:`cases_dir` -- ``dfem/data/cases``: the shipped case files and configs, and
  ``meshes/`` with the gmsh meshes and the scripts that generate them (the repository's
  ``cases/`` is a link to it);
- :func:`results_dir` -- ``dfem/data/results``: the measured outputs ``dfem paper`` renders.

A TOML file under ``cases/`` is one of five kinds, told apart by the tables only that kind
has (:func:`config_kind`), each run by one command (:data:`KINDS`):

======================  ===========================================================
solve case              ``[mesh]``, ``[boundary.*]``, ``[exact]``, ``[solver]``, ``[time]``,
                        ``[initial]``, ``[nurbs]`` or a top-level ``element``: ``dfem solve``
inverse config          a case plus ``[inverse]``: ``dfem inverse``
optimisation config     ``[optimizer]``: ``dfem optimize``
segmentation config     ``[data]``, ``[noise]``, ``[model]``, ``[iel]``, ``[dsa]``,
                        ``[compare]``, or ``[training] epochs``: ``dfem segment compare``
                        (or ``dfem segment train``)
surrogate config        ``[sampler]``, ``[network]`` or ``[training]`` (steps, lr, ...):
                        ``dfem surrogate train``
======================  ===========================================================

:func:`resolve_config` turns what a user typed (a path, or the name of a shipped file) into
a path, and refuses a config of another kind with the command that runs it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dfem.exceptions import DfemError
from dfem.fileio import read_toml

__all__ = [
    "KINDS",
    "Kind",
    "cases_dir",
    "config_kind",
    "data_dir",
    "file_kind",
    "require_kind",
    "resolve_config",
    "results_dir",
    "shipped_configs",
    "shipped_listing",
]

SOLVE = "solve"
INVERSE = "inverse"
OPTIMIZE = "optimize"
SEGMENTATION = "segmentation"
SURROGATE = "surrogate"


@dataclass(frozen=True)
class Kind:
    """One kind of TOML config.

    Attributes
    ----------
    label : str
        What it is called in messages ("solve case", "optimisation config", ...).
    command : str
        The command that runs one, with ``{path}`` where the file goes.
    program : str
        The command without its arguments ("dfem solve", ...).
    """

    label: str
    command: str
    program: str

    @property
    def article(self) -> str:
        """``"an optimisation config"``, ``"a solve case"``."""
        return ("an " if self.label[0] in "aeiou" else "a ") + self.label

    def run(self, path) -> str:
        """The command line that runs the config at ``path``."""
        return self.command.format(path=path)


#: Every kind, by its key, with the command that runs it.
KINDS = {
    SOLVE: Kind("solve case", "dfem solve {path} --out DIR", "dfem solve"),
    INVERSE: Kind("inverse config", "dfem inverse {path} --out DIR", "dfem inverse"),
    OPTIMIZE: Kind("optimisation config", "dfem optimize {path} --out DIR", "dfem optimize"),
    SEGMENTATION: Kind("segmentation config", "dfem segment compare {path} --out DIR",
                       "dfem segment compare"),
    SURROGATE: Kind("surrogate config", "dfem surrogate train {path} --out DIR",
                    "dfem surrogate train"),
}

# The tables that only one kind has. They mirror the schemas of dfem.problems.case_schema,
# dfem.inverse.config, dfem.design.config, dfem.segmentation.config and
# dfem.surrogates.config (tests/test_shipped.py checks that they still do); they are
# written out here so that the core does not import the applications.
_SOLVE_TABLES = {"mesh", "element", "nurbs", "boundary", "exact", "solver", "time", "initial"}
_SEGMENTATION_TABLES = {"data", "noise", "model", "iel", "dsa", "compare"}
_SEGMENTATION_TRAINING = {"epochs"}
_SURROGATE_TABLES = {"sampler", "network", "training"}


def data_dir() -> Path:
    """``dfem/data``: the package data, in a checkout or in an installed package.

    Raises
    ------
    DfemError
        When the folder is missing (a broken install, or dfem imported from a zip).
    """
    folder = Path(str(resources.files("dfem"))) / "data"
    if not folder.is_dir():
        raise DfemError(f"dfem's shipped data folder {str(folder)!r} is missing: reinstall "
                        "dfem (pip install --force-reinstall dfem) from a wheel or a checkout.")
    return folder


def cases_dir() -> Path:
    """``dfem/data/cases``: the shipped cases and configs (and ``meshes/``)."""
    return data_dir() / "cases"


def results_dir() -> Path:
    """``dfem/data/results``: the committed result JSON that ``dfem paper`` renders."""
    return data_dir() / "results"


def shipped_configs() -> list[Path]:
    """Every shipped ``*.toml`` (cases and configs of all kinds), sorted by name."""
    return sorted(cases_dir().glob("*.toml"))


def config_kind(data: dict) -> str | None:
    """The kind (a key of :data:`KINDS`) of a parsed TOML table, or None when it has none
    of the tables that tell the kinds apart.

    Parameters
    ----------
    data : dict
        The parsed TOML file.

    Returns
    -------
    str or None
        ``"solve"``, ``"inverse"``, ``"optimize"``, ``"segmentation"`` or ``"surrogate"``.
    """
    keys = set(data)
    if "optimizer" in keys:
        return OPTIMIZE
    if "inverse" in keys:
        return INVERSE
    training = data.get("training")
    if keys & _SEGMENTATION_TABLES or (
            isinstance(training, dict) and set(training) & _SEGMENTATION_TRAINING):
        return SEGMENTATION
    if keys & _SURROGATE_TABLES:
        return SURROGATE
    if keys & _SOLVE_TABLES:
        return SOLVE
    return None


def file_kind(path) -> str | None:
    """:func:`config_kind` of the TOML file at ``path`` (a missing or invalid file is a
    :class:`~dfem.exceptions.DfemError` that names it)."""
    return config_kind(read_toml(path))


def _why(data: dict, kind: str) -> str:
    """The tables that make ``data`` a ``kind``, for messages."""
    if kind == OPTIMIZE:
        return "it has an [optimizer] table"
    if kind == INVERSE:
        return "it has an [inverse] table"
    marks = {SEGMENTATION: _SEGMENTATION_TABLES | {"training"}, SURROGATE: _SURROGATE_TABLES,
             SOLVE: _SOLVE_TABLES}[kind]
    found = sorted(set(data) & marks)[:3]
    return "it has " + " and ".join(f"[{t}]" for t in found)


def require_kind(data: dict, expected: str, path) -> dict:
    """``data`` when it is not recognisably another kind than ``expected``; else a
    :class:`~dfem.exceptions.DfemError` that names the command that runs it.

    Parameters
    ----------
    data : dict
        The parsed TOML file at ``path``.
    expected : str
        The kind the calling command runs (a key of :data:`KINDS`).
    path : path-like
        Where ``data`` came from, for the message.
    """
    kind = config_kind(data)
    if kind is not None and kind != expected:
        wanted = KINDS[expected]
        raise DfemError(f"{path} is {KINDS[kind].article}: run {KINDS[kind].run(path)} "
                        f"({_why(data, kind)}; {wanted.program} takes {wanted.label}s).")
    return data


def resolve_config(name, expected: str | None = None) -> Path:
    """The TOML file a user means by ``name``: an existing file wins, else the shipped file
    of that name (``poisson_sine`` or ``poisson_sine.toml``, from any folder; a name with
    folders in it is a path only).

    Parameters
    ----------
    name : str or path-like
        A path, or the name of a shipped case or config (see ``dfem cases``).
    expected : str, optional
        The kind the calling command runs (a key of :data:`KINDS`): a config of another
        kind is refused with the command that runs it.

    Returns
    -------
    Path

    Raises
    ------
    DfemError
        When neither a file nor a shipped name matches (with the nearest shipped names), or
        the file is of another kind.
    """
    path = Path(name)
    if not path.is_file():
        path = _shipped(str(name))
    if expected is not None:
        require_kind(read_toml(path), expected, name if Path(name).is_file() else path.stem)
    return path


def _shipped(name: str) -> Path:
    """The shipped file called ``name`` (with or without ``.toml``; a bare name, not a path
    with folders), or a DfemError with the nearest shipped names."""
    stem = name[:-5] if name.endswith(".toml") else name
    shipped = {p.stem: p for p in shipped_configs()}
    if "/" not in name and "\\" not in name and stem in shipped:
        return shipped[stem]  # also when a folder of that name is here (an --out, say)
    if Path(name).exists():
        what = "a folder" if Path(name).is_dir() else "not a regular file"
        raise DfemError(f"{name!r} is {what}: give a case or config file (TOML), or the "
                        "name of a shipped one (dfem cases lists them).")
    near = difflib.get_close_matches(Path(stem).name, list(shipped), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    raise DfemError(f"{name!r} does not exist, and is not the name of a shipped case or "
                    f"config: {hint}dfem cases lists the shipped ones.")


def shipped_listing() -> list[dict]:
    """One row per shipped file, for ``dfem cases``: ``name`` (the stem, which every command
    takes in place of a path), ``key`` and ``kind`` (a key of :data:`KINDS` and its label;
    a transient solve case says so), ``description``.

    Raises
    ------
    DfemError
        When a shipped file is of no known kind (a packaging mistake).
    """
    rows = []
    for path in shipped_configs():
        data = read_toml(path)
        key = config_kind(data)
        if key is None:
            raise DfemError(f"the shipped file {path} is of no known kind (none of the tables "
                            "that tell cases and configs apart).")
        kind = KINDS[key].label + (" (transient)" if key == SOLVE and "time" in data else "")
        rows.append({"name": path.stem, "key": key, "kind": kind,
                     "description": str(data.get("description", ""))})
    return rows
