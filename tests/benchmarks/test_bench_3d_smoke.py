"""Smoke test of benchmarks/bench_3d.py at tiny sizes: keys and agreement, no timings."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("skfem")
pytest.importorskip("torchfem")
pytest.importorskip("pyamg")
pytest.importorskip("tensormesh")
pytest.importorskip("meshio")

SIZES = ("3", "4")
# beside the key groups of conftest.shared_keys
ASSEMBLY_KEYS = {
    "n_cells",
    "n_dofs",
    "nnz",
    "dfem_n_quadrature",
    "skfem_n_quadrature",
    "dfem_cold_breakdown",
    "dofs_mapped",
}
FWD_KEYS = {"dfem_best_warm_s"}
TENSORMESH_ASSEMBLY_KEYS = {
    "dfem_cold_s",
    "tensormesh_cold_s",
    "tensormesh_warm_s",
    "assembly_ratio_vs_tensormesh",
    "matrix_rel_max_diff",
    "matrices_agree",
}
TENSORMESH_FWD_KEYS = {
    "tensormesh",
    "tensormesh_best_solver",
    "tensormesh_best_warm_s",
    "fwd_bwd_ratio_vs_tensormesh",
    "all_tensormesh_paths_agree",
}
LARGE_KEYS = {
    "n_dofs",
    "nnz",
    "assembly_cold_s",
    "pattern_s",
    "geometry_s",
    "first_assembly_s",
    "methods",
    "fastest_method",
}
LARGE_METHOD_KEYS = {
    "forward_s",
    "assemble_s",
    "amg_setup_s",
    "forward_cg_s",
    "iterations_forward",
    "backward_s",
    "adjoint_cg_s",
    "iterations_adjoint",
    "total_s",
    "relative_residual",
    "peak_rss_gb",
    "bytes_per_dof",
}


def _check_methods(entry: dict) -> None:
    measured = [m for m, e in entry["methods"].items() if "warm_s" in e]
    assert {"direct", "amg", "amg_sa"} <= set(measured)
    for method in measured:
        e = entry["methods"][method]
        assert e["u_rel_max_diff"] < 1e-6, (method, e["u_rel_max_diff"])
        assert e["grad_rel_max_diff"] < 1e-6, (method, e["grad_rel_max_diff"])
        assert "cold_s" in e
    assert entry["solutions_agree"] and entry["gradients_agree"]
    assert entry["dfem_best_method"] in measured
    assert entry["load_rel_max_diff"] < 1e-12


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bench_3d_smoke(tmp_path, load_benchmark, shared_keys):
    assembly_keys = shared_keys.skfem_assembly | ASSEMBLY_KEYS
    fwd_keys = shared_keys.fwd_bwd | FWD_KEYS
    bench = load_benchmark("bench_3d")
    out = tmp_path / "bench.json"
    args = ["--json", str(out), "--quick", "--sizes", *SIZES, "--repeats", "1", "--quiet",
            "--no-warmup", "--parts", "assembly", "torchfem", "tensormesh", "large",
            "--large-n", "5"]
    assert bench.main(args) == 0

    data = json.loads(out.read_text())
    assert {"cpu", "cores", "torch", "scipy", "skfem", "torchfem", "tensormesh", "pyamg"} <= set(
        data["machine"])
    assert data["settings"]["missing_peers"] == {}

    # 1. assembly vs scikit-fem
    assert set(data["assembly"]) == {"hex", "tet"}
    for cell, sizes in data["assembly"].items():
        assert set(sizes) == set(SIZES)
        for n, entry in sizes.items():
            missing = assembly_keys - set(entry)
            assert not missing, f"{cell} {n} lacks {sorted(missing)}"
            assert entry["n_cells"] == int(n) ** 3 * (1 if cell == "hex" else 6)
            assert entry["dofs_mapped"]
            assert entry["matrices_agree"], entry["matrix_rel_max_diff"]
            assert entry["matrix_rel_max_diff"] < 1e-10
            assert entry["dfem_n_quadrature"] == entry["skfem_n_quadrature"]

    # 2. forward + backward vs torch-fem (hexes)
    assert set(data["torchfem"]) == set(SIZES)
    for n, entry in data["torchfem"].items():
        missing = (fwd_keys | shared_keys.torchfem) - set(entry)
        assert not missing, f"torchfem {n} lacks {sorted(missing)}"
        assert entry["dofs_are_nodes"]
        _check_methods(entry)

    # 3. TensorMesh (tets)
    assert set(data["tensormesh"]) == set(SIZES)
    for n, entry in data["tensormesh"].items():
        a, f = entry["assembly"], entry["fwd_bwd"]
        missing = (TENSORMESH_ASSEMBLY_KEYS - set(a)) | ((fwd_keys | TENSORMESH_FWD_KEYS) - set(f))
        assert not missing, f"tensormesh {n} lacks {sorted(missing)}"
        assert a["matrices_agree"], a["matrix_rel_max_diff"]
        _check_methods(f)
        assert f["all_tensormesh_paths_agree"]
        assert set(f["tensormesh"]) == {"default", "pyamg", "amg_cg"}
        assert f["tensormesh_best_solver"] in f["tensormesh"]
    assert data["tensormesh_support"]["cpu_solvers"]

    # 4. the large dfem solve (tiny here)
    large = data["large"]
    missing = LARGE_KEYS - set(large)
    assert not missing, f"large lacks {sorted(missing)}"
    assert large["n_dofs"] == 6**3
    for method, m in large["methods"].items():
        missing = LARGE_METHOD_KEYS - set(m)
        assert not missing, f"large {method} lacks {sorted(missing)}"
        assert m["grad_finite"]
        assert m["relative_residual"] < 1e-8
        assert m["iterations_forward"] > 0

    # targets: every ratio recorded with its pass/fail
    assert set(data["targets"]) == {
        "assembly_ratio_vs_skfem",
        "assembly_ratio_vs_tensormesh",
        "fwd_bwd_ratio_vs_torchfem",
        "fwd_bwd_ratio_vs_tensormesh",
    }
    for key, target in data["targets"].items():
        assert target["values"], key
        assert set(target["pass"]) == set(target["values"])
        assert isinstance(target["met"], bool)
    assert len(data["targets"]["assembly_ratio_vs_skfem"]["values"]) == 2 * len(SIZES)
    # no temp files left beside the output
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
