"""The unstructured-mesh case ``cases/lshape.toml``: an L-shaped (non-convex) domain meshed
by gmsh (``cases/meshes/make_lshape.py``), read from its ``.msh`` file with its physical
groups as boundary tags, solved with P2 and checked against the exact solution and for the
expected convergence orders under uniform refinement."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from dfem.mesh import read_mesh
from dfem.problems.case import Case
from dfem.problems.expressions import coefficient

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "cases" / "lshape.toml"
MESH = ROOT / "cases" / "meshes" / "lshape.msh"
SCRIPT = ROOT / "cases" / "meshes" / "make_lshape.py"


@pytest.fixture(scope="module")
def case():
    return Case.load(CASE)


def test_mesh_comes_from_the_gmsh_file_with_its_tags(case):
    mesh = case.mesh()
    assert case.data["mesh"]["file"] == "meshes/lshape.msh"
    assert mesh.cell_type == "tri"
    assert 200 <= mesh.n_cells <= 800
    assert {"outer", "reentrant"} <= set(mesh.boundaries)

    # Non-convex: area 3 (the square minus a quarter), nothing in the removed quarter.
    x = mesh.nodes
    assert float(mesh.signed_areas().sum()) == pytest.approx(3.0, abs=1e-12)
    assert (mesh.signed_areas() > 0).all()
    assert not ((x[:, 0] > 1e-12) & (x[:, 1] < -1e-12)).any()

    # Tags: the re-entrant edges lie on x = 0 (y <= 0) or y = 0 (x >= 0), all of them
    # together span length 2; the outer edges lie on the square's sides, length 6.
    def edges(tag):
        e = torch.as_tensor(np.asarray(mesh.boundaries[tag]), dtype=torch.long)
        return x[e[:, 0]], x[e[:, 1]]

    a, b = edges("reentrant")
    on_x0 = (a[:, 0].abs() < 1e-12) & (b[:, 0].abs() < 1e-12) & (a[:, 1] <= 1e-12)
    on_y0 = (a[:, 1].abs() < 1e-12) & (b[:, 1].abs() < 1e-12) & (a[:, 0] >= -1e-12)
    assert (on_x0 | on_y0).all() and on_x0.any() and on_y0.any()
    assert float((a - b).norm(dim=1).sum()) == pytest.approx(2.0, abs=1e-12)
    a, b = edges("outer")
    assert ((a.abs().max(dim=1).values - 1).abs() < 1e-12).all()
    assert float((a - b).norm(dim=1).sum()) == pytest.approx(6.0, abs=1e-12)

    # Unstructured: interior vertex valences vary (a structured grid has one value).
    valence = np.bincount(mesh.cells_np.ravel(), minlength=mesh.n_nodes)
    interior = (x.abs().max(dim=1).values < 1 - 1e-12) & ~(
        ((x[:, 0].abs() < 1e-12) & (x[:, 1] <= 1e-12))
        | ((x[:, 1].abs() < 1e-12) & (x[:, 0] >= -1e-12))
    )
    assert len(np.unique(valence[interior.numpy()])) >= 3


def test_source_and_neumann_data_match_the_exact_solution(case):
    """f = -div(nu grad u) and the reentrant flux nu du/dn, checked with autograd."""
    u = case.exact()
    spec = case.data["problem"]
    nu, f = coefficient(spec["nu"], "nu"), coefficient(spec["f"], "f")
    g = coefficient(case.data["boundary"]["reentrant"]["neumann"], "g")
    gen = torch.Generator().manual_seed(0)
    X = (2 * torch.rand(500, 2, generator=gen, dtype=torch.float64) - 1).requires_grad_()
    flux = nu(X)[:, None] * torch.autograd.grad(u(X).sum(), X, create_graph=True)[0]
    div = sum(torch.autograd.grad(flux[:, i].sum(), X, retain_graph=True)[0][:, i] for i in (0, 1))
    torch.testing.assert_close(f(X), -div, atol=1e-12, rtol=0)

    t = torch.linspace(0, 1, 51, dtype=torch.float64)
    for points, normal in [(torch.stack([0 * t, -t], 1), (1.0, 0.0)),
                           (torch.stack([t, 0 * t], 1), (0.0, -1.0))]:
        points.requires_grad_()
        grad = torch.autograd.grad(u(points).sum(), points)[0]
        dudn = grad @ torch.tensor(normal, dtype=torch.float64)
        torch.testing.assert_close(g(points), nu(points) * dudn, atol=1e-12, rtol=0)


def test_solve_is_accurate(case):
    report = case.solve()
    assert report["element"] == "P2"
    assert report["cells"] == case.mesh().n_cells
    assert report["l2_error"] < 1e-3
    assert report["h1_error"] < 5e-2


@pytest.mark.parametrize("element, order", [("P2", 3), ("P1", 2)])
def test_convergence_rates_on_refined_meshes(element, order):
    study = Case.load(CASE, overrides=[f"element={element}"]).convergence(2)
    assert [level["level"] for level in study["levels"]] == [0, 1, 2]
    assert study["l2_rate"] == pytest.approx(order, abs=0.2)
    assert study["h1_rate"] == pytest.approx(order - 1, abs=0.2)


def test_generator_script_is_deterministic(tmp_path):
    pytest.importorskip("gmsh")
    spec = importlib.util.spec_from_file_location("make_lshape", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "lshape.msh"
    module.main(["--out", str(out)])

    made, committed = read_mesh(out), read_mesh(MESH)
    np.testing.assert_allclose(made.nodes.numpy(), committed.nodes.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(made.cells_np, committed.cells_np)
    assert set(made.boundaries) == set(committed.boundaries)
    for tag in committed.boundaries:
        np.testing.assert_array_equal(
            np.asarray(made.boundaries[tag]), np.asarray(committed.boundaries[tag])
        )
