"""Surrogate training configuration: a TOML file with four tables, checked on load.

.. code-block:: toml

    description = "..."       # optional, shown by `dfem cases`

    [problem]                 # the PDE (dfem.surrogates.GridProblem)
    n = 64                    # cells per side
    element = "Q1"            # or "Q2"
    dirichlet = { left = 1.0, right = 0.0 }
    neumann = {}              # sides in neither table have zero flux
    f = 0.0

    [sampler]                 # the diffusivity family (dfem.surrogates.FIELDS)
    field = "lognormal"       # or "karhunen-loeve" (+ modes, length, sigma, mean)
    bound = 3.0               # lognormal: w uniform on [-bound, bound]^4
    method = "uniform"        # or "sobol", "lhs" (lognormal only)

    [network]                 # dfem.surrogates.build_network
    kind = "unet"             # or "fno"
    width = 16
    depth = 4                 # unet; fno takes modes, layers
    patch = 1                 # unet: fold p x p pixel blocks into channels (2: faster on CPU)
    padding = "replicate"     # unet convolutions; "zeros" is fused, faster on a CPU
    coordinates = true        # feed x, y as two more channels
    prior = "none"            # or "coarse-fem": learn the correction to a coarse FEM solve
    prior_cells = 16          # cells per side of that coarse solve

    [training]
    steps = 4000              # length of the learning-rate schedule
    time_budget_s = 840       # optional: stop early, resumable with --resume
    batch_size = 8
    lr = 2e-3
    schedule = "cosine"       # or "constant"
    loss_scale = "geometric-mean"   # or "none": divide each sample's energy by exp(mean log nu)
    precondition = "none"     # or "jacobi": scale the energy gradient at node i by 1 / K_ii
    seed = 0
    validation_samples = 64
    validate_every = 200
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dfem.exceptions import DfemError

__all__ = ["TrainingConfig", "load_config"]

_TABLES = {
    "problem": {"n", "element", "dirichlet", "neumann", "f"},
    "sampler": {"field", "bound", "method", "roots", "modes", "length", "sigma", "mean"},
    "network": {
        "kind",
        "width",
        "depth",
        "patch",
        "padding",
        "norm",
        "modes",
        "layers",
        "coordinates",
        "log_scale",
        "prior",
        "prior_cells",
    },
    "training": {
        "steps",
        "time_budget_s",
        "batch_size",
        "lr",
        "schedule",
        "loss_scale",
        "precondition",
        "seed",
        "validation_samples",
        "validate_every",
    },
}
SCHEDULES = ("cosine", "constant")
LOSS_SCALES = ("geometric-mean", "none")
PRECONDITIONERS = ("none", "jacobi")
PRIORS = ("none", "coarse-fem")


@dataclass
class TrainingConfig:
    """The four tables of the file, with defaults filled in (see the module docstring)."""

    problem: dict = field(default_factory=dict)
    sampler: dict = field(default_factory=dict)
    network: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict:
        return {
            "problem": self.problem,
            "sampler": self.sampler,
            "network": self.network,
            "training": self.training,
        }


def _positive_int(table: str, key: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DfemError(f"[{table}] {key} must be an integer >= {low}, got {value!r}")
    return value


def _positive_number(table: str, key: str, value) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise DfemError(f"[{table}] {key} must be a positive number, got {value!r}")
    return float(value)


def _choice(table: str, key: str, value, choices) -> str:
    if value not in choices:
        raise DfemError(
            f"[{table}] {key} must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )
    return value


def from_dict(data: dict) -> TrainingConfig:
    """Check ``data`` (the parsed TOML) and fill in the defaults."""
    data = dict(data)
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise DfemError("description must be a string")
    unknown = set(data) - set(_TABLES)
    if unknown:
        raise DfemError(
            f"unknown table(s) {sorted(unknown)}; a surrogate config has "
            f"{', '.join(f'[{t}]' for t in _TABLES)}"
        )
    for table, keys in _TABLES.items():
        if not isinstance(data.get(table, {}), dict):
            raise DfemError(f"[{table}] must be a table")
        bad = set(data.get(table, {})) - keys
        if bad:
            raise DfemError(f"unknown key(s) {sorted(bad)} in [{table}]; known: {sorted(keys)}")

    problem = {
        "n": 64,
        "element": "Q1",
        "dirichlet": {"left": 1.0, "right": 0.0},
        "neumann": {},
        "f": 0.0,
        **data.get("problem", {}),
    }
    _positive_int("problem", "n", problem["n"], 2)
    for key in ("dirichlet", "neumann"):
        if not isinstance(problem[key], dict):
            raise DfemError(f"[problem] {key} must be a table {{side = value}}")

    sampler = {"field": "lognormal", "method": "uniform", **data.get("sampler", {})}
    from dfem.problems.random_fields import FIELDS

    _choice("sampler", "field", sampler["field"], tuple(FIELDS))
    _choice("sampler", "method", sampler["method"], ("uniform", "sobol", "lhs"))

    network = {
        "kind": "unet",
        "coordinates": True,
        "log_scale": 3.0,
        "prior": "none",
        **data.get("network", {}),
    }
    _positive_number("network", "log_scale", network["log_scale"])
    _choice("network", "prior", network["prior"], PRIORS)
    if network["prior"] == "coarse-fem":
        network.setdefault("prior_cells", 16)
        cells = _positive_int("network", "prior_cells", network["prior_cells"])
        if problem["n"] % cells:
            raise DfemError(
                f"[network] prior_cells = {cells} must divide [problem] n = {problem['n']} "
                "(the coarse grid's nodes are fine-grid nodes)"
            )
    elif "prior_cells" in network:
        raise DfemError('[network] prior_cells needs prior = "coarse-fem"')

    training = {
        "steps": 4000,
        "time_budget_s": None,
        "batch_size": 8,
        "lr": 2e-3,
        "schedule": "cosine",
        "loss_scale": "geometric-mean",
        "precondition": "none",
        "seed": 0,
        "validation_samples": 64,
        "validate_every": 200,
        **data.get("training", {}),
    }
    t = training
    _positive_int("training", "steps", t["steps"])
    _positive_int("training", "batch_size", t["batch_size"])
    _positive_int("training", "validation_samples", t["validation_samples"])
    _positive_int("training", "validate_every", t["validate_every"])
    _positive_int("training", "seed", t["seed"], 0)
    _positive_number("training", "lr", t["lr"])
    if t["time_budget_s"] is not None:
        _positive_number("training", "time_budget_s", t["time_budget_s"])
    _choice("training", "schedule", t["schedule"], SCHEDULES)
    _choice("training", "loss_scale", t["loss_scale"], LOSS_SCALES)
    _choice("training", "precondition", t["precondition"], PRECONDITIONERS)
    return TrainingConfig(problem, sampler, network, training, description)


def load_config(path, overrides=()) -> TrainingConfig:
    """Read and check a surrogate TOML config, after the ``key.path=value`` ``overrides``
    (``--set``) are applied."""
    from dfem.fileio import apply_overrides, read_toml
    from dfem.shipped import SURROGATE, resolve_config

    data = read_toml(resolve_config(path, SURROGATE), "surrogate config")
    return from_dict(apply_overrides(data, overrides))
