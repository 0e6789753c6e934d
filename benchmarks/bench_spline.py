"""Benchmark the DSA spline projections against ruptures' exact dynamic program on the CPU.

1. Exact 1D fit of degree 0 (a k-histogram), n = 1000, k = 10, one signal (ten noisy levels
   of random height and random lengths, seeded):
   - dfem: ``spline_fit_1d(x, k)`` (float64), best of ``--repeats`` warm runs, one torch
     thread (the headline: ruptures is single-threaded) and the default thread count;
   - ruptures: ``Dynp(model="l2", min_size=1, jump=1).fit(x).predict(n_bkps=k - 1)``, the
     exact setting (its defaults min_size=2, jump=5 are not exact), best of
     ``--ruptures-repeats`` runs.
   Both costs are recomputed the same way (sum of squared deviations from each piece's
   mean); ``ratio_vs_ruptures`` = dfem (1 thread) / ruptures. Target: <= 0.01.
2. ``project_2d`` forward + backward on a batch of 16 maps of 256 x 256 (smoothed noise, so
   the maps hold hundreds of components), both connectivity backends (report only).
3. Exact 1D fit, batch 64, n = 1024, k = 16, degree 0 (report only), and the approximate
   mode on the same batch with its error relative to the exact fit (best of at most 2 runs:
   each takes seconds).
4. The approximate mode's error relative to the exact fit for degrees 0-3 (16 signals of
   n = 512 with k = 8 levels on a sine trend, fitted with k = 8).
5. The approximate mode on one long signal, n = 100000, k = 16, degrees 0 and 3 (the exact
   program would need n^2 = 1e10 run errors), one run each.

Usage::

    python benchmarks/bench_spline.py --json benchmarks/results/bench_spline_cpu.json
    python benchmarks/bench_spline.py --json /tmp/quick.json --quick
"""

from __future__ import annotations

import argparse
import sys
from itertools import pairwise
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
from dfem.spline import project_2d, spline_fit_1d  # noqa: E402

TARGET_RATIO = 0.01
FULL = {
    "n": 1000,
    "k": 10,
    "maps": (16, 1, 256, 256),
    "batch": (64, 1024, 16),
    "degrees": (16, 512, 8),
    "long": (100_000, 16),
}
QUICK = {
    "n": 200,
    "k": 5,
    "maps": (4, 1, 64, 64),
    "batch": (8, 256, 8),
    "degrees": (4, 96, 4),
    "long": (5000, 8),
}




def levels_signal(rng: np.random.Generator, n: int, k: int, noise: float = 0.5) -> np.ndarray:
    """k levels of random height (sd 3) and random lengths, plus Gaussian noise."""
    cuts = np.sort(rng.choice(np.arange(1, n), size=k - 1, replace=False))
    heights = rng.normal(0.0, 3.0, k)
    x = np.repeat(heights, np.diff(np.concatenate([[0], cuts, [n]])))
    return x + rng.normal(0.0, noise, n)


def piece_cost(x: np.ndarray, bounds) -> float:
    """Sum over pieces of the squared deviation from the piece mean."""
    return float(sum(np.sum((x[a:b] - x[a:b].mean()) ** 2) for a, b in pairwise(bounds)))


def bench_1d_vs_ruptures(n: int, k: int, repeats: int, ruptures_repeats: int) -> dict:
    import ruptures

    x = levels_signal(np.random.default_rng(0), n, k)
    signal = torch.tensor(x)
    timings = {}
    for label, threads in (("one_thread", 1), ("default_threads", torch.get_num_threads())):
        with torch_threads(threads):
            spline_fit_1d(signal, k)  # warm-up
            timings[label], fit = best_of(repeats, lambda: spline_fit_1d(signal, k))
    ours = fit.breaks.tolist()[: fit.pieces.item() + 1]

    def dynp():
        return ruptures.Dynp(model="l2", min_size=1, jump=1).fit(x.reshape(-1, 1)).predict(k - 1)

    t_ruptures, cuts = best_of(ruptures_repeats, dynp)
    theirs = [0, *cuts]
    cost_ours, cost_theirs = piece_cost(x, ours), piece_cost(x, theirs)
    return {
        "n": n,
        "k": k,
        "dfem_s": timings["one_thread"],
        "dfem_default_threads_s": timings["default_threads"],
        "ruptures_s": t_ruptures,
        "ratio_vs_ruptures": timings["one_thread"] / t_ruptures,
        "ratio_vs_ruptures_default_threads": timings["default_threads"] / t_ruptures,
        "dfem_cost": cost_ours,
        "ruptures_cost": cost_theirs,
        "dfem_reported_error": fit.error.item(),
        "cost_rel_diff": abs(cost_ours - cost_theirs) / cost_theirs,
        "same_breakpoints": ours == theirs,
    }


def smooth_maps(shape, seed: int = 0) -> torch.Tensor:
    """Uniform noise blurred by a separable box filter of width 9, in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen)
    kernel = torch.ones(1, 1, 1, 9) / 9
    flat = x.reshape(-1, 1, *shape[-2:])
    flat = torch.nn.functional.conv2d(flat, kernel, padding=(0, 4))
    flat = torch.nn.functional.conv2d(flat, kernel.transpose(-1, -2), padding=(4, 0))
    x = flat.reshape(shape)
    return (x - x.amin()) / (x.amax() - x.amin())


def bench_2d(shape, repeats: int) -> dict:
    maps = smooth_maps(shape)
    out = {"shape": list(shape)}
    for backend in ("torch", "scipy"):
        for connectivity in (4, 8):

            def step(x, connectivity=connectivity, backend=backend):
                y = project_2d(x, threshold=0.5, connectivity=connectivity, backend=backend)
                y.sum().backward()
                return y

            step(maps.clone().requires_grad_())  # warm-up
            t, y = best_of(repeats, step, setup=lambda: maps.clone().requires_grad_())
            out[f"{backend}_c{connectivity}_forward_backward_s"] = t
            out[f"components_c{connectivity}"] = int(torch.unique(y.detach()).numel())
    return out


def bench_batch(batch: int, n: int, k: int, repeats: int) -> dict:
    rng = np.random.default_rng(1)
    x = torch.tensor(np.stack([levels_signal(rng, n, k) for _ in range(batch)]))
    spline_fit_1d(x[:2], k)  # warm-up
    t_exact, exact = best_of(repeats, lambda: spline_fit_1d(x, k))
    spline_fit_1d(x[:2], k, mode="approximate")
    t_approx, approx = best_of(repeats, lambda: spline_fit_1d(x, k, mode="approximate"))
    ratio = (approx.error / exact.error).numpy()
    return {
        "batch": batch,
        "n": n,
        "k": k,
        "exact_s": t_exact,
        "exact_s_per_signal": t_exact / batch,
        "approximate_s": t_approx,
        "approximate_error_ratio_mean": float(ratio.mean()),
        "approximate_error_ratio_max": float(ratio.max()),
        "approximate_same_breakpoints": int((approx.breaks == exact.breaks).all(-1).sum()),
    }


def approximate_by_degree(batch: int, n: int, k: int) -> dict:
    rng = np.random.default_rng(2)
    trend = 2.0 * np.sin(6.0 * np.linspace(0.0, 1.0, n))
    x = torch.tensor(np.stack([levels_signal(rng, n, k) + trend for _ in range(batch)]))
    out = {"batch": batch, "n": n, "k": k}
    for degree in range(4):
        exact = spline_fit_1d(x, k, degree)
        approx = spline_fit_1d(x, k, degree, mode="approximate")
        ratio = (approx.error / exact.error).numpy()
        out[f"degree_{degree}"] = {
            "error_ratio_mean": float(ratio.mean()),
            "error_ratio_max": float(ratio.max()),
            "same_breakpoints": int((approx.breaks == exact.breaks).all(-1).sum()),
        }
    return out


def approximate_long(n: int, k: int) -> dict:
    x = torch.tensor(levels_signal(np.random.default_rng(3), n, k))
    out = {"n": n, "k": k}
    for degree in (0, 3):
        spline_fit_1d(x[:1000], k, degree, mode="approximate")  # warm-up
        t, fit = best_of(1, lambda d=degree: spline_fit_1d(x, k, d, mode="approximate"))
        out[f"degree_{degree}_s"] = t
        out[f"degree_{degree}_error"] = fit.error.item()
    return out


def run(quick: bool, repeats: int, ruptures_repeats: int, out: Path, verbose: bool = True):
    size = QUICK if quick else FULL
    load_before = load_average()
    one_d = bench_1d_vs_ruptures(size["n"], size["k"], repeats, ruptures_repeats)
    two_d = bench_2d(size["maps"], repeats)
    batch = bench_batch(*size["batch"], min(repeats, 2))
    by_degree = approximate_by_degree(*size["degrees"])
    long = approximate_long(*size["long"])
    result = {
        "machine": machine_info(
            {"ruptures": "ruptures", "scipy": "scipy"},
            torch_threads_default=torch.get_num_threads(),
        ),
        "settings": {
            "quick": quick,
            "repeats": repeats,
            "ruptures_repeats": ruptures_repeats,
            "timing": "best of repeats, wall clock (time.perf_counter), gc paused, warm",
            "signal": "k noisy levels (height sd 3, noise sd 0.5), random lengths, seed 0",
            "ruptures": "Dynp(model='l2', min_size=1, jump=1).fit(x).predict(k - 1)",
            "dfem": "spline_fit_1d(x, k) (degree 0, exact, float64)",
            "headline": "ratio_vs_ruptures = dfem (1 torch thread) / ruptures",
            "target_ratio": TARGET_RATIO,
        },
        **one_d,
        "project_2d": two_d,
        "batch_1d": batch,
        "approximate_by_degree": by_degree,
        "approximate_long": long,
        "load_average_before_after": [load_before, load_average()],
    }
    result["target_met"] = bool(result["ratio_vs_ruptures"] <= TARGET_RATIO)
    write_json(out, result)
    if verbose:
        print_table(result)
    return result


def print_table(r: dict) -> None:
    print(f"exact k-histogram, n = {r['n']}, k = {r['k']}")
    print(f"  ruptures Dynp           {r['ruptures_s']:10.4f} s   cost {r['ruptures_cost']:.10g}")
    print(f"  dfem (1 thread)         {r['dfem_s']:10.4f} s   cost {r['dfem_cost']:.10g}")
    print(f"  dfem (default threads)  {r['dfem_default_threads_s']:10.4f} s")
    print(
        f"  ratio_vs_ruptures = {r['ratio_vs_ruptures']:.5f} (target <= {TARGET_RATIO}), "
        f"same breakpoints: {r['same_breakpoints']}"
    )
    p = r["project_2d"]
    print(f"project_2d forward+backward, maps {tuple(p['shape'])}")
    for backend in ("torch", "scipy"):
        for c in (4, 8):
            print(
                f"  {backend:<6} connectivity {c}: {p[f'{backend}_c{c}_forward_backward_s']:.4f} s"
            )
    b = r["batch_1d"]
    print(f"1D batch {b['batch']} x n = {b['n']}, k = {b['k']}")
    print(f"  exact        {b['exact_s']:.4f} s")
    print(
        f"  approximate  {b['approximate_s']:.4f} s, error / exact: mean "
        f"{b['approximate_error_ratio_mean']:.6f}, max {b['approximate_error_ratio_max']:.6f}, "
        f"same knots in {b['approximate_same_breakpoints']}/{b['batch']}"
    )
    print_degrees(r["approximate_by_degree"])
    g = r["approximate_long"]
    print(
        f"approximate, one signal n = {g['n']}, k = {g['k']}: degree 0 {g['degree_0_s']:.3f} s, "
        f"degree 3 {g['degree_3_s']:.3f} s"
    )


def print_degrees(d: dict) -> None:
    print(f"approximate / exact error, {d['batch']} signals, n = {d['n']}, k = {d['k']}")
    for degree in range(4):
        row = d[f"degree_{degree}"]
        print(
            f"  degree {degree}: mean {row['error_ratio_mean']:.6f}, max "
            f"{row['error_ratio_max']:.6f}, same knots in {row['same_breakpoints']}/{d['batch']}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ruptures-repeats", type=int, default=1)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    run(args.quick, args.repeats, args.ruptures_repeats, args.json, verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
