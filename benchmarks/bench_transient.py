"""Benchmark dfem's transient heat solver and its adjoint through time (CPU, float64).

The problem: ``rho_c du/dt - div(k grad u) = f`` on the unit square, ``rho_c = 1``,
``f = 1``, ``u = 0`` on the whole boundary, ``u(x, 0) = sin(pi x) sin(pi y)`` (interpolated
at the nodes), a per-cell conductivity ``k = 1 + 0.5 sin(2 pi x) sin(2 pi y)`` at the cell
centroids (non-uniform, so that the gradient check is not a symmetric special case), Q1
quadrilaterals of ``dfem.mesh.rectangle(n, n, "quad")``, the consistent mass matrix and
the Crank-Nicolson scheme. Objective ``J = sum_i u_i(T)^2`` over all nodes at the final
time, gradient ``dJ/dk`` per cell.

1. **dfem vs torch-fem** (forward + gradient, per size ``n``).
   torch-fem's transient model is ``PlanarHeat(nodes, quads,
   IsotropicConductivity2D(kappa=k, rho=1))`` (``Quad1``, 2x2 Gauss points, thickness 1)
   with ``time_integration(t_output=[0, T], delta_t=dt,
   differentiable_parameters=kappa)``, every solver option at its default. Its source
   (``torchfem/base.py``, ``Heat.time_integration``) fixes what an equal setup is:

   - the scheme is the trapezoidal rule (Crank-Nicolson), not implicit Euler: each step
     solves ``(M + dt/2 K) du = -(M du + dt/2 (f_int(u_n) + f_int(u_n + du) - 2 f_ext))``
     by Newton (one linear solve for this linear material, then a residual check), so dfem
     runs ``scheme="crank-nicolson"``; dfem's implicit Euler is compared as well
     (``implicit_euler_vs_torchfem_rel_max_diff``, of the order of dt: the schemes differ);
   - the mass matrix is consistent: ``integrate_mass`` with the material's ``rho`` (the
     heat capacity per volume) at the element's Gauss points; it is assembled and
     compared with ``dfem.mass_matrix`` entry by entry (``mass_rel_max_diff``), as are the
     conductivity matrices (``stiffness_rel_max_diff``, torch-fem's ``k0()``) and the loads
     (``load_rel_max_diff``, ``integrate_body_load(1.0)`` against dfem's
     ``assemble_vector(space, f=1.0)``);
   - the initial state: torch-fem first solves an "equilibrium state at t = 0" with every
     dof constrained, i.e. it takes ``model.temperatures`` everywhere (then sets the
     constrained dofs to their prescribed values). The initial condition is therefore
     given as ``model.temperatures = u0`` with the boundary nodes constrained (u0 = 0
     there); ``initial_state_max_diff`` is max |u_torchfem(0) - u0|;
   - its internal steps are ``linspace(0, T, N + 1)``; dfem gets the same time levels.

   dfem: ``Heat(space, k=k, f=1.0, dirichlet={"boundary": 0.0}).run(u0, times=...,
   scheme="crank-nicolson", save_every=N, method=...)`` and ``J.backward()`` (the discrete
   adjoint with sqrt(N) checkpointing, one factorisation for all steps) for method
   "direct" (SuperLU) and "amg" (CG + pyamg V-cycle, relative residual 1e-10).
   torch-fem is timed with its default solver (SciPy ``spsolve`` below 10 000 dofs, CG with
   its own smoothed-aggregation AMG above; a new solve, factorisation or hierarchy, in
   every step, and its gradient by torch's unrolled graph of the steps with one adjoint
   solve per step) and, where that default is not direct, also with ``method="direct"``.
   Both are timed *warm*: the space / model exists, a new conductivity leaf is solved and
   differentiated in each run (torch-fem: a new material on the existing model).
   ``transient_ratio_vs_torchfem`` = dfem's fastest method / torch-fem's fastest
   configuration (``transient_ratio_vs_torchfem_default`` against its default alone);
   the top-level value is the largest over the sizes. Target <= 0.5.

2. **Cost per step against one steady solve** on the same meshes: a steady
   ``Poisson(space, nu=k, f=1.0, dirichlet={"boundary": 0.0}).solve()`` (assembly, the
   Dirichlet split, factorisation and solve on an existing space; ``steady_solve_s``)
   against ``info.forward_s / steps`` of dfem's fastest transient run
   (``transient_forward_per_step_s``; the forward pass includes the assembly of M and K and
   the one factorisation) and ``step_vs_steady_ratio``.

3. **Memory against the number of steps N** on a larger mesh (Q1, ``--memory-n`` cells per
   side, default 256: 66 049 dofs, 0.5 MB per state; ``dt = 1e-5``). Each run is a fresh
   subprocess (one thread): an untimed one-step run first (imports, the space's caches),
   then the resident set before ``run`` (``VmRSS``), the kernel's peak-RSS mark reset
   (``/proc/self/clear_refs``), forward + ``J.backward()``, and the peak (``VmHWM``):
   ``peak_rss_increase_mb = VmHWM - VmRSS before``. Where ``clear_refs`` is refused the
   child falls back to ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (never reset, so an
   upper bound), recorded as ``rss_method``. The series (``SERIES``):

   - ``adjoint``: dfem's adjoint (``Heat.run``, method "direct"), N = 10, 100, 1000, with
     the ``info.peak_states`` and ``info.checkpoint_every`` the checkpointing reports, under
     glibc's default allocator (as a user runs it); ``memory_ratio_1000_vs_10`` = its peak
     increase at N = 1000 / at N = 10 (target < 3);
   - ``adjoint_mmap64k``: the same with ``MALLOC_MMAP_THRESHOLD_=65536``, so that every
     array of 64 kB or more is its own mapping and leaves the resident set when freed:
     what the run holds, without heap fragmentation (``memory_ratio_1000_vs_10_mmap64k``).
     The difference between the two series is memory the heap cannot reuse (see the
     README); these children's wall times are inflated by the page faults of the fresh
     mappings and are not the benchmark's timings;
   - ``unrolled``: the same objective differentiated through torch's unrolled graph: the
     Crank-Nicolson step written as a loop of ``dfem.sparse_solve`` on the free dofs
     (``M = dfem.mass_matrix(space)``, ``K = dfem.assembly.assemble_matrix(space, k)``,
     ``A = (M + dt/2 K)_ff``, right-hand side ``((M - dt/2 K) U^n)_f + dt F_f``; the boundary
     values are 0, so no lifting) with ``method="cg"`` (Jacobi, ``rtol=1e-12``), which keeps
     only vectors per step (a direct solve would keep a factorisation per step as well), for
     N = 10, 100 and 1000 where the growth measured from 10 to 100 predicts that 1000 fits;
     default allocator. ``J`` and ``dJ/dk`` of the unrolled and the adjoint runs agree
     (``unrolled_vs_adjoint``).

   ``--memory-jobs`` runs several children at once (``--quick``: 3), which leaves the
   memory figures valid but not the wall times.

Usage::

    python benchmarks/bench_transient.py --json benchmarks/results/bench_transient_cpu.json \\
        --threads 1
    python benchmarks/bench_transient.py --json /tmp/quick.json --quick

Every timing is the best of ``--repeats`` wall-clock runs (garbage collector paused), but a
timing is not repeated once its runs took over ``PEER_BUDGET_S``; the JSON records the
number of runs. The JSON is written atomically after every part.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing dfem
    sys.path.insert(0, str(ROOT))

import dfem  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    add_run_options,
    best_of_within,
    default_dtype,
    fastest_run,
    guarded,
    load_average,
    machine_info,
    peak_rss_gb,
    per_cell_nu,
    rel_max_diff,
    set_threads,
    total_memory_bytes,
    write_json,
)

DEFAULT_SIZES = (64, 128)
QUICK_SIZES = (8, 12)
STEPS, DT = 50, 1e-3
QUICK_STEPS = 10
MEMORY_N, MEMORY_DT = 256, 1e-5
QUICK_MEMORY_N = 16
MEMORY_STEPS = (10, 100, 1000)
UNROLLED_STEPS = (10, 100, 1000)
QUICK_MEMORY_STEPS, QUICK_UNROLLED_STEPS = (10, 1000), (10, 100)
UNROLLED_RTOL = 1e-12
DFEM_METHODS = {"direct": {}, "amg": {"rtol": 1e-10}}
TARGETS = {"transient_ratio_vs_torchfem": 0.5, "memory_ratio_1000_vs_10": 3.0}
AGREEMENT_TOL = 1e-10  # direct solves on both sides
ITERATIVE_TOL = 1e-6  # dfem "amg" (relative residual 1e-10) against torch-fem
PEER_BUDGET_S = 30.0
MEMORY_LIMIT_BYTES = 16 * 2**30
BYTES_PER_CELL_ESTIMATE = 64 * 2**10  # torch-fem's time_integration stores all levels
CHILD_TIMEOUT_S = 600
CHILD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ALLOCATORS = {  # glibc malloc settings of a memory child
    "default": {},  # as a user runs it (glibc's dynamic mmap threshold)
    "mmap64k": {"MALLOC_MMAP_THRESHOLD_": "65536"},  # every array >= 64 kB its own mapping
}
SERIES = {  # name: (mode, allocator)
    "adjoint": ("adjoint", "default"),
    "adjoint_mmap64k": ("adjoint", "mmap64k"),
    "unrolled": ("unrolled", "default"),
}
CSR_WARNING = "Sparse CSR tensor support is in beta"


# ---------------------------------------------------------------------- the problem
def initial_condition(x: torch.Tensor) -> torch.Tensor:
    """``sin(pi x) sin(pi y)``: zero on the boundary of the unit square."""
    return torch.sin(math.pi * x[..., 0]) * torch.sin(math.pi * x[..., 1])


def time_levels(steps: int, dt: float) -> list[float]:
    """``linspace(0, steps dt, steps + 1)``, torch-fem's internal time levels."""
    return torch.linspace(0.0, steps * dt, steps + 1, dtype=torch.float64).tolist()


class Setup:
    """Mesh, space, conductivity, initial state and boundary of one size ``n``."""

    def __init__(self, n: int):
        self.n = n
        self.mesh = dfem.mesh.rectangle(n, n, "quad")
        self.space = dfem.FunctionSpace(self.mesh, "Q1")
        self.k0 = per_cell_nu(self.mesh).detach()
        self.u0 = self.space.interpolate(initial_condition).detach()
        # Q1 dofs are the mesh vertices (dof v = node v): the numberings coincide
        self.boundary = self.space.boundary_dofs("boundary")
        self.u0[self.boundary] = 0.0  # exactly (sin(pi) is not)
        self.free = torch.ones(self.space.n_dofs, dtype=torch.bool)
        self.free[self.boundary] = False


def dfem_transient(setup: Setup, levels: list[float], method: str = "direct",
                   scheme: str = "crank-nicolson", options: dict | None = None):
    """Forward + ``J.backward()``; returns (u(T), dJ/dk, J, info, seconds)."""
    k = setup.k0.clone().requires_grad_(True)
    heat = dfem.Heat(setup.space, rho_c=1.0, k=k, f=1.0, dirichlet={"boundary": 0.0})
    t0 = time.perf_counter()
    result = heat.run(setup.u0, times=levels, scheme=scheme, save_every=len(levels) - 1,
                      method=method, **(options or {}))
    J = (result.u * result.u).sum()
    J.backward()
    seconds = time.perf_counter() - t0
    return result.u.detach(), k.grad.detach(), float(J.detach()), result.info, seconds


def torchfem_model(setup: Setup):
    """torch-fem's ``PlanarHeat`` of the setup: load f = 1, boundary nodes constrained to
    0, ``temperatures = u0`` (the initial state, see the module docstring)."""
    from torchfem import PlanarHeat
    from torchfem.materials import IsotropicConductivity2D

    model = PlanarHeat(setup.mesh.nodes.detach(), setup.mesh.cells,
                       IsotropicConductivity2D(kappa=setup.k0.clone(), rho=1.0))
    model.heat_flux = model.integrate_body_load(1.0)
    constraints = torch.zeros(model.n_nod, 1, dtype=torch.bool)
    constraints[setup.boundary] = True
    model.constraints = constraints
    model.temperatures = setup.u0.clone().reshape(-1, 1)
    return model


def torchfem_transient(model, setup: Setup, steps: int, dt: float, method: str | None = None):
    """A new conductivity leaf on ``model``, ``time_integration`` to ``T = steps dt`` and
    ``J.backward()``; returns (u(0), u(T), dJ/dk, J, seconds)."""
    from torchfem.materials import IsotropicConductivity2D

    kappa = setup.k0.clone().requires_grad_(True)
    model.material = IsotropicConductivity2D(kappa=kappa, rho=1.0)
    t0 = time.perf_counter()
    u, *_ = model.time_integration(torch.tensor([0.0, steps * dt]), delta_t=dt,
                                   method=method, differentiable_parameters=kappa)
    J = (u[-1] * u[-1]).sum()
    J.backward()
    seconds = time.perf_counter() - t0
    return (u[0].detach().ravel(), u[-1].detach().ravel(), kappa.grad.detach(),
            float(J.detach()), seconds)


def _torchfem_csr_to_scipy(A):
    import scipy.sparse as sps

    return sps.csr_matrix((A.values().detach().numpy(), A.col_indices().numpy(),
                           A.crow_indices().numpy()), shape=A.shape)


def _matrix_rel_max_diff(A, B) -> float:
    """``max |A - B| / max |B|`` for two scipy sparse matrices on the same numbering."""
    scale = max(abs(B).max(), 1e-300)
    return float(abs(A - B).max() / scale)


def matrix_checks(setup: Setup, model) -> dict:
    """torch-fem's mass matrix, conductivity matrix and load against dfem's."""
    none = torch.zeros(0, dtype=torch.int64)
    M_tf = _torchfem_csr_to_scipy(model.assemble_matrix(model.integrate_mass(), none))
    K_tf = _torchfem_csr_to_scipy(model.assemble_matrix(model.k0(), none))
    space = setup.space
    M_d = dfem.mass_matrix(space, 1.0, format="scipy")
    K_d = space.pattern.to_scipy(dfem.assembly.assemble_matrix(space, setup.k0).detach())
    off_diagonal = M_tf - sps_diags(M_tf)
    return {
        "mass_rel_max_diff": _matrix_rel_max_diff(M_d, M_tf),
        "torchfem_mass_consistent": bool(abs(off_diagonal).max() > 0.1 * abs(M_tf).max()),
        "stiffness_rel_max_diff": _matrix_rel_max_diff(K_d, K_tf),
        "load_rel_max_diff": rel_max_diff(
            dfem.assembly.assemble_vector(space, f=1.0).detach(), model.heat_flux.ravel()),
    }


def sps_diags(A):
    import scipy.sparse as sps

    return sps.diags(A.diagonal())


# ---------------------------------------------------------------------- 1 + 2. one size
def bench_size(n: int, steps: int, dt: float, repeats: int) -> dict:
    from torchfem.sparse import describe_method, resolve_method

    gc.collect()
    setup = Setup(n)
    levels = time_levels(steps, dt)
    out: dict = {"n": n, "n_cells": setup.mesh.n_cells, "n_dofs": setup.space.n_dofs,
                 "steps": steps, "dt": dt, "t_end": levels[-1], "methods": {}}

    # ---- dfem, warm (the first call builds the space's pattern split and geometry)
    dfem_transient(setup, levels)
    results = {}
    for method, options in DFEM_METHODS.items():
        best, (u, g, J, info, _), _, runs = fastest_run(
            repeats, functools.partial(dfem_transient, setup, levels, method, options=options),
            budget_s=PEER_BUDGET_S)
        results[method] = (u, g, J)
        out["methods"][method] = {
            "options": options,
            "warm_s": best,
            "runs": runs,
            "forward_s": info.forward_s,
            "backward_s": info.backward_s,
            "factorizations": info.factorizations,
            "solves": info.solves,
            "checkpoint_every": info.checkpoint_every,
            "peak_states": info.peak_states,
        }
    best_method = min(DFEM_METHODS, key=lambda m: out["methods"][m]["warm_s"])
    out["dfem_best_method"] = best_method
    out["dfem_best_s"] = out["methods"][best_method]["warm_s"]
    u_ie, *_ = dfem_transient(setup, levels, scheme="implicit-euler")

    # ---- torch-fem, in float64
    with default_dtype(torch.float64), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CSR_WARNING)
        model = torchfem_model(setup)
        out.update(matrix_checks(setup, model))
        default = resolve_method(model.n_dofs, None, True)
        configs = {"default": None} if default == "direct" else {"default": None,
                                                                 "direct": "direct"}
        out["torchfem"] = {}
        tf_results = {}
        for name, method in configs.items():
            best, (u0_tf, u_tf, g_tf, J_tf, _), _, runs = fastest_run(
                repeats, functools.partial(torchfem_transient, model, setup, steps, dt, method),
                budget_s=PEER_BUDGET_S)
            tf_results[name] = (u0_tf, u_tf, g_tf, J_tf)
            out["torchfem"][name] = {"solver": describe_method(method or default, "cpu", None),
                                     "warm_s": best, "runs": runs}
    out["torchfem_solver"] = out["torchfem"]["default"]["solver"]
    out["torchfem_default_s"] = out["torchfem"]["default"]["warm_s"]
    tf_best = min(out["torchfem"], key=lambda c: out["torchfem"][c]["warm_s"])
    out["torchfem_best_config"] = tf_best
    out["torchfem_best_s"] = out["torchfem"][tf_best]["warm_s"]

    # ---- agreement (against torch-fem's default configuration)
    u0_tf, u_tf, g_tf, J_tf = tf_results["default"]
    out["initial_state_max_diff"] = float((u0_tf - setup.u0).abs().max())
    for method, (u, g, J) in results.items():
        entry = out["methods"][method]
        entry["u_rel_max_diff"] = rel_max_diff(u, u_tf)
        entry["u_max_abs_diff"] = float((u - u_tf).abs().max())
        entry["grad_rel_max_diff"] = rel_max_diff(g, g_tf)
        entry["J_rel_diff"] = abs(J - J_tf) / abs(J_tf)
    if "direct" in tf_results:
        out["torchfem_direct_vs_default_u_rel_max_diff"] = rel_max_diff(
            tf_results["direct"][1], u_tf)
    out["implicit_euler_vs_torchfem_rel_max_diff"] = rel_max_diff(u_ie, u_tf)
    direct = out["methods"]["direct"]
    out["u_rel_max_diff"] = direct["u_rel_max_diff"]
    out["grad_rel_max_diff"] = direct["grad_rel_max_diff"]
    out["solutions_agree"] = bool(direct["u_rel_max_diff"] < AGREEMENT_TOL and all(
        m["u_rel_max_diff"] < ITERATIVE_TOL for m in out["methods"].values()))
    out["gradients_agree"] = bool(direct["grad_rel_max_diff"] < AGREEMENT_TOL and all(
        m["grad_rel_max_diff"] < ITERATIVE_TOL for m in out["methods"].values()))
    out["u_max"] = float(u_tf.max())

    # ---- headline
    out["transient_ratio_vs_torchfem"] = out["dfem_best_s"] / out["torchfem_best_s"]
    out["transient_ratio_vs_torchfem_default"] = out["dfem_best_s"] / out["torchfem_default_s"]
    out["target_met"] = bool(out["transient_ratio_vs_torchfem"]
                             <= TARGETS["transient_ratio_vs_torchfem"])

    # ---- 2. one steady solve against one step
    def steady():
        problem = dfem.Poisson(setup.space, nu=setup.k0, f=1.0, dirichlet={"boundary": 0.0})
        return problem.solve()

    steady()
    t_steady, _, runs = best_of_within(repeats, steady, budget_s=PEER_BUDGET_S)
    best = out["methods"][best_method]
    direct_forward = out["methods"]["direct"]["forward_s"]
    out["steady"] = {
        "steady_solve_s": t_steady,
        "runs": runs,
        "transient_method": best_method,
        "transient_forward_per_step_s": best["forward_s"] / steps,
        "transient_fwd_bwd_per_step_s": best["warm_s"] / steps,
        "step_vs_steady_ratio": best["forward_s"] / steps / t_steady,
        "fwd_bwd_step_vs_steady_ratio": best["warm_s"] / steps / t_steady,
        "direct_forward_per_step_s": direct_forward / steps,
        "transient_forward_vs_steady": direct_forward / t_steady,
    }
    return out


# ---------------------------------------------------------------------- 3. memory (child)
def _status_kb(field: str) -> int | None:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _unrolled(setup: Setup, steps: int, dt: float):
    """Crank-Nicolson as a loop of ``dfem.sparse_solve``; torch records every step."""
    from dfem.assembly import assemble_matrix, assemble_vector, matvec
    from dfem.solvers import sparse_solve

    space = setup.space
    k = setup.k0.clone().requires_grad_(True)
    t0 = time.perf_counter()
    M = dfem.mass_matrix(space)
    K = assemble_matrix(space, k)
    F = assemble_vector(space, f=1.0)
    restricted = space.pattern.restrict(setup.free)
    free = restricted.free_dofs
    A = (M + 0.5 * dt * K)[restricted.ff]
    B = M - 0.5 * dt * K
    U = setup.u0.clone()
    for _ in range(steps):
        b = matvec(space.pattern, B, U)[free] + dt * F[free]
        x = sparse_solve(restricted.pattern, A, b, method="cg", rtol=UNROLLED_RTOL)
        U = torch.zeros_like(U).index_put((free,), x)
    J = (U * U).sum()
    t1 = time.perf_counter()
    J.backward()
    t2 = time.perf_counter()
    state_mb = space.n_dofs * 8 / 2**20
    return float(J.detach()), k.grad.detach(), {"forward_s": t1 - t0, "backward_s": t2 - t1,
                                                "states_recorded": steps + 1,
                                                "states_recorded_mb": (steps + 1) * state_mb}


def _adjoint(setup: Setup, steps: int, dt: float):
    levels = time_levels(steps, dt)
    _, g, J, info, _ = dfem_transient(setup, levels)
    state_mb = setup.space.n_dofs * 8 / 2**20
    return J, g, {"forward_s": info.forward_s, "backward_s": info.backward_s,
                  "peak_states": info.peak_states, "checkpoint_every": info.checkpoint_every,
                  "factorizations": info.factorizations,
                  "peak_states_mb": info.peak_states * state_mb}


def memory_child(spec: dict) -> dict:
    """One measurement in this (fresh) process: see the module docstring, part 3."""
    import resource

    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=CSR_WARNING)
    setup = Setup(spec["n"])
    fn = {"adjoint": _adjoint, "unrolled": _unrolled}[spec["mode"]]
    fn(setup, 1, spec["dt"])  # imports, the space's caches
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        method = "VmHWM after clear_refs (kernel peak-RSS mark reset before run)"
    except OSError:
        method = "ru_maxrss (never reset: an upper bound)"
    rss_before = _status_kb("VmRSS")  # read after the reset, so that the peak is >= it
    t0 = time.perf_counter()
    J, grad, detail = fn(setup, spec["steps"], spec["dt"])
    wall = time.perf_counter() - t0
    if method.startswith("VmHWM"):
        peak = _status_kb("VmHWM")
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if spec.get("grad_file"):
        np.save(spec["grad_file"], grad.numpy())
    return {
        "mode": spec["mode"],
        "steps": spec["steps"],
        "n_dofs": setup.space.n_dofs,
        "rss_method": method,
        "rss_before_mb": rss_before / 1024,
        "peak_rss_mb": peak / 1024,
        "peak_rss_increase_mb": (peak - rss_before) / 1024,
        "state_mb": setup.space.n_dofs * 8 / 2**20,
        "J": J,
        "wall_s": wall,
        **detail,
    }


def run_child(spec: dict) -> dict:
    """``memory_child(spec)`` in a fresh interpreter (``CHILD_ENV`` and the allocator's
    settings, ``ALLOCATORS``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(CHILD_ENV, **ALLOCATORS[spec.get("allocator", "default")])
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"mode": spec["mode"], "steps": spec["steps"],
                "failed": f"timed out after {CHILD_TIMEOUT_S} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"mode": spec["mode"], "steps": spec["steps"],
                "failed": f"exit status {proc.returncode}: {' | '.join(tail)[:400]}"}
    return json.loads(lines[-1])


def bench_memory(n: int, dt: float, series_steps: dict, verbose: bool, jobs: int = 1) -> dict:
    """Part 3: peak memory against N of each series of ``SERIES`` (``series_steps``: name ->
    the N to run), one fresh subprocess per run, ``jobs`` of them at a time (1 for
    meaningful wall times)."""
    from concurrent.futures import ThreadPoolExecutor

    out: dict = {"n": n, "dt": dt, "element": "Q1", "child_env": CHILD_ENV,
                 "allocators": ALLOCATORS, "jobs": jobs,
                 "series": {name: {"mode": SERIES[name][0], "allocator": SERIES[name][1]}
                            for name in series_steps}}
    for name in series_steps:
        out[name] = {}
    grads: dict = {}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max(1, jobs)) as pool:
        def measure(runs):
            specs = [{"mode": SERIES[name][0], "allocator": SERIES[name][1], "steps": steps,
                      "n": n, "dt": dt, "grad_file": os.path.join(tmp, f"{name}_{steps}.npy")}
                     for name, steps in runs]
            for (name, steps), spec, entry in zip(runs, specs, pool.map(run_child, specs),
                                                  strict=True):
                out[name][str(steps)] = entry
                if "failed" not in entry:
                    grads[name, steps] = np.load(spec["grad_file"])
                if verbose:
                    print(_memory_line(name, entry), flush=True)

        # unrolled runs beyond 100 steps wait for the 10- and 100-step ones (prediction)
        unrolled = list(series_steps.get("unrolled", ()))
        later = [s for s in unrolled if s > 100 and {10, 100} <= set(unrolled)]
        measure([(name, steps) for name, step_list in series_steps.items()
                 for steps in step_list if not (name == "unrolled" and steps in later)])
        remaining = []
        for steps in later:
            skip = _unrolled_skip(out["unrolled"], steps)
            if skip:
                out["unrolled"][str(steps)] = {"mode": "unrolled", "steps": steps,
                                               "skipped": skip}
            else:
                remaining.append(("unrolled", steps))
        measure(remaining)
    out["n_dofs"] = next((e["n_dofs"] for name in series_steps for e in out[name].values()
                          if "n_dofs" in e), None)
    out["rss_method"] = next((e["rss_method"] for name in series_steps
                              for e in out[name].values() if "rss_method" in e), None)
    out["unrolled_vs_adjoint"] = {
        str(steps): {
            "J_rel_diff": abs(out["adjoint"][str(steps)]["J"] - out["unrolled"][str(steps)]["J"])
            / abs(out["adjoint"][str(steps)]["J"]),
            "grad_rel_max_diff": rel_max_diff(grads["adjoint", steps], grads["unrolled", steps]),
        }
        for name, steps in sorted(grads) if name == "unrolled" and ("adjoint", steps) in grads
    }
    for name in series_steps:
        peaks = {int(s): e["peak_rss_increase_mb"] for s, e in out[name].items()
                 if "peak_rss_increase_mb" in e}
        for hi in (1000, 100):
            if 10 in peaks and hi in peaks:  # None where the 10-step run grew by nothing
                out[f"{name}_ratio_{hi}_vs_10"] = (peaks[hi] / peaks[10] if peaks[10] > 0
                                                   else None)
        if len(peaks) >= 2:
            lo, hi = min(peaks), max(peaks)
            # the mean growth per step from the fewest to the most steps
            out[f"{name}_mean_mb_per_extra_step"] = (peaks[hi] - peaks[lo]) / (hi - lo)
    if "adjoint_ratio_1000_vs_10" in out:
        ratio = out["memory_ratio_1000_vs_10"] = out["adjoint_ratio_1000_vs_10"]
        out["target_met"] = None if ratio is None else bool(
            ratio < TARGETS["memory_ratio_1000_vs_10"])
    if "adjoint_mmap64k_ratio_1000_vs_10" in out:
        out["memory_ratio_1000_vs_10_mmap64k"] = out["adjoint_mmap64k_ratio_1000_vs_10"]
    return out


def _unrolled_skip(done: dict, steps: int) -> str | None:
    """A reason to skip the unrolled run of ``steps`` steps, predicted from 10 and 100."""
    a, b = done["10"], done["100"]
    if "peak_rss_increase_mb" not in a or "peak_rss_increase_mb" not in b:
        return "an earlier unrolled run failed"
    per_step = (b["peak_rss_increase_mb"] - a["peak_rss_increase_mb"]) / 90
    predicted = b["peak_rss_increase_mb"] + per_step * (steps - 100)
    total = total_memory_bytes()
    limit = MEMORY_LIMIT_BYTES if total is None else min(MEMORY_LIMIT_BYTES, 0.5 * total)
    if predicted * 2**20 > limit:
        return (f"predicted peak {predicted / 1024:.1f} GB ({per_step:.2f} MB per step) "
                f"exceeds {limit / 2**30:.1f} GB")
    return None


# ---------------------------------------------------------------------- report
def _memory_line(name: str, e: dict) -> str:
    if "failed" in e:
        return f"  memory {name:>15} N={e['steps']:>5}: failed ({e['failed']})"
    if "skipped" in e:
        return f"  memory {name:>15} N={e['steps']:>5}: skipped ({e['skipped']})"
    states = e.get("peak_states", e.get("states_recorded"))
    return (f"  memory {name:>15} N={e['steps']:>5}: peak +{e['peak_rss_increase_mb']:8.1f} MB"
            f"  states {states:>5}  fwd {e['forward_s']:7.2f} s  bwd {e['backward_s']:7.2f} s")


def print_size(n: int, r: dict) -> None:
    if "skipped" in r:
        print(f"n={n}: skipped ({r['skipped']})")
        return
    print(f"n={n} ({r['n_dofs']} dofs, {r['steps']} steps of {r['dt']:g}):")
    for method, m in r["methods"].items():
        print(f"  dfem {method:>7}: {m['warm_s']:8.3f} s (fwd {m['forward_s']:.3f}, bwd "
              f"{m['backward_s']:.3f})  u diff {m['u_rel_max_diff']:.1e}  grad diff "
              f"{m['grad_rel_max_diff']:.1e}")
    for name, t in r["torchfem"].items():
        print(f"  torch-fem {name:>7}: {t['warm_s']:8.3f} s ({t['solver']}, {t['runs']} runs)")
    s = r["steady"]
    print(f"  ratio dfem/torch-fem {r['transient_ratio_vs_torchfem']:.3f} (default "
          f"{r['transient_ratio_vs_torchfem_default']:.3f}); steady solve {s['steady_solve_s']:.4f}"
          f" s, step {s['transient_forward_per_step_s']:.5f} s (ratio "
          f"{s['step_vs_steady_ratio']:.3f}); mass diff {r['mass_rel_max_diff']:.1e}, IE vs "
          f"torch-fem {r['implicit_euler_vs_torchfem_rel_max_diff']:.1e}", flush=True)


def warm_up() -> None:
    """Untimed first calls (torch-fem's, pyamg's imports) on a tiny mesh."""
    setup = Setup(4)
    levels = time_levels(2, DT)
    for method, options in DFEM_METHODS.items():
        dfem_transient(setup, levels, method, options=options)
    with default_dtype(torch.float64), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CSR_WARNING)
        torchfem_transient(torchfem_model(setup), setup, 2, DT)


def run(sizes, steps: int, repeats: int, out: Path, memory_n: int, series_steps: dict,
        parts=("peer", "memory"), verbose: bool = True,
        warmup: bool = True, jobs: int = 1) -> dict:
    results: dict = {
        "machine": machine_info({"torchfem": "torch-fem", "pyamg": "pyamg", "scipy": "scipy"},
                                torch_threads=torch.get_num_threads()),
        "settings": {
            "repeats": repeats,
            "timing": "best of repeats, wall clock (time.perf_counter), garbage collector "
                      f"paused; a timing is not repeated once its runs took over "
                      f"{PEER_BUDGET_S:g} s; warm (space / model built outside the timer)",
            "problem": "rho_c u_t - div(k grad u) = 1 on the unit square, u = 0 on the "
                       "boundary, u0 = sin(pi x) sin(pi y), rho_c = 1, per-cell "
                       "k = 1 + 0.5 sin(2 pi x) sin(2 pi y), Q1, consistent mass",
            "scheme": "crank-nicolson (torch-fem's time_integration is the trapezoidal rule)",
            "objective": "J = sum(u(T)**2) over all nodes; gradient dJ/dk per cell",
            "steps": steps,
            "dt": DT,
            "dfem_methods": DFEM_METHODS,
            "agreement_tol": AGREEMENT_TOL,
            "iterative_tol": ITERATIVE_TOL,
            "targets": TARGETS,
            "headline": "transient_ratio_vs_torchfem = dfem fastest method / torch-fem "
                        "fastest configuration (forward + gradient, warm); the top level "
                        "holds the largest over the sizes",
            "memory": "peak RSS increase over the RSS just before run, fresh subprocess "
                      "per N (VmHWM after /proc/self/clear_refs; ru_maxrss where refused)",
        },
        "sizes": {},
    }
    if "peer" in parts:
        if warmup:
            warm_up()
        for n in sizes:
            entry = guarded(BYTES_PER_CELL_ESTIMATE * n * n, MEMORY_LIMIT_BYTES,
                            lambda n=n: bench_size(n, steps, DT, repeats))
            results["sizes"][str(n)] = entry
            write_json(out, results)
            if verbose:
                print_size(n, entry)
        measured = [r for r in results["sizes"].values() if "skipped" not in r]
        if measured:
            results["transient_ratio_vs_torchfem"] = max(
                r["transient_ratio_vs_torchfem"] for r in measured)
            results["solutions_agree"] = all(r["solutions_agree"] for r in measured)
            results["gradients_agree"] = all(r["gradients_agree"] for r in measured)
    if "memory" in parts:
        load_before = load_average()
        memory = bench_memory(memory_n, MEMORY_DT, series_steps, verbose, jobs)
        memory["load_average_before_after"] = [load_before, load_average()]
        results["memory"] = memory
        if "memory_ratio_1000_vs_10" in memory:
            results["memory_ratio_1000_vs_10"] = memory["memory_ratio_1000_vs_10"]
    results["targets_met"] = {key: (bool(results[key] <= target)
                                    if results.get(key) is not None else None)
                              for key, target in TARGETS.items()}
    results["peak_rss_gb"] = peak_rss_gb()
    write_json(out, results)
    if verbose:
        print(f"transient_ratio_vs_torchfem {results.get('transient_ratio_vs_torchfem')}, "
              f"memory_ratio_1000_vs_10 {results.get('memory_ratio_1000_vs_10')}, "
              f"targets met {results['targets_met']}")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="output JSON file")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: sizes {' '.join(map(str, QUICK_SIZES))}, "
                             f"{QUICK_STEPS} steps, memory on {QUICK_MEMORY_N} x "
                             f"{QUICK_MEMORY_N} cells")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help=f"cells per side (default {' '.join(map(str, DEFAULT_SIZES))})")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"time steps of the comparison (default {STEPS})")
    parser.add_argument("--repeats", type=int, default=3, help="best of R (default 3)")
    parser.add_argument("--memory-n", type=int, default=None,
                        help=f"cells per side of the memory mesh (default {MEMORY_N})")
    parser.add_argument("--memory-steps", type=int, nargs="+", default=None,
                        help="N of the adjoint memory runs (default "
                             f"{' '.join(map(str, MEMORY_STEPS))}; --quick "
                             f"{' '.join(map(str, QUICK_MEMORY_STEPS))})")
    parser.add_argument("--unrolled-steps", type=int, nargs="+", default=None,
                        help="N of the unrolled-graph memory runs (default "
                             f"{' '.join(map(str, UNROLLED_STEPS))}; --quick "
                             f"{' '.join(map(str, QUICK_UNROLLED_STEPS))})")
    parser.add_argument("--series", nargs="+", choices=tuple(SERIES), default=list(SERIES),
                        help="memory series to run (default all)")
    parser.add_argument("--memory-jobs", type=int, default=None,
                        help="memory subprocesses at a time (default 1; --quick 3): more "
                             "leave the memory figures valid but not their wall times")
    parser.add_argument("--parts", nargs="+", choices=("peer", "memory"),
                        default=["peer", "memory"], help="what to run (default both)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    add_run_options(parser)
    args = parser.parse_args(argv)
    if args.memory_child is not None:
        print(json.dumps(memory_child(json.loads(args.memory_child))), flush=True)
        return 0
    if args.json is None:
        parser.error("--json is required")
    set_threads(args.threads, argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    steps = args.steps or (QUICK_STEPS if args.quick else STEPS)
    memory_n = args.memory_n or (QUICK_MEMORY_N if args.quick else MEMORY_N)
    memory_steps = args.memory_steps or (QUICK_MEMORY_STEPS if args.quick else MEMORY_STEPS)
    unrolled_steps = args.unrolled_steps or (QUICK_UNROLLED_STEPS if args.quick
                                             else UNROLLED_STEPS)
    jobs = args.memory_jobs or (3 if args.quick else 1)
    with default_dtype(torch.float64):  # torch-fem allocates with the default dtype
        run(sizes, steps, max(1, args.repeats), args.json, memory_n,
            {name: memory_steps if SERIES[name][0] == "adjoint" else unrolled_steps
             for name in args.series}, parts=tuple(args.parts), verbose=not args.quiet,
            warmup=not args.no_warmup, jobs=jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
