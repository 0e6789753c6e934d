"""The shipped cases as package data: what kind each TOML file is and which command runs it
(:mod:`dfem.shipped`), names resolved from any folder, ``dfem cases``, a ``dfem validate``
that cannot pass on nothing, and ``dfem paper`` never hiding a shipped result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import dfem
import dfem.shipped as shipped
from dfem.cli import main
from dfem.design.config import load_optimize_config, optimize_config_from_dict
from dfem.exceptions import DfemError
from dfem.fileio import read_toml
from dfem.inverse.config import load_inverse_config
from dfem.problems.case import Case, case_files
from dfem.segmentation.config import config_from_dict, load_segmentation_config
from dfem.shipped import (
    INVERSE,
    KINDS,
    OPTIMIZE,
    SEGMENTATION,
    SOLVE,
    SURROGATE,
    cases_dir,
    config_kind,
    resolve_config,
    results_dir,
    shipped_configs,
)
from dfem.surrogates.config import from_dict as surrogate_from_dict
from dfem.surrogates.config import load_config as load_surrogate_config
from dfem.validation import paper
from dfem.validation.shipped import validate

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = shipped_configs()
#: Each kind's loader: the function its command reads a config with.
LOADERS = {
    SOLVE: Case.load,
    INVERSE: load_inverse_config,
    OPTIMIZE: load_optimize_config,
    SEGMENTATION: load_segmentation_config,
    SURROGATE: load_surrogate_config,
}
#: What the shipped files are, by name (the stems ``dfem cases`` lists).
EXPECTED = {
    "segmentation_noisy": SEGMENTATION,
    "surrogate_darcy64": SURROGATE,
    "surrogate_poisson64": SURROGATE,
    "inverse_field": INVERSE,
    "inverse_w": INVERSE,
    "inverse_heat_k": INVERSE,
    "inverse_heat_initial": INVERSE,
    "optimize_mbb": OPTIMIZE,
    "optimize_cantilever": OPTIMIZE,
    "optimize_cantilever_3d": OPTIMIZE,
    "optimize_heat_sink": OPTIMIZE,
    "poisson_sine": SOLVE,
    "heat_decay": SOLVE,
    "lshape": SOLVE,
    "block_with_hole": SOLVE,
    "cantilever": SOLVE,
}


def test_the_data_lives_in_the_package_and_cases_links_to_it():
    assert shipped.data_dir() == Path(dfem.__file__).resolve().parent / "data"
    assert len(SHIPPED) >= 25 and (cases_dir() / "meshes" / "lshape.msh").is_file()
    # one source of truth: the repository's cases/ is the package's folder, not a copy
    assert (ROOT / "cases").resolve() == cases_dir().resolve()
    assert {p.name for p in results_dir().glob("*.json")} >= {
        name for name, _ in paper.SOURCES.values()}


def test_known_files_have_their_kind():
    kinds = {p.stem: config_kind(read_toml(p)) for p in SHIPPED}
    assert {name: kinds[name] for name in EXPECTED} == EXPECTED
    assert None not in kinds.values()


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_file_loads_with_the_command_of_its_kind(path):
    kind = config_kind(read_toml(path))
    LOADERS[kind](path)  # raises if the file is not what its kind's command accepts
    for other, loader in LOADERS.items():
        if other in (kind, SOLVE):  # Case.load is the library's; dfem solve checks below
            continue
        with pytest.raises(DfemError, match=f"is {KINDS[kind].article}: run "
                           f"{KINDS[kind].program}"):
            loader(path)
    if kind != SOLVE:
        with pytest.raises(DfemError, match=f"run {KINDS[kind].program} "):
            resolve_config(path, SOLVE)
    else:
        assert resolve_config(path, SOLVE) == path


def test_the_markers_match_the_schemas():
    """The tables that tell the kinds apart are accepted by the kind they mark and refused
    by the others' schemas."""
    for table in shipped._SEGMENTATION_TABLES:
        config_from_dict({table: {}})
        with pytest.raises(DfemError, match="unknown table"):
            surrogate_from_dict({table: {}})
    config_from_dict({"training": {"epochs": 2}})
    with pytest.raises(DfemError, match="unknown key"):
        surrogate_from_dict({"training": {"epochs": 2}})
    for table in shipped._SURROGATE_TABLES:
        surrogate_from_dict({table: {}})
    for table in shipped._SURROGATE_TABLES - {"training"}:
        with pytest.raises(DfemError, match="unknown table"):
            config_from_dict({table: {}})
    solve_keys = set().union(*(read_toml(p) for p in SHIPPED if
                               config_kind(read_toml(p)) == SOLVE))
    assert shipped._SOLVE_TABLES <= solve_keys  # every marker is used by a real case
    for table in shipped._SOLVE_TABLES:
        for load in (config_from_dict, surrogate_from_dict, optimize_config_from_dict):
            with pytest.raises(DfemError, match="unknown"):
                load({table: {}})
    assert config_kind({}) is None and config_kind({"problem": {"nu": 1.0}}) is None


def test_case_files_are_the_solve_cases():
    expected = [p for p in SHIPPED if config_kind(read_toml(p)) == SOLVE]
    assert case_files(cases_dir()) == expected
    assert case_files(ROOT / "cases") == [ROOT / "cases" / p.name for p in expected]


def test_names_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped_file = cases_dir() / "poisson_sine.toml"
    assert resolve_config("poisson_sine", SOLVE) == shipped_file
    assert resolve_config("poisson_sine.toml") == shipped_file
    (tmp_path / "poisson_sine").mkdir()  # a folder of that name (an earlier --out)
    assert resolve_config("poisson_sine") == shipped_file
    (tmp_path / "poisson_sine.toml").write_text("[mesh]\nn = 4\n")
    assert resolve_config("poisson_sine.toml") == Path("poisson_sine.toml")  # a file wins
    with pytest.raises(DfemError, match="did you mean poisson_sine.*dfem cases"):
        resolve_config("poisson_sin")
    with pytest.raises(DfemError, match="'elsewhere/lshape.toml' does not exist"):
        resolve_config("elsewhere/lshape.toml")  # a path is a path
    with pytest.raises(DfemError, match="'no_such_thing' does not exist.*dfem cases"):
        resolve_config("no_such_thing")
    with pytest.raises(DfemError, match="optimize_mbb is an optimisation config: run dfem "
                       "optimize optimize_mbb --out DIR"):
        resolve_config("optimize_mbb", SOLVE)
    # a case with a mesh file, read from the package from this folder
    case = Case.load(resolve_config("lshape", SOLVE))
    assert case.space().mesh.n_cells > 100


def test_other_commands_take_shipped_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_optimize_config("optimize_mbb").problem["type"] == "mbb"
    assert load_inverse_config("inverse_w").inverse["unknown"] == "w"
    assert load_segmentation_config("segmentation_noisy").name == "segmentation_noisy"
    assert load_surrogate_config("surrogate_darcy64").problem["n"] == 64
    with pytest.raises(DfemError, match="poisson_sine is a solve case: run dfem solve "
                       "poisson_sine --out DIR"):
        load_optimize_config("poisson_sine")


@pytest.mark.parametrize("command", ["solve", "convergence"])
def test_solve_on_another_kind_names_its_command(command, tmp_path, capsys):
    for name, kind in [("optimize_mbb", OPTIMIZE), ("segmentation_noisy", SEGMENTATION),
                       ("surrogate_darcy64", SURROGATE), ("inverse_w", INVERSE)]:
        out = tmp_path / name
        assert main([command, name, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{name} is {KINDS[kind].article}: run {KINDS[kind].run(name)}" in err
        assert "Traceback" not in err and not out.exists()


def test_cases_lists_names_and_kinds(capsys):
    assert main(["cases"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    for path in SHIPPED:
        kind = KINDS[config_kind(read_toml(path))]
        assert kind.label in lines[path.stem] and kind.program in lines[path.stem]
    assert "segmentation config" in lines["segmentation_noisy"]
    assert "surrogate" not in lines["segmentation_noisy"]
    assert "(transient)" in lines["heat_decay"]


def test_validate_with_no_case_is_an_error(tmp_path, monkeypatch, capsys):
    shutil.copy(cases_dir() / "optimize_mbb.toml", tmp_path)
    shutil.copy(cases_dir() / "lognormal.toml", tmp_path)  # a case without an exact solution
    with pytest.raises(DfemError, match="no case with an exact solution"):
        validate(tmp_path, quick=True)
    monkeypatch.setattr(shipped, "cases_dir", lambda: tmp_path)
    assert main(["validate", "--quick"]) != 0
    captured = capsys.readouterr()
    assert "no case with an exact solution" in captured.err and "Traceback" not in captured.err
    assert "cases pass" not in captured.out
    monkeypatch.setattr(shipped, "cases_dir", lambda: tmp_path / "gone")
    assert main(["validate", "--quick"]) != 0
    assert "does not exist" in capsys.readouterr().err


def test_paper_reads_every_shipped_result():
    data = paper.load_sources()
    assert set(data) == set(paper.SOURCES)
    page = paper.render(data)
    assert "Not measured" not in page and "## Table 3" in page and "## Fig. 3" in page


@pytest.mark.parametrize("damage", ["missing", "invalid", "wrong"])
def test_a_damaged_shipped_result_is_an_error_naming_it(damage, tmp_path, monkeypatch, capsys):
    for name, _ in paper.SOURCES.values():
        shutil.copy(results_dir() / name, tmp_path)
    victim = tmp_path / "nurbs_fit.json"
    if damage == "missing":
        victim.unlink()
    elif damage == "invalid":
        victim.write_text("{not json")
    else:
        victim.write_text(json.dumps({"mse": 1.0}))  # readable, not a NURBS fit result
    monkeypatch.setattr(paper, "results_dir", lambda: tmp_path)
    table5 = tmp_path / "t5.json"
    shutil.copy(results_dir() / "paper_table5.json", table5)
    out = tmp_path / "page"
    assert main(["paper", "--table5", str(table5), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert ("nurbs_fit.json" if damage != "wrong" else "nurbs") in err
    assert "Traceback" not in err and not out.exists()


def test_paper_table5_file_errors(tmp_path, capsys):
    out = tmp_path / "page"
    assert main(["paper", "--table5", str(tmp_path / "nope.json"), "--out", str(out)]) == 2
    assert "--table5 file" in capsys.readouterr().err and not out.exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": []}))
    assert main(["paper", "--table5", str(bad), "--out", str(out)]) == 2
    assert f"--table5 {bad}" in capsys.readouterr().err and not out.exists()
