"""docs/optimization.md: its first example prints the MBB compliances of the 88-line code."""

from pathlib import Path

import pytest

from dfem.validation import top88

ROOT = Path(__file__).resolve().parents[2]


def test_topology_example_matches_the_88_line_code(run_doc_example):
    out = run_doc_example(ROOT / "docs" / "optimization.md", 0)
    first, last = (float(v) for v in out.split()[:2])
    reference = top88.top88(60, 20, 0.5, 3.0, 1.5, ft=2, iterations=50)["compliance"]
    assert first == pytest.approx(reference[0], abs=1e-4)
    assert last == pytest.approx(reference[-1], abs=1e-4)
    page = (ROOT / "docs" / "optimization.md").read_text()
    assert f"{reference[0]:.4f}" in page and f"{reference[-1]:.4f}" in page
