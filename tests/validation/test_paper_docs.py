"""docs/paper.md quotes, verbatim, the tables ``dfem paper`` builds from the committed JSON
outputs (dfem/data/results/*.json)."""

from __future__ import annotations

from pathlib import Path

from dfem.validation.paper import (
    energy_markdown,
    load_sources,
    nurbs_markdown,
    segmentation_markdown,
    surrogate_markdown,
    table5_markdown,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "paper.md"


def test_page_quotes_every_table():
    data = load_sources()
    page = DOC.read_text()
    blocks = {"nurbs": [nurbs_markdown], "segmentation": [segmentation_markdown],
              "surrogate": [surrogate_markdown],
              "table5": [table5_markdown, energy_markdown]}
    for name, renderers in blocks.items():
        assert name in data, f"{name} JSON missing"
        for render in renderers:
            block = render(data[name])
            assert block in page, f"docs/paper.md does not show the current {name} table"
    t5 = data["table5"]
    assert f"{t5['seconds']:.0f} s" in page
    assert f"took {data['segmentation']['seconds']:.0f} s" in page
    rows = {(r["method"], r.get("element"), r["n"]): r for r in t5["rows"]}
    for element, paper_method in (("Q2", "DSA d=2"), ("Q3", "DSA d=3")):
        ratio = t5["paper"]["128"][paper_method] / rows["direct", element, 128]["l2_error"]
        assert ratio >= 300  # the bar: at least 300x below the paper's DSA numbers
        assert f"{ratio:.0f}x" in page
