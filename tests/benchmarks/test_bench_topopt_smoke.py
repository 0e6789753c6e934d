"""Smoke test of benchmarks/bench_topopt.py in --quick mode: keys and agreement, no timings."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torchfem")
pytest.importorskip("pyamg")

SIZE_KEYS = {
    "shape",
    "cells",
    "dofs",
    "torchfem_default_solver",
    "load_rel_max_diff",
    "constrained_dofs_equal",
    "agreement",
    "agree",
    "entries",
    "dfem_best",
    "dfem_best_s",
    "torchfem_best_autograd",
    "torchfem_best_autograd_s",
    "torchfem_best_analytical",
    "iteration_ratio_vs_torchfem",
    "iteration_ratio_vs_torchfem_default",
    "iteration_ratio_vs_torchfem_analytical",
    "dfem_split",
    "torchfem_split",
    "run",
    "load_average_before_after",
}
SPLIT_KEYS = {"filter_s", "forward_s", "sensitivity_s", "update_s", "total_s",
              "oc_volume_evaluations", "variant"}
DFEM_SPLIT_KEYS = SPLIT_KEYS | {"assemble_s", "factorization_or_setup_s", "solve_phase_s"}
RUN_KEYS = {"iterations", "dfem", "torchfem", "history_rel_max_diff",
            "final_compliance_rel_diff", "design_max_abs_diff", "mean_iteration_ratio"}


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_bench_topopt_smoke(tmp_path, load_benchmark):
    from benchmarks.harness import torch_threads

    bench = load_benchmark("bench_topopt")
    out = tmp_path / "bench.json"
    args = ["--json", str(out), "--quick", "--sizes-2d", "12x6", "--sizes-3d", "6x2x2",
            "--quiet", "--no-warmup"]
    with torch_threads(1):  # the script's --threads would pin the whole test session
        assert bench.main(args) == 0

    data = json.loads(out.read_text())
    assert {"cpu", "cores", "torch", "scipy", "torchfem", "pyamg", "git"} <= set(data["machine"])
    assert set(data["targets_met"]) == set(bench.TARGETS)
    for key in ("iteration_ratio_vs_torchfem", "iteration_ratio_vs_torchfem_3d",
                "iteration_ratio_vs_torchfem_analytical",
                "iteration_ratio_vs_torchfem_3d_analytical"):
        assert math.isfinite(data[key]) and data[key] > 0, key
    assert data["agree"]
    assert data["final_compliance_rel_max_diff"] < 1e-9

    for dim, label, cells in (("2d", "12x6", 72), ("3d", "6x2x2", 24)):
        entry = data[dim][label]
        missing = SIZE_KEYS - set(entry)
        assert not missing, f"{dim} {label} lacks {sorted(missing)}"
        assert entry["cells"] == cells
        # the same discrete problem on both sides
        assert entry["load_rel_max_diff"] < 1e-14
        assert entry["constrained_dofs_equal"]
        assert entry["agreement"]["reference"] == "dfem/direct"
        names = {f"dfem/{m}" for m in bench.DFEM_METHODS} | \
            {f"torchfem/{v}" for v in bench.TORCHFEM_VARIANTS}
        assert set(entry["entries"]) == names
        # tiny systems: torch-fem's default is its direct solver, timed once
        assert entry["torchfem_default_solver"] == "direct"
        for name, e in entry["entries"].items():
            if name == "dfem/direct":
                continue
            if "same_as" in e:
                assert e["same_as"] in entry["entries"], name
                continue
            assert "per_iteration_s" in e, (name, e)
            a = entry["agreement"][name]
            assert a["compliance_rel_diff"] < 1e-10, (name, a)
            assert a["sensitivity_rel_max_diff"] < 1e-9, (name, a)
            assert a["agree"]
        assert set(entry["dfem_split"]) >= DFEM_SPLIT_KEYS
        assert set(entry["torchfem_split"]) >= SPLIT_KEYS
        assert entry["dfem_split"]["oc_volume_evaluations"] > 5  # the bisection ran

        run = entry["run"]
        missing = RUN_KEYS - set(run)
        assert not missing, f"{dim} {label} run lacks {sorted(missing)}"
        assert run["iterations"] == bench.QUICK_ITERATIONS
        for code in ("dfem", "torchfem"):
            assert len(run[code]["compliance"]) == bench.QUICK_ITERATIONS
        assert run["torchfem"]["variant"].endswith("/autograd")
        # same loop, same start: the same iterates
        assert run["history_rel_max_diff"] < 1e-9
        assert run["final_compliance_rel_diff"] < 1e-9
        assert run["design_max_abs_diff"] < 1e-9
        assert run["dfem"]["compliance"][1] < run["dfem"]["compliance"][0]  # it optimises
    # no temp files left beside the output
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
