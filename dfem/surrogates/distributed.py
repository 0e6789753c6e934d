"""Data-parallel training under ``torchrun``: process group, rank and collective decisions.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every function here is a no-op for a single
process, so the default stays one plain process. Under
``torchrun --nproc_per_node N dfem surrogate train ...`` each rank joins a process group
(``nccl`` on CUDA devices, ``gloo`` on the CPU), takes its share of every batch, and
DistributedDataParallel averages the gradients.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["any_rank", "setup", "world"]


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup(device: torch.device) -> tuple[torch.device, int, int]:
    """Join the process group ``torchrun`` describes (if any); returns the device this rank
    uses (``cuda:LOCAL_RANK`` on GPUs), its rank and the world size."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device, 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    rank, size = world()
    return device, rank, size


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (so all ranks stop together)."""
    if world()[1] == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)
