"""The examples in README.md, docs/fem.md, docs/three_d.md and docs/transient.md run as
written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("doc,index", [("README.md", 0), ("docs/fem.md", 0),
                                       ("docs/three_d.md", 0), ("docs/transient.md", 0)])
def test_example_runs(doc, index, capsys):
    code = python_blocks(ROOT / doc)[index]
    namespace: dict = {}
    exec(compile(code, doc, "exec"), namespace)  # noqa: S102 - our own documentation
    out = capsys.readouterr().out
    assert "'l2'" in out
    # the printed L2 error is that of a converged Q2 solve: small, not round-off
    l2 = float(re.search(r"'l2': ([0-9.e+-]+)", out).group(1))
    assert 1e-9 < l2 < 1e-4
    if doc == "docs/transient.md":  # the gradient's shape and the one factorisation
        assert out.split()[-2:] == ["torch.Size([256])", "1"]
    if doc == "docs/three_d.md":  # its last line is the probe at the centre, exact value 1
        assert float(out.split()[-1]) == pytest.approx(1.0, abs=1e-3)
