"""Inverse-problem config files: a case file plus ``[observations]`` and ``[inverse]``.

::

    name = "inverse_field"
    element = "Q1"
    [mesh]
    n = 64
    [problem]
    nu = { field = "lognormal", w = [-0.26, -0.77, -0.37, -0.92] }  # the truth
    f = 1.0
    [boundary.boundary]
    dirichlet = 0.0

    [observations]
    noise = 0.01        # Gaussian, standard deviation noise * max|u| ("1 % noise")
    seed = 0
    # sensors = 200     # random points (seeded) instead of every dof, or [[x, y], ...]
    # file = "data.npz" # measured data instead: arrays "values" (and "points"); then
    # sigma = 0.01      # its noise standard deviation, if known

    [inverse]
    unknown = "log_nu_nodal"   # "log_nu_cell", "log_nu_nodal" or "w" (the field's parameters)
    regularization = "tikhonov"  # "tikhonov", "tv" or "none"
    weight = 5e-3
    max_iter = 400

Without ``file`` the observations are synthetic: the case is solved with its own
``nu`` (the truth) and noise is added; the errors against the truth are then
reported. With ``file`` the case's ``nu`` is not used.

A transient case (one with a ``[time]`` table, a heat problem) is observed at every
time level ``t = 0, dt, ..., t_end`` (the data are sensor histories), and may recover
the conductivity as above or the initial condition::

    [initial]
    u = "sin(pi*x)*sin(pi*y)*(1 + x)"   # the truth for synthetic data
    [time]
    t_end = 0.05
    dt = 0.005
    [observations]
    sensors = 40
    noise = 0.01        # standard deviation noise * max|u| over all levels and sensors
    # file = "data.npz" # "values" of shape (time levels, sensors) and "points"
    [inverse]
    unknown = "initial_condition"   # or "log_nu_cell", "log_nu_nodal" (the case's
    weight = 1.0                    # [initial] u is then known), or "w"

``inverse.initial`` is the starting ``log nu`` (or ``w``), or for the initial condition
the constant starting ``u0`` (default 0 for all); ``initial_condition`` on a steady
case is an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfem.exceptions import DfemError
from dfem.fileio import apply_overrides, read_toml
from dfem.problems.case import Case
from dfem.shipped import INVERSE, resolve_config

_OBSERVATIONS = {"noise", "seed", "sensors", "file", "sigma"}
_INVERSE = {"unknown", "regularization", "weight", "epsilon", "max_iter", "gtol", "bounds",
            "initial"}
UNKNOWN_KINDS = ("log_nu_cell", "log_nu_nodal", "w", "initial_condition")


@dataclass
class InverseConfig:
    """A parsed config: the forward case, the observation and the inverse settings."""

    case: Case
    observations: dict
    inverse: dict
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.case.name


def is_inverse_config(data: dict) -> bool:
    return "inverse" in data


def load_inverse_config(path, overrides=()) -> InverseConfig:
    """Read and check an inverse config (see the module docstring)."""
    path = resolve_config(path, INVERSE)
    return inverse_config_from_dict(read_toml(path, "config file"), Path(path), overrides)


def inverse_config_from_dict(data: dict, path=None, overrides=()) -> InverseConfig:
    data = apply_overrides(data, overrides)
    if "inverse" not in data:
        raise DfemError("an inverse config needs an [inverse] table (unknown, regularization, "
                        "weight, ...); see docs/inverse.md.")
    observations = _table(data, "observations", _OBSERVATIONS)
    inverse = _table(data, "inverse", _INVERSE)
    case_data = {k: v for k, v in data.items() if k not in ("observations", "inverse")}
    case = Case.from_dict(case_data, path)
    settings = dict(unknown="log_nu_nodal", regularization="tikhonov", weight=0.0,
                    epsilon=1e-3, max_iter=200, gtol=1e-8, bounds=None, initial=0.0)
    settings.update(inverse)
    _check_inverse(settings)
    if settings["unknown"] == "initial_condition" and not case.transient:
        raise DfemError("inverse.unknown = \"initial_condition\" recovers the initial state "
                        "of a transient case, but this case has no [time] table (it is "
                        "steady): add [time] (t_end, dt) and [initial] u, or recover "
                        "log_nu_cell, log_nu_nodal or w.")
    obs = dict(noise=0.01, seed=0, sensors=None, file=None, sigma=None)
    obs.update(observations)
    _check_observations(obs, path)
    return InverseConfig(case=case, observations=obs, inverse=settings,
                         path=Path(path) if path else None)


def _table(data: dict, name: str, known: set) -> dict:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise DfemError(f"[{name}] must be a table in the config file.")
    unknown = set(table) - known
    if unknown:
        raise DfemError(f"unknown key(s) {', '.join(sorted(unknown))} in [{name}]; known keys: "
                        f"{', '.join(sorted(known))}.")
    return table


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_inverse(s: dict) -> None:
    from dfem.inverse.unknowns import check_regularization

    if s["unknown"] not in UNKNOWN_KINDS:
        raise DfemError(f"inverse.unknown must be one of {', '.join(UNKNOWN_KINDS)}, "
                        f"got {s['unknown']!r}.")
    if not (_number(s["weight"]) and _number(s["epsilon"])):
        raise DfemError("inverse.weight and inverse.epsilon must be numbers.")
    check_regularization(s["regularization"], s["weight"], s["epsilon"])
    if not (isinstance(s["max_iter"], int) and not isinstance(s["max_iter"], bool)
            and 0 < s["max_iter"] <= 100_000):
        raise DfemError(f"inverse.max_iter must be a positive integer, got {s['max_iter']!r}.")
    if not (_number(s["gtol"]) and s["gtol"] > 0):
        raise DfemError(f"inverse.gtol must be a positive number, got {s['gtol']!r}.")
    bounds = s["bounds"]
    if bounds is not None and not (isinstance(bounds, list) and len(bounds) == 2
                                   and all(map(_number, bounds)) and bounds[0] < bounds[1]):
        raise DfemError(f"inverse.bounds must be [low, high] with low < high, got {bounds!r}.")
    if not _number(s["initial"]):
        raise DfemError(f"inverse.initial (the starting log nu, w or u0) must be a number, "
                        f"got {s['initial']!r}.")


def _check_observations(o: dict, path) -> None:
    if not (_number(o["noise"]) and o["noise"] >= 0):
        raise DfemError(f"observations.noise must be a number >= 0, got {o['noise']!r}.")
    if not (isinstance(o["seed"], int) and not isinstance(o["seed"], bool) and o["seed"] >= 0):
        raise DfemError(f"observations.seed must be a non-negative integer, got {o['seed']!r}.")
    sensors = o["sensors"]
    if sensors is not None:
        count = isinstance(sensors, int) and not isinstance(sensors, bool) and sensors > 0
        listed = isinstance(sensors, list) and sensors and all(
            isinstance(p, list) and len(p) == 2 and all(map(_number, p)) for p in sensors)
        if not (count or listed):
            raise DfemError("observations.sensors must be a positive number of random points "
                            "or a list of [x, y] ([x, y, z] in 3D) points.")
    if o["sigma"] is not None and not (_number(o["sigma"]) and o["sigma"] > 0):
        raise DfemError(f"observations.sigma must be a positive number, got {o['sigma']!r}.")
    if o["file"] is not None:
        file = Path(o["file"])
        if not file.is_absolute() and path is not None:
            file = Path(path).parent / file
        if not file.is_file():
            raise DfemError(f"observations.file {str(file)!r} does not exist.")
        o["file"] = file


def read_observation_file(file: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``values`` (and ``points``, if present) from an ``.npz`` file."""
    try:
        with np.load(file) as data:
            if "values" not in data:
                raise DfemError(f"{file} holds no array named 'values' (found: "
                                f"{', '.join(data.files) or 'nothing'}).")
            points = np.asarray(data["points"], dtype=float) if "points" in data else None
            return np.asarray(data["values"], dtype=float), points
    except (OSError, ValueError) as exc:
        raise DfemError(f"cannot read observations from {file}: {exc}; save them with "
                        f"numpy.savez(file, values=..., points=...).") from exc
