"""The examples in docs/nurbs.md run as written and print what the page says."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "nurbs.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def run_block(code, capsys):
    exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - our own documentation
    return capsys.readouterr().out


def test_main_example(capsys):
    out = run_block(python_blocks()[0], capsys)
    radius = float(re.search(r"radius error ([0-9.e+-]+)", out).group(1))
    change = float(re.search(r"max change ([0-9.e+-]+)", out).group(1))
    mse = float(re.search(r"fit MSE ([0-9.e+-]+)", out).group(1))
    assert radius < 1e-14 and change < 1e-14 and mse < 1e-3


def test_knot_gradient_example(capsys):
    out = run_block(python_blocks()[1], capsys)
    rows = re.findall(r"= \[([^\]]+)\]", out)
    grads = [[float(x) for x in row.split()] for row in rows]
    assert len(grads) == 4
    exact, smallest_sigma = grads[0], grads[3]
    assert max(abs(a - b) for a, b in zip(exact, smallest_sigma, strict=True)) < 1e-3


def test_isogeometric_example(capsys):
    out = run_block(python_blocks()[2], capsys)
    assert "IsogeometricSpace(NURBS3, 16x16 elements, 361 dofs)" in out
    l2 = float(out.split()[-1])
    assert 1.0e-4 < l2 < 1.3e-4  # the page says "about 1.1e-4" (benchmarks: 1.145e-4)
