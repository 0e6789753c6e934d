"""The MPI communicator and the reductions a distributed run needs.

mpi4py is imported only here and only when asked for: ``import dfem`` never starts
MPI. :func:`launched_by_mpirun` tells from the environment (without importing mpi4py)
whether this process is one of several started by ``mpirun``/``mpiexec``/``srun``.
"""

from __future__ import annotations

import os
import time

import torch

from dfem.exceptions import DfemError

__all__ = ["allreduce", "allreduce_sum", "launched_by_mpirun", "rank_label", "settle_ranks",
           "world", "world_size"]

#: Environment variables in which launchers give the number of processes.
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE")


def world_size() -> int:
    """The number of processes the launcher started (1 without a launcher), read from the
    environment."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


def launched_by_mpirun() -> bool:
    """Whether this process is one of two or more started by an MPI launcher."""
    return world_size() > 1


def rank_label() -> str:
    """``"[rank r of n] "`` in a process started by an MPI launcher, else ``""``: the prefix
    of a rank's messages."""
    if not launched_by_mpirun():
        return ""
    rank = next((os.environ[k] for k in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")
                 if k in os.environ), "?")
    return f"[rank {rank} of {world_size()}] "


#: How long a failed rank waits for the others to fail too before it stops the run.
SETTLE_S = 20.0


def settle_ranks(status: int, wait_s: float | None = None) -> int:
    """``status``, once every rank has got as far: the exit of a failed MPI rank.

    An error that every rank meets (bad input read by all, a solve that stops short on
    all) lets each rank exit with its status. A rank that fails alone would leave the
    others waiting in their next collective call for ever, so after ``wait_s``
    (:data:`SETTLE_S`) without the others it aborts the run (``MPI_Abort`` with
    ``status``). Does nothing on success, outside MPI, or before MPI was started.
    """
    if status == 0 or not launched_by_mpirun():
        return status
    import sys

    if "mpi4py.MPI" not in sys.modules:
        return status  # MPI never started here, so no rank waits on this one
    from mpi4py import MPI

    if not MPI.Is_initialized() or MPI.Is_finalized():
        return status
    request = MPI.COMM_WORLD.Ibarrier()
    deadline = time.monotonic() + (SETTLE_S if wait_s is None else wait_s)
    while not request.Test():
        if time.monotonic() > deadline:
            MPI.COMM_WORLD.Abort(status)
        time.sleep(0.01)
    return status


def world():
    """``MPI.COMM_WORLD`` of mpi4py; a :class:`DfemError` saying how to install it without."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DfemError(
            "a distributed run needs mpi4py, which is not installed: pip install mpi4py "
            "(it uses the system's MPI; see docs/distributed.md)."
        ) from exc
    return MPI.COMM_WORLD


def allreduce(value, op: str, comm):
    """``value`` (a number) reduced over the ranks of ``comm`` by ``op``: "sum", "max" or
    "min"."""
    from mpi4py import MPI

    return comm.allreduce(value, op={"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op])


class _AllreduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, value, comm):
        from mpi4py import MPI

        data = value.detach().cpu().contiguous().numpy().copy()
        comm.Allreduce(MPI.IN_PLACE, data, op=MPI.SUM)
        return torch.as_tensor(data, dtype=value.dtype, device=value.device)

    @staticmethod
    def backward(ctx, grad):
        # d(sum_r J_r)/dJ_r = 1: every rank back-propagates the same incoming gradient
        # through its own part
        return grad, None


def allreduce_sum(value, comm=None):
    """``sum over ranks of value`` (a number or a tensor of the same shape on every rank),
    differentiable: the gradient of the sum with respect to each rank's ``value`` is the
    incoming gradient, so ``allreduce_sum(J_r).backward()`` on every rank gives every rank
    the gradient of the global objective with respect to its own unknowns.

    The sum of per-cell integrals (energies, errors, compliance) over the local meshes
    is the integral over the whole mesh: each cell belongs to one rank.
    """
    comm = world() if comm is None else comm
    if not torch.is_tensor(value):
        return comm.allreduce(value)
    return _AllreduceSum.apply(value.to(torch.float64) if not value.is_floating_point()
                               else value, comm)
