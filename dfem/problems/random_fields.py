"""Random diffusivity fields: the DSA paper's log-normal family and Karhunen–Loève fields.

Both are log-normal fields on the unit square built from the eigenpairs of the
exponential covariance ``C(s, t) = exp(-|s - t| / L)`` on ``[0, 1]``. Those are

.. math:: \\lambda = \\frac{2L}{1 + a^2 L^2}, \\qquad
          \\phi(s) = a L \\cos(a s) + \\sin(a s), \\qquad
          \\tan a = \\frac{2 a L}{a^2 L^2 - 1},

one eigenpair for each positive root ``a`` of the transcendental equation.

:class:`LogNormalDiffusivity` is the paper's four-parameter family (section 3,
appendix D.3) with ``L = 1/2``:

.. math:: \\nu(x, y; w) = \\exp\\Big(\\sum_{i=1}^{m} w_i \\lambda_i \\xi_i(x) \\eta_i(y)\\Big),
          \\quad \\lambda_i = \\frac{1}{1 + a_i^2/4}, \\quad
          \\xi_i(s) = \\eta_i(s) = \\frac{a_i}{2}\\cos(a_i s) + \\sin(a_i s),

with ``a = (1.72, 4.05, 6.85, 9.82)`` and ``w`` uniform on ``[-3, 3]^m``. The
modes are used as the paper writes them, *not* normalised, so that a
surrogate trained here sees the paper's range of fields (``nu`` from about 1e-4
to 1e4). :class:`KarhunenLoeve` is the general field with normalised modes
(a proper Karhunen–Loève expansion of a Gaussian field with variance
``sigma**2``), any number of modes and any correlation length.

Fields are callables of the points ``x`` (shape (..., 2)), evaluated with torch,
so they can be sampled at mesh nodes or quadrature points and differentiated
with respect to ``w``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import brentq

from dfem.exceptions import DfemError

#: The roots ``a_i`` the paper lists (``tan a = 4a / (a^2 - 4)``, ``L = 1/2``, rounded).
PAPER_ROOTS = (1.72, 4.05, 6.85, 9.82)


def exponential_covariance_roots(length: float, m: int) -> np.ndarray:
    """The first ``m`` positive roots of ``tan a = 2 a L / (a^2 L^2 - 1)``.

    Written as ``g(a) = (a^2 L^2 - 1) sin a - 2 a L cos a = 0``, which has
    exactly one root in each interval ``(k pi, (k + 1) pi)``, k = 0, 1, ...
    """
    if not 1e-3 <= length <= 1e3:
        raise DfemError(
            f"correlation length must lie in [1e-3, 1e3] (the domain is the unit square), "
            f"got {length!r}."
        )

    def g(a):
        return (a * a * length * length - 1.0) * math.sin(a) - 2.0 * a * length * math.cos(a)

    roots = []
    k = 0
    while len(roots) < m and k < 4 * m + 16:  # one root per interval; the cap guards round-off
        lo, hi = k * math.pi + 1e-12, (k + 1) * math.pi - 1e-12
        if g(lo) * g(hi) < 0:
            roots.append(brentq(g, lo, hi, xtol=1e-15, rtol=1e-15, maxiter=200))
        k += 1
    if len(roots) < m:
        raise DfemError(f"found only {len(roots)} of {m} covariance eigenvalues for L={length}.")
    return np.asarray(roots)


def sample_parameters(n: int, m: int, low=-3.0, high=3.0, method="uniform", seed=0):
    """``n`` parameter vectors in the box ``[low, high]^m``, deterministic under ``seed``.

    ``method`` is ``"uniform"`` (independent uniform draws), ``"sobol"`` (a scrambled
    Sobol sequence) or ``"lhs"`` (Latin hypercube). Returns a float64 tensor (n, m).
    """
    if not (isinstance(n, int) and n > 0 and isinstance(m, int) and m > 0):
        raise DfemError(f"need positive integer sample count and dimension, got n={n!r}, m={m!r}.")
    if not low < high:
        raise DfemError(f"the parameter box needs low < high, got [{low}, {high}].")
    if method == "uniform":
        generator = torch.Generator().manual_seed(int(seed))
        unit = torch.rand(n, m, generator=generator, dtype=torch.float64)
    elif method in ("sobol", "lhs"):
        from scipy.stats import qmc

        engine = (qmc.Sobol(m, scramble=True, seed=int(seed)) if method == "sobol"
                  else qmc.LatinHypercube(m, seed=int(seed)))
        unit = torch.as_tensor(engine.random(n), dtype=torch.float64)
    else:
        raise DfemError(f"unknown sampling method {method!r}; use uniform, sobol or lhs.")
    return low + (high - low) * unit


class _SeparableLogField:
    """``nu(x, y) = exp(mean + sum_i w_i s_i X_i(x) Y_i(y))`` for 1D modes X, Y."""

    def __init__(self, roots_x, roots_y, scales, length_x, length_y, norms_x, norms_y, mean=0.0):
        self.roots_x = torch.as_tensor(roots_x, dtype=torch.float64)
        self.roots_y = torch.as_tensor(roots_y, dtype=torch.float64)
        self.scales = torch.as_tensor(scales, dtype=torch.float64)
        self.length_x, self.length_y = float(length_x), float(length_y)
        self.norms_x = torch.as_tensor(norms_x, dtype=torch.float64)
        self.norms_y = torch.as_tensor(norms_y, dtype=torch.float64)
        self.mean = float(mean)

    @property
    def m(self) -> int:
        return len(self.scales)

    @staticmethod
    def _modes(s, roots, length, norms):
        a = roots.to(s)
        arg = s.unsqueeze(-1) * a
        return (a * length * torch.cos(arg) + torch.sin(arg)) / norms.to(s)

    def log_field(self, x: torch.Tensor, w) -> torch.Tensor:
        """``log nu`` at points ``x`` (..., 2) for parameters ``w`` (m,) or (batch, m).

        Returns shape ``x.shape[:-1]`` for one ``w``, or ``(batch, *x.shape[:-1])``.
        """
        w = self._check(w, x)
        modes = (self._modes(x[..., 0], self.roots_x, self.length_x, self.norms_x)
                 * self._modes(x[..., 1], self.roots_y, self.length_y, self.norms_y)
                 * self.scales.to(x))  # (..., m)
        if w.ndim == 1:
            return self.mean + modes @ w
        flat = modes.reshape(-1, self.m) @ w.T  # (points, batch)
        return self.mean + flat.T.reshape(w.shape[0], *x.shape[:-1])

    def __call__(self, x: torch.Tensor, w) -> torch.Tensor:
        """``nu`` at points ``x``; see :meth:`log_field`."""
        return torch.exp(self.log_field(x, w))

    def field(self, w):
        """``nu(x)`` for fixed parameters ``w``: a coefficient for :class:`dfem.Poisson`."""
        w = torch.as_tensor(w, dtype=torch.float64)
        self._check(w, None)
        return lambda x: self(x, w)

    def _check(self, w, x) -> torch.Tensor:
        if not torch.is_tensor(w):
            w = torch.as_tensor(w, dtype=torch.float64)
        if x is not None:
            w = w.to(dtype=x.dtype, device=x.device)
        if w.ndim not in (1, 2) or w.shape[-1] != self.m:
            raise DfemError(
                f"this field has {self.m} parameters; w must have shape ({self.m},) or "
                f"(batch, {self.m}), got {tuple(w.shape)}."
            )
        if not bool(torch.isfinite(w).all()):
            raise DfemError("the field parameters w must be finite numbers.")
        return w


class LogNormalDiffusivity(_SeparableLogField):
    """The DSA paper's diffusivity family ``nu(x, y; w)`` (see the module docstring).

    Parameters
    ----------
    roots : sequence of float
        The ``a_i``; the default is the paper's four (so ``m = 4``).
    bound : float
        ``w`` is drawn uniformly from ``[-bound, bound]^m`` by :meth:`sample`.

    Examples
    --------
    >>> family = LogNormalDiffusivity()
    >>> nu = family.field([-0.26, -0.77, -0.37, -0.92])   # a callable of x
    >>> w = family.sample(8, seed=0)                      # (8, 4) parameters
    """

    def __init__(self, roots=PAPER_ROOTS, bound: float = 3.0):
        roots = np.asarray(roots, dtype=float)
        if roots.ndim != 1 or len(roots) == 0 or not np.all((roots > 0) & (roots < 1e6)):
            raise DfemError(
                f"roots must be a non-empty list of positive numbers below 1e6 (the modes "
                f"oscillate with frequency a_i), got {roots!r}."
            )
        if not bound > 0:
            raise DfemError(f"bound must be positive, got {bound!r}.")
        ones = np.ones_like(roots)
        super().__init__(roots, roots, 1.0 / (1.0 + 0.25 * roots**2), 0.5, 0.5, ones, ones)
        self.bound = float(bound)

    def sample(self, n: int, seed: int = 0, method: str = "uniform") -> torch.Tensor:
        """``n`` parameter vectors ``w`` (n, m) from ``[-bound, bound]^m``."""
        return sample_parameters(n, self.m, -self.bound, self.bound, method, seed)


class KarhunenLoeve(_SeparableLogField):
    """A log-normal field ``exp(mean + g)``, g a truncated Karhunen–Loève expansion.

    ``g`` is a centred Gaussian field with covariance
    ``sigma^2 exp(-|x1 - x2| / L) exp(-|y1 - y2| / L)`` on the unit square, kept to its
    ``modes`` largest eigenpairs (products of the 1D eigenpairs, largest
    ``lambda_i lambda_j`` first). The 1D eigenfunctions are normalised in
    ``L^2(0, 1)``, so ``g = sum_k w_k sqrt(lambda_k) phi_k`` with ``w ~ N(0, 1)``
    has the stated variance up to truncation.

    Parameters
    ----------
    modes : int
        Number of terms kept.
    length : float
        Correlation length ``L`` (> 0).
    sigma : float
        Standard deviation of ``log nu``.
    mean : float
        Mean of ``log nu``.
    """

    def __init__(self, modes: int = 16, length: float = 0.3, sigma: float = 1.0,
                 mean: float = 0.0):
        if not (isinstance(modes, int) and modes > 0):
            raise DfemError(f"modes must be a positive integer, got {modes!r}.")
        if not sigma > 0:
            raise DfemError(f"sigma must be positive, got {sigma!r}.")
        roots = exponential_covariance_roots(length, modes)
        lam = 2 * length / (1 + (roots * length) ** 2)
        norms = np.sqrt([_mode_norm_squared(a, length) for a in roots])
        # the 2D eigenvalues lambda_i * lambda_j, largest first
        order = np.argsort(-np.outer(lam, lam), axis=None, kind="stable")[:modes]
        i, j = np.unravel_index(order, (modes, modes))
        scales = sigma * np.sqrt(lam[i] * lam[j])
        super().__init__(roots[i], roots[j], scales, length, length, norms[i], norms[j], mean)
        self.length, self.sigma = float(length), float(sigma)
        self.eigenvalues = lam[i] * lam[j]

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` standard normal coefficient vectors (n, modes), deterministic under ``seed``."""
        if not (isinstance(n, int) and n > 0):
            raise DfemError(f"n must be a positive integer, got {n!r}.")
        generator = torch.Generator().manual_seed(int(seed))
        return torch.randn(n, self.m, generator=generator, dtype=torch.float64)


def _mode_norm_squared(a: float, length: float) -> float:
    """``int_0^1 (a L cos(a s) + sin(a s))^2 ds`` in closed form."""
    c = a * length
    return (0.5 * (c * c + 1.0) + (c * c - 1.0) * math.sin(2 * a) / (4 * a)
            + c * math.sin(a) ** 2 / a)


#: Named field families for case files: ``nu = {field = "lognormal", w = [...]}``.
FIELDS = {"lognormal": LogNormalDiffusivity, "karhunen-loeve": KarhunenLoeve}
