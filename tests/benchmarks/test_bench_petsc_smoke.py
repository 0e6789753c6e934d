"""Smoke test of benchmarks/bench_petsc.py on a small box: every run (serial pyamg and
PETSc, 1 and 2 ranks, the weak-scaling pair) finishes and gives the serial objective;
no timings asserted."""

import json
import shutil

import pytest

try:
    import mpi4py  # noqa: F401
    import petsc4py  # noqa: F401

    missing = None if shutil.which("mpirun") else "mpirun is not installed"
except ImportError as exc:
    missing = str(exc)


@pytest.mark.skipif(missing is not None, reason=str(missing))
def test_small_run(load_benchmark, tmp_path):
    bench = load_benchmark("bench_petsc")
    out = tmp_path / "petsc.json"
    assert bench.main(["--n", "6", "--weak-n", "4", "--elasticity-k", "3", "--json",
                       str(out)]) == 0
    data = json.loads(out.read_text())
    runs = data["runs"]
    assert set(runs) == {"serial_amg", "serial_petsc", "mpi_1", "mpi_2", "weak_1", "weak_2",
                         "elasticity_1", "elasticity_2"}
    assert runs["serial_amg"]["n_dofs"] == 7**3
    for name in ("serial_petsc", "mpi_1", "mpi_2"):
        assert runs[name]["n_dofs"] == 7**3
        assert runs[name]["objective_rel_diff_vs_serial_amg"] <= 1e-8, name
    for run in runs.values():
        assert run["grad_finite"] and run["iterations_forward"] > 0
        assert run["iterations_adjoint"] > 0  # J = sum u^2 is not the energy: a solve
    assert runs["weak_2"]["n_cells"] == 2 * runs["weak_1"]["n_cells"]
    assert runs["elasticity_1"]["n_dofs"] == 3 * 7 * 4 * 4
    assert runs["elasticity_2"]["objective_rel_diff_vs_1_rank"] <= 1e-8
    assert [r["local_cells"] for r in runs["mpi_2"]["per_rank"]] == [108, 108]
    assert set(data["summary"]) >= {"gamg_vs_pyamg_total_ratio", "speedup_2_ranks",
                                    "weak_scaling_efficiency_2_ranks", "peak_gb_per_rank",
                                    "elasticity_speedup_2_ranks"}
