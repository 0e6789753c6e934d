"""Point tags (named node sets) for point loads and single supports: tagging, refinement,
Dirichlet conditions and concentrated loads on them."""

import pytest
import torch

import dfem
from dfem.exceptions import DfemError, MeshError


def test_tag_points_by_coordinates_and_by_predicate():
    mesh = dfem.mesh.rectangle(4, 2, "quad", x=(0.0, 2.0))
    assert mesh.tag_points("load", [[0.0, 1.0]]).tolist() == [10]
    corner = mesh.tag_points("corner", lambda x: (x[:, 0] > 1.99) & (x[:, 1] < 1e-9))
    assert torch.allclose(mesh.nodes[corner], torch.tensor([[2.0, 0.0]], dtype=torch.float64))
    with pytest.raises(MeshError, match="is not a node"):
        mesh.tag_points("off", [[0.25, 0.3]])
    with pytest.raises(MeshError, match="no node satisfies"):
        mesh.tag_points("none", lambda x: x[:, 0] > 5)
    with pytest.raises(MeshError, match="already a boundary"):
        mesh.tag_points("left", [[0.0, 0.0]])
    refined = dfem.mesh.refine(mesh)
    assert torch.allclose(refined.nodes[refined.point_tags["load"]],
                          torch.tensor([[0.0, 1.0]], dtype=torch.float64))
    assert "points {load: 1, corner: 1}" in repr(mesh)


def test_point_tags_give_vertex_dofs_and_refuse_facet_terms():
    mesh = dfem.mesh.rectangle(2, 2, "tri")
    mesh.tag_points("centre", [[0.5, 0.5]])
    space = dfem.FunctionSpace(mesh, "P2")
    (dof,) = space.boundary_dofs("centre").tolist()
    assert torch.allclose(space.dof_coordinates[dof], torch.tensor([0.5, 0.5],
                                                                   dtype=torch.float64))
    with pytest.raises(MeshError, match="point tag"):
        dfem.Poisson(space, neumann={"centre": 1.0})


def test_point_load_and_point_support_match_a_hand_assembled_system():
    mesh = dfem.mesh.rectangle(6, 2, "quad", x=(0.0, 3.0))
    mesh.tag_points("tip", [[3.0, 1.0]])
    mesh.tag_points("pin", [[0.0, 0.0]])
    space = dfem.FunctionSpace(mesh, "Q1", shape=(2,))
    problem = dfem.LinearElasticity(space, E=100.0, plane="stress",
                                    dirichlet={"left": {"x": 0.0}, "pin": {"y": 0.0}},
                                    point_loads={"tip": [0.0, -1.0]})
    u = problem.solve()
    # by hand: the same stiffness, the unit load at the tip's y dof, the same fixed dofs
    K = problem.tangent(format="scipy").toarray()
    tip = int(mesh.point_tags["tip"][0])
    F = torch.zeros(space.n_dofs, dtype=torch.float64)
    F[2 * tip + 1] = -1.0
    fixed = torch.cat([2 * space.scalar.boundary_dofs("left"),
                       2 * space.scalar.boundary_dofs("pin") + 1])
    free = torch.ones(space.n_dofs, dtype=torch.bool)
    free[fixed] = False
    Kff = torch.as_tensor(K)[free][:, free]
    expected = torch.zeros(space.n_dofs, dtype=torch.float64)
    expected[free] = torch.linalg.solve(Kff, F[free])
    assert torch.allclose(u, expected, atol=1e-12)
    # the energy of the solution is minus half the work of the load; the generic path agrees
    assert float(problem.energy(u)) == pytest.approx(-0.5 * float(F @ u), rel=1e-10)
    generic = dfem.EnergyProblem(space, problem.density, params=problem.params,
                                 dirichlet=problem.dirichlet, point_loads=problem.point_loads,
                                 kernel=False, quadratic=True)
    assert torch.allclose(generic.solve(), u, atol=1e-10)


def test_bad_point_loads_are_named():
    mesh = dfem.mesh.rectangle(2, 2, "quad")
    mesh.tag_points("tip", [[1.0, 1.0]])
    space = dfem.FunctionSpace(mesh, "Q1", shape=(2,))
    with pytest.raises(DfemError, match="2 numbers"):
        dfem.LinearElasticity(space, dirichlet={"left": 0.0}, point_loads={"tip": 1.0})
    with pytest.raises(MeshError, match="does not exist"):
        dfem.LinearElasticity(space, dirichlet={"left": 0.0}, point_loads={"nowhere": [0, 1]})
