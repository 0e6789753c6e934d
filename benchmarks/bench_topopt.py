"""Benchmark dfem's SIMP topology optimisation against torch-fem: time per iteration (CPU).

One optimisation iteration is the forward solve, the sensitivity of the compliance with
respect to the design variables and the optimality-criteria (OC) update. The problems are
dfem's cantilevers (:func:`dfem.design.cantilever`, :func:`dfem.design.cantilever_3d`):

- **2D**: ``nelx x nely`` unit Q1 quadrilaterals, plane stress, ``E0 = 1``,
  ``E_min = 1e-9``, ``p = 3``, Poisson's ratio 0.3, the left side clamped, a unit load
  down at the middle node of the right side; volume fraction 0.4, density filter
  ``r_min = 2`` (the settings of ``cases/optimize_cantilever.toml``), move limit 0.2.
- **3D**: ``nx x ny x nz`` unit trilinear hexahedra, the face x = 0 clamped, a total unit
  load down (-y) shared equally by the nodes of the edge x = nx, y = 0; volume fraction
  0.2, ``r_min = 1.5`` (``cases/optimize_cantilever_3d.toml``).

Everything runs in float64 (torch-fem allocates with torch's default dtype, which the
script sets to float64 for the whole run).

**What differs between the two sides is the finite-element part only.** Both run the
same loop, :class:`dfem.design.TopologyOptimization` (its ``step``: the filtered
densities ``rho = H x / (H 1)`` by one :class:`dfem.design.DensityFilter` object shared by
both, the compliance and its gradient ``dc/dx`` by ``torch.autograd.grad``, the volume and
its gradient, :func:`dfem.design.oc_update`'s bisection for the multiplier, the move
limit), with a different objective ``rho -> c``:

- **dfem**: :class:`dfem.design.StructuralCompliance` (SIMP ``E(rho) = E_min + rho^p
  (E0 - E_min)`` per cell, ``LinearElasticity`` assembled by its closed-form kernel, the
  Dirichlet rows removed, one solve; the gradient by autograd through the adjoint, which
  for the compliance reuses the forward solution, so no second solve), for the methods
  "direct" (SuperLU), "amg" (CG + pyamg smoothed aggregation with the rigid-body modes,
  relative residual 1e-10, torch-fem's ``stol``) and "amg_coarse2000" (the same with
  dfem's ``max_coarse=2000`` solver option: the coarsest level solved directly up to 2000
  unknowns, as torch-fem's V-cycle does).
- **torch-fem** (0.14), written as its topology-optimisation notebooks do it
  (``examples/optimization/planar/topology.ipynb``, ``examples/optimization/solid/
  topology.ipynb``): a ``Planar`` model of the same nodes and quads with
  ``IsotropicElasticityPlaneStress(E=E0, nu=0.3)`` whose element *thickness* carries the
  SIMP factor (``model.thickness = E(rho) / E0``), or a ``Solid`` model of the same
  hexahedra with ``IsotropicElasticity3D(E=E0, nu=0.3)`` whose per-element elasticity
  tensor is scaled (``model.material.C = E(rho) / E0 * C0``); ``model.constraints`` on the
  nodes at x = 0, ``model.forces`` at dfem's load nodes; ``u, f, *_ =
  model.solve(differentiable_parameters=rho, method=...)`` and the compliance
  ``torch.inner(f.ravel(), u.ravel())``. The notebooks' two sensitivity routes are both
  timed:

  - ``autograd`` (``TORCH_SENS = True``): ``torch.autograd.grad`` through torch-fem's
    implicit adjoint (``NewtonRaphsonAdjoint``: one adjoint solve with the transposed
    tangent and one re-evaluation of the residual);
  - ``analytical`` (``TORCH_SENS = False``): the solve without a graph and the hand-derived
    ``dc/drho = -p rho^(p-1) (E0 - E_min) u_e . k0_e . u_e`` with ``k0 = model.k0()`` of the
    unit modulus, handed to autograd (a ``torch.autograd.Function``) so that the same loop
    chains it through the filter.

  Each with torch-fem's default solver (SciPy ``spsolve`` below 10 000 dofs, CG with its
  own smoothed-aggregation AMG in torch to ``stol = 1e-10`` above; ``default``) and with
  ``method="direct"`` (SciPy ``spsolve``); a default that resolves to "direct" is the
  direct variant and is not timed twice. The notebooks' own loop differs from the shared
  one in ways that are not the FE library: they filter the sensitivities (not the
  densities), bound the densities by ``rho_min`` instead of the ``E_min`` of modified
  SIMP, and find the multiplier with ``scipy.optimize.bisect``; here both codes use dfem's
  density filter, modified SIMP and OC, so that the designs can be compared iterate by
  iterate.

Per size:

1. **Agreement** at a fixed random design ``x`` (uniform in [0.1, 1], seed 0):
   ``TopologyOptimization.evaluate(x)`` for every dfem method and torch-fem variant against
   dfem's direct solve (``compliance_rel_diff``, ``sensitivity_rel_max_diff`` of ``dc/dx``),
   and the load vectors (``load_rel_max_diff``) and constrained dofs (both number the
   dofs ``2 node + component`` / ``3 node + component`` on the same nodes). Direct against
   direct must agree to ``AGREEMENT_TOL["exact"]``, pairs with an iterative solve to
   ``AGREEMENT_TOL["iterative"]``.
2. **dfem's optimisation run**: ``--iterations`` iterations (a size may set its own, e.g.
   ``40x20x20:8``) from the uniform design with dfem's "direct" method (or "amg" where
   "direct" is skipped), the compliance history and the mean time per iteration over the
   run (one pass, not a best-of); its design after half the iterations is where the timings
   start, since the cost of an iteration changes as the design goes black and white
   (iterative solvers need more iterations and AMG set-ups get dearer at high contrast:
   the first iterations from the uniform design are not representative).
3. **Time per iteration** (warm: the space / model and the filter exist): each timing is a
   new ``TopologyOptimization`` starting from that half-way design (``x0``), whose next
   ``--block`` iterations are timed with the garbage collector paused; the best of
   ``--repeats`` blocks, divided by the block length. A variant is not repeated once its
   blocks took ``BLOCK_BUDGET_S`` in all, and a variant whose time at the previous size of
   the same dimension, scaled by the cell ratio to the power ``SCALING``, predicts more
   than ``ITERATION_LIMIT_S`` per iteration is skipped with the reason recorded.
   ``iteration_ratio_vs_torchfem`` = dfem's fastest method / torch-fem's fastest autograd
   variant (the differentiable route; ``iteration_ratio_vs_torchfem_default``: against its
   default solver alone; ``iteration_ratio_vs_torchfem_analytical``: against its fastest
   analytical-sensitivity variant). Top level: the largest over the 2D sizes, and
   ``iteration_ratio_vs_torchfem_3d`` over the 3D sizes.
4. **Where the time goes**: one instrumented iteration from the same design (best of
   ``--repeats``) of dfem's fastest method: filter, forward (assembly, factorisation or
   AMG set-up, solve, from ``objective.last_solve``), sensitivity (autograd's backward
   pass), update (volume gradient + OC bisection, with its number of volume evaluations);
   the same split for torch-fem's fastest autograd variant.
5. **torch-fem's optimisation run** with its fastest autograd variant, the same iterations
   from the same uniform start: the compliance histories side by side, their largest
   relative difference, the final compliances and the largest difference of the final
   designs (``run``).

Usage::

    python benchmarks/bench_topopt.py --json benchmarks/results/bench_topopt_cpu.json --threads 1
    python benchmarks/bench_topopt.py --json /tmp/quick.json --quick

The JSON is written atomically after each size.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing dfem
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import (  # noqa: E402
    add_run_options,
    default_dtype,
    gc_paused,
    git_state,
    guarded,
    machine_info,
    rel_max_diff,
    set_threads,
    total_memory_bytes,
    write_json,
)
from dfem.design import (  # noqa: E402
    DensityFilter,
    TopologyOptimization,
    cantilever,
    cantilever_3d,
    oc_update,
    simp,
)

DEFAULT_SIZES = {"2d": ("120x60", "240x120"), "3d": ("30x10x10", "40x20x20:8")}
QUICK_SIZES = {"2d": ("12x6", "16x8"), "3d": ("6x2x2", "8x2x2")}
ITERATIONS, QUICK_ITERATIONS = 30, 2
BLOCK, QUICK_BLOCK = 2, 1  # iterations per timing block
MATERIAL = {"E0": 1.0, "E_min": 1e-9, "penal": 3.0, "poisson_ratio": 0.3}
DESIGN = {"2d": {"volume_fraction": 0.4, "r_min": 2.0},
          "3d": {"volume_fraction": 0.2, "r_min": 1.5}}
MOVE = 0.2
SOLVER_RTOL = 1e-10  # torch-fem's default stol
DFEM_METHODS = {  # name: (dfem method, solver options of StructuralCompliance)
    "direct": ("direct", {}),
    "amg": ("amg", {"solver_rtol": SOLVER_RTOL}),
    "amg_coarse2000": ("amg", {"solver_rtol": SOLVER_RTOL, "solver_max_coarse": 2000}),
}
TORCHFEM_VARIANTS = {  # name: (solve method, sensitivity)
    "default/autograd": (None, "autograd"),
    "direct/autograd": ("direct", "autograd"),
    "default/analytical": (None, "analytical"),
    "direct/analytical": ("direct", "analytical"),
}
TARGETS = {"iteration_ratio_vs_torchfem": 0.5, "iteration_ratio_vs_torchfem_3d": 0.5}
AGREEMENT_TOL = {"exact": 1e-9, "iterative": 1e-6}
ITERATION_LIMIT_S = 20.0
BLOCK_BUDGET_S = 20.0
SCALING = {"direct": {"2d": 1.5, "3d": 2.5}, "iterative": {"2d": 1.2, "3d": 1.2}}
MEMORY_LIMIT_BYTES = 16 * 2**30


# ---------------------------------------------------------------------- helpers
def parse_size(spec: str) -> tuple[tuple[int, ...], int | None]:
    """``"120x60"`` -> ((120, 60), None); ``"40x20x20:8"`` -> ((40, 20, 20), 8)."""
    shape, _, iterations = spec.partition(":")
    return tuple(int(s) for s in shape.split("x")), int(iterations) if iterations else None


def _machine() -> dict:
    import scipy

    total = total_memory_bytes()
    return machine_info(
        {"torchfem": "torch-fem", "pyamg": "pyamg"},
        scipy=scipy.__version__,
        torch_threads=torch.get_num_threads(),
        git=git_state(ROOT),
        memory_gb=None if total is None else round(total / 2**30, 1),
    )


def _failure(exc: Exception) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


def dfem_problem(shape: tuple[int, ...], method: str, options: dict):
    """``(mesh, objective)`` of the 2D or 3D cantilever with the benchmark's material."""
    if len(shape) == 2:
        return cantilever(*shape, load="middle", method=method, **MATERIAL, **options)
    return cantilever_3d(*shape, method=method, **MATERIAL, **options)


# ---------------------------------------------------------------------- torch-fem side
def torchfem_model(mesh, objective):
    """torch-fem's model of the same cantilever: a ``Planar`` (plane stress) or ``Solid``
    model of dfem's nodes and cells at the modulus ``E0``, the nodes at x = 0 constrained,
    dfem's point load at its load nodes."""
    from torchfem import Planar, Solid
    from torchfem.materials import IsotropicElasticity3D, IsotropicElasticityPlaneStress

    nodes, cells = mesh.nodes.detach(), mesh.cells
    E0, nu = MATERIAL["E0"], MATERIAL["poisson_ratio"]
    if nodes.shape[1] == 2:
        model = Planar(nodes, cells, IsotropicElasticityPlaneStress(E=E0, nu=nu))
    else:
        model = Solid(nodes, cells, IsotropicElasticity3D(E=E0, nu=nu))
    model.constraints[nodes[:, 0] < 1e-9, :] = True
    load_nodes = torch.as_tensor(np.asarray(mesh.point_tags["load"]), dtype=torch.long)
    model.forces[load_nodes] = torch.tensor(objective.point_loads["load"], dtype=nodes.dtype)
    return model


def torchfem_reference(model) -> dict:
    """What the SIMP scaling and the analytical sensitivity start from, as the notebooks
    take it before their loops: ``C0 = model.material.C.clone()`` (``Solid``) and
    ``k0 = model.k0()`` at thickness 1 / the modulus ``E0``, divided by ``E0``."""
    from torchfem import Planar

    C0 = None if isinstance(model, Planar) else model.material.C.clone()
    return {"C0": C0, "k0": model.k0() / MATERIAL["E0"]}


class TorchfemCompliance:
    """``c(rho) = f . u`` of a torch-fem model with the SIMP factor ``E(rho) / E0`` as the
    element thickness (``Planar``) or as the scale of the elasticity tensor (``Solid``).

    Parameters
    ----------
    model : torchfem.Planar or torchfem.Solid
        Built at the modulus ``E0`` (:func:`torchfem_model`).
    reference : dict
        The model's pristine ``"C0"`` (``Solid``: the elasticity tensor at ``E0``, per
        element) and ``"k0"`` (the element stiffness matrices of the unit modulus), taken
        before any variant scales the model (:func:`torchfem_reference`).
    method : {None, "direct", "cg"}
        torch-fem's ``solve(method=...)``; None is its default (by size).
    sensitivity : {"autograd", "analytical"}
        Through torch-fem's implicit adjoint, or the hand-derived expression of its
        notebooks (see the module docstring).
    """

    def __init__(self, model, reference: dict, method: str | None, sensitivity: str):
        from torchfem import Planar
        from torchfem.sparse import describe_method, resolve_method

        self.model, self.method, self.sensitivity = model, method, sensitivity
        self.E0, self.E_min, self.penal = (MATERIAL[k] for k in ("E0", "E_min", "penal"))
        self.planar = isinstance(model, Planar)
        self.C0, self.k0 = reference["C0"], reference["k0"]
        self.solver = describe_method(resolve_method(model.n_dofs, method, True), "cpu", None)
        self.last_forward_s = math.nan

    def _scale(self, factor: torch.Tensor) -> None:
        if self.planar:
            self.model.thickness = factor
        else:
            self.model.material.C = factor[:, None, None, None, None] * self.C0

    def solve(self, rho: torch.Tensor, differentiable: bool):
        """``(u, f)`` of the model at the densities ``rho``."""
        t0 = time.perf_counter()
        self._scale(simp(rho, self.E0, self.E_min, self.penal) / self.E0)
        u, f, *_ = self.model.solve(method=self.method,
                                    differentiable_parameters=rho if differentiable else None)
        self.last_forward_s = time.perf_counter() - t0
        return u, f

    def __call__(self, rho: torch.Tensor) -> torch.Tensor:
        if self.sensitivity == "analytical":
            return _AnalyticalCompliance.apply(rho, self)
        u, f = self.solve(rho, differentiable=True)
        return torch.inner(f.ravel(), u.ravel())


class _AnalyticalCompliance(torch.autograd.Function):
    """torch-fem's notebooks' ``TORCH_SENS = False``: ``dc/drho_e = -p rho_e^(p-1)
    (E0 - E_min) / E0 * u_e . k0_e . u_e``."""

    @staticmethod
    def forward(ctx, rho, owner):
        u, f = owner.solve(rho.detach(), differentiable=False)
        ctx.owner, ctx.u = owner, u
        ctx.save_for_backward(rho)
        return torch.inner(f.ravel(), u.ravel())

    @staticmethod
    def backward(ctx, grad_output):
        (rho,) = ctx.saved_tensors
        owner = ctx.owner
        u_e = ctx.u[owner.model.elements].reshape(owner.model.n_elem, -1)
        w = torch.einsum("...i,...ij,...j", u_e, owner.k0, u_e)
        factor = owner.penal * rho.clamp(min=0.0) ** (owner.penal - 1.0) * \
            (owner.E0 - owner.E_min) / owner.E0
        return -grad_output * factor * w, None


# ---------------------------------------------------------------------- timing
def time_blocks(make_design, block: int, repeats: int, budget_s: float = BLOCK_BUDGET_S):
    """The first ``block`` iterations of fresh designs: (best seconds per iteration, the
    best block's per-iteration seconds, blocks run); not repeated once the blocks took
    ``budget_s`` in all."""
    best, best_rows, runs, spent = math.inf, None, 0, 0.0
    while runs < repeats and (runs == 0 or spent < budget_s):
        design = make_design()
        with gc_paused():
            t0 = time.perf_counter()
            for _ in range(block):
                design.step()
            t = time.perf_counter() - t0
        runs, spent = runs + 1, spent + t
        if t < best:
            best, best_rows = t, [row["seconds"] for row in design.history]
    return best / block, best_rows, runs


def instrumented_step(design) -> dict:
    """One iteration of ``design`` as :meth:`TopologyOptimization.step` makes it, timed by
    parts (the design is not updated)."""
    calls = [0]

    def volume(x):
        calls[0] += 1
        return design.volume(x)

    with gc_paused():
        t0 = time.perf_counter()
        x = design.x.detach().requires_grad_(True)
        rho = design.physical(x)
        t1 = time.perf_counter()
        c = design.objective(rho)
        t2 = time.perf_counter()
        (dc,) = torch.autograd.grad(c, x)
        t3 = time.perf_counter()
        v = design.volume(x)
        (dv,) = torch.autograd.grad(v, x)
        oc_update(design.x, dc, dv * len(design.x), volume, design.volume_fraction, design.move)
        t4 = time.perf_counter()
    return {"filter_s": t1 - t0, "forward_s": t2 - t1, "sensitivity_s": t3 - t2,
            "update_s": t4 - t3, "total_s": t4 - t0, "oc_volume_evaluations": calls[0]}


def dfem_split(objective, make_design, repeats: int) -> dict:
    """:func:`instrumented_step` with the forward solve's parts (best total of repeats)."""
    best = None
    for _ in range(repeats):
        split = instrumented_step(make_design())
        info = objective.last_solve["info"]
        split.update(assemble_s=objective.last_solve["assemble_s"],
                     solve_s=objective.last_solve["solve_s"],
                     factorization_or_setup_s=info.setup_s, solve_phase_s=info.solve_s,
                     linear_iterations=info.iterations)
        if best is None or split["total_s"] < best["total_s"]:
            best = split
        if best["total_s"] > BLOCK_BUDGET_S / 2:
            break
    return best


def torchfem_split(make_design, repeats: int) -> dict:
    best = None
    for _ in range(repeats):
        design = make_design()
        split = instrumented_step(design)
        split["solve_s"] = design.objective.last_forward_s  # thickness / C, solve, f
        if best is None or split["total_s"] < best["total_s"]:
            best = split
        if best["total_s"] > BLOCK_BUDGET_S / 2:
            break
    return best


def optimisation_run(make_design, name: str, iterations: int, keep: int):
    """``iterations`` OC iterations from the uniform design: (the JSON entry, (compliance
    history, final design), the design after ``keep`` iterations or None on failure)."""
    design = make_design()
    kept = {}

    def remember(row):
        if row["iteration"] == keep:
            kept["x"] = design.x.detach().clone()

    try:
        design.run(iterations, tolerance=0.0, callback=remember)
    except Exception as exc:
        return {"variant": name, "failed": _failure(exc)}, None, None
    compliance = [row["compliance"] for row in design.history]
    seconds = [row["seconds"] for row in design.history]
    entry = {"variant": name, "compliance": compliance, "seconds": seconds,
             "final_compliance": compliance[-1], "final_volume": design.history[-1]["volume"],
             "final_change": design.history[-1]["change"],
             "mean_iteration_s": float(np.mean(seconds))}
    return entry, (np.array(compliance), design.x.detach().numpy().copy()), kept.get("x")


def _predicted_skip(name: str, kind: str, dim: str, cells: int, previous: dict | None):
    """The reason to skip a variant predicted over ``ITERATION_LIMIT_S``, or None."""
    if previous is None:
        return None
    prev = previous["entries"].get(name, {})
    if "skipped" in prev:
        return "skipped at the previous size"
    if "per_iteration_s" not in prev:
        return None
    exponent = SCALING[kind][dim]
    predicted = prev["per_iteration_s"] * (cells / previous["cells"]) ** exponent
    if predicted > ITERATION_LIMIT_S:
        return (f"predicted {predicted:.0f} s per iteration from {prev['per_iteration_s']:.2f} s "
                f"at {previous['cells']} cells (x (cells ratio)^{exponent}; limit "
                f"{ITERATION_LIMIT_S:g} s)")
    return None


# ---------------------------------------------------------------------- one size
def bench_size(shape, iterations: int, block: int, repeats: int, previous: dict | None) -> dict:
    from torchfem.sparse import resolve_method

    dim = f"{len(shape)}d"
    design_settings = DESIGN[dim]
    vf = design_settings["volume_fraction"]
    objectives, mesh = {}, None
    for name, (method, options) in DFEM_METHODS.items():
        mesh_m, objectives[name] = dfem_problem(shape, method, options)
        mesh = mesh if mesh is not None else mesh_m
    filt = DensityFilter(mesh, design_settings["r_min"])
    n_dofs = objectives["direct"].space.n_dofs

    def designer(objective):
        return lambda x0=None: TopologyOptimization(objective, mesh, vf, filter=filt,
                                                    optimizer="oc", move=MOVE, x0=x0)

    model = torchfem_model(mesh, objectives["direct"])
    reference_state = torchfem_reference(model)
    default_method = resolve_method(model.n_dofs, None, True)
    out: dict = {"shape": list(shape), "cells": mesh.n_cells, "dofs": n_dofs,
                 "volume_fraction": vf, "r_min": design_settings["r_min"],
                 "torchfem_default_solver": default_method, "dfem": {}, "torchfem": {}}

    # ---- the same discrete problem: loads, constraints
    fixed = objectives["direct"].problem(
        objectives["direct"].modulus(torch.ones(mesh.n_cells, dtype=torch.float64))
    ).dirichlet_data()[0]
    constrained = torch.nonzero(model.constraints.ravel()).ravel()
    out["load_rel_max_diff"] = rel_max_diff(objectives["direct"].load, model.forces.ravel())
    out["constrained_dofs_equal"] = bool(torch.equal(torch.sort(fixed.cpu()).values,
                                                     torch.sort(constrained).values))

    # ---- which variants run
    entries: dict = {}
    designs: dict = {}
    for key, (method, options) in DFEM_METHODS.items():
        name = f"dfem/{key}"
        kind = "direct" if method == "direct" else "iterative"
        reason = _predicted_skip(name, kind, dim, mesh.n_cells, previous)
        entries[name] = {"code": "dfem", "method": method, "options": options}
        if reason:
            entries[name]["skipped"] = reason
        else:
            designs[name] = designer(objectives[key])
    for variant, (method, sensitivity) in TORCHFEM_VARIANTS.items():
        name = f"torchfem/{variant}"
        resolved = resolve_method(model.n_dofs, method, True)
        entries[name] = {"code": "torch-fem", "method": method or "default",
                         "resolved_method": resolved, "sensitivity": sensitivity}
        if method is None and resolved == "direct":
            entries[name]["same_as"] = f"torchfem/direct/{sensitivity}"
            continue
        kind = "direct" if resolved == "direct" else "iterative"
        reason = _predicted_skip(name, kind, dim, mesh.n_cells, previous)
        if reason:
            entries[name]["skipped"] = reason
            continue
        objective = TorchfemCompliance(model, reference_state, method, sensitivity)
        entries[name]["solver"] = objective.solver
        designs[name] = designer(objective)

    # ---- 1. agreement at a fixed random design (also the untimed first call of each)
    gen = torch.Generator().manual_seed(0)
    x_fixed = 0.1 + 0.9 * torch.rand(mesh.n_cells, generator=gen, dtype=torch.float64)
    evaluations = {}
    for name, make in list(designs.items()):
        try:
            c, dc, v, _ = make().evaluate(x_fixed)
        except Exception as exc:  # a solver that breaks down is a result, not a crash
            entries[name]["failed"] = _failure(exc)
            del designs[name]
            continue
        evaluations[name] = (float(c), dc.detach().clone(), float(v))
    reference = next((n for n in ("dfem/direct", "dfem/amg") if n in evaluations), None)
    agreement: dict = {"reference": reference, "design": "x uniform in [0.1, 1], seed 0"}
    if reference is not None:
        c_ref, dc_ref, _ = evaluations[reference]
        agreement["compliance"] = c_ref
        for name, (c, dc, _) in evaluations.items():
            if name == reference:
                continue
            exact = reference == "dfem/direct" and (
                name == "dfem/direct" or entries[name].get("resolved_method") == "direct")
            tol = AGREEMENT_TOL["exact" if exact else "iterative"]
            c_rel = abs(c - c_ref) / abs(c_ref)
            g_rel = rel_max_diff(dc, dc_ref)
            agreement[name] = {"compliance_rel_diff": c_rel, "sensitivity_rel_max_diff": g_rel,
                               "tolerance": tol, "agree": bool(c_rel < tol and g_rel < tol)}
    out["agreement"] = agreement
    out["agree"] = bool(reference is not None) and all(
        a["agree"] for k, a in agreement.items() if isinstance(a, dict)) and \
        out["load_rel_max_diff"] < 1e-14 and out["constrained_dofs_equal"]

    # ---- 2. dfem's run from the uniform design (its design half-way starts the timings)
    run: dict = {"iterations": iterations}
    histories: dict = {}
    mid = max(iterations // 2, 0)
    reference_run = next((n for n in ("dfem/direct", "dfem/amg") if n in designs), None)
    x_mid = None
    if reference_run is not None:
        run["dfem"], history, x_mid = optimisation_run(designs[reference_run], reference_run,
                                                      iterations, mid)
        if history is not None:
            histories["dfem"] = history
    out["timing_start"] = {"iteration": mid if x_mid is not None else 0,
                           "design": f"{reference_run}'s design after {mid} iterations"
                           if x_mid is not None else "uniform"}

    def at_mid(make):
        if x_mid is None:
            return make
        return lambda: make(x0=x_mid)

    # ---- 3. time per iteration, every variant from the same design
    for name, make in list(designs.items()):
        try:
            per_it, rows, runs = time_blocks(at_mid(make), block, repeats)
        except Exception as exc:
            entries[name]["failed"] = _failure(exc)
            del designs[name]
            continue
        entries[name].update(per_iteration_s=per_it, block_iteration_s=rows, blocks=runs,
                             block=block)
    for entry in entries.values():
        if "same_as" in entry and "per_iteration_s" in entries.get(entry["same_as"], {}):
            entry["per_iteration_s"] = entries[entry["same_as"]]["per_iteration_s"]
    out["entries"] = entries

    def fastest(prefix: str, sensitivity: str | None = None):
        timed = {n: e["per_iteration_s"] for n, e in entries.items()
                 if n.startswith(prefix) and "per_iteration_s" in e and n in designs
                 and (sensitivity is None or e.get("sensitivity") == sensitivity)}
        return min(timed, key=timed.get) if timed else None

    best_dfem = fastest("dfem/")
    best_tf = fastest("torchfem/", "autograd")
    best_tf_analytical = fastest("torchfem/", "analytical")
    out.update(dfem_best=best_dfem, torchfem_best_autograd=best_tf,
               torchfem_best_analytical=best_tf_analytical)
    if best_dfem is not None:
        t_dfem = entries[best_dfem]["per_iteration_s"]
        out["dfem_best_s"] = t_dfem
        if best_tf is not None:
            out["torchfem_best_autograd_s"] = entries[best_tf]["per_iteration_s"]
            out["iteration_ratio_vs_torchfem"] = t_dfem / out["torchfem_best_autograd_s"]
        default = entries["torchfem/default/autograd"]
        if "per_iteration_s" in default:
            out["iteration_ratio_vs_torchfem_default"] = t_dfem / default["per_iteration_s"]
        if best_tf_analytical is not None:
            out["torchfem_best_analytical_s"] = entries[best_tf_analytical]["per_iteration_s"]
            out["iteration_ratio_vs_torchfem_analytical"] = \
                t_dfem / out["torchfem_best_analytical_s"]

    # ---- 4. where the time goes (the same design)
    if best_dfem is not None:
        key = best_dfem.removeprefix("dfem/")
        out["dfem_split"] = dict(dfem_split(objectives[key], at_mid(designs[best_dfem]),
                                            repeats), variant=best_dfem)
    if best_tf is not None:
        out["torchfem_split"] = dict(torchfem_split(at_mid(designs[best_tf]), repeats),
                                     variant=best_tf)

    # ---- 5. torch-fem's run, same start, same iterations
    if best_tf is not None and "dfem" in histories:
        run["torchfem"], history, _ = optimisation_run(designs[best_tf], best_tf, iterations,
                                                       mid)
        if history is not None:
            histories["torchfem"] = history
    if len(histories) == 2:
        (c_d, x_d), (c_t, x_t) = histories["dfem"], histories["torchfem"]
        run["history_rel_max_diff"] = float(np.max(np.abs(c_d - c_t) / np.abs(c_t)))
        run["final_compliance_rel_diff"] = float(abs(c_d[-1] - c_t[-1]) / abs(c_t[-1]))
        run["design_max_abs_diff"] = float(np.max(np.abs(x_d - x_t)))
        run["mean_iteration_ratio"] = run["dfem"]["mean_iteration_s"] / \
            run["torchfem"]["mean_iteration_s"]
    out["run"] = run
    return out


# ---------------------------------------------------------------------- report
def print_size(label: str, r: dict) -> None:
    if "skipped" in r and "entries" not in r:
        print(f"{label}: skipped ({r['skipped']})")
        return
    print(f"\n=== {label}: {r['cells']:,} cells, {r['dofs']:,} dofs "
          f"(torch-fem default: {r['torchfem_default_solver']}) ===")
    print(f"  {'variant':<30}{'s / iteration':>14}{'blocks':>8}   agreement (c, dc/dx)")
    for name, e in r["entries"].items():
        a = r["agreement"].get(name)
        agree = (f"{a['compliance_rel_diff']:.1e}, {a['sensitivity_rel_max_diff']:.1e}"
                 if isinstance(a, dict) else "reference" if name == r["agreement"]["reference"]
                 else "")
        if "per_iteration_s" in e and "same_as" not in e:
            print(f"  {name:<30}{e['per_iteration_s']:>13.3f}s{e['blocks']:>8}   {agree}")
        else:
            why = e.get("skipped") or e.get("failed") or f"= {e.get('same_as')}"
            print(f"  {name:<30}  {why}")
    for key in ("iteration_ratio_vs_torchfem", "iteration_ratio_vs_torchfem_default",
                "iteration_ratio_vs_torchfem_analytical"):
        if key in r:
            print(f"  {key} = {r[key]:.3f}")
    if "dfem_split" in r:
        s = r["dfem_split"]
        print(f"  dfem split ({s['variant']}): filter {s['filter_s']:.3f}, forward "
              f"{s['forward_s']:.3f} (assemble {s['assemble_s']:.3f}, factorise/setup "
              f"{s['factorization_or_setup_s']:.3f}, solve {s['solve_phase_s']:.3f}), "
              f"sensitivity {s['sensitivity_s']:.3f}, update {s['update_s']:.3f} "
              f"({s['oc_volume_evaluations']} volume evaluations)")
    if "torchfem_split" in r:
        s = r["torchfem_split"]
        print(f"  torch-fem split ({s['variant']}): forward {s['forward_s']:.3f}, sensitivity "
              f"{s['sensitivity_s']:.3f}, update {s['update_s']:.3f}")
    run = r["run"]
    if "final_compliance_rel_diff" in run:
        print(f"  run of {run['iterations']} iterations: final compliance dfem "
              f"{run['dfem']['final_compliance']:.6g}, torch-fem "
              f"{run['torchfem']['final_compliance']:.6g} (rel. diff "
              f"{run['final_compliance_rel_diff']:.1e}; history {run['history_rel_max_diff']:.1e}"
              f"; design {run['design_max_abs_diff']:.1e}); mean s / iteration "
              f"{run['dfem']['mean_iteration_s']:.3f} vs {run['torchfem']['mean_iteration_s']:.3f}")


def summarise(results: dict) -> None:
    """Top-level headline keys: the largest ratio over the sizes of each dimension."""
    for dim, suffix in (("2d", ""), ("3d", "_3d")):
        sizes = results.get(dim, {})
        for key in ("iteration_ratio_vs_torchfem", "iteration_ratio_vs_torchfem_default",
                    "iteration_ratio_vs_torchfem_analytical"):
            values = [r[key] for r in sizes.values() if key in r]
            if values:
                results[key.replace("torchfem", "torchfem" + suffix) if suffix else key] = \
                    max(values)
    results["targets_met"] = {key: bool(key in results and results[key] <= target)
                              for key, target in TARGETS.items()}
    measured = [r for dim in ("2d", "3d") for r in results.get(dim, {}).values() if "agree" in r]
    results["agree"] = bool(measured) and all(r["agree"] for r in measured)
    runs = [r["run"] for r in measured if "final_compliance_rel_diff" in r.get("run", {})]
    if runs:
        results["final_compliance_rel_max_diff"] = max(r["final_compliance_rel_diff"]
                                                       for r in runs)


def warm_up() -> None:
    """Import and first-call costs kept out of the timings (tiny sizes, untimed)."""
    bench_size((4, 2), 1, 1, 1, None)
    bench_size((2, 2, 2), 1, 1, 1, None)


def run(sizes: dict, iterations: int, block: int, repeats: int, out: Path,
        verbose: bool = True, warmup: bool = True) -> dict:
    results: dict = {
        "machine": _machine(),
        "settings": {
            "material": MATERIAL,
            "design": DESIGN,
            "move": MOVE,
            "filter": "dfem.design.DensityFilter (one object shared by both codes)",
            "update": "dfem.design.oc_update via TopologyOptimization.step (both codes)",
            "dfem_methods": DFEM_METHODS,
            "torchfem_variants": {k: {"method": m or "default", "sensitivity": s}
                                  for k, (m, s) in TORCHFEM_VARIANTS.items()},
            "torchfem_simp": "2D: model.thickness = E(rho) / E0; 3D: model.material.C = "
                             "E(rho) / E0 * C0; compliance torch.inner(f, u)",
            "iterations": iterations,
            "block": block,
            "repeats": repeats,
            "timing": f"best of repeats of the first {block} iteration(s) from the uniform "
                      "design, per iteration, wall clock, gc paused; a variant is not "
                      f"repeated once its blocks took {BLOCK_BUDGET_S:g} s",
            "iteration_limit_s": ITERATION_LIMIT_S,
            "scaling_exponents": SCALING,
            "agreement_tol": AGREEMENT_TOL,
            "targets": TARGETS,
            "headline": "iteration_ratio_vs_torchfem = dfem's fastest method / torch-fem's "
                        "fastest autograd variant, the largest over the 2D sizes "
                        "(iteration_ratio_vs_torchfem_3d: over the 3D sizes)",
        },
    }
    with default_dtype(torch.float64):
        if warmup:
            warm_up()
        for dim in ("2d", "3d"):
            results[dim] = {}
            previous = None
            for spec in sizes.get(dim, ()):
                shape, its = parse_size(spec)
                label = "x".join(map(str, shape))
                entry = guarded(0, MEMORY_LIMIT_BYTES, lambda shape=shape, its=its,
                                previous=previous: bench_size(shape, its or iterations, block,
                                                              repeats, previous))
                if "entries" in entry:
                    previous = {"entries": entry["entries"], "cells": entry["cells"]}
                results[dim][label] = entry
                summarise(results)
                write_json(out, results)
                if verbose:
                    print_size(f"{dim} {label}", entry)
    summarise(results)
    write_json(out, results)
    if verbose:
        print("\n" + ", ".join(f"{k} = {results[k]:.3f}" for k in
                               ("iteration_ratio_vs_torchfem", "iteration_ratio_vs_torchfem_3d",
                                "iteration_ratio_vs_torchfem_analytical",
                                "iteration_ratio_vs_torchfem_3d_analytical") if k in results))
        print(f"targets met: {results['targets_met']}; agreement: {results['agree']}")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, type=Path, help="output JSON file")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2D 12x6 and 16x8, 3D 6x2x2 and 8x2x2, "
                             f"{QUICK_ITERATIONS} iterations, blocks of {QUICK_BLOCK}, one repeat")
    parser.add_argument("--sizes-2d", nargs="*", default=None,
                        help="NELXxNELY[:ITERATIONS] (default "
                             f"{' '.join(DEFAULT_SIZES['2d'])}); none: skip 2D")
    parser.add_argument("--sizes-3d", nargs="*", default=None,
                        help="NXxNYxNZ[:ITERATIONS] (default "
                             f"{' '.join(DEFAULT_SIZES['3d'])}); none: skip 3D")
    parser.add_argument("--iterations", type=int, default=None,
                        help=f"iterations of the optimisation run (default {ITERATIONS})")
    parser.add_argument("--block", type=int, default=None,
                        help=f"iterations per timing block (default {BLOCK})")
    parser.add_argument("--repeats", type=int, default=None,
                        help="best of R blocks (default 3; --quick 1)")
    add_run_options(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads, argv)
    base = QUICK_SIZES if args.quick else DEFAULT_SIZES
    # "--sizes-3d" with no value, or with the word none, skips that dimension
    sizes = {dim: base[dim] if given is None else [s for s in given if s.lower() != "none"]
             for dim, given in (("2d", args.sizes_2d), ("3d", args.sizes_3d))}
    iterations = args.iterations or (QUICK_ITERATIONS if args.quick else ITERATIONS)
    block = args.block or (QUICK_BLOCK if args.quick else BLOCK)
    repeats = args.repeats or (1 if args.quick else 3)
    run(sizes, max(1, iterations), max(1, block), max(1, repeats), args.json,
        verbose=not args.quiet, warmup=not args.no_warmup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
