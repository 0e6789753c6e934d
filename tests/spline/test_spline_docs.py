"""The example in docs/spline.md runs as written and prints what the page says."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "spline.md"


def test_layer_example(capsys):
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - our own documentation
    out = capsys.readouterr().out
    assert "breaks [0, 3, 6, 8] error 0.1" in out
    loss = float(re.search(r"1D loss ([0-9.e+-]+)", out).group(1))
    assert loss < 1e-3
    assert "2D output (2, 1, 32, 32) grad finite True" in out


def test_page_quotes_the_benchmark_json():
    import json

    data = json.loads((ROOT / "benchmarks" / "results" / "bench_spline_cpu.json").read_text())
    page = DOC.read_text()
    assert f"**{data['ratio_vs_ruptures']:.4f}**" in page
    assert f"{data['ruptures_s']:.1f} s" in page
    assert f"{data['dfem_cost']:.10g}" in page
