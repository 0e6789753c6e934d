"""The transient convergence script runs at small size and writes its tables."""

import json


def test_convergence_transient_quick(load_benchmark, tmp_path):
    out = tmp_path / "convergence_transient.json"
    results = load_benchmark("convergence_transient").main(["--json", str(out), "--quick"])
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    schemes = [study["scheme"] for study in results["temporal"]]
    assert schemes == ["implicit-euler", "crank-nicolson", "bdf2"]
    for study in results["temporal"]:
        assert len(study["l2"]) == 2 and study["l2"][1] < study["l2"][0]
    (spatial,) = results["spatial"]
    assert spatial["element"] == "P1" and spatial["l2"][1] < spatial["l2"][0]
    assert results["decay"]["energy_monotone"]
