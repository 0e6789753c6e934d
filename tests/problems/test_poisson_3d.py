"""Poisson / reaction-diffusion in 3D: the same problem class, assembly and solvers as 2D.

- convergence on the shipped manufactured cube (variable nu, Dirichlet, Neumann and Robin
  faces) through ``dfem convergence``, for P1-P3 on perturbed tetrahedra and Q1-Q3 on
  hexahedra: fitted L2 rate within 0.15 of p + 1 and H1 within 0.15 of p (the full study
  is slow; a smaller one runs by default);
- gradcheck of the solution with respect to per-cell nu, nodal f and the node coordinates;
- bad input: inverted cells, tags that name faces the mesh does not have, 2D-only options.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import dfem
from dfem.assembly.coefficients import Nodal, PerCell
from dfem.cli import main
from dfem.problems.expressions import Expression

CASE = Path(__file__).parents[2] / "cases" / "cube_manufactured.toml"

# (element, cell, coarse cells per side, levels): the slow study reaches the asymptotic
# range; the quick one checks the same rates on smaller meshes. Tetrahedra are perturbed
# anew at every level (mesh.perturb); h is then the unperturbed mesh's longest edge.
FULL = [("P1", "tet", 3, 3), ("P2", "tet", 4, 2), ("P3", "tet", 3, 2),
        ("Q1", "hex", 2, 3), ("Q2", "hex", 2, 2), ("Q3", "hex", 2, 2)]
QUICK = [("P1", "tet", 3, 2), ("P2", "tet", 3, 2), ("Q1", "hex", 2, 2), ("Q2", "hex", 2, 2)]


def _study(tmp_path, element, cell, n, levels, perturb):
    out = tmp_path / f"{element}"
    sets = [f'element="{element}"', f'mesh.cell="{cell}"', f"mesh.nx={n}", f"mesh.ny={n}",
            f"mesh.nz={n}"]
    if perturb:
        sets.append(f"mesh.perturb={perturb}")
    args = ["convergence", str(CASE), "--levels", str(levels), "--out", str(out)]
    for item in sets:
        args += ["--set", item]
    assert main(args) == 0
    assert (out / "convergence.png").stat().st_size > 0
    return json.loads((out / "convergence.json").read_text())


def _check_rates(study, p, tol):
    assert study["l2_rate"] == pytest.approx(p + 1, abs=tol), study
    assert study["h1_rate"] == pytest.approx(p, abs=tol), study


@pytest.mark.slow
@pytest.mark.parametrize(("element", "cell", "n", "levels"), FULL)
def test_convergence_rates(tmp_path, element, cell, n, levels):
    study = _study(tmp_path, element, cell, n, levels, 0.1 if cell == "tet" else None)
    _check_rates(study, int(element[1]), 0.15)


@pytest.mark.parametrize(("element", "cell", "n", "levels"), QUICK)
def test_convergence_rates_quick(tmp_path, element, cell, n, levels):
    study = _study(tmp_path, element, cell, n, levels, 0.1 if cell == "tet" else None)
    _check_rates(study, int(element[1]), 0.15)


@pytest.mark.parametrize(("cell", "element"), [("tet", "P1"), ("tet", "P2"), ("hex", "Q1")])
def test_gradcheck_nu_f_and_nodes(cell, element):
    mesh = dfem.mesh.perturb_interior(dfem.mesh.box(2, 1, 1, cell=cell), 0.1)
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return (torch.rand(*shape, dtype=torch.float64, generator=gen) + 0.5).requires_grad_()

    n_dofs = dfem.FunctionSpace(mesh, element).n_dofs
    nu, f = rand(mesh.n_cells), rand(n_dofs)  # f nodal: one value per dof of the space
    nodes = mesh.nodes.clone().requires_grad_()
    weights = torch.rand(n_dofs, dtype=torch.float64, generator=gen)

    def objective(nu, f, nodes):
        space = dfem.FunctionSpace(mesh.with_nodes(nodes), element)
        u = dfem.Poisson(space, nu=PerCell(nu), f=Nodal(f), robin={"top": (2.0, 1.0)},
                         dirichlet={"left": lambda x: x[..., 1] + x[..., 2]}).solve()
        return (weights * u).sum()

    assert torch.autograd.gradcheck(objective, (nu, f, nodes))


def test_solution_is_exact_for_linear_data_on_a_gmsh_mesh():
    """Patch test on the unstructured block with a cylindrical hole: P1 and P2 reproduce a
    linear solution exactly, with Dirichlet data on some tags and Neumann on the others."""
    mesh = dfem.mesh.read_mesh(CASE.parent / "meshes" / "block_with_hole.msh")
    assert mesh.cell_type == "tet" and {"left", "right", "hole", "walls"} <= set(mesh.boundaries)

    def exact(x):
        return 1 + 2 * x[..., 0] - x[..., 1] + 0.5 * x[..., 2]

    gradient = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    for name in ("P1", "P2"):
        space = dfem.FunctionSpace(mesh, name)
        fg = space.facet_geometry("hole")
        n = fg.normals
        g_hole = dfem.AtQuadrature((n @ gradient)[:, None].expand(fg.weights.shape))
        u = dfem.Poisson(space, nu=1.0, dirichlet={"left": exact, "right": exact, "walls": exact},
                         neumann={"hole": g_hole}).solve()
        torch.testing.assert_close(u, space.interpolate(exact), atol=1e-10, rtol=0)


def test_bad_input_is_named():
    mesh = dfem.mesh.box(1, 1, 1, cell="hex")
    inverted = mesh.cells_np.copy()
    inverted[:, [0, 4]] = inverted[:, [4, 0]]
    with pytest.raises(dfem.MeshError, match="negative volume or a non-positive Jacobian"):
        dfem.mesh.Mesh(mesh.nodes, inverted)
    tet = dfem.mesh.box(1, 1, 1, cell="tet")
    cells = tet.cells_np.copy()
    cells[0, [1, 2]] = cells[0, [2, 1]]
    with pytest.raises(dfem.MeshError, match=r"e\.g\. cell\(s\) \[0\]"):
        dfem.mesh.Mesh(tet.nodes, cells)
    triples = np.array(list(itertools.combinations(range(tet.n_nodes), 3)))
    not_a_face = triples[tet.face_table.lookup(triples) < 0][0]
    with pytest.raises(dfem.MeshError, match="'lid' names face .* not a face of any cell"):
        dfem.mesh.Mesh(tet.nodes, tet.cells_np, {"lid": [not_a_face]})
    with pytest.raises(dfem.MeshError, match="facets of tetrahedra have 3 vertices"):
        dfem.mesh.Mesh(tet.nodes, tet.cells_np, {"lid": [[0, 1]]})
    space = dfem.FunctionSpace(tet, "P1", shape=(3,))
    with pytest.raises(dfem.DfemError, match="plane='stress' is a 2D option"):
        dfem.LinearElasticity(space, plane="stress")
    with pytest.raises(dfem.DfemError, match="uses z, but the mesh is 2D"):
        square = dfem.FunctionSpace(dfem.mesh.unit_square(2), "Q1")
        dfem.Poisson(square, f=Expression("z"),
                     dirichlet={"boundary": 0.0}).solve()


def test_case_file_2d_option_on_a_3d_mesh(tmp_path):
    from dfem.problems.case import Case

    with pytest.raises(dfem.DfemError, match="mesh.diagonal .* is a 2D option"):
        Case.load(CASE, overrides=['mesh.diagonal="left"'])
    with pytest.raises(dfem.DfemError, match="mesh.cell .* is a 2D option"):
        Case.load(CASE, overrides=['mesh.cell="quad"'])
