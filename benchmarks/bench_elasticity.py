"""Benchmark dfem's linear and hyperelastic elasticity against scikit-fem and torch-fem (CPU).

Three measurements per mesh of n x n quadrilaterals of the unit square (plane strain,
Young's modulus ``E``, Poisson's ratio 0.3, Lamé parameters
``mu = E / (2 (1 + nu))``, ``lambda = E nu / ((1 + nu)(1 - 2 nu))``):

1. **Assembly** of the stiffness matrix
   ``K[ai, bj] = int lambda d_i phi_a d_j phi_b + mu (d_j phi_a d_i phi_b
   + delta_ij grad phi_a . grad phi_b)`` (E = 1), dfem vs scikit-fem, for Q1 and Q2.

   - dfem: ``FunctionSpace(mesh, element, shape=(2,))``, ``LinearElasticity(...)``,
     ``tangent(format="scipy")`` (the closed-form kernel).
   - scikit-fem: ``Basis(MeshQuad(nodes, cells), ElementVector(ElementQuad1()))`` (or
     ``ElementQuad2``) and ``asm(linear_elasticity(*lame_parameters(E, nu)), basis)``.
   - *cold* (headline): the space / basis is built inside the timer from fresh mesh
     objects; *warm*: a second assembly on the built space / basis.

   The two matrices are compared entry by entry after mapping dfem's dofs onto
   scikit-fem's by their coordinates and component (``matrix_rel_max_diff``).

2. **Forward + backward**: a cantilever, clamped on the left edge, with the traction
   ``t = (0, -1)`` (force per length) on the right edge and a per-cell
   ``E = 1 + 0.5 sin(2 pi x) sin(2 pi y)`` (cell centroids); the compliance
   ``C = F . u`` and its gradient ``dC/dE`` per cell.

   - dfem: ``LinearElasticity(space, E=E, ..., dirichlet={"left": 0.0},
     traction={"right": [0, -1]})``, ``u = solve(method)``, ``compliance(u).backward()``
     for method "direct" (SuperLU), "amg" (CG preconditioned by dfem's default AMG for a
     vector space) and "amg_rs" (``solve("amg", hierarchy="rs")``: classical
     Ruge-Stueben, the scalar default), the AMG solves to a relative residual of 1e-10
     (torch-fem's ``stol``). A method that fails (an AMG hierarchy that breaks down) is
     recorded with its error.
   - torch-fem: ``Planar(nodes, quads, IsotropicElasticityPlaneStrain(E=E, nu=0.3))``,
     ``forces = integrate_line_load(right nodes, [0, -1])``, the left nodes' dofs
     constrained, ``u, *_ = solve(differentiable_parameters=E)``, then
     ``(forces * u).sum().backward()``; every solver option at its default.
   - *warm* (headline, one step of an optimisation loop): the space / model exists; a
     new ``E`` leaf, the problem, the solve and the backward pass are timed.
     *cold*: the space / model is built inside the timer as well.

   The load vectors (``load_rel_max_diff``: dfem's ``dC/du`` against torch-fem's
   ``forces``), the displacements and the gradients are compared.

3. **Hyperelastic tangent**: the tangent of compressible Neo-Hookean Q1 at a non-zero
   displacement (the generic path: pointwise autograd Hessian of the density contracted
   with the basis) against the closed-form linear-elasticity assembly on the same space.
   Checked in the same run: at ``u = 0`` the Neo-Hookean tangent equals the linear one;
   at the state it matches central finite differences of the residual along a random
   direction, and it is symmetric.

Usage::

    python benchmarks/bench_elasticity.py --json benchmarks/results/bench_elasticity_cpu.json
    python benchmarks/bench_elasticity.py --json /tmp/quick.json --quick

A timing is the best of ``--repeats`` runs, but a timing is not repeated once its runs
together took over ``PEER_BUDGET_S`` (scikit-fem's Q2 assembly at 512 x 512 takes minutes);
the JSON records how many runs each timing got. A solver method whose time at the previous
size, scaled by ``(n / n_prev)**3``, predicts more than ``METHOD_LIMIT_S`` is skipped with
the reason recorded. The JSON is written atomically after each size.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
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
    git_state,
    guarded,
    machine_info,
    per_cell_nu,
    rel_max_diff,
    set_threads,
    skfem_quad_mesh,
    total_memory_bytes,
    write_json,
)

DEFAULT_SIZES = (256, 512)
QUICK_SIZES = (16, 32)
ELEMENTS = ("Q1", "Q2")
E_REF, POISSON = 1.0, 0.3
LOAD = (0.0, -1.0)  # traction on the right edge, force per length
TARGETS = {  # dfem time / reference time
    "assembly_ratio_vs_skfem": 0.5,
    "fwd_bwd_ratio_vs_torchfem": 0.5,
    "hyperelastic_tangent_ratio": 5.0,
}
MATRIX_TOL = 1e-10
AGREEMENT_TOL = 1e-6  # iterative solves stop at a relative residual of 1e-10
TANGENT_FD_TOL = 1e-6
SOLVER_RTOL = 1e-10  # torch-fem's default stol
PEER_BUDGET_S = 60.0
METHOD_LIMIT_S = 120.0
MEMORY_LIMIT_BYTES = 16 * 2**30
# Peak resident memory per cell (measured: 41 kB at n = 512), dominated by scikit-fem's Q2
# assembly (COO triplets of 18 x 18 entries per cell) and the permuted copy used for the
# comparison; rounded up.
BYTES_PER_CELL_ESTIMATE = 48 * 2**10
DFEM_METHODS = {  # dfem's solve(method, **options); "amg_rs" is solve("amg", hierarchy="rs")
    "direct": {},
    "amg": {"solver_rtol": SOLVER_RTOL},
    "amg_rs": {"solver_rtol": SOLVER_RTOL, "solver_hierarchy": "rs"},
}


# ---------------------------------------------------------------------- helpers
def _machine() -> dict:
    import scipy

    total = total_memory_bytes()
    return machine_info(
        {"skfem": "scikit-fem", "torchfem": "torch-fem", "pyamg": "pyamg"},
        scipy=scipy.__version__,
        torch_threads=torch.get_num_threads(),
        git=git_state(ROOT),
        memory_gb=None if total is None else round(total / 2**30, 1),
    )


def timed(repeats: int, fn, *, setup=None, budget_s: float = PEER_BUDGET_S):
    """``harness.best_of_within`` with the peers' budget ``PEER_BUDGET_S`` by default."""
    return best_of_within(repeats, fn, setup=setup, budget_s=budget_s)


def _dof_keys(coords: np.ndarray, component: np.ndarray, n: int) -> np.ndarray:
    """Integer keys (x, y, component) of dofs on the unit square: every Q1/Q2 dof lies on
    the grid of spacing 1 / (2n), so rounding on a grid four times finer is exact."""
    grid = np.rint(coords * (4 * n)).astype(np.int64)
    return np.stack([grid[:, 0], grid[:, 1], component.astype(np.int64)], axis=1)


def dfem_to_skfem(space, basis, n: int) -> np.ndarray | None:
    """``perm`` with dfem dof k = scikit-fem dof ``perm[k]`` (same point, same component),
    or None if the two dof sets differ."""
    d = space.n_components
    scalar_xy = space.scalar.dof_coordinates.detach().cpu().numpy()
    k = np.arange(space.n_dofs)
    keys_d = _dof_keys(scalar_xy[k // d], k % d, n)
    component = np.empty(basis.N, dtype=np.int64)
    for c, idx in enumerate(basis.split_indices()):
        component[idx] = c
    keys_s = _dof_keys(basis.doflocs.T, component, n)
    if keys_d.shape != keys_s.shape:
        return None
    order_d = np.lexsort(keys_d.T[::-1])
    order_s = np.lexsort(keys_s.T[::-1])
    if not np.array_equal(keys_d[order_d], keys_s[order_s]):
        return None
    perm = np.empty(space.n_dofs, dtype=np.int64)
    perm[order_d] = order_s
    return perm


def matrix_rel_max_diff(K_dfem, K_sk, perm: np.ndarray) -> float:
    """``max |K_dfem - P K_sk P^T| / max |K_sk|`` with ``(P K_sk P^T)[k, l] = K_sk[perm[k],
    perm[l]]``; compares the value arrays directly when the patterns coincide (saves a
    copy of a matrix with ~70M entries)."""
    K_sk = K_sk.tocsr()
    scale = max(abs(K_sk).max(), 1e-300)
    mapped = K_sk[perm][:, perm].tocsr()
    del K_sk
    mapped.sort_indices()
    K_dfem = K_dfem.tocsr()
    K_dfem.sort_indices()
    if np.array_equal(mapped.indptr, K_dfem.indptr) and np.array_equal(mapped.indices,
                                                                         K_dfem.indices):
        return float(np.abs(mapped.data - K_dfem.data).max(initial=0.0) / scale)
    return float(abs(K_dfem - mapped).max() / scale)


# ---------------------------------------------------------------------- 1. assembly
def bench_assembly(n: int, element: str, repeats: int) -> dict:
    from skfem import Basis, ElementQuad1, ElementQuad2, ElementVector, asm
    from skfem.models.elasticity import lame_parameters, linear_elasticity

    sk_element = {"Q1": ElementQuad1, "Q2": ElementQuad2}[element]
    form = linear_elasticity(*lame_parameters(E_REF, POISSON))

    def dfem_cold(mesh):
        space = dfem.FunctionSpace(mesh, element, shape=(2,))
        problem = dfem.LinearElasticity(space, E=E_REF, poisson_ratio=POISSON, plane="strain")
        return space, problem, problem.tangent(format="scipy")

    def skfem_cold(mesh):
        basis = Basis(mesh, ElementVector(sk_element()))
        return basis, asm(form, basis)

    new_mesh = lambda: dfem.mesh.rectangle(n, n, "quad")  # noqa: E731
    t_dfem_cold, cold, runs_dfem = timed(repeats, dfem_cold, setup=new_mesh)
    space, problem = cold[:2]
    del cold  # the matrices of a timing are dropped before the next (Q2 at 512: GBs)
    t_dfem_warm, K_dfem, _ = timed(repeats, lambda: problem.tangent(format="scipy"))
    t_sk_cold, cold, runs_sk = timed(repeats, skfem_cold, setup=lambda: skfem_quad_mesh(new_mesh()))
    basis = cold[0]
    del cold
    t_sk_warm, K_sk, runs_sk_warm = timed(repeats, lambda: asm(form, basis))

    perm = dfem_to_skfem(space, basis, n)
    rel = math.inf if perm is None else matrix_rel_max_diff(K_dfem, K_sk, perm)
    del K_sk
    ratio = t_dfem_cold / t_sk_cold
    return {
        "element": element,
        "n_cells": n * n,
        "n_dofs": space.n_dofs,
        "nnz": int(K_dfem.nnz),
        "dfem_cold_s": t_dfem_cold,
        "dfem_warm_s": t_dfem_warm,
        "skfem_cold_s": t_sk_cold,
        "skfem_warm_s": t_sk_warm,
        "runs": {"dfem": runs_dfem, "skfem_cold": runs_sk, "skfem_warm": runs_sk_warm},
        "assembly_ratio_vs_skfem": ratio,
        "assembly_warm_ratio_vs_skfem": t_dfem_warm / t_sk_warm,
        "dofs_mapped": perm is not None,
        "matrix_rel_max_diff": rel,
        "matrices_agree": bool(rel < MATRIX_TOL),
        "target_met": bool(ratio <= TARGETS["assembly_ratio_vs_skfem"]),
    }


# ---------------------------------------------------------------------- 2. forward + backward
def _dfem_fwd_bwd(space, E0: torch.Tensor, method: str, options: dict):
    E = E0.clone().requires_grad_(True)
    problem = dfem.LinearElasticity(space, E=E, poisson_ratio=POISSON, plane="strain",
                                    dirichlet={"left": 0.0}, traction={"right": list(LOAD)})
    t0 = time.perf_counter()
    u = problem.solve(method=method, **options)
    compliance = problem.compliance(u)
    t1 = time.perf_counter()
    compliance.backward()
    t2 = time.perf_counter()
    info = problem.last_solve["info"]
    detail = {
        "forward_s": t1 - t0,
        "backward_s": t2 - t1,
        "assemble_s": problem.last_solve["assemble_s"],
        "solver_setup_s": info.setup_s,
        "solve_s": problem.last_solve["solve_s"],
        "iterations_forward": info.iterations,  # a snapshot taken before the adjoint
    }
    return u.detach(), E.grad.detach(), float(compliance.detach()), detail


def dfem_load_vector(space) -> torch.Tensor:
    """``F = dC/du``: the compliance is linear in u, so its gradient is dfem's load."""
    problem = dfem.LinearElasticity(space, E=E_REF, poisson_ratio=POISSON, plane="strain",
                                    dirichlet={"left": 0.0}, traction={"right": list(LOAD)})
    u = torch.zeros(space.n_dofs, dtype=space.dtype, requires_grad=True)
    return torch.autograd.grad(problem.compliance(u), u)[0]


def _torchfem_model(nodes, cells, E0, left_nodes, right_nodes):
    from torchfem import Planar
    from torchfem.materials import IsotropicElasticityPlaneStrain

    E = E0.clone().requires_grad_(True)
    model = Planar(nodes, cells, IsotropicElasticityPlaneStrain(E=E, nu=POISSON))
    right = torch.zeros(model.n_nod, dtype=torch.bool)
    right[right_nodes] = True
    model.forces = model.integrate_line_load(right, torch.tensor(LOAD))
    constraints = torch.zeros(model.n_nod, 2, dtype=torch.bool)
    constraints[left_nodes] = True
    model.constraints = constraints
    return model, E


def _torchfem_solve(model, E):
    u, *_ = model.solve(differentiable_parameters=E)
    compliance = (model.forces * u).sum()
    compliance.backward()
    return u.detach().ravel(), E.grad.detach(), float(compliance.detach())


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def bench_fwd_bwd(n: int, repeats: int, previous: dict | None) -> dict:
    from torchfem.materials import IsotropicElasticityPlaneStrain
    from torchfem.sparse import describe_method, resolve_method

    mesh = dfem.mesh.rectangle(n, n, "quad")
    E0 = per_cell_nu(mesh).detach()
    space = dfem.FunctionSpace(mesh, "Q1", shape=(2,))
    # Q1 dofs are the mesh vertices and both libraries interleave (node * 2 + component)
    left = space.scalar.boundary_dofs("left")
    right = space.scalar.boundary_dofs("right")
    out: dict = {"n_dofs": space.n_dofs, "methods": {}}

    # ---- dfem, warm: one space, a new E and problem per run
    _dfem_fwd_bwd(space, E0, "direct", {})  # builds pattern, geometry, restricted pattern
    results = {}
    for method, options in DFEM_METHODS.items():
        entry: dict = {"options": options}
        out["methods"][method] = entry
        prev = (previous or {}).get("methods", {}).get(method, {})
        if "warm_s" in prev:
            predicted = prev["warm_s"] * (n / previous["n"]) ** 3
            if predicted > METHOD_LIMIT_S:
                entry["skipped"] = (f"predicted {predicted:.0f} s from {prev['warm_s']:.1f} s "
                                    f"at n = {previous['n']} (limit {METHOD_LIMIT_S:.0f} s)")
                continue
        elif "skipped" in prev:
            entry["skipped"] = "skipped at the previous size"
            continue
        name = "amg" if method.startswith("amg") else method
        try:
            best, (_, _, _, best_detail), (u, g, c, _), runs = fastest_run(
                repeats, functools.partial(_dfem_fwd_bwd, space, E0, name, options),
                budget_s=PEER_BUDGET_S)
        except Exception as exc:  # a solver that breaks down is a result, not a crash
            entry["failed"] = _failure(exc)
            continue
        entry.update(warm_s=best, warm_runs=runs, breakdown=best_detail)
        results[method] = (u, g, c)

    # ---- dfem, cold: the space (dof map, pattern, geometry) built inside the timer
    for method in results:
        entry = out["methods"][method]
        if entry["warm_s"] > PEER_BUDGET_S:
            entry["cold_skipped"] = f"warm run over {PEER_BUDGET_S:g} s"
            continue
        name = "amg" if method.startswith("amg") else method
        t, _, runs = timed(
            repeats,
            lambda m, name=name, options=entry["options"]: _dfem_fwd_bwd(
                dfem.FunctionSpace(m, "Q1", shape=(2,)), E0, name, options),
            setup=lambda: dfem.mesh.rectangle(n, n, "quad"),
        )
        entry.update(cold_s=t, cold_runs=runs)

    # ---- torch-fem, in float64 (it allocates with the default dtype)
    nodes, cells = mesh.nodes.detach(), mesh.cells
    with default_dtype(torch.float64):
        out["torchfem_solver"] = describe_method(resolve_method(space.n_dofs, None, True),
                                                 "cpu", None)
        t_cold, _, runs_cold = timed(
            repeats, lambda: _torchfem_solve(*_torchfem_model(nodes, cells, E0, left, right)))
        model, _ = _torchfem_model(nodes, cells, E0, left, right)
        forces = model.forces.ravel().clone()

        def tf_warm():
            E = E0.clone().requires_grad_(True)
            model.material = IsotropicElasticityPlaneStrain(E=E, nu=POISSON)
            return _torchfem_solve(model, E)

        t_warm, (u_tf, g_tf, c_tf), runs_warm = timed(repeats, tf_warm)
    out.update(torchfem_cold_s=t_cold, torchfem_warm_s=t_warm,
               torchfem_runs={"cold": runs_cold, "warm": runs_warm}, torchfem_compliance=c_tf)

    # ---- agreement
    out["load_rel_max_diff"] = rel_max_diff(dfem_load_vector(space), forces)
    for method, (u, g, c) in results.items():
        entry = out["methods"][method]
        entry.update(u_rel_max_diff=rel_max_diff(u, u_tf), grad_rel_max_diff=rel_max_diff(g, g_tf),
                     compliance=c, compliance_rel_diff=abs(c - c_tf) / abs(c_tf))
    agree = [out["methods"][m] for m in results]
    out["solutions_agree"] = bool(agree) and all(e["u_rel_max_diff"] < AGREEMENT_TOL
                                                 for e in agree)
    out["gradients_agree"] = bool(agree) and all(e["grad_rel_max_diff"] < AGREEMENT_TOL
                                                 for e in agree)

    # ---- headline: dfem's fastest method, warm
    if results:
        best = min(results, key=lambda m: out["methods"][m]["warm_s"])
        best_cold = min((m for m in results if "cold_s" in out["methods"][m]),
                        key=lambda m: out["methods"][m]["cold_s"])
        out["dfem_best_method"] = best
        out["dfem_best_warm_s"] = out["methods"][best]["warm_s"]
        out["fwd_bwd_ratio_vs_torchfem"] = out["dfem_best_warm_s"] / t_warm
        out["dfem_best_cold_method"] = best_cold
        out["fwd_bwd_cold_ratio_vs_torchfem"] = out["methods"][best_cold]["cold_s"] / t_cold
        out["target_met"] = bool(out["fwd_bwd_ratio_vs_torchfem"]
                                 <= TARGETS["fwd_bwd_ratio_vs_torchfem"])
    out["objective"] = "compliance F . u, gradient w.r.t. the per-cell E"
    return out


# ---------------------------------------------------------------------- 3. hyperelastic tangent
def deformation(x: torch.Tensor) -> torch.Tensor:
    """A smooth bending-and-stretching field with |grad u| up to about 0.5."""
    X, Y = x[..., 0], x[..., 1]
    ux = 0.1 * X * torch.sin(math.pi * Y) + 0.05 * X * X
    uy = -0.2 * X * X + 0.05 * torch.sin(2 * math.pi * X) * Y
    return torch.stack([ux, uy], dim=-1)


def bench_hyperelastic(n: int, repeats: int) -> dict:
    mesh = dfem.mesh.rectangle(n, n, "quad")
    space = dfem.FunctionSpace(mesh, "Q1", shape=(2,))
    kw = dict(E=E_REF, poisson_ratio=POISSON, dirichlet={"left": 0.0})
    linear = dfem.LinearElasticity(space, **kw)
    neo = dfem.NeoHookean(space, **kw)
    u = space.interpolate(deformation).reshape(-1).detach()
    _, grad_u = space.at_quadrature(u)
    F = grad_u + torch.eye(2, dtype=grad_u.dtype)
    min_J = float(torch.linalg.det(F).min())
    linear.tangent_values()  # untimed: pattern and geometry, shared by both
    t_lin, K_lin, runs_lin = timed(repeats, linear.tangent_values)
    t_neo, K_neo, runs_neo = timed(repeats, lambda: neo.tangent_values(u))

    pattern = space.pattern
    K0 = neo.tangent_values(torch.zeros_like(u))
    A = pattern.to_scipy(K_neo)
    # central differences of the residual along a random direction
    gen = torch.Generator().manual_seed(0)
    v = 2 * torch.rand(space.n_dofs, generator=gen, dtype=u.dtype) - 1
    # the step's gradient, ~h n, sets the truncation error (~4 (h n)^2 measured)
    h = 1e-5 / n
    with torch.no_grad():
        fd = (neo.residual(u + h * v) - neo.residual(u - h * v)) / (2 * h)
    Kv = A @ v.numpy()
    ratio = t_neo / t_lin
    return {
        "n_cells": n * n,
        "n_dofs": space.n_dofs,
        "linear_s": t_lin,
        "neo_hookean_s": t_neo,
        "runs": {"linear": runs_lin, "neo_hookean": runs_neo},
        "hyperelastic_tangent_ratio": ratio,
        "state": "u = (0.1 x sin(pi y) + 0.05 x^2, -0.2 x^2 + 0.05 y sin(2 pi x))",
        "state_max_abs_u": float(u.abs().max()),
        "state_min_J": min_J,
        "tangent_at_zero_vs_linear_rel_max_diff": rel_max_diff(K0, K_lin),
        "tangent_fd_rel_max_diff": rel_max_diff(Kv, fd),
        "tangent_fd_step": h,
        "tangent_asymmetry_rel": float(abs(A - A.T).max() / abs(A).max()),
        "tangent_vs_linear_rel_max_diff": rel_max_diff(K_neo, K_lin),
        "target_met": bool(ratio <= TARGETS["hyperelastic_tangent_ratio"]),
    }


# ---------------------------------------------------------------------- report
def print_size(n: int, r: dict) -> None:
    if "skipped" in r:
        print(f"n={n}: skipped ({r['skipped']})")
        return
    print(f"\n=== n = {n}: {n * n:,} cells ===")
    print(f"{'assembly':<14}{'dofs':>10}{'dfem':>9}{'skfem':>9}{'ratio':>7}"
          f"{'warm dfem':>11}{'skfem':>9}{'ratio':>7}{'rel. diff':>11}")
    for el, a in r["assembly"].items():
        print(f"  {el:<12}{a['n_dofs']:>10,}{a['dfem_cold_s']:>8.3f}s{a['skfem_cold_s']:>8.3f}s"
              f"{a['assembly_ratio_vs_skfem']:>7.2f}{a['dfem_warm_s']:>10.3f}s"
              f"{a['skfem_warm_s']:>8.3f}s{a['assembly_warm_ratio_vs_skfem']:>7.2f}"
              f"{a['matrix_rel_max_diff']:>11.1e}")
    f = r["fwd_bwd"]
    print(f"forward + backward ({f['n_dofs']:,} dofs; torch-fem: {f['torchfem_solver']})")
    print(f"  {'torch-fem':<12}{'warm':>6}{f['torchfem_warm_s']:>9.3f}s"
          f"{'cold':>6}{f['torchfem_cold_s']:>9.3f}s")
    for method, m in f["methods"].items():
        if "warm_s" not in m:
            print(f"  dfem {method:<7} {m.get('skipped') or m.get('failed')}")
            continue
        cold = f"{m['cold_s']:>9.3f}s" if "cold_s" in m else f"{'-':>10}"
        print(f"  dfem {method:<7}{'warm':>6}{m['warm_s']:>9.3f}s{'cold':>6}{cold}"
              f"  ratio {m['warm_s'] / f['torchfem_warm_s']:.2f}  u {m['u_rel_max_diff']:.1e}"
              f"  grad {m['grad_rel_max_diff']:.1e}  it {m['breakdown']['iterations_forward']}")
    print(f"  load rel. diff {f['load_rel_max_diff']:.1e}")
    h = r["hyperelastic"]
    print(f"hyperelastic tangent: Neo-Hookean {h['neo_hookean_s']:.3f}s, linear "
          f"{h['linear_s']:.3f}s, ratio {h['hyperelastic_tangent_ratio']:.2f}; FD "
          f"{h['tangent_fd_rel_max_diff']:.1e}, at u=0 vs linear "
          f"{h['tangent_at_zero_vs_linear_rel_max_diff']:.1e}")


def print_summary(results: dict) -> None:
    print(f"\n{'n':>6}{'asm Q1':>9}{'asm Q2':>9}{'fwd+bwd':>9}{'cold':>7}{'hyper':>8}  best")
    for n, r in results["sizes"].items():
        if "skipped" in r:
            print(f"{n:>6}  skipped: {r['skipped']}")
            continue
        fwd = r.get("fwd_bwd_ratio_vs_torchfem", math.nan)
        cold = r["fwd_bwd"].get("fwd_bwd_cold_ratio_vs_torchfem", math.nan)
        print(f"{n:>6}{r['assembly_ratio_vs_skfem']:>9.2f}{r['assembly_ratio_vs_skfem_q2']:>9.2f}"
              f"{fwd:>9.2f}{cold:>7.2f}{r['hyperelastic_tangent_ratio']:>8.2f}"
              f"  {r['fwd_bwd'].get('dfem_best_method')}")
    print("(ratios: dfem time / reference time; targets: assembly <= 0.5, fwd+bwd <= 0.5, "
          "Neo-Hookean / linear tangent <= 5)")


def warm_up() -> None:
    """Import and first-call costs (lazy imports, kernels, torch.func) kept out of the timings."""
    for element in ELEMENTS:
        bench_assembly(4, element, 1)
    bench_fwd_bwd(8, 1, None)
    bench_hyperelastic(4, 1)


def bench_size(n: int, repeats: int, previous: dict | None) -> dict:
    entry: dict = {"assembly": {el: bench_assembly(n, el, repeats) for el in ELEMENTS}}
    entry["fwd_bwd"] = bench_fwd_bwd(n, repeats, previous)
    entry["hyperelastic"] = bench_hyperelastic(n, repeats)
    entry["assembly_ratio_vs_skfem"] = entry["assembly"]["Q1"]["assembly_ratio_vs_skfem"]
    entry["assembly_ratio_vs_skfem_q2"] = entry["assembly"]["Q2"]["assembly_ratio_vs_skfem"]
    if "fwd_bwd_ratio_vs_torchfem" in entry["fwd_bwd"]:
        entry["fwd_bwd_ratio_vs_torchfem"] = entry["fwd_bwd"]["fwd_bwd_ratio_vs_torchfem"]
    entry["hyperelastic_tangent_ratio"] = entry["hyperelastic"]["hyperelastic_tangent_ratio"]
    entry["matrices_agree"] = all(a["matrices_agree"] for a in entry["assembly"].values())
    entry["solutions_agree"] = entry["fwd_bwd"]["solutions_agree"]
    entry["gradients_agree"] = entry["fwd_bwd"]["gradients_agree"]
    return entry


def run(sizes, repeats: int, out: Path, verbose: bool = True, warmup: bool = True) -> dict:
    results: dict = {
        "machine": _machine(),
        "settings": {
            "repeats": repeats,
            "timing": "best of repeats, wall clock (time.perf_counter); a timing is not "
                      f"repeated once its runs took over {PEER_BUDGET_S:g} s",
            "material": {"E": E_REF, "poisson_ratio": POISSON, "plane": "strain"},
            "load": {"right": list(LOAD)},
            "memory_limit_gb": MEMORY_LIMIT_BYTES / 2**30,
            "matrix_tol": MATRIX_TOL,
            "agreement_tol": AGREEMENT_TOL,
            "tangent_fd_tol": TANGENT_FD_TOL,
            "solver_rtol": SOLVER_RTOL,
            "method_limit_s": METHOD_LIMIT_S,
            "targets": TARGETS,
            "headline_assembly": "assembly_ratio_vs_skfem = dfem cold / skfem cold (Q1; _q2)",
            "headline_fwd_bwd": "fwd_bwd_ratio_vs_torchfem = dfem best warm / torch-fem warm",
            "headline_hyperelastic": "hyperelastic_tangent_ratio = Neo-Hookean tangent / "
                                     "linear-elasticity assembly (Q1, warm)",
        },
        "sizes": {},
    }
    if warmup:
        warm_up()
    previous = None
    for n in sizes:
        entry = guarded(BYTES_PER_CELL_ESTIMATE * n * n, MEMORY_LIMIT_BYTES,
                        lambda n=n, previous=previous: bench_size(n, repeats, previous))
        if "fwd_bwd" in entry:
            previous = dict(entry["fwd_bwd"], n=n)
        results["sizes"][str(n)] = entry
        write_json(out, results)
        if verbose:
            print_size(n, entry)
    measured = {n: r for n, r in results["sizes"].items() if "skipped" not in r}
    results["targets_met"] = {
        key: all(r.get(key, math.inf) <= target for r in measured.values()) and bool(measured)
        for key, target in TARGETS.items()
    }
    results["targets_met"]["assembly_ratio_vs_skfem_q2"] = bool(measured) and all(
        r["assembly_ratio_vs_skfem_q2"] <= TARGETS["assembly_ratio_vs_skfem"]
        for r in measured.values())
    write_json(out, results)
    if verbose:
        print_summary(results)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, type=Path, help="output JSON file")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help=f"cells per side (default {' '.join(map(str, DEFAULT_SIZES))})")
    parser.add_argument("--repeats", type=int, default=3, help="best of R (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test on {' '.join(map(str, QUICK_SIZES))}")
    add_run_options(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads, argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    run(sizes, max(1, args.repeats), args.json, verbose=not args.quiet,
        warmup=not args.no_warmup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
