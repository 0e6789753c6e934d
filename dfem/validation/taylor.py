"""Taylor tests: check a gradient by how fast the Taylor remainders fall.

For an objective ``J(m)``, a direction ``dm`` and steps ``h_k = h_0 2^{-k}``,

.. math:: R_0(h) = |J(m + h\\,dm) - J(m)| = O(h), \\qquad
          R_1(h) = |J(m + h\\,dm) - J(m) - h\\,\\nabla J(m) \\cdot dm| = O(h^2).

The observed rates ``log2(R(h_k) / R(h_{k+1}))`` are 1 and 2 when the gradient is
right; a wrong gradient leaves ``R_1`` falling like ``h`` (rate 1). This is the check
dolfin-adjoint users run (``taylor_test``), written for torch: the gradient is
whatever autograd (and the adjoint solves behind ``Poisson.solve``) returns.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from dfem.exceptions import DfemError


@dataclass
class TaylorTest:
    """The outcome of :func:`check_gradients`.

    Attributes
    ----------
    steps : list of float
        The steps ``h_k``.
    zeroth, first : list of float
        The remainders ``R_0(h_k)`` and ``R_1(h_k)``.
    zeroth_rates, first_rates : list of float
        ``log2`` of the ratios of consecutive remainders (expected 1 and 2).
    derivative : float
        The directional derivative ``grad J . dm`` that was tested.
    value : float
        ``J(m)``.
    """

    steps: list
    zeroth: list
    first: list
    zeroth_rates: list
    first_rates: list
    derivative: float
    value: float

    def passed(self, tolerance: float = 0.1) -> bool:
        """Whether the rates are 1 and 2 within ``tolerance``.

        ``R_1`` must show rate 2 at every step (its smallest rate is checked): a wrong
        gradient leaves an O(h) term that takes over as h falls, and a remainder that
        stops falling at round-off also fails, so choose ``h0`` where ``R_1`` is well
        above round-off. ``R_0`` tends to rate 1 only as h falls (its ``h^2`` term can
        dominate at the first steps), so its last rate is checked.
        """
        return (abs(self.zeroth_rates[-1] - 1.0) <= tolerance
                and abs(min(self.first_rates) - 2.0) <= tolerance)

    def report(self) -> str:
        """A table of steps, remainders and rates."""
        lines = [f"Taylor test: J = {self.value:.6g}, dJ.dm = {self.derivative:.6g}",
                 f"{'h':>10} {'R0':>11} {'rate':>6} {'R1':>11} {'rate':>6}"]
        for k, h in enumerate(self.steps):
            r0 = f"{self.zeroth_rates[k - 1]:6.3f}" if k else "     -"
            r1 = f"{self.first_rates[k - 1]:6.3f}" if k else "     -"
            lines.append(f"{h:10.3e} {self.zeroth[k]:11.3e} {r0} {self.first[k]:11.3e} {r1}")
        verdict = "passed" if self.passed() else "FAILED"
        lines.append(f"rates: R0 {self.zeroth_rates[-1]:.3f} (last, expect 1), "
                     f"R1 {min(self.first_rates):.3f} (smallest, expect 2): {verdict}")
        return "\n".join(lines)

    __str__ = report


def check_gradients(
    objective: Callable[..., torch.Tensor],
    params: torch.Tensor | Sequence[torch.Tensor],
    directions: torch.Tensor | Sequence[torch.Tensor] | None = None,
    h0: float = 1e-2,
    n_steps: int = 5,
    seed: int = 0,
) -> TaylorTest:
    """Run a Taylor test of ``objective``'s autograd gradient at ``params``.

    Parameters
    ----------
    objective : callable
        ``objective(*params)`` returns a scalar tensor, differentiable in the params.
    params : tensor or sequence of tensors
        The point ``m``; not modified.
    directions : tensor or sequence of tensors, optional
        The direction ``dm`` (same shapes as ``params``). By default a random normal
        direction (seeded) scaled entrywise by ``max(|m|_inf, 1)``; give one explicitly
        to hold some entries fixed (e.g. boundary nodes when testing node coordinates).
    h0 : float
        The first step; then ``n_steps`` steps, halving each time.
    n_steps : int
        At least 2.
    seed : int
        Seed of the random direction.

    Returns
    -------
    TaylorTest
        Remainders and rates; ``result.passed()`` and ``print(result)``.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([0.3, -1.2], dtype=torch.float64)
    >>> check_gradients(lambda x: (x.sin() * x.exp()).sum(), x).passed()
    True
    """
    single = torch.is_tensor(params)
    params = [params] if single else list(params)
    if not params or not all(torch.is_tensor(p) and p.is_floating_point() for p in params):
        raise DfemError("params must be a floating-point tensor or a sequence of them.")
    if not (isinstance(n_steps, int) and n_steps >= 2):
        raise DfemError(f"n_steps must be an integer >= 2 (rates need two steps), got {n_steps!r}.")
    if not h0 > 0:
        raise DfemError(f"h0 must be positive, got {h0!r}.")
    m = [p.detach().clone() for p in params]
    dm = _directions(m, directions, single, seed)

    def value(shift: float) -> float:
        with torch.no_grad():
            return float(objective(*[p + shift * d for p, d in zip(m, dm, strict=True)]))

    leaves = [p.clone().requires_grad_(True) for p in m]
    j0 = objective(*leaves)
    if not (torch.is_tensor(j0) and j0.numel() == 1):
        raise DfemError("the objective must return a scalar tensor.")
    grads = torch.autograd.grad(j0, leaves, allow_unused=True)
    derivative = sum(float((g * d).sum()) for g, d in zip(grads, dm, strict=True) if g is not None)
    j0 = float(j0.detach())
    steps = [h0 * 0.5**k for k in range(n_steps)]
    zeroth, first = [], []
    for h in steps:
        jh = value(h)
        zeroth.append(abs(jh - j0))
        first.append(abs(jh - j0 - h * derivative))
    return TaylorTest(steps, zeroth, first, _rates(zeroth), _rates(first), derivative, j0)


def _directions(m, directions, single, seed) -> list:
    if directions is None:
        generator = torch.Generator().manual_seed(int(seed))
        return [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
                * max(float(p.abs().max()) if p.numel() else 1.0, 1.0) for p in m]
    dm = [directions] if single and torch.is_tensor(directions) else list(directions)
    if len(dm) != len(m) or any(d.shape != p.shape for d, p in zip(dm, m, strict=True)):
        raise DfemError(
            f"directions must match params in number and shape: params "
            f"{[tuple(p.shape) for p in m]}, directions {[tuple(d.shape) for d in dm]}."
        )
    return [d.detach().to(p) for d, p in zip(dm, m, strict=True)]


def _rates(remainders) -> list:
    return [math.log2(a / b) if a > 0 and b > 0 else float("nan")
            for a, b in itertools.pairwise(remainders)]
