"""benchmarks/inverse_examples.py --quick runs end to end and its figures hold together."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def test_quick_run(tmp_path, load_benchmark):
    module = load_benchmark("inverse_examples")
    out = tmp_path / "inverse.json"
    results = module.main(["--json", str(out), "--quick", "--threads", "1"])
    assert json.loads(out.read_text())["quick"] is True
    assert results["calibration"]["best_weight"] in (5e-3, 1e-2)
    assert results["parameters"]["w_max_abs_error"] < 0.05
    shape = results["shape"]
    assert shape["energy_after"] < shape["energy_before"]
    assert shape["h1_error_after"] < shape["h1_error_before"]
    assert shape["inverted_cells"] == 0 and shape["moved_boundary_nodes"] == 0
    assert all(row["passed"] for row in results["taylor"])
