"""Smoke test of benchmarks/bench_spline.py in quick mode: keys and agreement, no timings."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ruptures")


def test_bench_spline_smoke(tmp_path, load_benchmark):
    bench = load_benchmark("bench_spline")
    out = tmp_path / "bench.json"
    assert bench.main(["--json", str(out), "--quick", "--quiet", "--repeats", "1"]) == 0
    data = json.loads(out.read_text())
    for key in (
        "machine",
        "settings",
        "ratio_vs_ruptures",
        "dfem_s",
        "ruptures_s",
        "project_2d",
        "batch_1d",
        "target_met",
    ):
        assert key in data, key
    assert data["n"] == bench.QUICK["n"] and data["k"] == bench.QUICK["k"]
    # the same exact optimum as ruptures' exact program, by an independent cost
    assert data["cost_rel_diff"] < 1e-9 and data["same_breakpoints"]
    assert data["batch_1d"]["approximate_error_ratio_mean"] >= 1.0 - 1e-12
    assert data["project_2d"]["components_c4"] > 1
    assert "ruptures" in data["machine"]
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
