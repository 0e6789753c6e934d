"""Smoke test of benchmarks/iga_convergence.py --quick: keys and consistency, no timings."""

from __future__ import annotations

import json


def test_quick_run_writes_json(tmp_path, capsys, load_benchmark):
    module = load_benchmark("iga_convergence")
    out = tmp_path / "iga.json"
    assert module.main(["--quick", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [s["degree"] for s in result["annulus"]] == [2, 3]
    for study in result["annulus"]:
        errors = [r["l2_error"] for r in study["levels"]]
        assert all(a > b for a, b in zip(errors, errors[1:], strict=False))
    q2, *iga = result["table5"]
    assert q2["element"] == "Q2" and all(r["element"] == "NURBS2" for r in iga)
    assert iga[-1]["dofs"] < q2["dofs"] and iga[-1]["l2_error"] < q2["l2_error"]
    assert "Table 5 problem" in capsys.readouterr().out
