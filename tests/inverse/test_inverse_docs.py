"""docs/inverse.md: its example runs, and every measured number on it is the one in
benchmarks/results/inverse.json (written by benchmarks/inverse_examples.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "inverse.md"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_example_runs(run_doc_example):
    error = float(re.search(r"w error ([0-9.e+-]+)", run_doc_example(DOC)).group(1))
    assert error < 0.05


def test_page_quotes_the_json():
    data = json.loads((ROOT / "benchmarks" / "results" / "inverse.json").read_text())
    page = DOC.read_text()
    field, params = data["field"], data["parameters"]
    shape, crude = data["shape"], data["shape_default_quadrature"]
    quoted = [
        f"**{field['log_nu_rel_l2_error']:.4f}**",
        f"{field['iterations']} / {field['solve_pairs']}",
        f"{field['wall_s']:.1f} s (target < 5 min)",
        f"{field['misfit']:.3f} / {field['regularization_value']:.2f}",
        f"**{params['w_max_abs_error']:.4f}**",
        f"after {params['iterations']} iterations and {params['solve_pairs']} solve pairs",
        f"{params['wall_s']:.1f} s. The relative log ν error is "
        f"{params['log_nu_rel_l2_error']:.4f}",
        "| recovered | " + " | ".join(f"{w:.4f}" for w in params["w"]) + " |",
        "| truth | " + " | ".join(f"{w:.4f}" for w in params["w_true"]) + " |",
        f"| J(u_h) | {shape['energy_before']:.5f} | {shape['energy_after']:.5f} |",
        f"| H¹-seminorm error | {shape['h1_error_before']:.4f} | "
        f"{shape['h1_error_after']:.4f} (**{100 * shape['h1_error_reduction']:.1f} % lower**)",
        f"{shape['steps']} accepted steps and {shape['seconds']:.1f} s",
        f"The guard refused {shape['guard_trips']} trial steps",
        f"ratio of {shape['min_corner_jacobian_ratio']:.3f}",
        f"J fell to {crude['energy_after']:.5f}",
        f"= {crude['exact_energy']:.5f}",
        f"fell only {100 * crude['h1_error_reduction']:.1f} %",
    ]
    for row in data["calibration"]["runs"]:
        error = f"{row['log_nu_rel_l2_error']:.4f}"
        if row["weight"] == data["calibration"]["best_weight"]:
            error = f"**{error}**"
        quoted.append(f"| {row['weight']:g} | {error} | {row['misfit']:.3f} |")
    for row in data["taylor"]:
        quoted.append(f"| {row['element']} | {row['parameter']} | {row['r0_rate']:.3f} | "
                      f"{row['r1_rate']:.3f} |")
        assert row["passed"]
    missing = [text for text in quoted if text not in page]
    assert not missing, missing
    assert shape["inverted_cells"] == 0 and shape["moved_boundary_nodes"] == 0
    assert field["log_nu_rel_l2_error"] < 0.10 and params["w_max_abs_error"] < 0.05
    import tomllib

    case = tomllib.loads((ROOT / "cases" / "inverse_field.toml").read_text())
    assert case["inverse"]["weight"] == data["calibration"]["best_weight"]
