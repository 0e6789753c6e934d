"""Fill-reducing orderings for dfem's direct solver: SuperLU's minimum degree against
nested dissection from the dof positions (:mod:`dfem.assembly.ordering`), on the same
matrices in the same run.

For each space the script assembles a symmetric positive definite matrix (the Laplacian
for scalar spaces, isotropic elasticity with E = 1, nu = 0.3 for vector spaces, plus the
identity so that no Dirichlet rows are needed), factors it with SuperLU in symmetric mode
twice -- ``permc_spec="MMD_AT_PLUS_A"`` (what dfem used before) and the nested-dissection
permutation with ``permc_spec="NATURAL"`` -- and prints the factor times (best of
``--repeats``), the fill (nonzeros of L + U), the one-off cost of the ordering, the ratio
ND/MMD of the factor times, and whether dfem picks dissection for that space (structured
3D meshes and structured 2D vector spaces: ``dfem.basis.dofmap._dof_points``). Both
factors solve one right-hand side and the solutions must agree to 1e-9.

    python benchmarks/bench_ordering.py --threads 1 [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dfem  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    add_run_options,
    best_of,
    git_state,
    machine_info,
    set_threads,
    write_json,
)
from dfem.assembly.ordering import nested_dissection  # noqa: E402
from dfem.mesh import rectangle  # noqa: E402
from dfem.mesh.structured import box, perturb_interior  # noqa: E402


def spaces(quick: bool) -> dict:
    """The spaces measured, by name (``quick``: small ones, for the smoke test)."""
    if quick:
        return {"Q1 elasticity 40x20": dfem.FunctionSpace(rectangle(40, 20), "Q1", shape=(2,)),
                "P1 tet 8^3": dfem.FunctionSpace(box(8, 8, 8, cell="tet"), "P1")}
    return {
        "Q1 elasticity 240x120": dfem.FunctionSpace(rectangle(240, 120), "Q1", shape=(2,)),
        "P1 tri elasticity 150^2": dfem.FunctionSpace(rectangle(150, 150, cell="tri"), "P1",
                                                      shape=(2,)),
        "Q2 elasticity 64^2": dfem.FunctionSpace(rectangle(64, 64), "Q2", shape=(2,)),
        "Q1 256^2": dfem.FunctionSpace(rectangle(256, 256), "Q1"),
        "P1 tri 256^2": dfem.FunctionSpace(rectangle(256, 256, cell="tri"), "P1"),
        "P2 tri 96^2 perturbed": dfem.FunctionSpace(
            perturb_interior(rectangle(96, 96, cell="tri")), "P2"),
        "Q1 hex elasticity 20^3": dfem.FunctionSpace(box(20, 20, 20), "Q1", shape=(3,)),
        "Q1 hex 30^3": dfem.FunctionSpace(box(30, 30, 30), "Q1"),
        "P1 tet 25^3": dfem.FunctionSpace(box(25, 25, 25, cell="tet"), "P1"),
        "P2 tet 12^3": dfem.FunctionSpace(box(12, 12, 12, cell="tet"), "P2"),
        "P1 tet 24^3 perturbed": dfem.FunctionSpace(
            perturb_interior(box(24, 24, 24, cell="tet")), "P1"),
        "Q1 hex elasticity 16^3 perturbed": dfem.FunctionSpace(
            perturb_interior(box(16, 16, 16)), "Q1", shape=(3,)),
    }


def matrix(space) -> sp.csc_matrix:
    u = torch.zeros(space.n_dofs, dtype=torch.float64)
    if space.shape:
        K = dfem.LinearElasticity(space, E=1.0, poisson_ratio=0.3).tangent(u).coalesce()
        i, j = K.indices().numpy()
        K = sp.csr_matrix((K.values().numpy(), (i, j)), shape=K.shape)
    else:
        K = sp.csr_matrix(dfem.Poisson(space, nu=1.0, f=1.0).assemble(format="scipy")[0])
    return (K + sp.eye(space.n_dofs)).tocsc()


def factor(A, spec):
    return spla.splu(A, permc_spec=spec, diag_pivot_thresh=0.0,
                     options=dict(SymmetricMode=True))


def measure(space, repeats: int) -> dict:
    A = matrix(space)
    pattern = space.pattern
    mmd_s, mmd = best_of(repeats, lambda: factor(A, "MMD_AT_PLUS_A"))
    t0 = time.perf_counter()
    perm = nested_dissection(pattern.indptr.numpy(), pattern.indices.numpy(),
                             space.dof_coordinates.detach().numpy())
    order_s = time.perf_counter() - t0
    Ap = A[perm][:, perm].tocsc()
    nd_s, nd = best_of(repeats, lambda: factor(Ap, "NATURAL"))
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    x_mmd = mmd.solve(b)
    x_nd = np.empty_like(b)
    x_nd[perm] = nd.solve(b[perm])
    diff = float(np.abs(x_mmd - x_nd).max() / np.abs(x_mmd).max())
    return {"n_dofs": space.n_dofs, "mmd_factor_s": mmd_s, "mmd_fill": mmd.L.nnz + mmd.U.nnz,
            "nd_factor_s": nd_s, "nd_fill": nd.L.nnz + nd.U.nnz, "nd_order_s": order_s,
            "nd_over_mmd": nd_s / mmd_s, "dfem_uses_dissection":
            pattern.dissection_order is not None, "solution_rel_diff": diff,
            "solutions_agree": diff < 1e-9}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two small spaces (seconds)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    add_run_options(parser)
    args = parser.parse_args(argv)
    set_threads(args.threads, argv)
    rows = {}
    for name, space in spaces(args.quick).items():
        rows[name] = row = measure(space, args.repeats)
        if not args.quiet:
            print(f"{name:34s} n={row['n_dofs']:6d}  MMD {row['mmd_factor_s']:7.3f} s "
                  f"fill {row['mmd_fill']:9d} | ND {row['nd_factor_s']:7.3f} s fill "
                  f"{row['nd_fill']:9d} (ordering {row['nd_order_s']:.3f} s)  ND/MMD "
                  f"{row['nd_over_mmd']:.2f}  dfem: "
                  f"{'ND' if row['dfem_uses_dissection'] else 'MMD'}", flush=True)
    result = {"machine": machine_info({"scipy": "scipy", "torch": "torch"},
                                      threads=torch.get_num_threads()),
              "git": git_state(ROOT), "spaces": rows}
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
