"""The exact k-piece fit: errors of every run, then a dynamic program over split points.

For a signal ``x`` of length ``n``, ``E(s, e)`` is the squared error of the best degree-``d``
polynomial on the run ``[s, e)`` (:mod:`dfem.spline.moments`), and

.. math::  D_1(e) = E(0, e), \\qquad D_j(e) = \\min_{s < e} D_{j-1}(s) + E(s, e),

so ``D_j(n)`` is the least error with exactly ``j`` pieces. The best fit with at most ``k``
pieces takes the fewest pieces that reach ``min_j D_j(n)``; ties between split points go to
the leftmost one (``torch.min`` returns the first minimum). Each step of the recursion is
one batched ``(n + 1) x (n + 1)`` tensor operation; the loop runs over ``j`` only.
"""

from __future__ import annotations

import math

import torch

from dfem.spline.moments import fit_error, reexpand, run_coordinate, whitening

__all__ = [
    "best_partition",
    "dynamic_program",
    "end_start_layout",
    "length_whitening",
    "run_errors",
]

# Elements per batch chunk of the (batch, n, n, d + 1) run moments: about 256 MB in float64.
CHUNK_ELEMENTS = 2**25


def length_whitening(n: int, degree: int, dtype, device) -> torch.Tensor:
    """``W[L]`` of :func:`dfem.spline.moments.whitening` for runs of ``L = 0..n`` points
    (identity for ``L <= degree``): the Gram matrix of a run depends on its length only."""
    tau = torch.arange(n, dtype=dtype, device=device)
    powers = tau.unsqueeze(-1) ** torch.arange(2 * degree + 1, device=device)  # (n, 2d+1)
    alpha, beta = run_coordinate(tau + 1.0)
    gram = reexpand(torch.cumsum(powers, dim=0), alpha, beta)  # g_m for L = 1..n
    gram = torch.cat([gram.new_zeros(1, 2 * degree + 1), gram])
    return whitening(gram, torch.arange(n + 1, device=device) > degree)


def run_errors(
    x: torch.Tensor,
    degree: int,
    starts: torch.Tensor | None = None,
    white: torch.Tensor | None = None,
) -> torch.Tensor:
    """``E[b, s, l]``: error of the best fit of ``x[b, s : s + l + 1]`` (``+inf`` for runs
    that leave the signal or have fewer than ``degree + 1`` points).

    The moments ``sum_tau x_{s+tau} tau^j`` of all runs starting at ``s`` are cumulative
    sums along a Hankel view ``x[s + tau]`` of the signal, re-expanded into each run's
    centred coordinate; O(n^2 d) work and memory per signal.

    Parameters
    ----------
    starts : long tensor (batch, m), optional
        Only the runs starting there (``E`` is then (batch, m, n)); default every start.
    white : tensor (n + 1, d + 1, d + 1), optional
        :func:`length_whitening` for this ``n``, when the caller already has it.
    """
    batch, n = x.shape
    tau = torch.arange(n, dtype=x.dtype, device=x.device)
    padded = torch.cat([x, x.new_zeros(batch, n)], dim=-1)
    if starts is None:
        starts = torch.arange(n, device=x.device).expand(batch, n)
        runs = padded.unfold(-1, n, 1)[:, :n, :]  # runs[b, s, tau] = x[b, s + tau] (a view)
    else:
        index = (starts.unsqueeze(-1) + torch.arange(n, device=x.device)).clamp(max=2 * n - 1)
        runs = padded.gather(1, index.reshape(batch, -1)).reshape(*index.shape)

    powers = tau.unsqueeze(-1) ** torch.arange(degree + 1, device=x.device)  # (n, d+1)
    alpha, beta = run_coordinate(tau + 1.0)
    if white is None:
        white = length_whitening(n, degree, x.dtype, x.device)
    white = white[1:]  # by run length l + 1
    valid = (tau >= degree) & (starts.unsqueeze(-1) + tau < n)  # (b, s, l)

    raw = torch.cumsum(runs.unsqueeze(-1) * powers, dim=-2)
    nu = reexpand(raw, alpha, beta)  # (b, s, l, d+1)
    sum_sq = torch.cumsum(runs.square(), dim=-1)
    return fit_error(sum_sq, nu, white, valid)


def end_start_layout(errors: torch.Tensor) -> torch.Tensor:
    """From ``E[b, s, l]`` (run ``[s, s + l + 1)``) to ``C[b, e, s]`` = error of ``[s, e)`` for
    ``e, s = 0..n``, ``+inf`` where ``s >= e``; the recursion then reduces the last axis."""
    batch, n, _ = errors.shape
    pos = torch.arange(n + 1, device=errors.device)
    end, start = pos[:, None], pos[None, :]
    inside = (start < end) & (start < n)
    flat = torch.where(inside, start * n + (end - start - 1), 0)
    table = errors.reshape(batch, n * n)[:, flat.reshape(-1)].reshape(batch, n + 1, n + 1)
    return torch.where(inside, table, torch.full_like(table, math.inf))


def dynamic_program(
    costs: torch.Tensor, k: int, energy: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best split of ``[0, N)`` into at most ``k`` runs given ``costs[b, e, s]`` (``N + 1``
    positions, ``+inf`` for runs that are not allowed).

    ``energy`` (batch,) is the scale of each signal (``sum x^2``): errors within
    ``1e-12 energy`` of the least one count as ties, and the fewest pieces win them.

    Returns
    -------
    breaks : long tensor (batch, k + 1)
        ``0 = breaks[0] < ... < breaks[p] = N``; entries after the last piece repeat ``N``.
    pieces : long tensor (batch,)
        The number of pieces ``p`` used (the fewest that reach the least error).
    """
    batch, positions, _ = costs.shape
    last = positions - 1
    best = costs[:, :, 0]
    totals = [best[:, last]]
    choices = []
    for _ in range(2, k + 1):
        best, choice = torch.min(best[:, None, :] + costs, dim=-1)
        choices.append(choice)
        totals.append(best[:, last])
    totals = torch.stack(totals, dim=-1)  # (batch, k): least error with exactly j pieces
    least = totals.min(dim=-1, keepdim=True).values
    # rounding can make an extra piece "win" by 1e-16 of the signal energy
    slack = 1e-12 * energy.unsqueeze(-1) + torch.finfo(costs.dtype).tiny
    pieces = torch.argmax((totals <= least + slack).to(torch.int8), dim=-1) + 1

    breaks = torch.full((batch, k + 1), last, dtype=torch.long, device=costs.device)
    breaks[:, 0] = 0
    end = torch.full((batch,), last, dtype=torch.long, device=costs.device)
    for j in range(k, 1, -1):
        active = pieces >= j
        start = choices[j - 2].gather(1, end[:, None]).squeeze(1)
        breaks[:, j - 1] = torch.where(active, start, breaks[:, j - 1])
        end = torch.where(active, start, end)
    return breaks, pieces


def best_partition(x: torch.Tensor, k: int, degree: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact best partition of each row of ``x`` (batch, n) into at most ``k`` pieces of at
    least ``degree + 1`` points; see :func:`dynamic_program` for the return values."""
    batch, n = x.shape
    per_signal = n * n * (degree + 3)
    chunk = max(1, CHUNK_ELEMENTS // per_signal)
    results = [
        dynamic_program(end_start_layout(run_errors(part, degree)), k, part.square().sum(-1))
        for part in torch.split(x, chunk)
    ]
    return torch.cat([r[0] for r in results]), torch.cat([r[1] for r in results])
