"""The topology optimisation validation script runs at small size and writes its results."""

import json


def test_topopt_validation_quick(load_benchmark, tmp_path):
    out = tmp_path / "topopt.json"
    results = load_benchmark("topopt_validation").main(
        ["--json", str(out), "--figures", str(tmp_path), "--quick"])
    assert json.loads(out.read_text())["mbb_vs_top88"]["max_rel_diff"] < 1e-8
    assert results["mbb"]["oc"]["iterations"] == 8
    assert results["heat_sink"]["compliance_last"] < results["heat_sink"]["compliance_first"]
    assert (tmp_path / "topopt_mbb.png").stat().st_size > 1000
    assert (tmp_path / "topopt_heat_sink.png").exists()
