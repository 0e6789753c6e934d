"""The Python example of docs/cases.md ("Coefficients per subdomain") runs as written, and
the per-subdomain TOML snippet there is a valid case."""

import re
import tomllib
from pathlib import Path

import pytest
import torch

from dfem.problems.case import Case

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cases.md"


def blocks(kind):
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_per_cell_tag_example_runs_and_matches_the_case_form(capsys):
    (code,) = blocks("python")
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "{'inner': 246, 'outer': 732}"
    # the same problem as a case file, nu given per cell tag
    case = Case.from_dict({"element": "P2", "mesh": {"file": str(ROOT / "cases" / "meshes" /
                                                                 "inclusion.msh")},
                           "problem": {"nu": {"inner": 0.1, "outer": 1.0}, "f": 1.0},
                           "boundary": {"boundary": {"dirichlet": 0.0}}})
    u = case.problem().solve()
    assert torch.allclose(u, namespace["u"], rtol=0, atol=1e-14)
    assert out[1] == f"max u = {float(u.max()):.4f}"


@pytest.mark.parametrize("snippet", [b for b in blocks("toml") if "where(" in b or
                                     "inner =" in b])
def test_piecewise_and_subdomain_snippets_parse(snippet):
    problem = {"f": 1.0, **tomllib.loads(snippet)["problem"]}
    mesh = {"file": str(ROOT / "cases" / "meshes" / "inclusion.msh")}
    case = Case.from_dict({"mesh": mesh, "element": "P1", "problem": problem,
                           "boundary": {"boundary": {"dirichlet": 0.0}}})
    u = case.problem().solve()
    assert torch.isfinite(u).all() and float(u.abs().max()) > 0
