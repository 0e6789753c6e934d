"""Smoke test of benchmarks/bench_poisson.py at tiny sizes: keys and agreement, no timings."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("skfem")
pytest.importorskip("torchfem")
pytest.importorskip("pyamg")


# beside the key groups skfem_assembly and torchfem of conftest.shared_keys
SIZE_KEYS = {
    "n_cells",
    "n_dofs",
    "dfem_direct_cold_s",
    "dfem_direct_warm_s",
    "dfem_amg_cold_s",
    "dfem_amg_warm_s",
    "dfem_best_method",
    "u_rel_max_diff_direct",
    "u_rel_max_diff_amg",
    "grad_rel_max_diff_direct",
    "grad_rel_max_diff_amg",
    "load_rel_max_diff",
    "solutions_agree",
    "gradients_agree",
}


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_bench_poisson_smoke(tmp_path, load_benchmark, shared_keys):
    size_keys = shared_keys.skfem_assembly | shared_keys.torchfem | SIZE_KEYS
    bench = load_benchmark("bench_poisson")
    out = tmp_path / "bench.json"
    args = ["--json", str(out), "--sizes", "16", "32", "--repeats", "1", "--quiet", "--no-warmup"]
    assert bench.main(args) == 0

    data = json.loads(out.read_text())
    assert {"cpu", "cores", "torch", "scipy", "skfem", "torchfem"} <= set(data["machine"])
    assert set(data["sizes"]) == {"16", "32"}
    for n, entry in data["sizes"].items():
        missing = size_keys - set(entry)
        assert not missing, f"size {n} lacks {sorted(missing)}"
        assert entry["n_cells"] == int(n) ** 2
        assert entry["matrices_agree"], entry["matrix_rel_max_diff"]
        assert entry["matrix_rel_max_diff"] < 1e-10
        assert entry["load_rel_max_diff"] < 1e-12
        assert entry["solutions_agree"] and entry["gradients_agree"]
        for key in (
            "u_rel_max_diff_direct",
            "u_rel_max_diff_amg",
            "grad_rel_max_diff_direct",
            "grad_rel_max_diff_amg",
        ):
            assert entry[key] < 1e-6, (key, entry[key])
        assert entry["dfem_best_method"] in ("direct", "amg")
    # no temp files left beside the output
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
