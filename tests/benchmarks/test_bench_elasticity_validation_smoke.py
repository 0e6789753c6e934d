"""Smoke tests of benchmarks/cook_membrane.py and benchmarks/elasticity_amg.py --quick: the
JSON they write and its agreement checks (no timings)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pyamg")


def test_cook_membrane_quick_run(tmp_path, load_benchmark):
    module = load_benchmark("cook_membrane")
    out = tmp_path / "cook.json"
    module.main(["--quick", "--json", str(out), "--repeats", "1"])
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert {r["element"] for r in rows} >= {"Q1", "Q2"}
    compared = [row for row in rows if "skfem" in row]
    assert {r["element"] for r in compared} >= {"Q1", "Q2"}
    for row in compared:  # the same mesh and element give scikit-fem's displacement (~20)
        assert row["max_abs_diff_vs_skfem"] < 1e-8
    assert result["reference"]["literature"]["point"] == [48.0, 52.0]


def test_elasticity_amg_quick_run(tmp_path, load_benchmark):
    module = load_benchmark("elasticity_amg")
    out = tmp_path / "amg.json"
    module.main(["--quick", "--json", str(out)])
    result = json.loads(out.read_text())
    for row in result["rows"]:
        # dfem's default converges on every mesh (a failure is recorded, not raised: it
        # must not pass unnoticed), and every converged AMG solution is the direct one
        assert row["sa_rigid_body"].get("iterations") is not None, row["sa_rigid_body"]
        for key in ("sa_rigid_body", "sa_plain"):
            if row.get(key, {}).get("iterations") is not None:
                assert row[key]["rel_diff"] < 1e-8
    assert set(result["summary"]) >= {"Q1"}
