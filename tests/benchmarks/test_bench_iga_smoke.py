"""Smoke test of benchmarks/iga_convergence.py --quick: keys and consistency, no timings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_json(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("iga_convergence",
                                                  ROOT / "benchmarks" / "iga_convergence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
