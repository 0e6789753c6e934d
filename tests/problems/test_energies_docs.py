"""The examples of docs/energies.md run as written and print what the page says they print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "energies.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", PAGE.read_text(), flags=re.S)


def _run(index: int, capsys) -> str:
    exec(compile(_blocks("python")[index], "docs/energies.md", "exec"), {})  # noqa: S102
    return capsys.readouterr().out


def _printed(after: str) -> str:
    """The plain code block that follows the paragraph containing ``after``."""
    text = PAGE.read_text()
    return re.search(r"```\n(.*?)```", text[text.index(after):], flags=re.S).group(1)


def test_minimal_surface_example_converges_at_the_q2_rate(capsys):
    out = _run(1, capsys)
    rows = [line.split() for line in out.strip().splitlines()]
    errors = [float(row[3]) for row in rows]
    assert [row[1] for row in rows] == ["False", "False"]
    assert errors[0] / errors[1] == pytest.approx(8.0, rel=0.15)
    assert out == _printed("prints (measured; the L2 error")


def test_saint_venant_kirchhoff_example_matches_linear_elasticity_at_small_loads(capsys):
    out = _run(2, capsys)
    small, large, grad = out.strip().splitlines()
    tips = [[float(v) for v in re.findall(r"-?\d+\.\d+", line)[1:]] for line in (small, large)]
    assert tips[0][0] == pytest.approx(tips[0][1], rel=1e-2)
    assert abs(tips[1][0] - tips[1][1]) > 5e-3 * abs(tips[1][1])
    assert grad.endswith("True")
    assert out == _printed("prints (measured):\n\n```\nt =")
