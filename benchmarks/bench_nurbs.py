"""Benchmark the dfem NURBS surface (forward + backward) against geomdl (forward) on the CPU.

A cubic NURBS surface with 8 x 8 control points (random coordinates in [-1, 1]^3, random
weights in [0.5, 1.5], clamped uniform knots in both directions) is evaluated on an
N x N grid of parameter values (N = 256: 65536 points; the grid ``linspace(0, 1, N)`` in
both directions, as geomdl samples it).

- dfem: ``surface_points(P, w, U, V, 3, 3, u, v)`` then ``S.sum().backward()`` with
  ``P``, ``w``, ``U`` and ``V`` all requiring grad (exact knot gradients): the whole
  call (validation, span search, basis, contraction, quotient) and the backward pass.
  Best of ``--repeats`` warm runs, with one thread (``torch.set_num_threads(1)``, the
  headline: geomdl is single-threaded Python) and with the default thread count.
- geomdl: ``NURBS.Surface`` with the same weighted control points and knots,
  ``sample_size = N`` and ``evaluate()`` (its ``evalpts``), forward only; best of
  ``--geomdl-repeats`` runs (about 2.4 s each at N = 256 on a 2-core AMD EPYC VM).

The points are compared (``max_abs_diff``); ``ratio_vs_geomdl`` = dfem forward+backward
(one thread) / geomdl forward. Target: <= 0.01.

Usage::

    python benchmarks/bench_nurbs.py --json benchmarks/results/bench_nurbs_cpu.json
    python benchmarks/bench_nurbs.py --json /tmp/quick.json --quick
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing dfem
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import (  # noqa: E402
    best_of,
    load_average,
    machine_info,
    torch_threads,
    write_json,
)
from dfem.basis.nurbs import clamped_knots, surface_points  # noqa: E402

N_CTRL = 8
DEGREE = 3
DIM = 3
DEFAULT_GRID = 256
QUICK_GRID = 32
TARGET_RATIO = 0.01
AGREEMENT_TOL = 1e-12




def make_surface(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "control_points": rng.uniform(-1.0, 1.0, (N_CTRL, N_CTRL, DIM)),
        "weights": rng.uniform(0.5, 1.5, (N_CTRL, N_CTRL)),
        "knots": clamped_knots(N_CTRL, DEGREE).numpy(),
    }


def _leaves(surf: dict) -> tuple[torch.Tensor, ...]:
    cp = torch.tensor(surf["control_points"], requires_grad=True)
    w = torch.tensor(surf["weights"], requires_grad=True)
    ku = torch.tensor(surf["knots"], requires_grad=True)
    kv = torch.tensor(surf["knots"], requires_grad=True)
    return cp, w, ku, kv


def dfem_forward_backward(leaves, u) -> torch.Tensor:
    cp, w, ku, kv = leaves
    S = surface_points(cp, w, ku, kv, DEGREE, DEGREE, u, u)
    S.sum().backward()
    return S


def dfem_forward(leaves, u) -> torch.Tensor:
    cp, w, ku, kv = leaves
    with torch.no_grad():
        return surface_points(cp, w, ku, kv, DEGREE, DEGREE, u, u)


def bench_dfem(surf: dict, grid: int, repeats: int, threads: int) -> dict:
    u = torch.linspace(0.0, 1.0, grid, dtype=torch.float64)
    with torch_threads(threads):
        for _ in range(3):  # warm-up: first-call costs
            dfem_forward_backward(_leaves(surf), u)
        t_fb, S = best_of(
            repeats, lambda lv: dfem_forward_backward(lv, u), setup=lambda: _leaves(surf)
        )
        t_f, _ = best_of(repeats, lambda lv: dfem_forward(lv, u), setup=lambda: _leaves(surf))
    leaves = _leaves(surf)
    dfem_forward_backward(leaves, u)
    grads_finite = all(bool(torch.isfinite(x.grad).all()) for x in leaves)
    return {
        "threads": threads,
        "forward_backward_s": t_fb,
        "forward_s": t_f,
        "points": S.detach().numpy(),
        "grads_finite": grads_finite,
    }


def bench_geomdl(surf: dict, grid: int, repeats: int) -> tuple[float, np.ndarray]:
    from geomdl import NURBS

    cp, w = surf["control_points"], surf["weights"]

    def build():
        s = NURBS.Surface(normalize_kv=False)
        s.degree_u = s.degree_v = DEGREE
        s.ctrlpts_size_u = s.ctrlpts_size_v = N_CTRL
        s.ctrlptsw = (
            np.concatenate([cp * w[..., None], w[..., None]], axis=-1).reshape(-1, DIM + 1).tolist()
        )
        s.knotvector_u = s.knotvector_v = surf["knots"].tolist()
        s.sample_size_u = s.sample_size_v = grid
        return s

    def evaluate(s):
        s.evaluate()
        return s.evalpts

    t, pts = best_of(repeats, evaluate, setup=build)
    return t, np.asarray(pts, dtype=np.float64).reshape(grid, grid, DIM)


def run(grid: int, repeats: int, geomdl_repeats: int, out: Path, verbose: bool = True) -> dict:
    surf = make_surface()
    default_threads = torch.get_num_threads()
    load_before = load_average()
    one = bench_dfem(surf, grid, repeats, 1)
    many = bench_dfem(surf, grid, repeats, default_threads)
    t_geomdl, ref = bench_geomdl(surf, grid, geomdl_repeats)
    diff = float(np.abs(one["points"] - ref).max())
    result = {
        "machine": machine_info({"geomdl": "geomdl"},
                                torch_threads_default=torch.get_num_threads()),
        "settings": {
            "surface": f"{N_CTRL}x{N_CTRL} control points, degree {DEGREE}, clamped uniform "
            "knots, random weights in [0.5, 1.5]",
            "grid": grid,
            "n_points": grid * grid,
            "repeats": repeats,
            "geomdl_repeats": geomdl_repeats,
            "timing": "best of repeats, wall clock (time.perf_counter), gc paused, warm",
            "dfem": "surface_points + sum().backward(); grads w.r.t. control points, weights, "
            "both knot vectors (knot_grad='exact')",
            "geomdl": "NURBS.Surface.evaluate() (evalpts), forward only",
            "headline": "ratio_vs_geomdl = dfem fwd+bwd with 1 thread / geomdl fwd",
            "target_ratio": TARGET_RATIO,
        },
        "dfem_forward_backward_s": one["forward_backward_s"],
        "dfem_forward_s": one["forward_s"],
        "dfem_forward_backward_default_threads_s": many["forward_backward_s"],
        "dfem_forward_default_threads_s": many["forward_s"],
        "default_threads": default_threads,
        "geomdl_forward_s": t_geomdl,
        "ratio_vs_geomdl": one["forward_backward_s"] / t_geomdl,
        "ratio_vs_geomdl_default_threads": many["forward_backward_s"] / t_geomdl,
        "forward_ratio_vs_geomdl": one["forward_s"] / t_geomdl,
        "max_abs_diff": diff,
        "points_agree": bool(diff < AGREEMENT_TOL),
        "grads_finite": bool(one["grads_finite"] and many["grads_finite"]),
        "load_average_before_after": [load_before, load_average()],
    }
    result["target_met"] = bool(result["ratio_vs_geomdl"] <= TARGET_RATIO)
    write_json(out, result)
    if verbose:
        print_table(result)
    return result


def print_table(r: dict) -> None:
    s = r["settings"]
    print(
        f"NURBS surface {N_CTRL}x{N_CTRL}, degree {DEGREE}, {s['grid']}x{s['grid']} = "
        f"{s['n_points']} points"
    )
    print(f"{'':<36}{'time':>12}{'ratio':>10}")
    g = r["geomdl_forward_s"]
    rows = [
        ("geomdl forward", g),
        ("dfem forward (1 thread)", r["dfem_forward_s"]),
        ("dfem forward+backward (1 thread)", r["dfem_forward_backward_s"]),
        (f"dfem forward (threads={r['default_threads']})", r["dfem_forward_default_threads_s"]),
        (
            f"dfem fwd+bwd (threads={r['default_threads']})",
            r["dfem_forward_backward_default_threads_s"],
        ),
    ]
    for name, t in rows:
        print(f"{name:<36}{t * 1e3:>10.2f}ms{t / g:>10.4f}")
    print(f"max |S_dfem - S_geomdl| = {r['max_abs_diff']:.2e}")
    print(
        f"ratio_vs_geomdl (dfem fwd+bwd / geomdl fwd) = {r['ratio_vs_geomdl']:.4f} "
        f"(target <= {TARGET_RATIO})"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, type=Path, help="output JSON file")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke test on a {QUICK_GRID}x{QUICK_GRID} grid"
    )
    parser.add_argument(
        "--grid", type=int, default=None, help=f"points per direction (default {DEFAULT_GRID})"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="dfem: best of R warm runs (default 20, quick 3)"
    )
    parser.add_argument(
        "--geomdl-repeats",
        type=int,
        default=None,
        help="geomdl: best of R runs (default 2, quick 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no table on stdout")
    args = parser.parse_args(argv)
    grid = args.grid or (QUICK_GRID if args.quick else DEFAULT_GRID)
    repeats = args.repeats or (3 if args.quick else 20)
    geomdl_repeats = args.geomdl_repeats or (1 if args.quick else 2)
    run(grid, max(1, repeats), max(1, geomdl_repeats), args.json, verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
