"""Table 5 of the DSA paper, measured: dfem's direct solve and energy minimisation beside a
PINN and Deep Ritz trained here, and the paper's own numbers.

The problem: -Δu = 2π² sin(πx) sin(πy) on [0,1]², u = 0 on the boundary, exact
u = sin(πx) sin(πy). Every method's L2 error is computed the same way: the quadrature rule
of degree :data:`ERROR_DEGREE` on the cells of the n x n grid, against the exact solution
(:func:`dfem.errors` for finite element solutions,
:func:`dfem.validation.baselines.network_l2_error` for networks).

Rows (:func:`run_table5`):

``direct``
    Q1, Q2, Q3 on n x n quadrilaterals, sparse direct solve.
``energy``
    the paper's route: the Galerkin energy minimised over the nodal values with dfem's
    L-BFGS and with Adam (the optimiser of the paper's experiments; up to
    :data:`ADAM_MAX_DOFS` dofs), stopped at a relative gradient of ``rtol`` or the
    iteration budget; iterations and the distance to the direct solution are recorded.
``network``
    hard-boundary PINN, soft-boundary PINN and Deep Ritz (mean ± std over seeds), trained
    once per seed and evaluated on each grid.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch

import dfem
from dfem.solvers.minimize import minimize_energy
from dfem.validation import baselines
from dfem.validation.table5_problem import exact, source

ERROR_DEGREE = 10
#: Adam runs only up to this many dofs (about 0.05 s an iteration per 16k dofs on one core).
ADAM_MAX_DOFS = 70_000
#: The paper's Table 5 (L2 error of u), as quoted in the project's design notes.
PAPER = {
    128: {"PINN": 3.72e-4, "DSA d=1": 3.32e-5, "DSA d=2": 2.16e-5, "DSA d=3": 2.37e-5},
    256: {"PINN": 2.63e-4, "DSA d=1": 2.57e-5, "DSA d=2": 2.79e-5, "DSA d=3": 2.59e-5},
}


def problem(n: int, element: str) -> dfem.Poisson:
    """The Table 5 problem on n x n quadrilaterals with ``element`` ("Q1", "Q2", "Q3")."""
    space = dfem.FunctionSpace(dfem.mesh.rectangle(n, n, "quad"), element)
    return dfem.Poisson(space, nu=1.0, f=source, dirichlet={"boundary": 0.0})


def element_degree(element: str) -> int:
    """The polynomial degree of a Lagrange element name ("Q2" -> 2)."""
    return int(element[1:])


def l2_error(space, u) -> float:
    """The L2 error of ``u`` against the exact solution, by the rule of degree
    :data:`ERROR_DEGREE`."""
    return dfem.errors(space, u, exact, degree=ERROR_DEGREE)["l2"]


def direct_row(n: int, element: str) -> tuple[dict, torch.Tensor]:
    """The direct solve's row and its solution (the energy rows' reference)."""
    t0 = time.perf_counter()
    p = problem(n, element)
    u = p.solve()
    seconds = time.perf_counter() - t0
    return dict(method="direct", element=element, n=n, dofs=p.space.n_dofs,
                l2_error=l2_error(p.space, u), seconds=seconds), u


def energy_row(n: int, element: str, optimizer: str, max_iter: int, rtol: float,
               reference: torch.Tensor | None = None) -> dict:
    """The energy route on ``problem(n, element)``; ``reference`` is its direct solution
    (solved here when not given)."""
    p = problem(n, element)
    reference = p.solve() if reference is None else reference
    u, info = minimize_energy(p, optimizer=optimizer, rtol=rtol, max_iter=max_iter)
    distance = float((u - reference).abs().max() / reference.abs().max())
    return dict(method=f"energy-{optimizer}", element=element, n=n, dofs=p.space.n_dofs,
                l2_error=l2_error(p.space, u), seconds=info.seconds,
                iterations=info.iterations, converged=info.converged,
                relative_residual=info.residuals[-1][1] if info.residuals else 0.0,
                distance_to_direct=distance, rtol=rtol, max_iter=max_iter)


def network_rows(sizes, seeds: int, quick: bool, progress=print, steps=None) -> list:
    """The rows of the hard- and soft-boundary PINNs and Deep Ritz: each trained once per
    seed, its L2 error on every grid of ``sizes``, mean and std over the seeds."""
    steps = _network_steps(quick) if steps is None else steps
    rows = []
    for method, train in (("pinn-hard", lambda s: baselines.train_pinn("hard", seed=s,
                                                                       **steps["pinn"])),
                          ("pinn-soft", lambda s: baselines.train_pinn("soft", seed=s,
                                                                       **steps["pinn"])),
                          ("deep-ritz", lambda s: baselines.train_deep_ritz(
                              seed=s, **steps["ritz"]))):
        runs = []
        for seed in range(seeds):
            result = train(seed)
            errors = {n: baselines.network_l2_error(result.model, n, ERROR_DEGREE)["l2"]
                      for n in sizes}
            runs.append(dict(seed=seed, seconds=result.seconds, iterations=result.iterations,
                             final_loss=result.final_loss, l2_error=errors))
            progress(f"  {method} seed {seed}: " + ", ".join(
                f"{n}x{n} L2 {e:.3e}" for n, e in errors.items()) + f" ({result.seconds:.0f} s)")
        for n in sizes:
            values = np.array([r["l2_error"][n] for r in runs])
            rows.append(dict(method=method, n=n, l2_error=float(values.mean()),
                             l2_error_std=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                             seconds=float(np.mean([r["seconds"] for r in runs])),
                             seeds=seeds, runs=runs, config=result.config))
    return rows


def _network_steps(quick: bool) -> dict:
    if quick:
        return dict(pinn=dict(adam_steps=1500, lbfgs_steps=200),
                    ritz=dict(steps=1500))
    return dict(pinn={}, ritz={})  # the baselines' defaults (about 2 minutes a run)


def run_table5(quick: bool = False, seeds: int | None = None, progress=print, sizes=None,
               network_steps=None, energy_budgets=None) -> dict:
    """Measure every row; ``quick``: 128² only, one seed, shorter budgets (minutes).

    ``sizes``, ``network_steps`` ({"pinn": {...}, "ritz": {...}} keyword arguments of the
    trainers) and ``energy_budgets`` ({optimizer: max_iter}) override the defaults (for
    smoke tests)."""
    sizes = tuple(sizes) if sizes else ((128,) if quick else (128, 256))
    seeds = (1 if quick else 3) if seeds is None else int(seeds)
    t0 = time.perf_counter()
    for element in ("Q1", "Q2", "Q3"):  # warm-up: first-call costs of torch and scipy
        direct_row(8, element)
    rows, solutions = [], {}
    for n in sizes:
        for element in ("Q1", "Q2", "Q3"):
            row, solutions[n, element] = direct_row(n, element)
            rows.append(row)
            progress(f"  direct {element} {n}x{n}: L2 {rows[-1]['l2_error']:.3e} "
                     f"({rows[-1]['seconds']:.2f} s)")
    budgets = energy_budgets or {"lbfgs": 2000, "adam": 300 if quick else 1000}
    for n in sizes:
        for element in ("Q1", "Q2"):
            for optimizer, max_iter in budgets.items():
                if optimizer == "adam" and (n * element_degree(element)) ** 2 > ADAM_MAX_DOFS:
                    continue  # Adam's budget on 263k dofs would take an hour
                rows.append(energy_row(n, element, optimizer, max_iter, rtol=1e-10,
                                       reference=solutions[n, element]))
                row = rows[-1]
                progress(f"  energy {optimizer} {element} {n}x{n}: L2 {row['l2_error']:.3e}, "
                         f"{row['iterations']} iterations, {row['seconds']:.1f} s")
    rows += network_rows(sizes, seeds, quick, progress, network_steps)
    return dict(problem="-Δu = 2π² sin(πx) sin(πy), u = 0 on ∂[0,1]²", sizes=list(sizes),
                quick=quick, seeds=seeds, error_quadrature_degree=ERROR_DEGREE, paper=PAPER,
                rows=rows, seconds=time.perf_counter() - t0,
                machine=dict(platform=platform.platform(), cores=os.cpu_count(),
                             torch=torch.__version__, threads=torch.get_num_threads()))
