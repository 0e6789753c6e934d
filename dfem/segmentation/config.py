"""Segmentation experiment configs (TOML).

::

    name = "segmentation_noisy"
    description = "..."

    [data]
    source = "synthetic"   # or: folder = "path/to/data" (images/*.png + masks/*.png)
    train = 160            # synthetic: images to train on ...
    val = 48               # ... and to validate on (clean labels always)
    size = 48              # synthetic image size
    num_classes = 3
    seed = 0
    val_fraction = 0.2     # folder data: the share held out for validation

    [noise]                # the IEL paper's noisy labels (training labels only)
    block = 2
    fraction = 0.1
    aligned = true

    [model]
    width = 8
    depth = 3
    norm = "batch"

    [iel]                  # the +IEL model's head
    operator = "heat"      # heat, perona-malik or tv
    dt = 0.1
    steps = 20
    boundary = "zero"
    scale = 0.25           # heat: the authors' kernel, Laplacian / 4

    [dsa]                  # the +DSA model's head: regions of the predicted label map
    connectivity = 4
    warmup_epochs = 2      # epochs trained without the projection first (it can stall)

    [training]
    epochs = 12
    batch_size = 16
    lr = 2e-3

    [compare]
    models = ["baseline", "iel", "dsa"]
    labels = ["clean", "noisy"]
    seeds = 3
    workers = 2
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from dfem.exceptions import DfemError
from dfem.fileio import apply_overrides, read_toml
from dfem.segmentation.models import MODELS
from dfem.shipped import SEGMENTATION, resolve_config

DEFAULTS = {
    "data": dict(source="synthetic", folder=None, train=160, val=48, size=48, num_classes=3,
                 seed=0, val_fraction=0.2),
    "noise": dict(block=2, fraction=0.1, aligned=True),
    "model": dict(width=8, depth=3, norm="batch"),
    "iel": dict(operator="heat", dt=0.1, steps=20, boundary="zero", scale=0.25, kappa=1.0,
                epsilon=0.1),
    "dsa": dict(connectivity=4, warmup_epochs=2),
    "training": dict(epochs=12, batch_size=16, lr=2e-3),
    "compare": dict(models=list(MODELS), labels=["clean", "noisy"], seeds=3, workers=2),
}
LABELS = ("clean", "noisy")
IEL_OPERATORS = ("heat", "perona-malik", "tv")


@dataclass
class SegmentationConfig:
    """The parsed tables (defaults filled in), the name and where the file was."""

    name: str
    description: str
    tables: dict = field(default_factory=dict)
    path: Path | None = None

    def __getitem__(self, table: str) -> dict:
        return self.tables[table]

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, **self.tables}


def load_segmentation_config(path, overrides=()) -> SegmentationConfig:
    """Read and check a segmentation config (see the module docstring)."""
    path = resolve_config(path, SEGMENTATION)
    return config_from_dict(read_toml(path, "segmentation config"), Path(path), overrides)


def config_from_dict(data: dict, path=None, overrides=()) -> SegmentationConfig:
    data = apply_overrides(data, overrides)
    unknown = set(data) - set(DEFAULTS) - {"name", "description"}
    if unknown:
        raise DfemError(f"unknown table(s) {', '.join(sorted(unknown))} in the segmentation "
                        f"config; known: {', '.join(DEFAULTS)}.")
    tables = {}
    for name, defaults in DEFAULTS.items():
        given = data.get(name, {})
        if not isinstance(given, dict):
            raise DfemError(f"[{name}] must be a table in the segmentation config.")
        extra = set(given) - set(defaults)
        if extra:
            raise DfemError(f"unknown key(s) {', '.join(sorted(extra))} in [{name}]; known "
                            f"keys: {', '.join(sorted(defaults))}.")
        tables[name] = {**defaults, **given}
    _check(tables, path)
    default_name = Path(path).stem if path else "segmentation"
    return SegmentationConfig(name=str(data.get("name", default_name)),
                              description=str(data.get("description", "")), tables=tables,
                              path=Path(path) if path else None)


def _int(value, low=1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise DfemError(message)


def _check(t: dict, path) -> None:
    data = t["data"]
    if data["folder"] is not None:
        folder = Path(data["folder"])
        if not folder.is_absolute() and path is not None:
            folder = Path(path).parent / folder
        data["folder"], data["source"] = str(folder), "folder"
    _require(data["source"] in ("synthetic", "folder"),
             f"data.source must be 'synthetic' or 'folder', got {data['source']!r}.")
    _require(data["source"] == "synthetic" or data["folder"] is not None,
             "data.source = 'folder' needs data.folder (with images/ and masks/ inside).")
    for key in ("train", "val", "num_classes"):
        _require(_int(data[key], 2 if key == "num_classes" else 1),
                 f"data.{key} must be a positive integer (num_classes >= 2), got {data[key]!r}.")
    _require(_int(data["size"], 8), f"data.size must be an integer >= 8, got {data['size']!r}.")
    _require(_int(data["seed"], 0), f"data.seed must be an integer >= 0, got {data['seed']!r}.")
    _require(_number(data["val_fraction"]) and 0 < data["val_fraction"] < 1,
             f"data.val_fraction must lie in (0, 1), got {data['val_fraction']!r}.")
    noise = t["noise"]
    _require(_int(noise["block"]), f"noise.block must be a positive integer, got "
             f"{noise['block']!r}.")
    _require(_number(noise["fraction"]) and 0 <= noise["fraction"] <= 1,
             f"noise.fraction must lie in [0, 1], got {noise['fraction']!r}.")
    _require(isinstance(noise["aligned"], bool), "noise.aligned must be true or false.")
    model = t["model"]
    _require(_int(model["width"]) and _int(model["depth"]),
             "model.width and model.depth must be positive integers.")
    _require(model["norm"] in ("batch", "instance", "none"),
             f"model.norm must be batch, instance or none, got {model['norm']!r}.")
    iel = t["iel"]
    _require(iel["operator"] in IEL_OPERATORS,
             f"iel.operator must be one of {', '.join(IEL_OPERATORS)}, got {iel['operator']!r}.")
    _require(_number(iel["dt"]) and iel["dt"] > 0, f"iel.dt must be positive, got {iel['dt']!r}.")
    _require(_int(iel["steps"]), f"iel.steps must be a positive integer, got {iel['steps']!r}.")
    _require(_number(iel["scale"]) and iel["scale"] > 0,
             f"iel.scale must be positive, got {iel['scale']!r}.")
    _require(t["dsa"]["connectivity"] in (4, 8),
             f"dsa.connectivity must be 4 or 8, got {t['dsa']['connectivity']!r}.")
    _require(_int(t["dsa"]["warmup_epochs"], 0),
             f"dsa.warmup_epochs must be an integer >= 0, got {t['dsa']['warmup_epochs']!r}.")
    train = t["training"]
    _require(_int(train["epochs"]) and _int(train["batch_size"]),
             "training.epochs and training.batch_size must be positive integers.")
    _require(_number(train["lr"]) and train["lr"] > 0,
             f"training.lr must be positive, got {train['lr']!r}.")
    compare = t["compare"]
    _require(isinstance(compare["models"], list) and compare["models"]
             and set(compare["models"]) <= set(MODELS),
             f"compare.models must be a list drawn from {', '.join(MODELS)}.")
    _require(isinstance(compare["labels"], list) and compare["labels"]
             and set(compare["labels"]) <= set(LABELS),
             f"compare.labels must be a list drawn from {', '.join(LABELS)}.")
    _require(_int(compare["seeds"]) and _int(compare["workers"]),
             "compare.seeds and compare.workers must be positive integers.")
