"""Isogeometric analysis: NURBS patches through the Lagrange assembly and solvers."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dfem.assembly.forms import assemble
from dfem.basis.nurbs.patch import NURBSPatch, quarter_annulus, unit_square
from dfem.basis.nurbs.space import IsogeometricSpace
from dfem.basis.space import FunctionSpace
from dfem.cli import main
from dfem.exceptions import DfemError
from dfem.mesh.structured import rectangle
from dfem.problems.case import Case
from dfem.problems.poisson import Poisson
from dfem.validation.error_norms import errors, fitted_rate

ROOT = Path(__file__).resolve().parents[3]


def test_degree_one_patch_is_the_q1_space():
    """Bilinear B-splines on uniform knots are the Q1 hat functions: same K and F."""
    patch = unit_square(x=(0.0, 2.0), y=(-1.0, 0.5)).subdivide(5, 3)
    iga = IsogeometricSpace(patch)
    lagrange = FunctionSpace(rectangle(5, 3, "quad", x=(0.0, 2.0), y=(-1.0, 0.5)), "Q1")
    nu = lambda x: 1 + x[..., 0] ** 2 * x[..., 1] ** 2  # noqa: E731
    K1, F1 = assemble(iga, nu=nu, c=0.5, f=lambda x: torch.sin(x[..., 0]), format="scipy")
    K2, F2 = assemble(lagrange, nu=nu, c=0.5, f=lambda x: torch.sin(x[..., 0]), format="scipy")
    cp = patch.control_points.reshape(-1, 2).numpy()
    nodes = lagrange.mesh.nodes.numpy()
    perm = np.array([np.argmin(((nodes - c) ** 2).sum(1)) for c in cp])
    assert np.allclose(nodes[perm], cp, atol=1e-14)
    np.testing.assert_allclose(K1.toarray(), K2.toarray()[np.ix_(perm, perm)], atol=1e-13)
    np.testing.assert_allclose(F1, F2[perm], atol=1e-14)


def test_quarter_annulus_geometry_is_exact():
    space = IsogeometricSpace(quarter_annulus(1.0, 2.0).elevate(3).subdivide(4))
    g = space.geometry(12)
    assert float(g.weights.sum()) == pytest.approx(3 * math.pi / 4, rel=1e-12)
    r = torch.linalg.vector_norm(space.mesh.nodes, dim=1)
    assert float(r.min()) == pytest.approx(1.0, abs=1e-14)
    assert float(r.max()) == pytest.approx(2.0, abs=1e-14)
    # points on the curved sides lie on the circles: outer arc quadrature points
    top = space.facet_geometry("top", 8)
    radii = torch.linalg.vector_norm(top.points, dim=-1)
    torch.testing.assert_close(radii, torch.full_like(radii, 2.0), atol=1e-14, rtol=0)
    normals = top.normals
    torch.testing.assert_close(normals, top.points / 2.0, atol=1e-13, rtol=0)
    # the outer arc has length pi
    assert float(top.weights.sum()) == pytest.approx(math.pi, rel=1e-12)


def test_linear_functions_are_reproduced_with_a_curved_neumann_side():
    """NURBS reproduce linear functions of x: u = 1 + 2x - 3y, Neumann on the outer arc.

    The integrands are rational, so the default Gauss rule (p + 1 points) is exact only
    up to about 1e-5 on this coarse patch; with 8 points per direction the solution is
    the exact one to round-off."""
    exact = lambda x: 1 + 2 * x[..., 0] - 3 * x[..., 1]  # noqa: E731
    flux = lambda x: (2 * x[..., 0] - 3 * x[..., 1]) / 2.0  # noqa: E731  grad u . x / r
    space = IsogeometricSpace(quarter_annulus().elevate(2).subdivide(3), quadrature_degree=15)
    problem = Poisson(space, dirichlet={"bottom": exact, "left": exact, "right": exact},
                      neumann={"top": flux})
    u = problem.solve()
    e = errors(space, u, exact)
    assert e["l2"] < 1e-12 and e["h1"] < 1e-11


@pytest.mark.parametrize("p", [2, 3])
def test_quarter_annulus_converges_at_p_plus_one(p):
    exact = lambda x: torch.sin(2 * x[..., 0]) * torch.sin(3 * x[..., 1])  # noqa: E731
    base = quarter_annulus().elevate(p)
    h, l2 = [], []
    for n in (16, 32, 64):
        space = IsogeometricSpace(base.subdivide(n))
        u = Poisson(space, f=lambda x: 13 * exact(x), dirichlet={"boundary": exact}).solve()
        h.append(1.0 / n)
        l2.append(errors(space, u, exact)["l2"])
    assert fitted_rate(h, l2) == pytest.approx(p + 1, abs=0.2)


def test_table5_iga_reaches_the_q2_error_with_fewer_dofs():
    exact = lambda x: torch.sin(math.pi * x[..., 0]) * torch.sin(math.pi * x[..., 1])  # noqa: E731
    f = lambda x: 2 * math.pi**2 * exact(x)  # noqa: E731
    q2 = FunctionSpace(rectangle(32, 32, "quad"), "Q2")
    e_q2 = errors(q2, Poisson(q2, f=f, dirichlet={"boundary": 0.0}).solve(), exact)["l2"]
    iga = IsogeometricSpace(unit_square().elevate(2).subdivide(36))
    e_iga = errors(iga, Poisson(iga, f=f, dirichlet={"boundary": 0.0}).solve(), exact)["l2"]
    assert iga.n_dofs < 0.4 * q2.n_dofs
    assert e_iga < e_q2


def test_shape_and_coefficient_gradients_through_the_iga_solve():
    patch = quarter_annulus().elevate(2).subdivide(2)
    cp = patch.control_points.clone().requires_grad_(True)
    nu = torch.full((4,), 1.3, dtype=torch.float64, requires_grad=True)

    def solution(cp, nu):
        space = IsogeometricSpace(patch.with_control_points(cp))
        problem = Poisson(space, nu=nu, f=1.0, dirichlet={"left": 0.0},
                          robin={"top": (1.0, 0.5)})
        return problem.solve()

    assert torch.autograd.gradcheck(solution, (cp, nu))


def test_dirichlet_interpolation_at_greville_points_is_exact_in_the_space():
    """A quadratic lies in the p = 2 space on the square: the solve is exact."""
    exact = lambda x: x[..., 0] ** 2 + 3 * x[..., 1] ** 2 - x[..., 0] * x[..., 1]  # noqa: E731
    space = IsogeometricSpace(unit_square().elevate(2).subdivide(3, 5))
    u = Poisson(space, f=-8.0, dirichlet={"boundary": exact}).solve()
    assert errors(space, u, exact)["l2"] < 1e-13


def test_annulus_case_from_the_cli(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["solve", str(ROOT / "cases" / "annulus_iga.toml"), "--set", "mesh.n=8",
                 "--out", str(out)]) == 0
    import json

    import meshio

    report = json.loads((out / "report.json").read_text())
    assert report["element"] == "NURBS2" and report["dofs"] == 100 and report["cells"] == 64
    assert report["l2_error"] < 1e-2
    vtu = meshio.read(out / "solution.vtu")
    x = vtu.points[:, :2]
    np.testing.assert_allclose(vtu.point_data["u"], np.cos(x[:, 0]) * np.exp(x[:, 1] / 2),
                               atol=3e-3)
    assert (out / "solution.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "change,fragment",
    [
        ({"element": "Q2"}, "needs element = \"nurbs\""),
        ({"nurbs": {"geometry": "torus"}}, "nurbs.geometry must be one of"),
        ({"nurbs": {"geometry": "square", "radii": [1.0, 2.0]}}, "radii applies to"),
        ({"nurbs": {"control_points": [[[0, 0]]]}}, "also needs"),
        ({"nurbs": {"degree": 0}}, "nurbs.degree must be an integer from 1 to 10"),
        ({"nurbs": {"geometry": "quarter-annulus", "colour": 1}}, "unknown key\\(s\\) colour"),
        ({"mesh": {"cell": "tri"}}, "does not apply to element = \"nurbs\""),
        ({"boundary": {"inner": {"dirichlet": 0.0}}}, "tag 'inner' does not exist"),
        ({"nurbs": {"control_points": [[[0, 0], [0, 1]], [[1, 0], [1, 1]]],
                    "weights": [[1, 1], [1, -1]], "knots_u": [0, 0, 1, 1],
                    "knots_v": [0, 0, 1, 1], "degree_u": 1, "degree_v": 1}}, "positive"),
        ({"nurbs": {"control_points": [[[0, 0], [0, 1]], [[1, 0], [1, 1]]],
                    "weights": [[1, 1], [1, 1]], "knots_u": [0, 0, 1],
                    "knots_v": [0, 0, 1, 1], "degree_u": 1, "degree_v": 1}}, "n \\+ p \\+ 1"),
    ],
)
def test_bad_nurbs_cases(change, fragment):
    data = {"element": "nurbs", "mesh": {"n": 2}, "nurbs": {"geometry": "square"},
            "boundary": {"left": {"dirichlet": 0.0}}}
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key != "nurbs" \
            else value
    with pytest.raises(DfemError, match=fragment):
        Case.from_dict(data).problem()


def test_explicit_patch_in_a_case_matches_the_named_geometry():
    named = Case.from_dict({"element": "nurbs", "mesh": {"n": 4},
                            "nurbs": {"geometry": "quarter-annulus"},
                            "problem": {"f": 1.0}, "boundary": {"bottom": {"dirichlet": 0.0}}})
    patch = quarter_annulus()
    explicit = Case.from_dict({
        "element": "nurbs", "mesh": {"n": 4},
        "nurbs": {"control_points": patch.control_points.tolist(),
                  "weights": patch.weights.tolist(), "knots_u": patch.knots_u.tolist(),
                  "knots_v": patch.knots_v.tolist(), "degree_u": 2, "degree_v": 1},
        "problem": {"f": 1.0}, "boundary": {"bottom": {"dirichlet": 0.0}}})
    torch.testing.assert_close(explicit.problem().solve(), named.problem().solve())
    assert isinstance(patch, NURBSPatch)
