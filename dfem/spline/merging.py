"""Approximate k-piece fit for long signals: merging rounds, then the exact program on the
boundaries that survive.

The merging idea follows Acharya, Diakonikolas, Hegde, Li and Schmidt (2015): start from the
finest runs (``d + 1`` points each); in each round pair up neighbouring runs and merge every
pair except the ``candidates // 2`` pairs whose merge would add the most squared error. A
round costs O(n) and the run count falls geometrically, so O(log n) rounds leave about
``candidates`` runs. The dynamic program of :mod:`dfem.spline.exact` then picks the best
``k``-piece partition among their boundaries, O(k candidates^2) instead of O(k n^2).

Last, each knot moves to its best position between its two neighbours (coordinate descent,
odd then even knots, each move an exact O(n) search), until no knot moves. The result is a
fit whose knots are each optimal given the others; its error is never below the optimum and
``docs/spline.md`` reports the measured gap.

Each run is carried by its statistics ``(start, length, sum x^2, nu_0..nu_d)`` in its own
centred coordinate (:mod:`dfem.spline.moments`); merging re-expands both halves into the
coordinate of the union, which stays accurate however long the signal. The Gram matrix of a
run depends on its length only and comes from a table.
"""

from __future__ import annotations

import math

import torch

from dfem.spline.exact import dynamic_program, length_whitening, run_errors
from dfem.spline.moments import fit_error, reexpand

__all__ = ["approximate_partition"]


def _split(stats: torch.Tensor):
    return stats[..., 0], stats[..., 1], stats[..., 2], stats[..., 3:]


def _errors(stats: torch.Tensor, white: torch.Tensor) -> torch.Tensor:
    """Fit error of each run; ``white`` is :func:`length_whitening`'s table."""
    _, length, sum_sq, nu = _split(stats)
    degree = nu.shape[-1] - 1
    return fit_error(sum_sq, nu, white[length.long()], length >= degree + 1)


def _merge(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Statistics of the union of adjacent runs ``left`` and ``right``.

    A point with coordinate ``u_c`` in a child of length ``L_c`` starting ``o`` points after
    the union's start has union coordinate ``(L_c / L) u_c + (L_c - L + 2 o) / L``.
    """
    start, len_l, sq_l, nu_l = _split(left)
    _, len_r, sq_r, nu_r = _split(right)
    length = len_l + len_r
    scale = length.clamp(min=1.0)  # two empty runs merge into an empty one
    nu = reexpand(nu_l, len_l / scale, -len_r / scale) + reexpand(
        nu_r, len_r / scale, len_l / scale
    )
    head = torch.stack([start, length, sq_l + sq_r], dim=-1)
    return torch.cat([head, nu], dim=-1)


def _run_stats(x: torch.Tensor, bounds: torch.Tensor, degree: int) -> torch.Tensor:
    """Statistics of the runs ``[bounds[i], bounds[i + 1])`` of each signal; ``bounds``
    (batch, m + 1) is sorted from 0 to n and may repeat (empty runs have zero statistics)."""
    batch, n = x.shape
    runs = bounds.shape[1] - 1
    position = torch.arange(n, device=x.device).expand(batch, n).contiguous()
    run = torch.searchsorted(bounds[:, 1:].contiguous(), position, right=True)  # (batch, n)
    start = bounds.gather(1, run)
    length = (bounds.gather(1, run + 1) - start).to(x.dtype)
    u = (2.0 * (position - start).to(x.dtype) - (length - 1.0)) / length
    powers = u.unsqueeze(-1) ** torch.arange(degree + 1, device=x.device)  # (b, n, d+1)
    values = torch.cat([x.square().unsqueeze(-1), x.unsqueeze(-1) * powers], dim=-1)
    slot = (run + runs * torch.arange(batch, device=x.device)[:, None]).reshape(-1)
    sums = x.new_zeros(batch * runs, values.shape[-1]).index_add_(0, slot, values.flatten(0, 1))
    head = torch.stack([bounds[:, :-1].to(x.dtype), bounds.diff(dim=-1).to(x.dtype)], dim=-1)
    return torch.cat([head, sums.reshape(batch, runs, -1)], dim=-1)


def _merge_round(stats: torch.Tensor, keep: int, white: torch.Tensor) -> torch.Tensor:
    """Merge all neighbouring pairs ``(2i, 2i + 1)`` except the ``keep`` costliest."""
    batch, runs, width = stats.shape
    pairs = runs // 2
    left, right = stats[:, 0 : 2 * pairs : 2], stats[:, 1 : 2 * pairs : 2]
    merged = _merge(left, right)
    added = _errors(merged, white) - _errors(left, white) - _errors(right, white)
    kept = torch.zeros(batch, pairs, dtype=torch.bool, device=stats.device)
    kept.scatter_(1, torch.topk(added, keep, dim=-1).indices, True)

    # each pair becomes one run (merged) or stays two; an odd last run passes through
    count = torch.where(kept, 2, 1)
    if runs % 2:
        count = torch.cat([count, count.new_ones(batch, 1)], dim=-1)
    offset = torch.cumsum(count, dim=-1) - count
    out = stats.new_empty(batch, runs - (pairs - keep), width)
    rows = torch.arange(batch, device=stats.device)[:, None]
    first = torch.where(kept.unsqueeze(-1), left, merged)
    out[rows, offset[:, :pairs]] = first
    split = offset[:, :pairs] + 1
    out[rows.expand(batch, pairs)[kept], split[kept]] = right[kept]
    if runs % 2:
        out[:, -1] = stats[:, -1]
    return out


def _candidate_costs(x: torch.Tensor, bounds: torch.Tensor, white: torch.Tensor) -> torch.Tensor:
    """``C[b, e, s]``: error of ``x[b, bounds[s] : bounds[e]]`` (``+inf`` unless
    ``s < e`` and the run has at least ``d + 1`` points), for the dynamic program.

    Each candidate run's moments are re-expanded into the coordinate
    ``w = (tau - bounds[s]) / n`` anchored at every span start ``s`` and summed
    cumulatively over the runs that follow; a last re-expansion puts each span into its
    own centred coordinate. Anchoring at the span's own start keeps short spans far
    from the origin accurate, and the work is O(m^2 d^2) for m candidates, whatever n.
    """
    batch, n = x.shape
    degree = white.shape[-1] - 1
    stats = _run_stats(x, bounds, degree)
    _, length, sum_sq, nu = _split(stats)  # (b, m)
    runs = length.shape[1]
    anchor = bounds[:, :-1].to(x.dtype)
    centre = anchor + (length - 1.0) / 2.0
    # a point tau = centre_r + (L_r / 2) u_r of run r has w = (L_r / 2n) u_r + beta_sr
    beta = (centre.unsqueeze(1) - anchor.unsqueeze(2)) / n  # (b, s, r)
    alpha = (length / (2.0 * n)).unsqueeze(1).expand_as(beta)
    after = torch.ones(runs, runs, dtype=torch.bool, device=x.device).triu()  # r >= s
    moments = reexpand(nu.unsqueeze(1), alpha, beta) * after.unsqueeze(-1)
    moments = torch.cumsum(moments, dim=2)  # span [bounds[s], bounds[r + 1])
    span_sq = torch.cumsum(sum_sq.unsqueeze(1) * after, dim=2)
    span = bounds[:, 1:].unsqueeze(1) - bounds[:, :-1].unsqueeze(2)  # (b, s, r): points
    points = span.clamp(min=1).to(x.dtype)
    nu_span = reexpand(moments, 2.0 * n / points, -(points - 1.0) / points)
    valid = after & (span >= degree + 1)
    errors = fit_error(span_sq, nu_span, white[span.clamp(0, n)], valid)
    costs = torch.full((batch, runs + 1, runs + 1), math.inf, dtype=x.dtype, device=x.device)
    costs[:, 1:, :runs] = errors.transpose(1, 2)
    return costs


def refine_knots(
    x: torch.Tensor,
    breaks: torch.Tensor,
    pieces: torch.Tensor,
    white: torch.Tensor,
    sweeps: int = 50,
) -> torch.Tensor:
    """Move each interior knot to its best position between its neighbours, odd knots then
    even knots (each half at once, since a knot's best place depends only on its
    neighbours), until no knot moves or ``sweeps`` sweeps. The error never increases.
    ``white`` is :func:`length_whitening`'s table.
    """
    degree = white.shape[-1] - 1
    batch, n = x.shape
    k = breaks.shape[1] - 1
    breaks = breaks.clone()
    flipped = x.flip(-1)
    position = torch.arange(n + 1, device=x.device)
    slack = 1e-12 * x.square().sum(-1, keepdim=True) + torch.finfo(x.dtype).tiny
    for _ in range(sweeps):
        moved = False
        for first in (1, 2):
            knot = torch.arange(first, k, 2, device=x.device)
            if knot.numel() == 0:
                continue
            before, after = breaks[:, knot - 1], breaks[:, knot + 1]  # (batch, q)
            left = run_errors(x, degree, before, white)  # [.., l]: error of [a, a + l + 1)
            right = run_errors(flipped, degree, n - after, white)  # error of [c - l - 1, c)
            p = position.view(1, 1, -1)
            inside = (p > before.unsqueeze(-1)) & (p < after.unsqueeze(-1))
            left_at = (p - before.unsqueeze(-1) - 1).clamp(0, n - 1)
            right_at = (after.unsqueeze(-1) - p - 1).clamp(0, n - 1)
            total = left.gather(-1, left_at) + right.gather(-1, right_at)
            total = torch.where(inside, total, torch.full_like(total, math.inf))
            best, place = total.min(dim=-1)
            current = total.gather(-1, breaks[:, knot].unsqueeze(-1)).squeeze(-1)
            move = (knot < pieces.unsqueeze(-1)) & (best < current - slack)
            if bool(move.any()):
                moved = True
                breaks[:, knot] = torch.where(move, place, breaks[:, knot])
        if not moved:
            break
    return breaks


def approximate_partition(
    x: torch.Tensor, k: int, degree: int, candidates: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Near-optimal partition of each row of ``x`` (batch, n) into at most ``k`` pieces.

    Parameters
    ----------
    candidates : int, optional
        Runs left by the merging rounds (default ``max(8 k, 32)``); more is slower and
        closer to the exact fit.

    Returns ``(breaks, pieces)`` as :func:`dfem.spline.exact.dynamic_program`.
    """
    batch, n = x.shape
    candidates = max(8 * k, 32) if candidates is None else int(candidates)
    candidates = max(candidates, k + 1)
    width = degree + 1
    finest = torch.arange(0, n - width + 1, width, device=x.device)
    finest = torch.cat([finest[: max(n // width, 1)], finest.new_tensor([n])])
    white = length_whitening(n, degree, x.dtype, x.device)
    stats = _run_stats(x, finest.expand(batch, -1), degree)
    keep = candidates // 2
    while stats.shape[1] > candidates and stats.shape[1] // 2 > keep:
        stats = _merge_round(stats, keep, white)
    # the merging keeps sharp features; a uniform grid of as many boundaries covers the
    # smooth stretches where early rounds, seeing only d + 1 noisy points, merge too much
    grid = torch.linspace(0, n, candidates + 1, device=x.device).round().long()
    coarse = torch.cat([stats[..., 0].long(), grid.expand(batch, -1)], dim=-1)
    # a knot can only sit on a run boundary; when the best one falls inside a run of d + 1
    # points the program brackets it with a tiny piece instead, so solve again with every
    # position near the chosen knots on offer, then polish knot by knot
    near = torch.arange(-2 * width, 2 * width + 1, device=x.device)
    bounds, knots = coarse.sort(-1).values, None
    energy = x.square().sum(-1)
    for _ in range(4):
        breaks, pieces = dynamic_program(_candidate_costs(x, bounds, white), k, energy)
        found = refine_knots(x, bounds.gather(1, breaks), pieces, white)
        if knots is not None and torch.equal(found, knots):
            break
        knots = found
        around = (knots[:, 1:-1, None] + near).clamp(0, n).flatten(1)
        bounds = torch.cat([coarse, knots, around], dim=-1).sort(-1).values
    return knots, pieces
