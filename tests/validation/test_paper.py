"""Table 5 measured (smoke size) and the ``dfem paper`` page built from the JSON outputs."""

from __future__ import annotations

import json

import pytest
import torch

from dfem.cli import main
from dfem.validation.paper import SOURCES, load_sources, render, table5_markdown
from dfem.validation.table5 import PAPER, run_table5

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_NETWORKS = dict(pinn=dict(adam_steps=30, lbfgs_steps=3, collocation=64),
                     ritz=dict(steps=30, batch=64))


@pytest.fixture(scope="module")
def smoke_table5():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module scope: the one_thread fixture does not cover it yet
    try:
        return run_table5(quick=True, sizes=(8,), network_steps=TINY_NETWORKS,
                          energy_budgets={"lbfgs": 200, "adam": 50}, progress=lambda *_: None)
    finally:
        torch.set_num_threads(threads)


def test_smoke_table5_rows(smoke_table5):
    rows = {(r["method"], r.get("element")): r for r in smoke_table5["rows"]}
    direct = [rows["direct", e]["l2_error"] for e in ("Q1", "Q2", "Q3")]
    assert direct[0] > direct[1] > direct[2]  # higher order, smaller error on the same grid
    lbfgs = rows["energy-lbfgs", "Q1"]
    assert lbfgs["converged"] and lbfgs["distance_to_direct"] < 1e-8
    assert lbfgs["l2_error"] == pytest.approx(rows["direct", "Q1"]["l2_error"], rel=1e-6)
    adam = rows["energy-adam", "Q1"]
    assert adam["iterations"] == 50 and not adam["converged"]  # the budget ran out
    for method in ("pinn-hard", "pinn-soft", "deep-ritz"):
        row = rows[method, None]
        assert row["seeds"] == 1 and row["l2_error"] > 0 and row["config"]


def test_markdown_and_missing_sources(smoke_table5, tmp_path):
    text = table5_markdown(smoke_table5)
    assert f"| paper: DSA d=2 | {PAPER[128]['DSA d=2']:.2e}" not in text  # no paper row at 8
    page = render({"table5": {**smoke_table5, "sizes": [8]}} | {})
    assert "dfem direct Q2" in page and "dfem pinn-hard" in page
    assert "Not measured yet" in page
    assert all(f"- {name}:" in page for name in SOURCES if name != "table5")


def test_paper_command_writes_the_page(smoke_table5, tmp_path, capsys):
    table5 = dict(smoke_table5)
    table5["sizes"] = [128]
    for row in table5["rows"]:
        row["n"] = 128  # pretend grid, so that the paper's 128x128 column applies
    path = tmp_path / "table5.json"
    path.write_text(json.dumps(table5))
    assert main(["paper", "--table5", str(path), "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "paper.md").read_text()
    assert f"| paper: DSA d=2 | {PAPER[128]['DSA d=2']:.2e} | – |" in page
    assert (tmp_path / "out" / "table5.png").stat().st_size > 0
    assert "paper.md" in capsys.readouterr().out


def test_loads_the_committed_sources():
    data = load_sources()
    assert {"nurbs", "segmentation"} <= set(data)
