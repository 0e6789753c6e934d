"""The example of docs/elasticity.md runs and prints what the page says; its beam agrees with
Timoshenko beam theory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "elasticity.md"


def test_cantilever_example(capsys):
    text = PAGE.read_text()
    code = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    exec(compile(code, "docs/elasticity.md", "exec"), {})  # noqa: S102 - our own docs
    out = capsys.readouterr().out
    printed = re.search(r"prints \(measured\)\n\n```\n(.*?)```", text, flags=re.S).group(1)
    assert out == printed
    tip = -float(re.search(r"tip (-?[0-9.]+)", out).group(1))
    # Timoshenko: P L^3 / (3 E I) + P L / (kappa G A), P = 2, L = 10, h = 2, E = 1000, nu = 0.3
    P, L, h, E, nu = 2.0, 10.0, 2.0, 1000.0, 0.3
    beam = P * L**3 / (3 * E * h**3 / 12) + P * L / (5 / 6 * E / (2 * (1 + nu)) * h)
    assert tip == pytest.approx(beam, rel=0.01)
    assert "[0.0, 2.0]" in out and out.strip().endswith("True")
