"""Smoke test of benchmarks/bench_elasticity.py at tiny sizes: keys and agreement, no timings."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("skfem")
pytest.importorskip("torchfem")
pytest.importorskip("pyamg")

# beside the key groups of conftest.shared_keys
ASSEMBLY_KEYS = {"n_dofs", "nnz", "runs", "dofs_mapped"}
HYPER_KEYS = {
    "linear_s",
    "neo_hookean_s",
    "hyperelastic_tangent_ratio",
    "state_min_J",
    "tangent_at_zero_vs_linear_rel_max_diff",
    "tangent_fd_rel_max_diff",
    "tangent_asymmetry_rel",
    "tangent_vs_linear_rel_max_diff",
}


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_bench_elasticity_smoke(tmp_path, load_benchmark, shared_keys):
    assembly_keys = shared_keys.skfem_assembly | ASSEMBLY_KEYS
    fwd_keys = shared_keys.fwd_bwd | shared_keys.torchfem
    bench = load_benchmark("bench_elasticity")
    out = tmp_path / "bench.json"
    args = ["--json", str(out), "--sizes", "8", "12", "--repeats", "1", "--quiet", "--no-warmup"]
    assert bench.main(args) == 0

    data = json.loads(out.read_text())
    assert {"cpu", "cores", "torch", "scipy", "skfem", "torchfem", "pyamg"} <= set(data["machine"])
    assert set(data["targets_met"]) >= set(bench.TARGETS)
    assert set(data["sizes"]) == {"8", "12"}
    for n, entry in data["sizes"].items():
        for key in ("assembly_ratio_vs_skfem", "assembly_ratio_vs_skfem_q2",
                    "fwd_bwd_ratio_vs_torchfem", "hyperelastic_tangent_ratio"):
            assert key in entry, (n, key)

        assert set(entry["assembly"]) == {"Q1", "Q2"}
        for element, a in entry["assembly"].items():
            missing = assembly_keys - set(a)
            assert not missing, f"size {n} {element} lacks {sorted(missing)}"
            assert a["n_cells"] == int(n) ** 2
            assert a["dofs_mapped"], (n, element)
            assert a["matrix_rel_max_diff"] < 1e-10, (n, element, a["matrix_rel_max_diff"])
            assert a["matrices_agree"]
        assert entry["assembly"]["Q1"]["n_dofs"] == 2 * (int(n) + 1) ** 2
        assert entry["assembly"]["Q2"]["n_dofs"] == 2 * (2 * int(n) + 1) ** 2

        f = entry["fwd_bwd"]
        missing = fwd_keys - set(f)
        assert not missing, f"size {n} lacks {sorted(missing)}"
        assert f["load_rel_max_diff"] < 1e-12
        assert set(f["methods"]) == set(bench.DFEM_METHODS)
        direct = f["methods"]["direct"]
        assert "failed" not in direct and "skipped" not in direct
        for method, m in f["methods"].items():
            if "warm_s" not in m:  # an AMG hierarchy that broke down is recorded as such
                assert "failed" in m or "skipped" in m, (n, method)
                continue
            assert m["u_rel_max_diff"] < 1e-6, (n, method, m["u_rel_max_diff"])
            assert m["grad_rel_max_diff"] < 1e-6, (n, method, m["grad_rel_max_diff"])
            assert m["compliance_rel_diff"] < 1e-8, (n, method)
            assert {"forward_s", "backward_s", "assemble_s"} <= set(m["breakdown"])
        assert f["solutions_agree"] and f["gradients_agree"]
        assert f["dfem_best_method"] in f["methods"]

        h = entry["hyperelastic"]
        missing = HYPER_KEYS - set(h)
        assert not missing, f"size {n} lacks {sorted(missing)}"
        assert 0.5 < h["state_min_J"] < 0.99  # a real deformation, no inverted point
        assert h["tangent_at_zero_vs_linear_rel_max_diff"] < 1e-12
        assert h["tangent_fd_rel_max_diff"] < 1e-6
        assert h["tangent_asymmetry_rel"] < 1e-12
        assert h["tangent_vs_linear_rel_max_diff"] > 1e-2  # the state is non-trivial
    # no temp files left beside the output
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
