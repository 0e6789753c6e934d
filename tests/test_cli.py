"""The dfem command line and case files."""

import json
from pathlib import Path

import pytest

from dfem.cli import main
from dfem.problems.case import Case, case_files

ROOT = Path(__file__).resolve().parents[1]


def write_case(tmp_path, text):
    path = tmp_path / "case.toml"
    path.write_text(text)
    return path


SMALL = """
name = "small"
element = "P2"
[mesh]
n = 8
cell = "tri"
[problem]
nu = "1 + x**2*y"
f = '''-(2*x*y*pi*cos(pi*x)*exp(y) - (1 + x**2*y)*pi**2*sin(pi*x)*exp(y)
       + x**2*sin(pi*x)*exp(y) + (1 + x**2*y)*sin(pi*x)*exp(y))'''
[boundary.left]
dirichlet = "sin(pi*x)*exp(y)"
[boundary.bottom]
dirichlet = "sin(pi*x)*exp(y)"
[boundary.top]
dirichlet = "sin(pi*x)*exp(y)"
[boundary.right]
neumann = "(1 + x**2*y)*pi*cos(pi*x)*exp(y)"
[exact]
u = "sin(pi*x)*exp(y)"
"""


def test_solve_writes_report_and_vtu(tmp_path, capsys):
    case = write_case(tmp_path, SMALL)
    assert main(["solve", str(case), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    for key in (
        "case",
        "element",
        "degree",
        "cells",
        "dofs",
        "solver",
        "assemble_s",
        "solve_s",
        "error_s",
        "output_s",
        "total_s",
        "l2_error",
        "h1_error",
    ):
        assert key in report
    # the phases are listed together and account for the run: none is left out of total_s
    phases = ["setup_s", "assemble_s", "solve_s", "error_s", "output_s"]
    assert [k for k in report if k.endswith("_s")] == [*phases, "total_s"]
    assert all(report[k] > 0 for k in phases)
    assert sum(report[k] for k in phases) <= report["total_s"]
    assert report["element"] == "P2" and report["cells"] == 128
    # P2 on 8x8: the error of this smooth solution is small but not round-off
    assert 1e-6 < report["l2_error"] < 1e-3
    assert (tmp_path / "out" / "solution.vtu").stat().st_size > 0
    shown = capsys.readouterr().out
    assert "l2_error" in shown and "error_s" in shown and "output_s" in shown


def test_report_without_exact_solution_or_output_has_no_error_or_output_time():
    data = __import__("tomllib").loads(SMALL)
    del data["exact"]
    report = Case.from_dict(data).solve()
    assert report["error_s"] is None and report["l2_error"] is None
    assert "output_s" not in report and isinstance(report["total_s"], float)


def test_refined_case_error_drops_at_p_plus_one(tmp_path):
    coarse = Case.from_dict(__import__("tomllib").loads(SMALL)).solve()
    finer = __import__("tomllib").loads(SMALL)
    finer["mesh"]["n"] = 16
    fine = Case.from_dict(finer).solve()
    rate = __import__("math").log2(coarse["l2_error"] / fine["l2_error"])
    assert rate == pytest.approx(3.0, abs=0.2)


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("[mesh]\nn = 4\nbogus = 1\n", "unknown key\\(s\\) bogus in \\[mesh\\]"),
        ("[problem]\nf = 'import os'\n", "cannot parse"),
        ("[boundary.nowhere]\ndirichlet = 0\n", "boundary tag 'nowhere' does not exist"),
        ("[boundary.left]\ndirichlet = 0\nneumann = 1\n", "exactly one of"),
        ("[boundary.left]\nrobin = 1\n", "must be \\[alpha, g\\]"),
        ("element = 'Q7'\n", "unknown element"),
        ("[element]\nname = 'Q2'\n", "element must be a string"),
        ("this is not toml", "not valid TOML.*line 1"),
        ("[mesh]\nfile = 'nope.msh'\n", "mesh file .*nope.msh does not exist"),
        ("[problem]\nnu = '1 - 2*x'\n[boundary.left]\ndirichlet = 0\n", "nu must be positive"),
        ("[problem]\nf = '__import__(\"os\")'\n", "not allowed"),
        ("[problem]\nf = 'x.real'\n", "Attribute"),
    ],
)
def test_bad_case_files_exit_2_with_message(tmp_path, capsys, text, fragment):
    case = write_case(tmp_path, text)
    assert main(["solve", str(case)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dfem: error:")
    assert __import__("re").search(fragment, err)
    assert "Traceback" not in err


def test_missing_case_file(tmp_path, capsys):
    assert main(["solve", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def expected_dofs(space) -> int:
    """The number of dofs of a shipped case's space, counted without dfem's dof map.

    NURBS: ``(len(U) - p - 1)(len(V) - q - 1)`` functions. Lagrange of degree p: one dof
    per distinct interpolation node, a node being named by the vertices it depends on and
    their integer weights (barycentric ``alpha`` with ``|alpha| = p`` on simplices, products
    of ``i`` and ``p - i`` on quads and hexes in meshio's vertex order), so that nodes on
    shared edges and faces are counted once. Times the number of components.
    """
    import itertools

    import numpy as np

    scalar = getattr(space, "scalar", space)
    if hasattr(scalar, "patch"):
        patch = scalar.patch
        n_u = len(patch.knots_u) - patch.degree_u - 1
        n_v = len(patch.knots_v) - patch.degree_v - 1
        return n_u * n_v * space.n_components
    cells, p = scalar.mesh.cells_np, scalar.element.degree
    n_vertices = cells.shape[1]
    dim = scalar.mesh.dim
    if n_vertices == dim + 1:  # simplex
        weights = [a for a in itertools.product(range(p + 1), repeat=n_vertices) if sum(a) == p]
    else:  # tensor cell: corners in meshio's order
        corners = [(0, 0), (1, 0), (1, 1), (0, 1)]
        if dim == 3:
            corners = [c + (0,) for c in corners] + [c + (1,) for c in corners]
        weights = [[np.prod([i[j] if c[j] else p - i[j] for j in range(dim)]) for c in corners]
                   for i in itertools.product(range(p + 1), repeat=dim)]
    weights = np.array(weights, dtype=np.int64)  # (nodes, vertices)
    codes = cells[:, None, :] * (p**dim + 1) + weights[None]
    codes = np.where(weights[None] > 0, codes, -1).reshape(-1, n_vertices)
    return len(np.unique(np.sort(codes, axis=1), axis=0)) * space.n_components


@pytest.mark.parametrize("case", case_files(ROOT / "cases"))
def test_shipped_cases_load(case):
    problem = Case.load(case).problem()
    assert problem.space.n_dofs == expected_dofs(problem.space)


def test_expected_dofs_counts_shared_nodes_once():
    import dfem

    for n, cell, element, count in [(3, "quad", "Q2", 7**2), (3, "quad", "Q3", 10**2),
                                    (2, "tri", "P3", 7**2)]:
        assert expected_dofs(dfem.FunctionSpace(dfem.mesh.rectangle(n, n, cell), element)) \
            == count  # (n p + 1)^2 on a structured square
    box = dfem.FunctionSpace(dfem.mesh.box(2, 2, 2, "hex"), "Q2", shape=(3,))
    assert expected_dofs(box) == 3 * 5**3


def test_set_overrides_vtu_and_png(tmp_path, capsys):
    import meshio

    out = tmp_path / "out"
    case = ROOT / "cases" / "poisson_sine.toml"
    argv = ["solve", str(case), "--set", "mesh.n=16", "--set", "element=Q1", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["element"] == "Q1" and report["cells"] == 256
    vtu = meshio.read(out / "solution.vtu")
    for name in ("u", "nu", "f"):
        assert name in vtu.point_data
    # the VTU holds the solution: at the centre node u ~ sin(pi/2)^2 = 1 (up to the Q1 error)
    centre = int(((vtu.points[:, :2] - 0.5) ** 2).sum(1).argmin())
    assert abs(vtu.point_data["u"][centre] - 1.0) < 0.01
    assert (out / "solution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_convergence_command_writes_json_and_png(tmp_path, capsys):
    out = tmp_path / "conv"
    case = ROOT / "cases" / "variable_nu_p2.toml"
    assert (
        main(["convergence", str(case), "--set", "mesh.n=4", "--levels", "2", "--out", str(out)])
        == 0
    )
    study = json.loads((out / "convergence.json").read_text())
    assert len(study["levels"]) == 3
    assert {"h", "dofs", "l2_error", "h1_error"} <= set(study["levels"][0])
    assert study["l2_rate"] == pytest.approx(3.0, abs=0.15)
    assert study["h1_rate"] == pytest.approx(2.0, abs=0.15)
    assert (out / "convergence.png").stat().st_size > 0


def test_convergence_needs_exact_solution(tmp_path, capsys):
    case = write_case(tmp_path, "element = 'Q1'\n[mesh]\nn = 2\n[boundary.left]\ndirichlet = 0\n")
    assert main(["convergence", str(case)]) == 2
    assert "needs an exact solution" in capsys.readouterr().err


def test_bad_set_and_listing(tmp_path, capsys):
    case = ROOT / "cases" / "poisson_sine.toml"
    assert main(["solve", str(case), "--set", "mesh.n"]) == 2
    assert "--set takes key=value" in capsys.readouterr().err
    assert main(["cases"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert any(line.split()[:3] == ["poisson_sine", "solve", "case"] and "Table 5" in line
               for line in listing)
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert "dfem 0.1.0" in capsys.readouterr().out


def test_validate_quick_passes(capsys):
    assert main(["validate", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "cases pass" in out


def test_validate_fails_on_a_wrong_exact_solution(tmp_path):
    from dfem.validation.shipped import format_table, validate

    text = (ROOT / "cases" / "robin.toml").read_text()
    # an exact solution that is not the solution: the errors stop converging
    (tmp_path / "wrong.toml").write_text(
        text.replace('u = "exp(x)*cos(y)"', 'u = "exp(x)*cos(y) + 0.01*x"')
    )
    rows = validate(tmp_path, quick=True)
    assert len(rows) == 1 and not rows[0]["ok"]
    assert "FAIL" in format_table(rows)


@pytest.mark.parametrize(
    "element,cell", [("P1", "tri"), ("P2", "tri"), ("P3", "tri"),
                     ("Q1", "quad"), ("Q2", "quad"), ("Q3", "quad")],
)
def test_convergence_command_rate_for_each_element(element, cell, tmp_path, capsys):
    """``dfem convergence`` on the shipped manufactured case: L2 rate p + 1 within 0.15."""
    case = ROOT / "cases" / "variable_nu_p2.toml"
    out = tmp_path / "conv"
    args = ["convergence", str(case), "--set", f"element={element}", "--set",
            f"mesh.cell={cell}", "--set", "mesh.n=4", "--levels", "2", "--out", str(out)]
    assert main(args) == 0
    study = json.loads((out / "convergence.json").read_text())
    p = int(element[1])
    assert study["element"] == element
    assert study["l2_rate"] == pytest.approx(p + 1, abs=0.15)
    assert study["h1_rate"] == pytest.approx(p, abs=0.15)
    assert "refinement: 3/3" in capsys.readouterr().err  # progress lines off a terminal


def test_validate_and_cases_cover_the_elastic_cases(capsys):
    """The manufactured elasticity case has an exact solution, so ``dfem validate`` checks
    it (test_validate_quick_passes runs it); the other elastic cases have none and are
    listed by ``dfem cases`` only."""
    elastic = [p for p in case_files(ROOT / "cases") if Case.load(p).elastic]
    with_exact = [p.name for p in elastic if "u" in Case.load(p).data.get("exact", {})]
    assert with_exact == ["elasticity_manufactured.toml"]
    assert {p.name for p in elastic} == {"cantilever.toml", "cantilever_3d.toml",
                                         "cook_membrane.toml",
                                         "elasticity_manufactured.toml",
                                         "hyperelastic_block.toml", "plate_hole_iga.toml"}
    assert main(["cases"]) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    for path in elastic:
        assert path.stem in names


@pytest.mark.parametrize("name", [
    "cantilever.toml", "cantilever_3d.toml", "cook_membrane.toml",
    "elasticity_manufactured.toml", "plate_hole_iga.toml",
    # about 10 s as shipped; test_elastic_case.py runs it on a 4 x 4 mesh by default
    pytest.param("hyperelastic_block.toml", marks=pytest.mark.slow),
])
def test_shipped_elastic_cases_solve_through_the_cli(name, tmp_path, capsys):
    """Each shipped elastic case runs through ``dfem solve`` as shipped and writes its three
    outputs and the figures its comments quote."""
    out = tmp_path / "out"
    assert main(["solve", str(ROOT / "cases" / name), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["problem"] in ("linear-elasticity", "neo-hookean")
    assert {"energy", "compliance", "max_displacement", "reactions"} <= set(report)
    for file in ("solution.vtu", "solution.png"):
        assert (out / file).stat().st_size > 0
    assert "max_displacement" in capsys.readouterr().out
    if name == "cantilever.toml":
        assert report["probes"][0]["u"][1] == pytest.approx(-0.04023, rel=1e-3)
    if name == "cantilever_3d.toml":
        assert report["probes"][0]["u"][1] == pytest.approx(-0.03994, rel=1e-3)
        assert report["reactions"]["left"][1] == pytest.approx(1.0, rel=1e-9)
    if name == "cook_membrane.toml":
        assert report["probes"][0]["u"][1] == pytest.approx(23.95, abs=0.01)
    if name == "elasticity_manufactured.toml":
        assert report["l2_error"] <= 2.9e-4
    if name == "hyperelastic_block.toml":
        assert report["newton_iterations"] > 0 and report["load_steps"] >= 10
