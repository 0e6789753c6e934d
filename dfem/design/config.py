"""Topology optimisation config files (``dfem optimize``): the problem, its material, the
filter, the projection, the optimiser and the outputs.

::

    name = "mbb"
    description = "the MBB half-beam of the 88-line code"
    [problem]
    type = "mbb"            # "mbb", "cantilever", "cantilever_3d" or "heat_sink"
    nelx = 60               # cells along x and y (mbb, cantilever)
    nely = 20
    [material]
    E0 = 1.0                # SIMP: E = E_min + rho^penal (E0 - E_min)
    E_min = 1e-9
    penal = 3.0
    poisson_ratio = 0.3
    [filter]
    type = "density"        # "density", "helmholtz" or "none"
    r_min = 1.5             # in cell widths
    [projection]            # optional: Heaviside projection with continuation
    beta = 1.0
    eta = 0.5
    beta_max = 32.0
    continuation_every = 40
    [optimizer]
    type = "oc"             # or "mma"
    volume_fraction = 0.5
    move = 0.2
    iterations = 200        # at most
    tolerance = 0.01        # stop when the largest change of a density falls below this
    [output]
    plot_every = 20         # density_NNNN.png every N iterations (0: only density.png)
    checkpoint_every = 10

The keys of ``[problem]`` depend on its type: ``nelx``, ``nely`` (``mbb``), and ``load``
(``"middle"`` or ``"bottom"``, ``cantilever``); ``nx``, ``ny``, ``nz``
(``cantilever_3d``); ``n``, ``sink``, ``source`` (``heat_sink``, the unit square with a
cold patch of length ``sink`` on its left side and a uniform heat ``source``). The heat
sink's ``[material]`` takes ``k0``, ``k_min`` and ``penal`` instead of the elastic keys.
Every key is optional (the defaults are those above and of :mod:`dfem.design.problems`);
an unknown key, a value of the wrong type or out of range is a
:class:`~dfem.exceptions.DfemError` that names it, raised before anything is built.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from dfem.exceptions import DfemError
from dfem.fileio import apply_overrides, read_toml
from dfem.shipped import OPTIMIZE, resolve_config

#: The problem types and, for each, its keys with their defaults.
PROBLEM_KEYS = {
    "mbb": {"nelx": 60, "nely": 20},
    "cantilever": {"nelx": 80, "nely": 40, "load": "middle"},
    "cantilever_3d": {"nx": 30, "ny": 10, "nz": 10},
    "heat_sink": {"n": 40, "sink": 0.2, "source": 1.0},
}
#: The material keys with their defaults: elastic problems and the heat sink.
ELASTIC_MATERIAL = {"E0": 1.0, "E_min": 1e-9, "penal": 3.0, "poisson_ratio": 0.3}
THERMAL_MATERIAL = {"k0": 1.0, "k_min": 1e-3, "penal": 3.0}
FILTER_TYPES = ("density", "helmholtz", "none")
_TOP = {"name", "description", "problem", "material", "filter", "projection", "optimizer",
        "output"}
_FILTER = {"type": "density", "r_min": 1.5}
_PROJECTION = {"beta": 1.0, "eta": 0.5, "beta_max": 32.0, "continuation_every": 40}
_OPTIMIZER = {"type": "oc", "volume_fraction": 0.5, "move": 0.2, "iterations": 200,
              "tolerance": 0.01}
_OUTPUT = {"plot_every": 20, "checkpoint_every": 10}
#: Keys that may change when a run is resumed: they say how long to run and what to write,
#: not what the design iterations compute.
RESUMABLE_CHANGES = ("description", "optimizer.iterations", "optimizer.tolerance",
                     "output.plot_every", "output.checkpoint_every")


def is_optimize_config(data: dict) -> bool:
    """Whether a parsed TOML table is an optimisation config (it has ``[optimizer]``)."""
    return "optimizer" in data


@dataclass
class OptimizeConfig:
    """A checked config: every table with its defaults filled in.

    Attributes
    ----------
    name, description : str
    problem : dict
        ``type`` and the keys of :data:`PROBLEM_KEYS` for it.
    material, filter, optimizer, output : dict
    projection : dict or None
        None without a ``[projection]`` table.
    data : dict
        The table as read, after the ``--set`` overrides.
    path : Path or None
    """

    name: str
    description: str
    problem: dict
    material: dict
    filter: dict
    projection: dict | None
    optimizer: dict
    output: dict
    data: dict = field(repr=False, default_factory=dict)
    path: Path | None = None

    @property
    def kind(self) -> str:
        """``problem.type``."""
        return self.problem["type"]

    def settings(self) -> dict:
        """The full settings (defaults filled in) as one JSON-ready table."""
        return {"name": self.name, "description": self.description,
                "problem": dict(self.problem), "material": dict(self.material),
                "filter": dict(self.filter),
                "projection": None if self.projection is None else dict(self.projection),
                "optimizer": dict(self.optimizer), "output": dict(self.output)}

    def digest(self) -> str:
        """The SHA-256 of :meth:`settings` (canonical JSON): equal for equal settings."""
        text = json.dumps(self.settings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def differences(self, settings: dict, ignore=RESUMABLE_CHANGES) -> list[str]:
        """``"key = theirs in the checkpoint, mine now"`` for every key of :meth:`settings`
        whose value differs from that in ``settings`` (another config's, e.g. a
        checkpoint's), except the keys in ``ignore``."""
        mine, theirs = _flatten(self.settings()), _flatten(settings)
        keys = sorted((set(mine) | set(theirs)) - set(ignore))
        return [f"{k} = {_shown(theirs.get(k))} in the checkpoint, {_shown(mine.get(k))} now"
                for k in keys if mine.get(k) != theirs.get(k)]

    def cell_width(self) -> float:
        """The side of a cell in the problem's length units (the heat sink is the unit
        square; the other problems have unit cells)."""
        return 1.0 / self.problem["n"] if self.kind == "heat_sink" else 1.0

    def build(self):
        """``(mesh, objective, design)``: the problem and its
        :class:`~dfem.design.TopologyOptimization` at iteration 0."""
        from dfem.design.filters import FILTERS
        from dfem.design.problems import PROBLEMS
        from dfem.design.topology import TopologyOptimization

        sizes = {k: v for k, v in self.problem.items() if k != "type"}
        mesh, objective = PROBLEMS[self.kind](**sizes, **self.material)
        kind = self.filter["type"]
        filt = None if kind == "none" else FILTERS[kind](
            mesh, self.filter["r_min"] * self.cell_width())
        opt = self.optimizer
        design = TopologyOptimization(
            objective, mesh, opt["volume_fraction"], filter=filt,
            projection=None if self.projection is None else dict(self.projection),
            optimizer=opt["type"], move=opt["move"])
        return mesh, objective, design


def load_optimize_config(path, overrides=()) -> OptimizeConfig:
    """Read and check an optimisation config (see the module docstring).

    Parameters
    ----------
    path : path-like
        The TOML file.
    overrides : sequence of str
        ``"key.path=value"`` items (``--set``), applied before the checks.
    """
    path = resolve_config(path, OPTIMIZE)
    return optimize_config_from_dict(read_toml(path, "config file"), path, overrides)


def optimize_config_from_dict(data: dict, path=None, overrides=()) -> OptimizeConfig:
    """:func:`load_optimize_config` for a parsed table."""
    data = apply_overrides(data, overrides)
    _keys(data, "the top level", _TOP)
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            raise DfemError(f"{key} must be a string, got {data[key]!r}.")
    problem = _table(data, "problem")
    kind = problem.get("type", "mbb")
    if kind not in PROBLEM_KEYS:
        raise DfemError(f"problem.type must be one of {', '.join(map(repr, PROBLEM_KEYS))}, "
                        f"got {kind!r}.")
    problem = {"type": kind, **_fill(problem, "problem", PROBLEM_KEYS[kind], {"type"},
                                     f' for problem.type = "{kind}"')}
    _check_problem(problem)
    materials = THERMAL_MATERIAL if kind == "heat_sink" else ELASTIC_MATERIAL
    material = _fill(_table(data, "material"), "material", materials, (),
                     f' for problem.type = "{kind}"')
    _check_material(material, kind)
    filt = _fill(_table(data, "filter"), "filter", _FILTER)
    if filt["type"] not in FILTER_TYPES:
        raise DfemError(f"filter.type must be one of {', '.join(map(repr, FILTER_TYPES))}, "
                        f"got {filt['type']!r}.")
    _check(filt, "filter", "r_min", _number(lambda v: v > 0), "a positive number (the "
           "filter radius in cell widths; 1.5 is the classic setting)")
    projection = None
    if "projection" in data:
        projection = _fill(_table(data, "projection"), "projection", _PROJECTION)
        _check_projection(projection)
    optimizer = _fill(_table(data, "optimizer"), "optimizer", _OPTIMIZER)
    _check_optimizer(optimizer)
    output = _fill(_table(data, "output"), "output", _OUTPUT)
    _check(output, "output", "plot_every", _integer(lambda v: v >= 0),
           "an integer >= 0 (0: no density_NNNN.png, only density.png at the end)")
    _check(output, "output", "checkpoint_every", _integer(lambda v: v >= 1),
           "a positive integer")
    default_name = Path(path).stem if path else "optimize"
    return OptimizeConfig(name=data.get("name", default_name),
                          description=data.get("description", ""), problem=problem,
                          material=material, filter=filt, projection=projection,
                          optimizer=optimizer, output=output, data=copy.deepcopy(data),
                          path=Path(path) if path else None)


# ---------------------------------------------------------------------- checks
def _keys(table: dict, where: str, known, extra: str = "") -> None:
    unknown = set(table) - set(known)
    if unknown:
        raise DfemError(f"unknown key(s) {', '.join(sorted(unknown))} in {where} of the config "
                        f"file; known keys{extra}: {', '.join(sorted(known))}.")


def _table(data: dict, name: str) -> dict:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise DfemError(f"[{name}] must be a table in the config file, got {table!r}.")
    return table


def _fill(table: dict, name: str, defaults: dict, also=(), extra: str = "") -> dict:
    """The defaults updated by ``table``, whose keys must be among them (or ``also``)."""
    _keys(table, f"[{name}]", set(defaults) | set(also), extra)
    return {**defaults, **{k: v for k, v in table.items() if k not in also}}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _number(test):
    return lambda v: _is_number(v) and test(v)


def _integer(test):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and test(v)


def _check(table: dict, name: str, key: str, test, what: str) -> None:
    if not test(table[key]):
        raise DfemError(f"{name}.{key} must be {what}, got {table[key]!r}.")


def _check_problem(p: dict) -> None:
    cells = _integer(lambda v: 0 < v <= 100_000)
    for key in ("nelx", "nely", "nx", "ny", "nz", "n"):
        if key in p:
            _check(p, "problem", key, cells, "a positive integer (a number of cells)")
    if p["type"] == "cantilever":
        if p["load"] not in ("middle", "bottom"):
            raise DfemError(f"problem.load must be \"middle\" or \"bottom\" (the point of the "
                            f"right side that is loaded), got {p['load']!r}.")
        if p["load"] == "middle" and p["nely"] % 2:
            raise DfemError(f"problem.load = \"middle\" needs an even problem.nely (a node at "
                            f"the middle of the right side), got {p['nely']}.")
    if p["type"] == "heat_sink":
        _check(p, "problem", "sink", _number(lambda v: 0 < v <= 1),
               "a number in (0, 1] (the length of the cold patch on the unit square's side)")
        _check(p, "problem", "source", _number(lambda v: v != 0),
               "a non-zero number (the uniform heat source)")


def _check_material(m: dict, kind: str) -> None:
    stiff, soft = ("k0", "k_min") if kind == "heat_sink" else ("E0", "E_min")
    for key in (stiff, soft, "penal"):
        _check(m, "material", key, _number(lambda v: True), "a number")
    if not 0 < m[soft] < m[stiff]:
        raise DfemError(f"SIMP needs 0 < material.{soft} < material.{stiff}, got "
                        f"{soft} = {m[soft]!r}, {stiff} = {m[stiff]!r}.")
    _check(m, "material", "penal", lambda v: v >= 1,
           "a number >= 1 (the SIMP penalty p; 3 is the classic choice)")
    if "poisson_ratio" in m:
        _check(m, "material", "poisson_ratio", _number(lambda v: -1 < v < 0.5),
               "a number in (-1, 0.5)")


def _check_projection(p: dict) -> None:
    _check(p, "projection", "beta", _number(lambda v: v > 0), "a positive number")
    _check(p, "projection", "eta", _number(lambda v: 0 < v < 1),
           "a number in (0, 1) (the threshold)")
    _check(p, "projection", "beta_max", _number(lambda v: v >= p["beta"]),
           f"a number >= projection.beta = {p['beta']!r}")
    _check(p, "projection", "continuation_every", _integer(lambda v: v >= 1),
           "a positive integer (iterations between doublings of beta)")


def _check_optimizer(o: dict) -> None:
    if o["type"] not in ("oc", "mma"):
        raise DfemError(f"optimizer.type must be \"oc\" or \"mma\", got {o['type']!r}.")
    _check(o, "optimizer", "volume_fraction", _number(lambda v: 0 < v <= 1),
           "a number in (0, 1] (the allowed fraction of solid material)")
    _check(o, "optimizer", "move", _number(lambda v: 0 < v <= 1),
           "a number in (0, 1] (the largest change of a density in one iteration)")
    _check(o, "optimizer", "iterations", _integer(lambda v: 0 < v <= 100_000),
           "a positive integer")
    _check(o, "optimizer", "tolerance", _number(lambda v: v >= 0), "a number >= 0")


# ---------------------------------------------------------------------- helpers
def _flatten(table: dict, prefix: str = "") -> dict:
    """``{"a.b": value}`` for the nested tables of ``table`` (a None table is one value)."""
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _shown(value) -> str:
    return "(absent)" if value is None else json.dumps(value)
