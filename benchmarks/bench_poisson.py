"""Benchmark dfem on the Poisson problem against scikit-fem and torch-fem (CPU).

Two measurements per mesh of n x n bilinear quadrilaterals (Q1) on the unit square:

1. **Assembly** of the Laplace stiffness matrix, dfem vs scikit-fem, on the same
   nodes and cells.

   - *cold*: dfem ``FunctionSpace(mesh, "Q1")`` + the first ``assemble_matrix``
     (which builds the dof map, the CSR pattern and the mapped geometry) against
     scikit-fem ``Basis(mesh, ElementQuad1())`` + ``asm(laplace, basis)``. Fresh
     mesh objects every repeat (built outside the timer), best of R.
   - *warm*: a second assembly on the already-built space / basis.

   The two matrices are compared entry by entry (max |A_dfem - A_skfem| / max |A|).

2. **Forward + backward**: the solution ``u`` of ``-div(nu grad u) = 1`` with
   ``u = 0`` on the left edge (natural conditions elsewhere) and per-cell
   ``nu = 1 + 0.5 sin(2 pi x) sin(2 pi y)`` (cell centroids), then the gradient
   of ``J = sum_i u_i**2`` (nodal values) with respect to the per-cell ``nu``.

   - dfem: ``Poisson(space, nu=nu, f=1.0, dirichlet={"left": 0.0})``,
     ``solve(method="direct")`` (SuperLU) and ``solve(method="amg")`` (CG
     preconditioned by a pyamg Ruge-Stueben V-cycle, ``rtol`` = torch-fem's ``stol``).
   - torch-fem: ``PlanarHeat(nodes, quads, IsotropicConductivity2D(kappa=nu))``
     (``Quad1`` elements, 2x2 Gauss, thickness 1), nodal heat sources from its
     own ``integrate_body_load(1.0)``, the left nodes constrained to 0, and
     ``solve(differentiable_parameters=kappa)`` with its default solver choice.

   Both sides solve the same discrete system: Q1 stiffness with the same
   per-cell conductivity, the same consistent load vector (checked), the same
   Dirichlet nodes. Agreement of ``u`` and of ``dJ/dnu`` is recorded.

   - *warm* (the headline, one iteration of an optimisation loop): the space /
     model already exists; a new ``nu`` leaf, the solve and the backward pass
     are timed (dfem: a new ``Poisson`` on the existing space; torch-fem: a new
     material assigned to the existing model).
   - *cold*: the space / model is built inside the timer too.

Usage::

    python benchmarks/bench_poisson.py --json benchmarks/results/bench_poisson_cpu.json --threads 1
    python benchmarks/bench_poisson.py --json /tmp/quick.json --quick

``--threads N`` pins torch, OpenMP and OpenBLAS to N threads: on a small machine shared
with other work, two OpenMP threads make every parallel region wait for a descheduled
thread and the timings then measure the scheduler.

The JSON is written atomically after each size, so an interrupted run keeps the
sizes it finished.
"""

from __future__ import annotations

import argparse
import functools
import gc
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing dfem
    sys.path.insert(0, str(ROOT))

import dfem  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    add_run_options,
    best_of,
    default_dtype,
    fastest_run,
    guarded,
    machine_info,
    per_cell_nu,
    rel_max_diff,
    set_threads,
    skfem_quad_mesh,
    torchfem_heat_model,
    torchfem_heat_solve,
    total_memory_bytes,
    write_json,
)
from dfem.assembly import assemble_matrix, assemble_vector  # noqa: E402

DEFAULT_SIZES = (256, 512, 1024)
QUICK_SIZES = (64, 128)
MEMORY_LIMIT_BYTES = 16 * 2**30
# Peak resident memory per cell of this benchmark: 4.6 GB at n = 1024 (about 4.4 kB/cell,
# torch-fem's and SuperLU's working sets dominate); rounded up for a margin.
BYTES_PER_CELL_ESTIMATE = 6 * 2**10
TARGET_RATIO = 0.5  # the project's targets: dfem time <= 0.5 x the reference's
ASSEMBLY_TOL = 1e-10
AGREEMENT_TOL = 1e-6  # torch-fem's CG stops at a relative residual of 1e-10
TORCHFEM_STOL = 1e-10  # torch-fem's default tolerance of its iterative solvers


# ---------------------------------------------------------------------- helpers


def _machine() -> dict:
    import scipy

    total = total_memory_bytes()
    return machine_info(
        {"skfem": "scikit-fem", "torchfem": "torch-fem", "pyamg": "pyamg"},
        scipy=scipy.__version__,
        torch_threads=torch.get_num_threads(),
        memory_gb=None if total is None else round(total / 2**30, 1),
    )


def estimate_bytes(n: int) -> int:
    return BYTES_PER_CELL_ESTIMATE * n * n


# ---------------------------------------------------------------------- assembly
def bench_assembly(n: int, repeats: int) -> dict:
    gc.collect()
    from skfem import Basis, ElementQuad1, asm
    from skfem.models.poisson import laplace

    def dfem_cold(mesh):
        space = dfem.FunctionSpace(mesh, "Q1")
        return space, assemble_matrix(space, nu=1.0)

    def skfem_cold(mesh):
        basis = Basis(mesh, ElementQuad1())
        return basis, asm(laplace, basis)

    t_dfem_cold, (space, values) = best_of(
        repeats, dfem_cold, setup=lambda: dfem.mesh.rectangle(n, n, "quad")
    )
    t_dfem_warm, values = best_of(repeats, lambda: assemble_matrix(space, nu=1.0))

    t_sk_cold, (basis, A_sk) = best_of(
        repeats, skfem_cold, setup=lambda: skfem_quad_mesh(dfem.mesh.rectangle(n, n, "quad"))
    )
    t_sk_warm, A_sk = best_of(repeats, lambda: asm(laplace, basis))

    A_dfem = space.pattern.to_scipy(values).tocsr()
    A_sk = A_sk.tocsr()
    diff = abs(A_dfem - A_sk).max()
    scale = max(abs(A_sk).max(), 1e-300)
    rel = float(diff / scale)
    return {
        "n_cells": n * n,
        "n_dofs": space.n_dofs,
        "nnz": int(A_dfem.nnz),
        "dfem_cold_s": t_dfem_cold,
        "dfem_warm_s": t_dfem_warm,
        "skfem_cold_s": t_sk_cold,
        "skfem_warm_s": t_sk_warm,
        "assembly_ratio_vs_skfem": t_dfem_cold / t_sk_cold,
        "assembly_warm_ratio_vs_skfem": t_dfem_warm / t_sk_warm,
        "matrix_rel_max_diff": rel,
        "matrices_agree": bool(rel < ASSEMBLY_TOL),
        "assembly_target_met": bool(t_dfem_cold / t_sk_cold <= TARGET_RATIO),
    }


# ---------------------------------------------------------------------- forward + backward
def _dfem_fwd_bwd(space, nu0: torch.Tensor, method: str, options: dict):
    nu = nu0.clone().requires_grad_(True)
    problem = dfem.Poisson(space, nu=nu, f=1.0, dirichlet={"left": 0.0})
    t0 = time.perf_counter()
    u = problem.solve(method=method, **options)
    t1 = time.perf_counter()
    (u * u).sum().backward()
    t2 = time.perf_counter()
    info = problem.last_solve["info"]
    detail = {
        "forward_s": t1 - t0,
        "backward_s": t2 - t1,
        "assemble_s": problem.last_solve["assemble_s"],
        "solve_s": problem.last_solve["solve_s"],
        # last_solve holds a snapshot taken after the forward solve
        "cg_iterations_forward": info.iterations,
    }
    return u.detach(), nu.grad.detach(), detail


def bench_fwd_bwd(n: int, repeats: int) -> dict:
    from torchfem.materials import IsotropicConductivity2D
    from torchfem.sparse import describe_method, resolve_method

    gc.collect()
    mesh = dfem.mesh.rectangle(n, n, "quad")
    nu0 = per_cell_nu(mesh).detach()
    # Q1 dofs are the mesh vertices (dof v = node v), so the numberings coincide.
    left = dfem.FunctionSpace(mesh, "Q1").boundary_dofs("left")
    out: dict = {}

    # ---- dfem, cold: space (dof map, pattern, geometry) built in the timer
    amg_options = {"rtol": TORCHFEM_STOL}
    methods = {"direct": {}, "amg": amg_options}
    for method, options in methods.items():
        t, _ = best_of(
            repeats,
            lambda m, method=method, options=options: _dfem_fwd_bwd(
                dfem.FunctionSpace(m, "Q1"), nu0, method, options
            ),
            setup=lambda: dfem.mesh.rectangle(n, n, "quad"),
        )
        out[f"dfem_{method}_cold_s"] = t

    # ---- dfem, warm: one space, a new nu and problem per repeat
    space = dfem.FunctionSpace(mesh, "Q1")
    _dfem_fwd_bwd(space, nu0, "direct", {})  # builds pattern, geometry, restricted pattern
    results = {}
    for method, options in methods.items():
        best, (_, _, best_detail), (u, g, _), _ = fastest_run(
            repeats, functools.partial(_dfem_fwd_bwd, space, nu0, method, options))
        out[f"dfem_{method}_warm_s"] = best
        out[f"dfem_{method}_breakdown"] = best_detail
        results[method] = (u, g)

    # ---- torch-fem, in float64
    with default_dtype(torch.float64):
        n_dofs = mesh.n_nodes
        method = resolve_method(n_dofs, None, True)
        out["torchfem_solver"] = describe_method(method, "cpu", None)

        def tf_cold(_):
            model, kappa = torchfem_heat_model(mesh, nu0, left)
            return torchfem_heat_solve(model, kappa)

        t_cold, _ = best_of(repeats, tf_cold, setup=lambda: None)
        model, _ = torchfem_heat_model(mesh, nu0, left)
        load_diff = rel_max_diff(model.heat_flux.ravel(), assemble_vector(space, f=1.0).detach())

        def tf_warm(_):
            kappa = nu0.clone().requires_grad_(True)
            model.material = IsotropicConductivity2D(kappa=kappa)
            return torchfem_heat_solve(model, kappa)

        t_warm, (u_tf, g_tf) = best_of(repeats, tf_warm, setup=lambda: None)
    out["torchfem_cold_s"] = t_cold
    out["torchfem_warm_s"] = t_warm

    # ---- agreement
    out["load_rel_max_diff"] = load_diff
    for method, (u, g) in results.items():
        out[f"u_rel_max_diff_{method}"] = rel_max_diff(u, u_tf)
        out[f"grad_rel_max_diff_{method}"] = rel_max_diff(g, g_tf)
    out["direct_vs_amg_u_rel_max_diff"] = rel_max_diff(results["direct"][0], results["amg"][0])
    out["solutions_agree"] = bool(max(out[f"u_rel_max_diff_{m}"] for m in methods) < AGREEMENT_TOL)
    out["gradients_agree"] = bool(
        max(out[f"grad_rel_max_diff_{m}"] for m in methods) < AGREEMENT_TOL
    )

    # ---- headline: dfem's best method, warm (per optimisation step)
    best_method = min(methods, key=lambda m: out[f"dfem_{m}_warm_s"])
    out["dfem_best_method"] = best_method
    out["dfem_best_warm_s"] = out[f"dfem_{best_method}_warm_s"]
    out["fwd_bwd_ratio_vs_torchfem"] = out["dfem_best_warm_s"] / t_warm
    best_cold = min(methods, key=lambda m: out[f"dfem_{m}_cold_s"])
    out["dfem_best_cold_method"] = best_cold
    out["fwd_bwd_cold_ratio_vs_torchfem"] = out[f"dfem_{best_cold}_cold_s"] / t_cold
    out["fwd_bwd_target_met"] = bool(out["fwd_bwd_ratio_vs_torchfem"] <= TARGET_RATIO)
    out["objective"] = "sum(u**2) over all nodes"
    out["dfem_amg_rtol"] = TORCHFEM_STOL
    return out


# ---------------------------------------------------------------------- report
def print_size(n: int, r: dict) -> None:
    if "skipped" in r:
        print(f"n={n}: skipped ({r['skipped']})")
        return
    print(f"\n=== n = {n}: {r['n_cells']:,} cells, {r['n_dofs']:,} dofs ===")
    print(f"{'assembly':<28}{'dfem':>10}{'skfem':>10}{'ratio':>8}")
    for kind in ("cold", "warm"):
        ratio = r["assembly_ratio_vs_skfem" if kind == "cold" else "assembly_warm_ratio_vs_skfem"]
        print(f"  {kind:<26}{r[f'dfem_{kind}_s']:>9.3f}s{r[f'skfem_{kind}_s']:>9.3f}s{ratio:>8.2f}")
    print(f"  matrix rel. max diff: {r['matrix_rel_max_diff']:.2e}")
    print(f"{'forward + backward':<28}{'direct':>10}{'amg':>10}{'torch-fem':>11}{'ratio':>8}")
    for kind in ("cold", "warm"):
        key = "fwd_bwd_ratio_vs_torchfem" if kind == "warm" else "fwd_bwd_cold_ratio_vs_torchfem"
        ratio = r[key]
        print(
            f"  {kind:<26}{r[f'dfem_direct_{kind}_s']:>9.3f}s{r[f'dfem_amg_{kind}_s']:>9.3f}s"
            f"{r[f'torchfem_{kind}_s']:>10.3f}s{ratio:>8.2f}"
        )
    print(f"  dfem best (warm): {r['dfem_best_method']}; torch-fem solver: {r['torchfem_solver']}")
    print(
        f"  u rel. diff direct/amg: {r['u_rel_max_diff_direct']:.1e}/{r['u_rel_max_diff_amg']:.1e}"
        f"  grad: {r['grad_rel_max_diff_direct']:.1e}/{r['grad_rel_max_diff_amg']:.1e}"
        f"  load: {r['load_rel_max_diff']:.1e}"
    )


def print_summary(results: dict) -> None:
    print(f"\n{'n':>6}{'asm cold':>10}{'asm warm':>10}{'fwd+bwd':>10}{'fwd+bwd cold':>14}  best")
    for n, r in results["sizes"].items():
        if "skipped" in r:
            print(f"{n:>6}  skipped: {r['skipped']}")
            continue
        print(
            f"{n:>6}{r['assembly_ratio_vs_skfem']:>10.2f}{r['assembly_warm_ratio_vs_skfem']:>10.2f}"
            f"{r['fwd_bwd_ratio_vs_torchfem']:>10.2f}{r['fwd_bwd_cold_ratio_vs_torchfem']:>14.2f}"
            f"  {r['dfem_best_method']}"
        )
    print("(ratios: dfem time / reference time; targets <= 0.5)")


def warm_up() -> None:
    """Import and first-call costs (lazy imports, kernels) kept out of every timing."""
    bench_assembly(8, 1)
    bench_fwd_bwd(8, 1)


def run(sizes, repeats: int, out: Path, verbose: bool = True, warmup: bool = True) -> dict:
    results: dict = {
        "machine": _machine(),
        "settings": {
            "repeats": repeats,
            "timing": "best of repeats, wall clock (time.perf_counter)",
            "memory_limit_gb": MEMORY_LIMIT_BYTES / 2**30,
            "agreement_tol": AGREEMENT_TOL,
            "assembly_tol": ASSEMBLY_TOL,
            "target_ratio": TARGET_RATIO,
            "headline_assembly": "assembly_ratio_vs_skfem = dfem cold / skfem cold",
            "headline_fwd_bwd": "fwd_bwd_ratio_vs_torchfem = dfem best warm / torch-fem warm",
        },
        "sizes": {},
    }
    if warmup:
        warm_up()
    for n in sizes:
        entry = guarded(estimate_bytes(n), MEMORY_LIMIT_BYTES,
                        lambda n=n: bench_assembly(n, repeats) | bench_fwd_bwd(n, repeats))
        results["sizes"][str(n)] = entry
        if verbose:
            print_size(n, entry)
        write_json(out, results)
    if verbose:
        print_summary(results)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, type=Path, help="output JSON file")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help=f"cells per side (default {' '.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument("--repeats", type=int, default=3, help="best of R (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke test on {' '.join(map(str, QUICK_SIZES))}"
    )
    add_run_options(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads, argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    run(sizes, max(1, args.repeats), args.json, verbose=not args.quiet, warmup=not args.no_warmup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
