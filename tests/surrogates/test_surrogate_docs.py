"""The example in docs/surrogates.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "surrogates.md"


def test_example_runs(capsys, one_thread):
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - our own documentation
    out = capsys.readouterr().out
    error = float(re.search(r"relative L2 to FEM ([0-9.]+)", out).group(1))
    assert 0 < error < 0.75  # untrained: 1.06; after 30 steps on 4 samples: about 0.55


def test_page_quotes_the_committed_metrics():
    import json

    results = DOC.parents[1] / "dfem" / "data" / "results"
    metrics = json.loads((results / "surrogate_darcy64_metrics.json").read_text())
    page = DOC.read_text()
    surrogate_ms = metrics["surrogate_s_per_sample"] * 1e3
    fem_ms = metrics["fem_solve_s_per_sample"] * 1e3
    quoted = [
        f"{metrics['val_rel_l2_mean']:.4f}",
        f"{metrics['val_rel_l2_max']:.4f}",
        f"{metrics['paper_case_max_abs_err']:.4f}",
        f"{metrics['prior_val_rel_l2_mean']:.4f}",
        f"{metrics['prior_paper_case_max_abs_err']:.4f}",
        f"{metrics['train_seconds']:.0f} s",
        f"{surrogate_ms:.2f} / {fem_ms:.1f} ({surrogate_ms / fem_ms:.3f})",
    ]
    for text in quoted:
        assert text in page, f"docs/surrogates.md does not quote {text} from the metrics"
