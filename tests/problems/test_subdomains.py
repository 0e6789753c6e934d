"""Piecewise and per-subdomain coefficients in case files, against the same problems posed
in Python, against their exact solutions, and their errors."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import dfem
from dfem.exceptions import DfemError
from dfem.mesh import read_mesh, refine
from dfem.problems.case import Case
from dfem.problems.subdomains import CellTags, cellwise_coefficient, refine_cell_tags

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "cases"
MESH = CASES / "meshes" / "inclusion.msh"
PI = math.pi


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


# ----------------------------------------------------------------------------- exact data
def two_materials_u(x):
    X, Y = x[..., 0], x[..., 1]
    return torch.where(X < 0.5, torch.sin(PI * X) / 10, torch.sin(PI * X) - 0.9) \
        + torch.sin(PI * Y)


def _where(cond, a, b, like):
    """``torch.where`` of two numbers in the dtype of ``like`` (Python floats would make
    a float32 tensor: 0.1 would be off by 1e-9)."""
    return torch.where(cond, torch.tensor(a, dtype=like.dtype), torch.tensor(b, dtype=like.dtype))


def two_materials_nu(x):
    return _where(x[..., 0] < 0.5, 10.0, 1.0, x)


def two_materials_f(x):
    X, Y = x[..., 0], x[..., 1]
    return PI**2 * torch.sin(PI * X) + two_materials_nu(x) * PI**2 * torch.sin(PI * Y)


def inclusion_w(x):
    X, Y = x[..., 0], x[..., 1]
    return 1000 * ((X - 0.25) * (X - 0.75) * (Y - 0.25) * (Y - 0.75)) ** 2


def inclusion_nu(x):
    inside = torch.maximum((x[..., 0] - 0.5).abs(), (x[..., 1] - 0.5).abs()) < 0.25
    return _where(inside, 0.1, 1.0, x)


def inclusion_u(x):
    return inclusion_w(x) / inclusion_nu(x)


def minus_div_nu_grad(u, nu, x):
    """``-div(nu grad u)`` at points ``x`` (n, 2) by autograd, nu constant near each point."""
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(u(x).sum(), x, create_graph=True)
    flux = nu(x)[:, None] * g
    div = sum(torch.autograd.grad(flux[:, i].sum(), x, retain_graph=True)[0][:, i]
              for i in range(2))
    return -div


def test_manufactured_sources_solve_their_pdes():
    # an independent check of the shipped f: autograd of the exact u, away from interfaces
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(400, 2, generator=gen, dtype=torch.float64)
    away = ((x[:, 0] - 0.5).abs() > 1e-3)
    case = Case.load(CASES / "two_materials.toml")
    f = case.problem().f
    torch.testing.assert_close(minus_div_nu_grad(two_materials_u, two_materials_nu, x[away]),
                               f(x[away]), rtol=1e-10, atol=1e-10)
    edge = torch.maximum((x[:, 0] - 0.5).abs(), (x[:, 1] - 0.5).abs())
    away = (edge - 0.25).abs() > 1e-3
    f = Case.load(CASES / "inclusion.toml").problem().f
    torch.testing.assert_close(minus_div_nu_grad(inclusion_u, inclusion_nu, x[away]),
                               f(x[away]), rtol=1e-10, atol=1e-10)
    # and the case's exact solutions are these functions
    torch.testing.assert_close(Case.load(CASES / "inclusion.toml").exact()(x), inclusion_u(x))
    torch.testing.assert_close(case.exact()(x), two_materials_u(x))


# ----------------------------------------------------------------------------- piecewise
def test_piecewise_case_matches_python_and_its_exact_solution():
    case = Case.load(CASES / "two_materials.toml", overrides=["mesh.n=16"])
    space = case.space()
    u_case = case.problem(space).solve()
    python = dfem.Poisson(space, nu=two_materials_nu, f=two_materials_f,
                          dirichlet={"boundary": two_materials_u})
    u_python = python.solve()
    assert _rel(u_case, u_python) < 1e-12
    err = dfem.errors(space, u_case, two_materials_u)
    assert err["l2"] < 1e-4
    # the jump matters: nu = 1 everywhere is far off
    uniform = dfem.Poisson(space, nu=1.0, f=two_materials_f,
                           dirichlet={"boundary": two_materials_u}).solve()
    assert dfem.errors(space, uniform, two_materials_u)["l2"] > 100 * err["l2"]


def test_piecewise_case_validates_at_its_resolution():
    report = Case.load(CASES / "two_materials.toml").solve()
    assert report["l2_error"] <= 5e-6
    assert report["l2_error"] > 1e-9  # the discretisation error, not round-off


# ----------------------------------------------------------------------------- per cell tag
def inclusion_python(space, tags, nu_inner=0.1):
    nu = torch.ones(space.mesh.n_cells, dtype=torch.float64)
    nu[torch.as_tensor(tags["inner"])] = nu_inner
    case = Case.load(CASES / "inclusion.toml")
    f = case.problem(space).f  # the shipped source (checked above)
    return dfem.Poisson(space, nu=dfem.PerCell(nu), f=f, dirichlet={"boundary": inclusion_w})


def test_per_subdomain_case_matches_python_with_per_cell_nu():
    mesh, tags = read_mesh(MESH, return_cell_tags=True)
    assert sorted(tags) == ["inner", "outer"] and sum(map(len, tags.values())) == mesh.n_cells
    case = Case.load(CASES / "inclusion.toml")
    space = case.space()
    assert torch.equal(space.mesh.nodes, mesh.nodes)
    u_case = case.problem(space).solve()
    u_python = inclusion_python(space, tags).solve()
    assert _rel(u_case, u_python) < 1e-12
    report = case.solve()
    assert 1e-7 < report["l2_error"] <= 1.7e-4
    # a wrong inner value is visibly worse against the exact solution
    wrong = inclusion_python(space, tags, nu_inner=1.0).solve()
    assert dfem.errors(space, wrong, inclusion_u)["l2"] > 10 * report["l2_error"]


def test_default_and_expression_values_per_tag():
    base = Case.load(CASES / "inclusion.toml")
    space = base.space()
    u = base.problem(space).solve()
    for nu in ({"inner": 0.1, "default": 1.0}, {"inner": "0.1 + 0*x", "outer": "1"},
               {"outer": "where(x > 2, 5, 1)", "default": 0.1}):
        data = {**base.data, "problem": {**base.data["problem"], "nu": nu}}
        other = Case.from_dict(data, base.path).problem(space).solve()
        assert _rel(other, u) < 1e-12, nu


def test_refined_cell_tags_follow_the_geometry():
    mesh, tags = read_mesh(MESH, return_cell_tags=True)
    fine = refine(mesh, 2)
    refined = refine_cell_tags(tags, 2, 2)
    centroids = fine.nodes[fine.cells].mean(1)
    inside = torch.maximum((centroids[:, 0] - 0.5).abs(), (centroids[:, 1] - 0.5).abs()) < 0.25
    assert set(np.flatnonzero(inside.numpy())) == set(refined["inner"].tolist())
    assert set(np.flatnonzero(~inside.numpy())) == set(refined["outer"].tolist())


def test_convergence_refines_the_cell_tags():
    study = Case.load(CASES / "inclusion.toml").convergence(2)
    assert study["l2_rate"] == pytest.approx(3.0, abs=0.15)
    assert study["h1_rate"] == pytest.approx(2.0, abs=0.15)
    # level 2 against the problem posed on the refined mesh with refined tags
    mesh, tags = read_mesh(MESH, return_cell_tags=True)
    space = dfem.FunctionSpace(refine(mesh, 1), "P2")
    u = inclusion_python(space, refine_cell_tags(tags, 2, 1)).solve()
    err = dfem.errors(space, u, inclusion_u)
    assert err["l2"] == pytest.approx(study["levels"][1]["l2_error"], rel=1e-10)


def test_elastic_and_transient_cases_take_values_per_tag():
    mesh, tags = read_mesh(MESH, return_cell_tags=True)
    inner = torch.zeros(mesh.n_cells, dtype=torch.bool)
    inner[torch.as_tensor(tags["inner"])] = True
    elastic = Case.from_dict({
        "element": "P1", "mesh": {"file": str(MESH)},
        "problem": {"type": "linear-elasticity", "E": {"inner": 10.0, "outer": 1.0},
                    "poisson_ratio": {"inner": 0.2, "default": 0.3}, "body_force": [0, -1]},
        "boundary": {"boundary": {"displacement": [0, 0]}},
    })
    space = elastic.space()
    u_case = elastic.problem(space).solve()
    E = _where(inner, 10.0, 1.0, mesh.nodes)
    ratio = _where(inner, 0.2, 0.3, mesh.nodes)
    u_python = dfem.LinearElasticity(space, E=dfem.PerCell(E), poisson_ratio=dfem.PerCell(ratio),
                                     body_force=[0.0, -1.0],
                                     dirichlet={"boundary": [0.0, 0.0]}).solve()
    assert _rel(u_case, u_python) < 1e-12

    heat = Case.from_dict({
        "element": "P1", "mesh": {"file": str(MESH)},
        "problem": {"nu": {"inner": 0.1, "outer": 1.0},
                    "f": {"inner": "10*t", "outer": "sin(pi*x)"}},
        "boundary": {"boundary": {"dirichlet": 0.0}},
        "time": {"t_end": 0.05, "dt": 0.01, "scheme": "implicit-euler"},
    })
    space = heat.space()
    u_case = heat.problem(space).run(0.0, t_end=0.05, dt=0.01, scheme="implicit-euler").u

    def f(x, t):
        return torch.where(inner[:, None], 10 * t, torch.sin(PI * x[..., 0]))

    k = _where(inner, 0.1, 1.0, mesh.nodes)
    u_python = dfem.Heat(space, k=dfem.PerCell(k), f=f, dirichlet={"boundary": 0.0}).run(
        0.0, t_end=0.05, dt=0.01, scheme="implicit-euler").u
    assert _rel(u_case, u_python) < 1e-12


def test_solution_vtu_holds_the_per_cell_coefficient(tmp_path):
    import meshio

    Case.load(CASES / "inclusion.toml").solve(out=tmp_path)
    vtu = meshio.read(tmp_path / "solution.vtu")
    nu = np.concatenate(vtu.cell_data["nu"])
    _, tags = read_mesh(MESH, return_cell_tags=True)
    assert (nu[tags["inner"]] == 0.1).all() and (nu[tags["outer"]] == 1.0).all()
    assert "nu" not in vtu.point_data and "f" in vtu.point_data


# ----------------------------------------------------------------------------- errors
def _with_nu(nu, **mesh):
    return Case.from_dict({"element": "P1", "mesh": mesh or {"file": str(MESH)},
                           "problem": {"nu": nu, "f": 1.0},
                           "boundary": {"boundary": {"dirichlet": 0.0}}})


@pytest.mark.parametrize("nu,fragment", [
    ({"inner": 1.0, "middle": 2.0}, r"'middle', which inclusion.msh does not have; its cell "
                                    r"tags are inner, outer"),
    ({"inner": 1.0}, r"no value to 732 of 978 cells .*carry the tag\(s\) outer.*default"),
    ({"inner": [1, 2], "outer": 1.0}, r"problem.nu.inner must be a number or an expression"),
    ({"inner": "x.real", "outer": 1.0}, "Attribute"),
    ({}, "empty table"),
])
def test_bad_tables_name_the_problem(nu, fragment):
    with pytest.raises(DfemError, match=fragment):
        _with_nu(nu).problem()


def test_tables_need_cell_tags_and_a_coefficient():
    with pytest.raises(DfemError, match=r"generated mesh .* has no cell tags"):
        _with_nu({"inner": 1.0}, n=4, cell="tri").problem()
    case = Case.from_dict({"mesh": {"file": str(MESH)},
                           "boundary": {"boundary": {"dirichlet": {"inner": 1.0}}}})
    with pytest.raises(DfemError, match="boundary.boundary.dirichlet is a table, but it takes"):
        case.problem()
    nonlinear = Case.from_dict({"mesh": {"file": str(MESH)},
                                "problem": {"nonlinear": True, "nu": {"inner": "1 + u**2"}},
                                "boundary": {"boundary": {"dirichlet": 0.0}}})
    with pytest.raises(DfemError, match="depends on u here, so it must be an expression"):
        nonlinear.problem()


def test_overlapping_tags_and_the_evaluation_shape():
    tags = CellTags({"a": np.array([0, 1, 2]), "b": np.array([2, 3])}, 4, "test.msh")
    with pytest.raises(DfemError, match=r"1 cell\(s\) carry both tags 'a' and 'b'"):
        cellwise_coefficient({"a": 1.0, "b": 2.0}, "problem.nu", ("x", "y"), tags)
    tags = CellTags({"a": np.array([0, 2]), "b": np.array([1, 3])}, 4, "test.msh")
    nu = cellwise_coefficient({"a": "1 + x", "b": 5.0}, "problem.nu", ("x", "y"), tags)
    x = torch.rand(4, 3, 2, dtype=torch.float64, requires_grad=True)
    value = nu(x)
    expected = torch.stack([1 + x[0, :, 0], torch.full((3,), 5.0, dtype=torch.float64),
                            1 + x[2, :, 0], torch.full((3,), 5.0, dtype=torch.float64)])
    torch.testing.assert_close(value, expected)
    (grad,) = torch.autograd.grad(value.sum(), x)  # differentiable in the points
    assert grad[[0, 2], :, 0].eq(1).all() and grad[[1, 3]].eq(0).all()
    with pytest.raises(DfemError, match="given per cell tag"):
        nu(torch.rand(5, 2, dtype=torch.float64))


def test_volume_tags_of_a_3d_mesh_file(tmp_path):
    # a box of tetrahedra written with two cell tags (physical volumes), then read back
    from dfem.mesh import write_mesh
    from dfem.mesh.structured import box

    mesh = box(2, 2, 2, "tet")
    centroids = mesh.nodes[mesh.cells].mean(1)
    left = torch.nonzero(centroids[:, 0] < 0.5)[:, 0].numpy()
    right = torch.nonzero(centroids[:, 0] > 0.5)[:, 0].numpy()
    write_mesh(tmp_path / "box.msh", mesh, cell_tags={"soft": left, "hard": right})
    case = Case.from_dict({
        "element": "P1", "mesh": {"file": str(tmp_path / "box.msh")},
        "problem": {"nu": {"soft": 1.0, "hard": "5 + y"}, "f": 1.0},
        "boundary": {"boundary": {"dirichlet": 0.0}}})
    for level in (0, 1):  # the refined mesh carries the tags
        space = case.space(level)
        c = space.mesh.nodes[space.mesh.cells].mean(1)
        hard = (c[:, 0] > 0.5)[:, None]

        def nu(x, hard=hard):
            return torch.where(hard, 5 + x[..., 1], torch.ones_like(x[..., 1]))

        u_case = case.problem(space).solve()
        u_python = dfem.Poisson(space, nu=nu, f=1.0, dirichlet={"boundary": 0.0}).solve()
        assert _rel(u_case, u_python) < 1e-12
    assert space.mesh.n_cells == 8 * mesh.n_cells
