"""The plate with a circular hole (Kirsch) by isogeometric analysis, against the exact solution
and against scikit-fem's isoparametric Q2 elements on the same problem.

The quarter plate ``[0, 4]^2`` minus the hole ``r < 1``, far-field tension ``T = 10``,
``E = 1e5``, ``nu = 0.3``, plane stress, rollers on the symmetry edges, the exact traction on
the outer edges (:mod:`dfem.validation.kirsch`). dfem: the exact biquadratic NURBS patch
(Hughes, Cottrell & Bazilevs 2005), elevated to p = 2, 3 and then subdivided into
``k x 2k`` elements. Peer: scikit-fem on the same ``k x 2k`` element layout with
quadratic (9-node) isoparametric quadrilaterals whose nodes lie on the NURBS geometry (so
the hole is a piecewise quadratic arc, not a circle), its own assembly, traction
(``sigma(x) n`` with its facet normals), Dirichlet condensation, ``spsolve`` and its own
error integrals (rule of order 10). Rates are fitted over the last three levels; the peer
ratios are the peer's error (and time: assembly and solve) interpolated (log-log) to dfem's
dofs, divided by dfem's, at dfem's finest level within the peer's range.

Usage: python benchmarks/iga_plate_hole.py [--json OUT] [--quick] [--no-peer]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import load_average, machine_info, write_json  # noqa: E402
from dfem.basis.nurbs.geometry import surface_points  # noqa: E402
from dfem.basis.nurbs.patch import plate_with_hole  # noqa: E402
from dfem.validation import kirsch  # noqa: E402
from dfem.validation.error_norms import fitted_rate  # noqa: E402

LEVELS = (1, 2, 4, 8, 16, 32, 64, 128)
QUICK_LEVELS = (1, 2, 4, 8)
PEER_MAX = 64  # scikit-fem's levels stop here (66k dofs; 128 would be 263k)
#: At k = 1 the element at the corner (L, L), where the NURBS map is degenerate (dx/dv = 0),
#: gets a 9-node map whose Jacobian vanishes inside: scikit-fem starts at k = 2.
PEER_MIN = 2
KEYS = ("l2_displacement", "l2_stress", "energy")


def _rates(rows, keys, last=3):
    fit = rows[-last:]
    h = [r["h"] for r in fit]
    return {f"{k}_rate": fitted_rate(h, [r[k] for r in fit]) if len(fit) > 1 else math.nan
            for k in keys}


def iga_study(degree: int, levels) -> dict:
    rows = [kirsch.solve(degree, n) for n in levels]
    return {"degree": degree, "element": f"NURBS{degree}", "levels": rows, **_rates(rows, KEYS)}


# ---------------------------------------------------------------------------- the peer
def skfem_solve(k: int, radius=1.0, length=4.0, tension=10.0, E=1e5, nu=0.3) -> dict:
    """scikit-fem, isoparametric Q2 on ``k x 2k`` elements with nodes on the exact geometry."""
    from skfem import (
        Basis,
        ElementQuad2,
        ElementVector,
        FacetBasis,
        Functional,
        LinearForm,
        MeshQuad1,
        MeshQuad2,
        asm,
        condense,
        solve,
    )
    from skfem.helpers import ddot, dot, sym_grad, trace
    from skfem.models.elasticity import linear_elasticity

    t0 = time.perf_counter()
    patch = plate_with_hole(radius, length)
    U, V = np.meshgrid(np.linspace(0, 1, k + 1), np.linspace(0, 1, 2 * k + 1), indexing="ij")
    ids = np.arange(U.size).reshape(U.shape)
    cells = np.stack([ids[:-1, :-1], ids[1:, :-1], ids[1:, 1:], ids[:-1, 1:]]).reshape(4, -1)
    # the 9 nodes of each element in the parameter square, then mapped by the NURBS patch
    param = MeshQuad2.from_mesh(MeshQuad1(np.stack([U.ravel(), V.ravel()]), cells))
    uv = torch.as_tensor(param.doflocs.T)
    x = surface_points(patch.control_points, patch.weights, patch.knots_u, patch.knots_v,
                       2, 2, uv[:, 0], uv[:, 1], grid=False)
    mesh = MeshQuad2(doflocs=x.numpy().T.copy(), t=param.t)

    mu = E / (2 * (1 + nu))
    lam = E * nu / ((1 + nu) * (1 - 2 * nu))
    lam = 2 * lam * mu / (lam + 2 * mu)  # plane stress
    element = ElementVector(ElementQuad2())
    basis = Basis(mesh, element)

    def exact_stress(w):  # (2, 2, n_el, n_q) at the form's points
        s = kirsch.stress(torch.as_tensor(np.moveaxis(w.x, 0, -1)), radius, tension).numpy()
        return np.moveaxis(s, (-2, -1), (0, 1))

    @LinearForm
    def load(v, w):
        return dot(np.einsum("ij...,j...->i...", exact_stress(w), w.n), v)

    outer = mesh.facets_satisfying(
        lambda p: (np.abs(p[0] - length) < 1e-9) | (np.abs(p[1] - length) < 1e-9))
    bottom = mesh.facets_satisfying(lambda p: np.abs(p[1]) < 1e-12)
    left = mesh.facets_satisfying(lambda p: np.abs(p[0]) < 1e-12)
    A = asm(linear_elasticity(lam, mu), basis)
    f = asm(load, FacetBasis(mesh, element, facets=outer))
    fixed = np.concatenate([basis.get_dofs(bottom).all("u^2"), basis.get_dofs(left).all("u^1")])
    uh = solve(*condense(A, f, D=fixed))
    seconds = time.perf_counter() - t0

    fine = Basis(mesh, element, intorder=10)

    @Functional
    def l2_displacement(w):
        ue = kirsch.displacement(torch.as_tensor(np.moveaxis(w.x, 0, -1)), radius, tension, E,
                                 nu, "stress").numpy()
        diff = w["uh"] - np.moveaxis(ue, -1, 0)
        return dot(diff, diff)

    def stress_error(w):
        eps = sym_grad(w["uh"])
        sigma_h = lam * trace(eps) * np.eye(2)[:, :, None, None] + 2 * mu * eps
        return exact_stress(w) - sigma_h

    @Functional
    def l2_stress(w):
        d = stress_error(w)
        return ddot(d, d)

    @Functional
    def energy(w):  # (sigma - sigma_h) : C^{-1} : (sigma - sigma_h), plane stress
        d = stress_error(w)
        return (ddot(d, d) - lam / (2 * mu + 2 * lam) * trace(d) ** 2) / (2 * mu)

    field = fine.interpolate(uh)
    return {"elements": k, "h": 1.0 / k, "dofs": int(basis.N), "seconds": seconds,
            **{name: float(np.sqrt(form.assemble(fine, uh=field)))
               for name, form in (("l2_displacement", l2_displacement),
                                  ("l2_stress", l2_stress), ("energy", energy))}}


def peer_study(levels) -> dict:
    rows = [skfem_solve(k) for k in levels]
    return {"element": "scikit-fem Q2 (isoparametric)", "levels": rows, **_rates(rows, KEYS)}


def peer_ratio(peer_rows, row, key) -> float | None:
    """The peer's ``key`` (an error, or seconds) at ``row``'s dofs (log-log interpolation)
    over ``row``'s; None outside the peer's range of dofs."""
    dofs = np.log([r["dofs"] for r in peer_rows])
    if not dofs[0] <= math.log(row["dofs"]) <= dofs[-1]:
        return None
    peer = np.exp(np.interp(math.log(row["dofs"]), dofs, np.log([r[key] for r in peer_rows])))
    return float(peer / row[key])


# ---------------------------------------------------------------------------- output
def markdown(result: dict) -> str:
    """The convergence table of the page docs/elasticity_iga.md (rows of every study)."""
    lines = ["| element | k (k x 2k elements) | dofs | L2 displacement | L2 stress | energy norm "
             "| sigma_xx(0, R) | time (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    studies = list(result["iga"]) + ([result["peer"]] if result.get("peer") else [])
    for study in studies:
        for r in study["levels"]:
            top = f"{r['sigma_xx_top']:.4f}" if "sigma_xx_top" in r else "-"
            lines.append(f"| {study['element']} | {r['elements']} | {r['dofs']} | "
                         f"{r['l2_displacement']:.3e} | {r['l2_stress']:.3e} | {r['energy']:.3e} "
                         f"| {top} | {r['seconds']:.2f} |")
    lines += ["", "| element | rate L2 displacement | rate L2 stress | rate energy norm |",
              "| --- | --- | --- | --- |"]
    for study in studies:
        lines.append(f"| {study['element']} | {study['l2_displacement_rate']:.2f} | "
                     f"{study['l2_stress_rate']:.2f} | {study['energy_rate']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--quick", action="store_true", help=f"levels {QUICK_LEVELS} only")
    parser.add_argument("--no-peer", action="store_true", help="skip scikit-fem")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    levels = QUICK_LEVELS if args.quick else LEVELS
    for degree in (2, 3):  # first-call costs (knot insertion, elevation) out of the timings
        kirsch.solve(degree, 2)
    result = {
        "machine": machine_info({"scikit-fem": "scikit-fem"}, threads=1,
                                load_average=load_average()),
        "settings": {**kirsch.DEFAULTS, "levels": list(levels), "rates_fitted_over": 3},
        "iga": [iga_study(p, levels) for p in (2, 3)],
    }
    if not args.no_peer:
        try:
            import skfem  # noqa: F401
        except ImportError:
            result["peer"] = None
            print("scikit-fem not installed: no peer run")
        else:
            skfem_solve(2)
            result["peer"] = peer_study([k for k in levels if PEER_MIN <= k <= PEER_MAX])
            for study in result["iga"]:
                row = [r for r in study["levels"] if r["elements"] <= PEER_MAX][-1]
                study["peer_ratio"] = {
                    "at_dofs": row["dofs"],
                    **{k: peer_ratio(result["peer"]["levels"], row, k)
                       for k in (*KEYS, "seconds")}}
    print(markdown(result))
    for study in result["iga"]:
        ratio = study.get("peer_ratio")
        if ratio:
            print(f"{study['element']} at {ratio['at_dofs']} dofs, scikit-fem Q2 / dfem: error "
                  f"ratio displacement {ratio['l2_displacement']:.2f}, stress "
                  f"{ratio['l2_stress']:.2f}, energy {ratio['energy']:.2f}; time ratio "
                  f"{ratio['seconds']:.2f}")
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
