"""Smoke test of benchmarks/bench_nurbs.py in quick mode: keys and agreement, no timings."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("geomdl")


KEYS = {
    "machine",
    "settings",
    "ratio_vs_geomdl",
    "ratio_vs_geomdl_default_threads",
    "dfem_forward_backward_s",
    "dfem_forward_backward_default_threads_s",
    "dfem_forward_s",
    "geomdl_forward_s",
    "max_abs_diff",
    "points_agree",
    "grads_finite",
    "target_met",
}


def test_bench_nurbs_smoke(tmp_path, load_benchmark):
    bench = load_benchmark("bench_nurbs")
    out = tmp_path / "bench.json"
    assert bench.main(["--json", str(out), "--quick", "--quiet", "--repeats", "1"]) == 0
    data = json.loads(out.read_text())
    missing = KEYS - set(data)
    assert not missing, sorted(missing)
    assert {"cpu", "cores", "torch", "torch_threads_default", "geomdl"} <= set(data["machine"])
    assert data["settings"]["grid"] == bench.QUICK_GRID
    assert data["settings"]["n_points"] == bench.QUICK_GRID**2
    assert data["points_agree"] and data["max_abs_diff"] < 1e-12
    assert data["grads_finite"]
    for key in ("dfem_forward_backward_s", "geomdl_forward_s", "ratio_vs_geomdl"):
        assert data[key] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
