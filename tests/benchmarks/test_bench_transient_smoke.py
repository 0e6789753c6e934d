"""Smoke test of benchmarks/bench_transient.py in --quick mode: keys and agreement, no timings."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torchfem")
pytest.importorskip("pyamg")

SIZE_KEYS = {
    "n_dofs",
    "steps",
    "methods",
    "dfem_best_method",
    "dfem_best_s",
    "torchfem",
    "torchfem_solver",
    "torchfem_best_s",
    "transient_ratio_vs_torchfem",
    "transient_ratio_vs_torchfem_default",
    "mass_rel_max_diff",
    "torchfem_mass_consistent",
    "stiffness_rel_max_diff",
    "load_rel_max_diff",
    "initial_state_max_diff",
    "implicit_euler_vs_torchfem_rel_max_diff",
    "u_rel_max_diff",
    "grad_rel_max_diff",
    "solutions_agree",
    "gradients_agree",
    "steady",
}
STEADY_KEYS = {"steady_solve_s", "transient_forward_per_step_s", "step_vs_steady_ratio"}
MEMORY_KEYS = {"rss_before_mb", "peak_rss_mb", "peak_rss_increase_mb", "rss_method", "J",
               "forward_s", "backward_s"}


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_bench_transient_smoke(tmp_path, load_benchmark):
    bench = load_benchmark("bench_transient")
    out = tmp_path / "bench.json"
    # three memory subprocesses (each imports torch); the mmap64k series differs from the
    # default one only by the environment of its children
    args = ["--json", str(out), "--quick", "--sizes", "8", "--repeats", "1", "--quiet",
            "--no-warmup", "--series", "adjoint", "unrolled", "--unrolled-steps", "10"]
    assert bench.main(args) == 0

    data = json.loads(out.read_text())
    assert {"cpu", "cores", "torch", "torchfem", "pyamg"} <= set(data["machine"])
    assert set(data["targets_met"]) == set(bench.TARGETS)
    assert math.isfinite(data["transient_ratio_vs_torchfem"])
    # on the 16 x 16 mesh of --quick the 10-step run may grow by nothing (ratio None)
    ratio = data["memory_ratio_1000_vs_10"]
    assert ratio is None or math.isfinite(ratio)
    assert data["solutions_agree"] and data["gradients_agree"]

    # 1. dfem and torch-fem solve the same discrete problem
    assert set(data["sizes"]) == {"8"}
    entry = data["sizes"]["8"]
    missing = SIZE_KEYS - set(entry)
    assert not missing, f"lacks {sorted(missing)}"
    assert entry["n_dofs"] == 81 and entry["steps"] == bench.QUICK_STEPS
    assert entry["mass_rel_max_diff"] < 1e-12 and entry["torchfem_mass_consistent"]
    assert entry["stiffness_rel_max_diff"] < 1e-12
    assert entry["load_rel_max_diff"] < 1e-12
    assert entry["initial_state_max_diff"] < 1e-14
    assert set(entry["methods"]) == set(bench.DFEM_METHODS)
    for method, m in entry["methods"].items():
        tol = 1e-10 if method == "direct" else 1e-6
        assert m["u_rel_max_diff"] < tol, (method, m["u_rel_max_diff"])
        assert m["grad_rel_max_diff"] < tol, (method, m["grad_rel_max_diff"])
        assert m["factorizations"] == 1  # one step size, one factorisation
    # torch-fem's time_integration is Crank-Nicolson: implicit Euler differs by O(dt)
    assert entry["implicit_euler_vs_torchfem_rel_max_diff"] > 1e-4
    assert "default" in entry["torchfem"]
    assert STEADY_KEYS <= set(entry["steady"])

    # 3. memory against N, one subprocess per run
    memory = data["memory"]
    assert memory["n_dofs"] == (bench.QUICK_MEMORY_N + 1) ** 2
    assert set(memory["series"]) == {"adjoint", "unrolled"}
    assert set(memory["adjoint"]) == {str(s) for s in bench.QUICK_MEMORY_STEPS}
    assert set(memory["unrolled"]) == {"10"}
    for name in ("adjoint", "unrolled"):
        for steps, e in memory[name].items():
            missing = MEMORY_KEYS - set(e)
            assert not missing, f"{name} {steps} lacks {sorted(missing)}"
            assert e["peak_rss_increase_mb"] >= 0.0
    e = memory["adjoint"]["1000"]
    assert e["checkpoint_every"] == 32
    assert e["peak_states"] <= 2 * 32 + 2  # O(sqrt N) states, not N
    assert memory["unrolled"]["10"]["states_recorded"] == 11
    assert memory["unrolled_vs_adjoint"].keys() == {"10"}
    agreement = memory["unrolled_vs_adjoint"]["10"]
    assert agreement["J_rel_diff"] < 1e-10
    assert agreement["grad_rel_max_diff"] < 1e-8
    # no temp files left beside the output
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
