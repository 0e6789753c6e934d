"""Training a surrogate against the FEM energy, with checkpoints that resume exactly.

Each step draws its own batch of field parameters from a generator seeded by
``(seed, step)``, and the learning rate is a function of the step alone. A run that stops
(time budget, Ctrl-C, a crash) and is resumed from its checkpoint therefore sees the same
data in the same order and ends with the same weights as an uninterrupted run.

The loss of a batch is the mean over samples of ``J(u_hat; nu) / s(nu)``, where ``J`` is
the Galerkin energy of :class:`~dfem.surrogates.GridProblem` and ``s`` either 1 or the
geometric mean ``exp(mean log nu)`` of the sample's diffusivity. Dividing one sample's
energy by a positive constant does not move its minimiser, but it stops samples with a
large diffusivity from drowning the others' gradients in a batch. With
``precondition = "jacobi"`` the energy gradient at each node is also divided by the
stiffness diagonal ``K_ii`` (relative to its mean): a diagonal preconditioner of the
functional gradient, label-free, with the same stationary point.

Files in the output folder, each written atomically:

- ``checkpoint.pt``: weights, optimiser state, step, history, seconds trained, config;
- ``references.pt``: the held-out samples and their FEM solutions (solved once);
- ``history.json``: loss and validation figures by step.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from dfem.exceptions import DfemError
from dfem.fileio import interrupts_deferred, torch_save_atomic, write_json_atomic
from dfem.problems.random_fields import FIELDS, sample_parameters
from dfem.surrogates import distributed
from dfem.surrogates.config import TrainingConfig
from dfem.surrogates.grid import GridProblem
from dfem.surrogates.model import Surrogate, relative_l2
from dfem.surrogates.networks import build_network, zero_output_layer
from dfem.surrogates.prior import CoarseSolve

__all__ = ["TrainingStopped", "Trainer"]

# validation samples come from a stream no training step can reach
VALIDATION_STREAM = 2**40


class TrainingStopped(RuntimeError):
    """Training hit a non-finite loss or diverged; the last good checkpoint is kept."""


class Trainer:
    """Builds the grid problem, sampler, network and optimiser a config describes.

    Parameters
    ----------
    config : TrainingConfig
    out : path
        Output folder (created).
    device : torch device, optional
    """

    def __init__(self, config: TrainingConfig, out, device=None):
        self.config, self.out = config, Path(out)
        device = torch.device(device) if device is not None else torch.device("cpu")
        self.device, self.rank, self.world = distributed.setup(device)
        p, s, net, t = config.problem, config.sampler, config.network, config.training
        self.grid = GridProblem(
            p["n"], p["element"], p["dirichlet"], p["neumann"], p["f"], device=self.device
        )
        family_options = {k: v for k, v in s.items() if k not in ("field", "method")}
        self.family = FIELDS[s["field"]](**family_options)
        surrogate_keys = ("kind", "coordinates", "log_scale", "prior", "prior_cells")
        options = {k: v for k, v in net.items() if k not in surrogate_keys}
        prior = CoarseSolve(self.grid, net["prior_cells"]) if net["prior"] != "none" else None
        torch.manual_seed(t["seed"])
        channels = Surrogate.in_channels(net["coordinates"], prior is not None)
        network = build_network(net["kind"], channels, **options)
        if prior is not None:
            zero_output_layer(network)  # training starts at the prior
        self.network = network.to(self.device)  # the bare network: what checkpoints hold
        if self.world > 1:
            if t["batch_size"] % self.world:
                raise DfemError(
                    f"[training] batch_size = {t['batch_size']} does not split evenly over "
                    f"{self.world} processes; use a multiple of {self.world}"
                )
            network = torch.nn.parallel.DistributedDataParallel(self.network)
        else:
            network = self.network
        self.model = Surrogate(self.grid, network, net["log_scale"], net["coordinates"], prior)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t["lr"])
        self.step, self.seconds, self.history = 0, 0.0, []

    # ------------------------------------------------------------------ data
    def parameters_for(self, stream: int, n: int) -> torch.Tensor:
        """``n`` field parameter vectors of batch ``stream`` (deterministic)."""
        s, seed = self.config.sampler, self.config.training["seed"] * 1_000_003 + stream
        if s["field"] == "lognormal":
            bound = self.family.bound
            return sample_parameters(n, self.family.m, -bound, bound, s["method"], seed)
        return self.family.sample(n, seed=seed)

    def fields(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log nu`` at the image nodes and ``nu`` at the quadrature points."""
        w = w.to(self.device)
        log_nu = self.family.log_field(self.grid.points, w)
        nu_q = self.family(self.grid.quadrature_points, w)
        return log_nu, nu_q

    def references(self) -> dict:
        """Held-out samples and their FEM solutions, solved once and cached on disk (by
        rank 0; the other ranks read them)."""
        if self.world == 1:
            return self._references()
        ours = self._references() if self.rank == 0 else None
        torch.distributed.barrier()
        return ours if ours is not None else self._references()

    def _references(self) -> dict:
        path = self.out / "references.pt"
        n = self.config.training["validation_samples"]
        key = {"problem": self.config.problem, "sampler": self.config.sampler, "n": n}
        if path.exists():
            try:
                cached = torch.load(path, map_location=self.device, weights_only=True)
            except Exception:  # a damaged cache is solved again
                cached = {}
            if cached.get("key") == key:
                return cached
        w = self.parameters_for(VALIDATION_STREAM, n)
        log_nu, nu_q = self.fields(w)
        t0 = time.perf_counter()
        solutions = self.grid.solve(nu_q)
        seconds = (time.perf_counter() - t0) / n
        cached = {
            "key": key,
            "w": w,
            "log_nu": log_nu,
            "nu_q": nu_q,
            "u": solutions,
            "fem_solve_s_per_sample": seconds,
        }
        torch_save_atomic(cached, path)
        return cached

    # ------------------------------------------------------------------ optimisation
    def learning_rate(self, step: int) -> float:
        t = self.config.training
        if t["schedule"] == "constant":
            return t["lr"]
        return 0.5 * t["lr"] * (1.0 + math.cos(math.pi * min(step, t["steps"]) / t["steps"]))

    def loss(self, log_nu: torch.Tensor, nu_q: torch.Tensor) -> torch.Tensor:
        t = self.config.training
        prediction = self.model(log_nu)
        if t["precondition"] == "jacobi":
            # the energy's gradient at node i is the residual r_i, which scales with the local
            # nu; dividing it by K_ii (relative to the sample's mean K_ii) lets nodes in
            # low-nu regions learn as fast as the rest. Its zeros are the FEM solution still.
            diagonal = self.grid.stiffness_diagonal(nu_q)
            scale = diagonal.mean(dim=(-2, -1), keepdim=True)
            weight = torch.where(self.grid.fixed_mask, 1.0, scale / diagonal)
            prediction.register_hook(lambda grad: grad * weight)
        energies = self.grid.energy(prediction, nu_q)
        if t["loss_scale"] == "geometric-mean":
            energies = energies / torch.exp(nu_q.log().mean(dim=(-2, -1)))
        return energies.mean()

    def train_step(self) -> float:
        t = self.config.training
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        # every rank draws the whole batch (cheap) and keeps its own share of it
        w = self.parameters_for(self.step, t["batch_size"])[self.rank :: self.world]
        log_nu, nu_q = self.fields(w)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(log_nu, nu_q)
        if distributed.any_rank(not bool(torch.isfinite(loss)), self.device):
            raise TrainingStopped(
                f"the loss is not finite at step {self.step}; the last good checkpoint "
                f"(step {self._saved_step}) is kept in {self.out}. Lower [training] lr and "
                "resume, or start again."
            )
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return loss.item()

    @torch.no_grad()
    def validate(self, references: dict) -> dict:
        self.model.eval()
        pred = torch.cat([self.model(chunk) for chunk in references["log_nu"].split(16)])
        rel = relative_l2(pred, references["u"])
        return {
            "val_rel_l2_mean": rel.mean().item(),
            "val_rel_l2_max": rel.max().item(),
            "val_max_abs_err": (pred - references["u"]).abs().max().item(),
        }

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save(self) -> None:
        if self.rank != 0:
            self._saved_step = self.step
            return
        with interrupts_deferred():  # the file and _saved_step change together
            self._save_checkpoint()
        write_json_atomic(self.out / "history.json", self.history)

    def _save_checkpoint(self) -> None:
        torch_save_atomic(
            {
                "model": self.network.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "step": self.step,
                "seconds": self.seconds,
                "history": self.history,
                "config": self.config.to_dict(),
                "torch": str(torch.__version__),
            },
            self.checkpoint_path,
        )
        self._saved_step = self.step

    def load(self) -> None:
        path = self.checkpoint_path
        if not path.exists():
            raise DfemError(f"--resume: no checkpoint at {path}; train without --resume first")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # a truncated or foreign file
            raise DfemError(f"cannot read the checkpoint {path}: {err}") from None
        if state.get("config") != self.config.to_dict():
            raise DfemError(
                f"the checkpoint in {self.out} was written with a different config; resume "
                "with the same config file, or train into a new folder"
            )
        self.network.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.seconds = state["step"], state["seconds"]
        self.history = state["history"]
        self._saved_step = self.step

    def _check_divergence(self, validation: dict) -> None:
        error = validation["val_rel_l2_mean"]
        best = min((h["val_rel_l2_mean"] for h in self.history), default=math.inf)
        if not math.isfinite(error) or (error > 1.0 and error > 10.0 * best):
            raise TrainingStopped(
                f"training diverged at step {self.step}: validation relative L2 error "
                f"{error:.3g} (best so far {best:.3g}); the last good checkpoint (step "
                f"{self._saved_step}) is kept in {self.out}. Lower [training] lr and resume."
            )

    # ------------------------------------------------------------------ the loop
    def run(self, resume: bool = False, stop_after: int | None = None, report=None) -> dict:
        """Train until ``steps`` (or the time budget, or ``stop_after`` more steps).

        ``report(step, loss, validation)`` is called after each step (``validation`` is
        None between validations), e.g. to move a progress bar.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        t = self.config.training
        self._saved_step = 0
        if resume:
            self.load()
        references = self.references()
        budget = t["time_budget_s"]
        last = self.step + stop_after if stop_after is not None else t["steps"]
        last = min(last, t["steps"])
        while self.step < last:
            t0 = time.perf_counter()
            loss = self.train_step()
            self.seconds += time.perf_counter() - t0
            validation = None
            if self.step % t["validate_every"] == 0 or self.step == last:
                validation = self.validate(references)
                self._check_divergence(validation)
                self.history.append(
                    {"step": self.step, "loss": loss, "seconds": self.seconds, **validation}
                )
                self.save()
            if report is not None:
                report(self.step, loss, validation)
            if budget is not None and distributed.any_rank(self.seconds >= budget, self.device):
                break
        if not self.history or self.history[-1]["step"] != self.step:
            self.history.append(
                {"step": self.step, "seconds": self.seconds, **self.validate(references)}
            )
            self.save()
        return self.history[-1]
