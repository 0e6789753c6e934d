"""Smoke test of benchmarks/bench_ordering.py in --quick mode: the keys, the agreement of
the two factorisations, and which ordering dfem picks; no timings asserted."""


def test_quick_run(load_benchmark, tmp_path):
    bench = load_benchmark("bench_ordering")
    result = bench.main(["--quick", "--quiet", "--repeats", "1", "--json",
                         str(tmp_path / "ordering.json")])
    assert (tmp_path / "ordering.json").is_file()
    rows = result["spaces"]
    assert set(rows) == {"Q1 elasticity 40x20", "P1 tet 8^3"}
    for row in rows.values():
        assert row["solutions_agree"] and row["solution_rel_diff"] < 1e-9
        assert row["nd_fill"] > 0 and row["mmd_fill"] > 0
        # both spaces are below the size from which dfem orders by dissection
        assert row["n_dofs"] < 4096 and not row["dfem_uses_dissection"]
