"""Elastic case files (``problem.type = "linear-elasticity" | "neo-hookean"``): the shipped
cases against independent references (beam theory, scikit-fem, a closed-form Neo-Hookean
solution, autograd derivatives of the manufactured solution), probes, output files and the
errors a user can cause, through ``dfem solve`` / ``dfem convergence``."""

import json
import math
import re
import tomllib
from pathlib import Path

import meshio
import numpy as np
import pytest
import torch

import dfem
from dfem.cli import main
from dfem.exceptions import DfemError
from dfem.problems.case import Case
from dfem.problems.expressions import coefficient

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "cases"
MANUFACTURED = CASES / "elasticity_manufactured.toml"


def _load(name, **changes):
    data = tomllib.loads((CASES / name).read_text())
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        table = data
        for part in parents:
            table = table.setdefault(part, {})
        table[leaf] = value
    return data


# ----------------------------------------------------------------------------- manufactured
def test_manufactured_body_force_and_tractions_match_the_exact_solution():
    """b = -div sigma(u) and t = sigma(u) n on the traction sides, with sigma from autograd
    derivatives of the exact u and the case's own E(x) and Poisson's ratio(x)."""
    case = Case.load(MANUFACTURED)
    spec, boundary = case.data["problem"], case.data["boundary"]
    E, nu = coefficient(spec["E"], "E"), coefficient(spec["poisson_ratio"], "nu")
    exact = case.exact()

    def sigma(x):
        u = exact(x)
        grad = torch.stack([torch.autograd.grad(u[:, i].sum(), x, create_graph=True)[0]
                            for i in range(2)], dim=1)  # (n, component, direction)
        eps = 0.5 * (grad + grad.transpose(1, 2))
        mu = E(x) / (2 * (1 + nu(x)))
        lam = E(x) * nu(x) / ((1 + nu(x)) * (1 - 2 * nu(x)))  # plane strain
        trace = eps.diagonal(dim1=1, dim2=2).sum(-1)
        return lam[:, None, None] * trace[:, None, None] * torch.eye(2, dtype=x.dtype) \
            + 2 * mu[:, None, None] * eps

    gen = torch.Generator().manual_seed(1)
    x = torch.rand(400, 2, generator=gen, dtype=torch.float64).requires_grad_()
    s = sigma(x)
    div = torch.stack([sum(torch.autograd.grad(s[:, i, j].sum(), x, retain_graph=True)[0][:, j]
                           for j in range(2)) for i in range(2)], dim=1)
    b = torch.stack([coefficient(v, "b")(x) for v in spec["body_force"]], dim=1)
    torch.testing.assert_close(b, -div, atol=1e-10, rtol=1e-10)

    t = torch.linspace(0, 1, 41, dtype=torch.float64)
    sides = {"right": (torch.stack([1 + 0 * t, t], 1), (1.0, 0.0)),
             "top": (torch.stack([t, 1 + 0 * t], 1), (0.0, 1.0)),
             "bottom": (torch.stack([t, 0 * t], 1), (0.0, -1.0))}
    for tag, (points, normal) in sides.items():
        points.requires_grad_()
        expected = sigma(points) @ torch.tensor(normal, dtype=torch.float64)
        given = torch.stack([coefficient(v, "t")(points) for v in boundary[tag]["traction"]], 1)
        torch.testing.assert_close(given, expected, atol=1e-10, rtol=1e-10)
    # the Dirichlet and roller data are the exact solution there
    assert boundary["left"]["displacement"] == case.data["exact"]["u"]
    assert boundary["bottom"]["uy"] == case.data["exact"]["u"][1]


@pytest.mark.parametrize(
    "element,cell,n", [("P1", "tri", 16), ("P2", "tri", 4), ("P3", "tri", 4),
                       ("Q1", "quad", 4), ("Q2", "quad", 4), ("Q3", "quad", 4)],
)
def test_manufactured_convergence_rates_through_the_cli(element, cell, n, tmp_path, capsys):
    """``dfem convergence`` on the vector case: L2 rate p + 1 and H1 rate p within 0.15.
    (P1 starts at 16 x 16: from 4 x 4 its L2 rate is 1.60, still pre-asymptotic.)"""
    out = tmp_path / "conv"
    args = ["convergence", str(MANUFACTURED), "--set", f"element={element}", "--set",
            f"mesh.cell={cell}", "--set", f"mesh.n={n}", "--levels", "2", "--out", str(out)]
    assert main(args) == 0
    study = json.loads((out / "convergence.json").read_text())
    p = int(element[1])
    assert study["element"] == element and len(study["levels"]) == 3
    assert study["l2_rate"] == pytest.approx(p + 1, abs=0.15)
    assert study["h1_rate"] == pytest.approx(p, abs=0.15)
    assert (out / "convergence.png").stat().st_size > 0
    capsys.readouterr()


def test_manufactured_case_is_validated_and_meets_its_error_bound():
    from dfem.validation.shipped import validate_case

    row = validate_case(MANUFACTURED, quick=False)
    assert row["ok"], row
    assert row["l2_error"] <= tomllib.loads(MANUFACTURED.read_text())["exact"]["l2_error_max"]


# ----------------------------------------------------------------------------- cantilever
def test_cantilever_matches_beam_theory_and_writes_vector_outputs(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["solve", str(CASES / "cantilever.toml"), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    E, nu, L, P = 1e5, 0.3, 10.0, 1.0
    inertia, area, kappa, G = 1 / 12, 1.0, 5 / 6, E / (2 * (1 + nu))

    def timoshenko(x):  # deflection of a cantilever with an end load P
        return P * x**2 * (3 * L - x) / (6 * E * inertia) + P * x / (kappa * G * area)

    tip, mid = report["probes"]
    assert tip["point"] == [10.0, 0.5] and mid["point"] == [5.0, 0.5]
    assert -tip["u"][1] == pytest.approx(timoshenko(10.0), rel=0.005)
    assert -mid["u"][1] == pytest.approx(timoshenko(5.0), rel=0.005)
    # the support carries the load; J = -C/2 at the solution of a linear problem with
    # homogeneous Dirichlet data; the largest displacement is the tip's
    np.testing.assert_allclose(report["reactions"]["left"], [0.0, P], atol=1e-9)
    assert report["energy"] == pytest.approx(-0.5 * report["compliance"], rel=1e-10)
    assert report["compliance"] == pytest.approx(-tip["u"][1] * P, rel=0.01)
    assert report["max_displacement"] >= abs(tip["u"][1])
    assert report["max_displacement"] == pytest.approx(abs(tip["u"][1]), rel=0.01)
    # plane stress bending: sigma_xx at the root fibre ~ M c / I = P L (1/2) / I = 60
    assert 30 < report["max_von_mises"] < 70

    vtu = meshio.read(out / "solution.vtu")
    disp = vtu.point_data["displacement"]
    assert disp.shape == (vtu.points.shape[0], 3) and np.all(disp[:, 2] == 0)
    at_tip = int(np.argmin(((vtu.points[:, :2] - [10.0, 0.5]) ** 2).sum(1)))
    assert disp[at_tip, 1] == pytest.approx(tip["u"][1], rel=1e-12)
    von_mises = vtu.cell_data["von_mises"][0]
    assert von_mises.shape == (report["cells"],) and von_mises.max() == pytest.approx(
        report["max_von_mises"])
    assert {"E", "poisson_ratio"} <= set(vtu.point_data)
    assert (out / "solution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "u at [10, 0.5]" in printed and "reaction left" in printed


def test_solver_rtol_reaches_the_linear_solver_of_an_elastic_case():
    data = _load("cantilever.toml", mesh__nx=10, mesh__ny=2, solver__rtol=1e-12)
    tip = Case.from_dict(data).solve(method="direct")["probes"][0]["u"][1]
    tight = Case.from_dict(data).solve(method="cg")
    assert tight["solver"] == "cg"
    assert tight["probes"][0]["u"][1] == pytest.approx(tip, rel=1e-9)
    for rtol in (1e-12, 1e-2):
        data["solver"]["rtol"] = rtol
        case = Case.from_dict(data)
        problem = case.problem()
        problem.solve(**case.solver_options("cg"))
        assert problem.last_solve["info"].residual <= rtol


# ----------------------------------------------------------------------------- Cook
def test_cook_membrane_corners_mesh():
    case = Case.load(CASES / "cook_membrane.toml")
    mesh = case.mesh()
    assert float(mesh.signed_areas().sum()) == pytest.approx(48 * 44 - 48 * 28 / 2, rel=1e-12)
    x = mesh.nodes
    lengths = {tag: float((x[torch.as_tensor(e)][:, 1] - x[torch.as_tensor(e)][:, 0])
                          .norm(dim=1).sum()) for tag, e in mesh.boundaries.items()}
    assert lengths == pytest.approx({"left": 44.0, "right": 16.0, "bottom": math.hypot(48, 44),
                                     "top": math.hypot(48, 16)}, rel=1e-12)
    right = x[np.unique(np.asarray(mesh.boundaries["right"]))]
    assert torch.allclose(right[:, 0], torch.tensor(48.0, dtype=x.dtype))


def test_cook_membrane_against_the_literature_and_scikit_fem():
    skfem = pytest.importorskip("skfem")
    from skfem.models.elasticity import lame_parameters, linear_elasticity

    report = Case.from_dict(_load("cook_membrane.toml", mesh__n=8)).solve()
    mid, corner = (p["u"] for p in report["probes"])
    np.testing.assert_allclose(report["reactions"]["left"], [0.0, -1.0], atol=1e-9)
    assert mid[1] == pytest.approx(23.96, rel=0.002)  # the literature's value, at (48, 52)

    # the same Q2 discretisation in scikit-fem (bilinearly mapped 8 x 8 grid)
    grid = skfem.MeshQuad.init_tensor(np.linspace(0, 1, 9), np.linspace(0, 1, 9))
    s, t = grid.p
    c = np.array([[0, 0], [48, 44], [48, 60], [0, 44]], dtype=float)
    pts = (np.outer((1 - s) * (1 - t), c[0]) + np.outer(s * (1 - t), c[1])
           + np.outer(s * t, c[2]) + np.outer((1 - s) * t, c[3]))
    mesh = skfem.MeshQuad(pts.T, grid.t)
    element = skfem.ElementVector(skfem.ElementQuad2())
    basis = skfem.Basis(mesh, element, intorder=4)  # dfem's rule for Q2
    lam, mu = lame_parameters(1.0, 1 / 3)
    K = skfem.asm(linear_elasticity(2 * lam * mu / (lam + 2 * mu), mu), basis)
    edge = skfem.FacetBasis(mesh, element, intorder=4,
                            facets=mesh.facets_satisfying(lambda x: np.isclose(x[0], 48)))
    f = skfem.asm(skfem.LinearForm(lambda v, w: v[1] / 16), edge)
    clamped = basis.get_dofs(lambda x: np.isclose(x[0], 0)).all()
    u = skfem.solve(*skfem.condense(K, f, D=clamped))
    reference = basis.probes(np.array([[48.0, 48.0], [52.0, 60.0]])) @ u
    reference = reference.reshape(2, -1).T  # skfem orders all x components, then all y
    np.testing.assert_allclose([mid, corner], reference, rtol=1e-9)


@pytest.mark.parametrize("corners", [
    [[0, 0], [0, 44], [48, 60], [48, 44]],  # clockwise
    [[0, 0], [48, 44], [0, 44], [48, 60]],  # self-intersecting
    [[0, 0], [1, 0], [2, 0], [0, 1]],  # degenerate
])
def test_bad_corners_are_errors(corners):
    data = _load("cook_membrane.toml", mesh__corners=corners)
    with pytest.raises(DfemError, match="convex quadrilateral, listed counter-clockwise"):
        Case.from_dict(data).mesh()


# ----------------------------------------------------------------------------- Neo-Hookean
def test_neo_hookean_homogeneous_compression_matches_the_closed_form():
    """Rollers on the bottom, left and top (top moved down by 35 %): the deformation is
    homogeneous, F = diag(l_x, l_y), l_y = 0.65, with l_x from P_xx = 0:
    mu (l_x^2 - 1) + lambda ln(l_x l_y) = 0, and the top reaction P_yy per unit width."""
    from scipy.optimize import brentq

    data = _load("hyperelastic_block.toml", mesh__n=2, solver__load_steps=4)
    data["boundary"]["top"] = {"uy": -0.35}
    data["output"]["probes"] = [[1.0, 1.0], [0.5, 0.25]]
    report = Case.from_dict(data).solve()
    E, nu, ly = 10.0, 0.3, 0.65
    mu, lam = E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))
    lx = brentq(lambda s: mu * (s * s - 1) + lam * math.log(s * ly), 1.0, 2.0)
    P_yy = mu * (ly - 1 / ly) + lam * math.log(lx * ly) / ly
    for probe in report["probes"]:
        x, y = probe["point"]
        np.testing.assert_allclose(probe["u"], [(lx - 1) * x, (ly - 1) * y], atol=1e-9)
    np.testing.assert_allclose(report["reactions"]["top"], [0.0, P_yy], atol=1e-8)
    assert report["newton_iterations"] > 4 and report["load_steps"] >= 4
    assert report["max_displacement"] == pytest.approx(math.hypot(lx - 1, 0.35), rel=1e-9)


def test_hyperelastic_block_through_the_cli(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["solve", str(CASES / "hyperelastic_block.toml"), "--set", "mesh.n=4", "--out",
            str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["problem"] == "neo-hookean" and report["load_steps"] >= 10
    # no external load: the supports balance each other (a corner node fixed by two tags
    # counts once), and they squeeze the block
    total = np.sum(list(report["reactions"].values()), axis=0)
    np.testing.assert_allclose(total, [0.0, 0.0], atol=1e-8)
    assert report["reactions"]["bottom"][0] == 0.0 and report["reactions"]["left"][1] == 0.0
    assert report["reactions"]["top"][1] < 0 and report["compliance"] == 0.0
    assert report["energy"] > 0
    bulge = report["probes"][0]["u"][0]  # the free side at mid-height moves out
    assert 0.1 < bulge < 0.3
    vtu = meshio.read(out / "solution.vtu")
    assert vtu.point_data["displacement"].shape[1] == 3
    assert (out / "solution.png").stat().st_size > 0
    capsys.readouterr()


def test_newton_that_cannot_converge_exits_1_without_outputs(tmp_path, capsys):
    case = tmp_path / "case.toml"
    case.write_text((CASES / "hyperelastic_block.toml").read_text()
                    .replace("n = 8", "n = 2").replace("max_iter = 25", "max_iter = 1"))
    out = tmp_path / "out"
    assert main(["solve", str(case), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dfem: solver failed:") and "Traceback" not in err
    assert "Newton" in err and not out.exists()


# ----------------------------------------------------------------------------- probes
def test_poisson_probes(tmp_path, capsys):
    data = _load("poisson_sine.toml", mesh__n=8, output__probes=[[0.5, 0.5], [0.25, 0.75]])
    report = Case.from_dict(data).solve()
    for probe in report["probes"]:
        x, y = probe["point"]
        assert probe["u"] == pytest.approx(math.sin(math.pi * x) * math.sin(math.pi * y),
                                           abs=1e-4)


def test_probe_outside_the_domain_fails_before_the_solve(tmp_path, capsys, monkeypatch):
    from dfem.problems.elasticity import LinearElasticity

    def no_solve(*args, **kwargs):
        raise AssertionError("solved although a probe lies outside the domain")

    monkeypatch.setattr(LinearElasticity, "solve", no_solve)
    case = tmp_path / "case.toml"
    case.write_text((CASES / "cook_membrane.toml").read_text()
                    .replace("[48.0, 60.0]]", "[48.0, 61.0]]"))
    out = tmp_path / "out"
    assert main(["solve", str(case), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "output.probes" in err and "outside the mesh" in err and "(48, 61)" in err
    assert not out.exists()


# ----------------------------------------------------------------------------- bad input
ELASTIC = """
element = "Q1"
[mesh]
n = 2
[problem]
type = "linear-elasticity"
{problem}
[boundary.left]
{left}
[boundary.right]
traction = [0.0, -1.0]
"""


def _assert_bad_input(tmp_path, capsys, text: str, fragment: str) -> None:
    """``dfem solve`` on the case ``text`` exits 2 with one error line matching
    ``fragment``, no traceback and no output folder."""
    case = tmp_path / "case.toml"
    case.write_text(text)
    out = tmp_path / "out"
    assert main(["solve", str(case), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dfem: error:") and "Traceback" not in err
    assert re.search(fragment, err), err
    assert not out.exists()


@pytest.mark.parametrize(
    "problem,left,fragment",
    [
        ("poisson_ratio = 0.5", "displacement = [0, 0]",
         r"problem.poisson_ratio must be a number in \(-1, 0.5\)"),
        ("poisson_ratio = -1.0", "displacement = [0, 0]",
         r"problem.poisson_ratio must be a number in \(-1, 0.5\)"),
        ("E = 0", "displacement = [0, 0]", "problem.E must be a positive number"),
        ("E = -2.0", "displacement = [0, 0]", "problem.E must be a positive number"),
        ("E = '1 - 2*x'", "displacement = [0, 0]", "Young's modulus E must be positive"),
        ("poisson_ratio = '0.3 + x'", "displacement = [0, 0]",
         r"poisson_ratio must lie in \(-1, 0.5\)"),
        ("", "displacement = [0, 0, 0]",
         r"boundary.left.displacement must be a list \[ux, uy\] of 2 .*3 entries"),
        ("", "displacement = [0]", r"boundary.left.displacement must be a list \[ux, uy\]"),
        ("body_force = [1.0]", "displacement = [0, 0]",
         r"problem.body_force must be a list \[bx, by\]"),
        ("", "displacement = 'x'", r"boundary.left.displacement must be a list"),
        ("", "dirichlet = 0", "boundary.left.dirichlet is a condition of a Poisson problem"),
        ("", "uz = 0", r"unknown key\(s\) uz in \[boundary.left\]"),
        ("", "ux = 0\ndisplacement = [0, 0]", "gives displacement and ux"),
        ("nu = 1.0", "displacement = [0, 0]",
         r'unknown key\(s\) nu in \[problem\].*problem.type = "linear-elasticity"'),
        ("plane = 'membrane'", "displacement = [0, 0]", 'problem.plane must be "strain"'),
        ("type = 'plastic'", "displacement = [0, 0]", "problem.type must be one of"),
    ],
)
def test_bad_elastic_cases_exit_2_without_outputs(tmp_path, capsys, problem, left, fragment):
    text = ELASTIC.format(problem=problem, left=left)
    if "type = 'plastic'" in problem:
        text = text.replace('type = "linear-elasticity"\n', "")
    _assert_bad_input(tmp_path, capsys, text, fragment)


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("[mesh]\nn = 2\n[boundary.left]\ndirichlet = 0\n[boundary.right]\ntraction = [0, 1]\n",
         "boundary.right.traction is a condition of an elastic problem"),
        ("[mesh]\nn = 2\n[problem]\nE = 1.0\n[boundary.left]\ndirichlet = 0\n",
         r'unknown key\(s\) E in \[problem\].*keys of problem.type = "linear-elasticity"'),
        ("[mesh]\nn = 2\n[boundary.left]\ndirichlet = 0\n[solver]\nload_steps = 3\n",
         "solver.load_steps applies to Newton solves"),
        ("[mesh]\nn = 2\n[boundary.left]\ndirichlet = 0\n[exact]\nu = ['x', 'y']\n",
         "exact.u of a Poisson case is one number or expression"),
        ("element = 'nurbs'\n[mesh]\nn = 2\n[boundary.left]\ndirichlet = 0\n[output]\n"
         "probes = [[1.5, 0.5]]\n", "output.probes: 1 point.s. lie outside the NURBS patch"),
        ("[mesh]\nn = 2\n[boundary.left]\ndirichlet = 0\n[output]\nprobes = [0.5, 0.5]\n",
         r"output.probes must be a non-empty list of points"),
        ("[mesh]\nn = 2\n[boundary.left]\ndirichlet = 0\n[output]\nprobes = [[0.5, 0.5, 0]]\n",
         r"output.probes: the point \[0.5, 0.5, 0\] has 3 coordinates"),
        ("[mesh]\nn = 2\ncorners = [[0, 0], [1, 0], [1, 1]]\n[boundary.left]\ndirichlet = 0\n",
         "mesh.corners must be four"),
        ("[mesh]\nn = 2\nx = [0, 1]\ncorners = [[0, 0], [1, 0], [1, 1], [0, 1]]\n",
         "mesh.corners and mesh.x both give the domain"),
    ],
)
def test_bad_poisson_and_shared_keys_exit_2(tmp_path, capsys, text, fragment):
    _assert_bad_input(tmp_path, capsys, text, fragment)


@pytest.mark.parametrize(
    "changes,fragment",
    [
        ({"solver__method": "energy"}, 'solver.method = "energy" .* applies to Poisson'),
        ({"problem__plane": "stress"}, 'problem.plane = "stress" applies to linear'),
    ],
)
def test_bad_solver_and_model_choices(changes, fragment):
    data = _load("hyperelastic_block.toml", mesh__n=2, **changes)
    case = Case.from_dict(data)
    with pytest.raises(DfemError, match=fragment):
        case.solver_options()
        case.problem()


def test_no_displacement_condition_is_an_error():
    data = {"problem": {"type": "linear-elasticity"}, "mesh": {"n": 2},
            "boundary": {"right": {"traction": [0.0, 1.0]}}}
    with pytest.raises(DfemError, match="needs a displacement condition"):
        Case.from_dict(data).problem()


def test_elastic_nurbs_case_balances_its_loads():
    """``element = "nurbs"`` with an elastic problem: the clamp's reaction is minus the
    applied load, int b dA + int t ds = -(7/3) - 1 in y on the quarter annulus 1 <= r <= 2
    with b = (0, -x) and t = (0, -1) on the straight side r in [1, 2] tagged right (and E a
    log-normal field table)."""
    data = {
        "element": "nurbs", "mesh": {"n": 4}, "nurbs": {"geometry": "quarter-annulus"},
        "problem": {"type": "linear-elasticity", "body_force": [0.0, "-x"],
                    "E": {"field": "lognormal", "w": [-0.26, -0.77, -0.37, -0.92]}},
        "boundary": {"left": {"displacement": 0.0}, "right": {"traction": [0.0, -1.0]}},
    }
    report = Case.from_dict(data).solve()
    assert report["element"].startswith("NURBS")
    np.testing.assert_allclose(report["reactions"]["left"], [0.0, 7 / 3 + 1], atol=1e-9)
    assert report["energy"] == pytest.approx(-0.5 * report["compliance"], rel=1e-10)


def test_shipped_iga_plate_with_a_hole_matches_the_kirsch_solution():
    """cases/plate_hole_iga.toml: the exact stress loads the outer edges through ``stress``;
    the displacement is the Kirsch field up to the discretisation error."""
    from dfem.validation import kirsch

    case = Case.load(ROOT / "cases" / "plate_hole_iga.toml")
    problem = case.problem()
    u = problem.solve()
    error = dfem.errors(problem.space, u.detach(), kirsch.displacement)
    assert error["l2"] < 1e-6 * 1.0 and error["l2"] / error["l2_norm"] < 2e-3
    # the same problem as dfem.validation.kirsch builds it in Python (traction by x >= y)
    reference = kirsch.problem(2, 8).solve()
    torch.testing.assert_close(u, reference, rtol=1e-10, atol=1e-14)
    # the probes at the hole's top and side see the Kirsch displacement
    report = case.solve()
    points = torch.tensor([p["point"] for p in report["probes"]], dtype=torch.float64)
    probed = torch.tensor([p["u"] for p in report["probes"]], dtype=torch.float64)
    exact = kirsch.displacement(points)
    assert (probed - exact).abs().max() <= 3e-3 * exact.abs().max()  # measured 1.5e-3
