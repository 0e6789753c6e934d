"""Updates of the design variables: optimality criteria and MMA.

Optimality criteria (Bendsoe; the 88-line code's update) for ``min c(x)`` subject to
``V(x) <= V*`` and ``0 <= x <= 1``: with ``B_e = -dc_e / (lambda dV_e)``,

.. math:: x_e^{new} = \\max(0, x_e - m, \\min(1, x_e + m, x_e \\sqrt{B_e})),

the multiplier ``lambda`` found by bisection so that the volume of the new design (after
the filter and the projection) meets ``V*``; move limit ``m = 0.2``.

MMA (Svanberg 1987) is the method of moving asymptotes of the maintained ``mmapy``
package (Deetman's transcription of Svanberg's code, ``pip install mmapy``), driven
here with its state (the last two iterates and the asymptotes) kept explicitly, so that a
run resumed from a checkpoint continues exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from dfem.exceptions import DfemError


def oc_update(x: torch.Tensor, dc: torch.Tensor, dv: torch.Tensor, volume, target: float,
              move: float = 0.2, tolerance: float = 1e-3) -> torch.Tensor:
    """One optimality-criteria step (module docstring).

    Parameters
    ----------
    x, dc, dv : (n,) tensors
        The design, the objective's and the volume's gradients with respect to it.
    volume : callable
        ``volume(x)`` the volume fraction of a design (through filter and projection).
    target : float
        The allowed volume fraction.
    """
    x, dc, dv = x.detach(), dc.detach(), dv.detach()
    ratio = (-dc).clamp(min=0.0) / dv.clamp(min=1e-30)
    low, high = 0.0, 1e9
    with torch.no_grad():
        while (high - low) / (low + high) > tolerance:
            mid = 0.5 * (low + high)
            new = torch.maximum(torch.zeros_like(x), torch.maximum(x - move, torch.minimum(
                torch.ones_like(x), torch.minimum(x + move, x * torch.sqrt(ratio / mid)))))
            if float(volume(new)) > target:
                low = mid
            else:
                high = mid
    return new


class MMA:
    """The method of moving asymptotes for ``min f0(x)`` s.t. ``f_i(x) <= 0``, box bounds.

    Parameters
    ----------
    n : int
        Design variables.
    m : int
        Constraints.
    move : float
        mmapy's move limit (a fraction of the box).
    """

    def __init__(self, n: int, m: int = 1, move: float = 0.2, lower=0.0, upper=1.0):
        try:
            import mmapy  # noqa: F401
        except ImportError as exc:
            raise DfemError("optimizer 'mma' needs the mmapy package: pip install mmapy "
                            "(or use optimizer 'oc').") from exc
        self.n, self.m, self.move = n, m, float(move)
        self.lower = np.full((n, 1), float(lower))
        self.upper = np.full((n, 1), float(upper))
        self.iteration = 0
        self.xold1 = self.xold2 = None
        self.low, self.upp = self.lower.copy(), self.upper.copy()

    def step(self, x, f0, df0, f, df) -> np.ndarray:
        """The next iterate from the objective ``f0``, constraints ``f`` (m,) and gradients
        ``df0`` (n,), ``df`` (m, n) at ``x`` (n,)."""
        from mmapy import mmasub

        xval = np.asarray(x, dtype=np.float64).reshape(-1, 1)
        if self.xold1 is None:
            self.xold1 = xval.copy()
            self.xold2 = xval.copy()
        self.iteration += 1
        m = self.m
        result = mmasub(m, self.n, self.iteration, xval, self.lower, self.upper, self.xold1,
                        self.xold2, float(f0), np.asarray(df0, dtype=np.float64).reshape(-1, 1),
                        np.asarray(f, dtype=np.float64).reshape(m, 1),
                        np.asarray(df, dtype=np.float64).reshape(m, self.n), self.low, self.upp,
                        1.0, np.zeros((m, 1)), np.full((m, 1), 1000.0), np.ones((m, 1)),
                        move=self.move)
        xmma, self.low, self.upp = result[0], result[-2], result[-1]
        self.xold2, self.xold1 = self.xold1, xval
        return xmma.ravel()

    def state_dict(self) -> dict:
        """Everything the next step depends on (for an exact resume)."""
        return {"iteration": self.iteration, "xold1": self.xold1, "xold2": self.xold2,
                "low": self.low, "upp": self.upp}

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])
        for key in ("xold1", "xold2", "low", "upp"):
            value = state[key]
            setattr(self, key, None if value is None else np.asarray(value, dtype=np.float64))
