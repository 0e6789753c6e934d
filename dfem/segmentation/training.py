"""Training one segmentation model: data, the loop, validation, checkpoints, resume.

A run is fixed by the config, the model kind (baseline, iel, dsa), the training labels
(clean or noisy) and a seed. The seed sets the network's initial weights and the order of
the batches: epoch ``e`` shuffles with a generator seeded from ``(seed, e)``, so a run
resumed from its checkpoint after epoch ``e`` continues exactly as an uninterrupted run
would. The data (images, clean and noisy labels) depend on the config's data seed only:
every model and seed sees the same images and the same noisy labels.

Validation is on clean labels after every epoch (Dice and IoU, see
:mod:`dfem.segmentation.models`). ``checkpoint.pt`` (weights, optimiser, epoch, history)
and ``history.json`` are written atomically after every epoch.
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import torch

from dfem.exceptions import DfemError
from dfem.fileio import interrupts_deferred, torch_save_atomic, write_json_atomic
from dfem.segmentation.config import LABELS, SegmentationConfig
from dfem.segmentation.models import Segmenter, confusion, scores


def build_iel(settings: dict):
    """The inverse evolution layer a config's ``[iel]`` table describes."""
    from dfem import iel

    common = dict(dt=settings["dt"], steps=settings["steps"], boundary=settings["boundary"])
    if settings["operator"] == "heat":
        return iel.HeatIEL(scale=settings["scale"], **common)
    if settings["operator"] == "perona-malik":
        return iel.PeronaMalikIEL(kappa=settings["kappa"], **common)
    return iel.TVFlowIEL(epsilon=settings["epsilon"], **common)


def build_model(config: SegmentationConfig, kind: str, in_channels: int) -> Segmenter:
    model = config["model"]
    return Segmenter(in_channels, config["data"]["num_classes"], kind, width=model["width"],
                     depth=model["depth"], norm=model["norm"],
                     iel=build_iel(config["iel"]) if kind == "iel" else None,
                     connectivity=config["dsa"]["connectivity"])


def load_data(config: SegmentationConfig) -> dict:
    """``train_images``, ``train_clean``, ``train_noisy``, ``val_images``, ``val_masks``."""
    data, noise = config["data"], config["noise"]
    return _load_data(tuple(sorted(data.items())), tuple(sorted(noise.items())))


@lru_cache(maxsize=4)
def _load_data(data_items, noise_items) -> dict:
    from dfem.segmentation.data import corrupt_labels, load_png_folder, synthetic_cells

    data, noise = dict(data_items), dict(noise_items)
    k = data["num_classes"]
    if data["source"] == "synthetic":
        images, masks = synthetic_cells(data["train"] + data["val"], size=data["size"],
                                        num_classes=k, seed=data["seed"])
        n_val = data["val"]
    else:
        images, masks, _ = load_png_folder(data["folder"], k)
        n_val = max(1, round(data["val_fraction"] * len(images)))
        if len(images) - n_val < 1:
            raise DfemError(f"{data['folder']} holds {len(images)} image(s): too few to hold "
                            f"out {n_val} for validation and train on the rest.")
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(
            data["seed"]))
        images, masks = images[order], masks[order]
    train_images, train_clean = images[n_val:], masks[n_val:]
    train_noisy = corrupt_labels(train_clean, k, block=noise["block"],
                                 fraction=noise["fraction"], seed=data["seed"] + 1,
                                 aligned=noise["aligned"])
    return dict(train_images=train_images, train_clean=train_clean, train_noisy=train_noisy,
                val_images=images[:n_val], val_masks=masks[:n_val])


def evaluate(model: Segmenter, images: torch.Tensor, masks: torch.Tensor) -> dict:
    """Dice/IoU of the model's predictions against ``masks``."""
    predicted = model.predict(images)
    return scores(confusion(predicted, masks, model.num_classes))


def _read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise DfemError(f"cannot resume: {path} does not exist; start without --resume.")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # any unreadable file
        raise DfemError(f"cannot resume from {path}: the checkpoint is unreadable or not a "
                        f"dfem segmentation checkpoint ({exc}); delete it and start "
                        f"again.") from exc


class SegmentationRun:
    """One training run in folder ``out`` (see the module docstring)."""

    def __init__(self, config: SegmentationConfig, kind: str, labels: str, seed: int, out):
        if labels not in LABELS:
            raise DfemError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}.")
        self.config, self.kind, self.labels, self.seed = config, kind, labels, int(seed)
        self.out = Path(out)
        self.data = load_data(config)
        with torch.random.fork_rng():  # the seed sets the initial weights, nothing global
            torch.manual_seed(self.seed)
            self.model = build_model(config, kind, self.data["train_images"].shape[1])
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config["training"]["lr"])
        self.history: list = []
        self.epoch = 0

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def describe(self) -> dict:
        return dict(model=self.kind, labels=self.labels, seed=self.seed, config=self.config.name)

    @classmethod
    def from_checkpoint(cls, out) -> SegmentationRun:
        """The run saved in ``out/checkpoint.pt``, rebuilt from the config stored in it."""
        from dfem.segmentation.config import config_from_dict

        state = _read_checkpoint(Path(out) / "checkpoint.pt")
        try:
            config, run = config_from_dict(state["config"]), state["run"]
        except (KeyError, TypeError) as exc:
            raise DfemError(f"{out}/checkpoint.pt is not a dfem segmentation checkpoint "
                            f"(missing {exc}).") from exc
        restored = cls(config, run["model"], run["labels"], run["seed"], out)
        restored._restore(state)
        return restored

    def resume(self) -> None:
        """Continue from ``checkpoint.pt`` (a clear error if it is missing or unreadable)."""
        self._restore(_read_checkpoint(self.checkpoint_path))

    def _restore(self, state: dict) -> None:
        path = self.checkpoint_path
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            run = state["run"]
        except Exception as exc:  # a foreign file that torch could read
            raise DfemError(f"cannot resume from {path}: the checkpoint is unreadable or not "
                            f"a dfem segmentation checkpoint ({exc}); delete it and start "
                            f"again.") from exc
        if run != self.describe():
            raise DfemError(f"cannot resume: {path} belongs to the run {run}, not "
                            f"{self.describe()}.")
        self.epoch, self.history = state["epoch"], state["history"]

    def train(self, progress=None) -> list:
        """Train to ``training.epochs``; returns the history (one row per epoch)."""
        self.out.mkdir(parents=True, exist_ok=True)
        settings = self.config["training"]
        images = self.data["train_images"]
        targets = self.data["train_noisy" if self.labels == "noisy" else "train_clean"]
        batch = settings["batch_size"]
        for epoch in range(self.epoch + 1, settings["epochs"] + 1):
            t0 = time.perf_counter()
            self.model.train()
            self.model.projection_on = epoch > self.config["dsa"]["warmup_epochs"]
            order = torch.randperm(len(images), generator=torch.Generator().manual_seed(
                self.seed * 100_003 + epoch))
            total = 0.0
            for start in range(0, len(images), batch):
                index = order[start:start + batch]
                log_p = self.model.log_probabilities(images[index])
                loss = torch.nn.functional.nll_loss(log_p, targets[index])
                if not torch.isfinite(loss.detach()):
                    raise DfemError(f"the training loss became {float(loss)} at epoch {epoch}; "
                                    f"lower training.lr (now {settings['lr']}).")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += float(loss.detach()) * len(index)
            metrics = evaluate(self.model, self.data["val_images"], self.data["val_masks"])
            row = dict(epoch=epoch, loss=total / len(images), seconds=time.perf_counter() - t0,
                       **{f"val_{k}": v for k, v in metrics.items()})
            self.history.append(row)
            self.epoch = epoch
            self._save()
            if progress is not None:
                progress(row)
        return self.history

    def _save(self) -> None:
        state = dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                     epoch=self.epoch, history=self.history, run=self.describe(),
                     config=self.config.to_dict())
        with interrupts_deferred():  # never half of a checkpoint and its history
            torch_save_atomic(state, self.checkpoint_path)
        write_json_atomic(self.out / "history.json", self.history)
