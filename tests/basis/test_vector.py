"""Vector-valued spaces: dof layout, component views, interpolation, evaluation, errors."""

from __future__ import annotations

import math

import pytest
import torch

import dfem
from dfem.basis.nurbs.patch import quarter_annulus
from dfem.basis.nurbs.space import IsogeometricSpace
from dfem.exceptions import DfemError


def field(x):
    return torch.stack([torch.sin(x[..., 0]) * x[..., 1], x[..., 0] ** 2 - x[..., 1]], dim=-1)


@pytest.mark.parametrize("element", ["P1", "P2", "P3", "Q1", "Q2", "Q3"])
def test_layout_is_interleaved_per_node(element):
    mesh = dfem.mesh.rectangle(3, 2, "tri" if element[0] == "P" else "quad")
    V = dfem.FunctionSpace(mesh, element, shape=(2,))
    S = V.scalar
    assert isinstance(V, dfem.VectorSpace) and V.n_dofs == 2 * S.n_dofs
    # column a * d + i of the cell dofs is component i of scalar basis function a
    torch.testing.assert_close(V.cell_dofs[:, 0::2], 2 * S.cell_dofs)
    torch.testing.assert_close(V.cell_dofs[:, 1::2], 2 * S.cell_dofs + 1)
    torch.testing.assert_close(V.component_dofs("y"), torch.arange(1, V.n_dofs, 2))
    left = S.boundary_dofs("left")
    torch.testing.assert_close(V.boundary_dofs("left", component="x"), 2 * left)
    assert set(V.boundary_dofs("left").tolist()) == set((2 * left).tolist()) | set(
        (2 * left + 1).tolist()
    )
    # interpolation holds each component's scalar interpolant
    u = V.interpolate(field)
    torch.testing.assert_close(u[0::2], S.interpolate(lambda x: field(x)[..., 0]))
    torch.testing.assert_close(V.components(u)[:, 1], S.interpolate(lambda x: field(x)[..., 1]))


@pytest.mark.parametrize("element", ["P2", "Q2"])
def test_values_and_gradients_at_quadrature_match_the_scalar_space(element):
    mesh = dfem.mesh.rectangle(3, 3, "tri" if element[0] == "P" else "quad")
    V = dfem.FunctionSpace(mesh, element, shape=(2,))
    u = V.interpolate(field)
    values, grads = V.at_quadrature(u)
    for i in range(2):
        v_i, g_i = V.scalar.at_quadrature(u[i::2])
        torch.testing.assert_close(values[..., i], v_i)
        torch.testing.assert_close(grads[..., i, :], g_i)


def test_errors_of_a_vector_field_combine_the_components():
    mesh = dfem.mesh.rectangle(6, 6, "quad")
    V = dfem.FunctionSpace(mesh, "Q2", shape=(2,))
    u = V.interpolate(field)
    total = dfem.errors(V, u, field)
    parts = [dfem.errors(V.scalar, u[i::2], lambda x, i=i: field(x)[..., i]) for i in range(2)]
    assert total["l2"] == pytest.approx(math.hypot(parts[0]["l2"], parts[1]["l2"]), rel=1e-12)
    assert total["h1"] == pytest.approx(math.hypot(parts[0]["h1"], parts[1]["h1"]), rel=1e-12)
    # a field in the space has no error
    exact_q2 = lambda x: torch.stack([x[..., 0] * x[..., 1] ** 2, 1 - x[..., 0] ** 2], -1)  # noqa: E731
    assert dfem.errors(V, V.interpolate(exact_q2), exact_q2)["h1"] < 1e-12


def test_nurbs_vector_space_and_point_evaluation_per_component():
    patch = quarter_annulus(1.0, 2.0).subdivide(3)
    V = IsogeometricSpace(patch, shape=(2,))
    assert isinstance(V, dfem.VectorSpace) and V.n_dofs == 2 * V.scalar.n_dofs
    rigid = lambda x: torch.stack([-x[..., 1], x[..., 0]], -1) + torch.tensor([1.0, 2.0])  # noqa: E731
    u = V.interpolate(rigid)
    values, grads = V.at_quadrature(u)
    points = V.geometry().points
    # NURBS reproduce linear fields of x exactly (the geometry is in the space)
    torch.testing.assert_close(values, rigid(points), atol=1e-10, rtol=0)
    torch.testing.assert_close(grads[..., 0, 1], -torch.ones_like(grads[..., 0, 1]), atol=1e-9,
                               rtol=0)


def test_bad_shapes_and_components_are_named():
    mesh = dfem.mesh.rectangle(2, 2, "quad")
    with pytest.raises(DfemError, match="shape must be"):
        dfem.FunctionSpace(mesh, "Q1", shape=(2, 2))
    V = dfem.FunctionSpace(mesh, "Q1", shape=(2,))
    with pytest.raises(DfemError, match="unknown component 'z'"):
        V.component_dofs("z")
    with pytest.raises(DfemError, match="2 values per point"):
        V.interpolate(lambda x: torch.ones(*x.shape[:-1], 3))


def test_point_evaluation_of_a_vector_field():
    mesh = dfem.mesh.rectangle(4, 4, "tri")
    V = dfem.FunctionSpace(mesh, "P2", shape=(2,))
    quadratic = lambda x: torch.stack([x[..., 0] * x[..., 1], 1 - x[..., 1] ** 2], -1)  # noqa: E731
    u = V.interpolate(quadratic)
    points = torch.tensor([[0.31, 0.72], [0.9, 0.05], [0.5, 0.5]], dtype=torch.float64)
    probe = dfem.basis.PointEvaluation(V, points)
    torch.testing.assert_close(probe(u), quadratic(points), rtol=0, atol=1e-13)
    batch = torch.stack([u, 2 * u])
    torch.testing.assert_close(probe(batch)[1], 2 * quadratic(points), rtol=0, atol=1e-13)


def test_point_evaluation_on_nurbs_patches_scalar_and_vector():
    """Functions in the space (linear fields: the geometry is in it) come back exactly at
    points on curved sides, at the kink of the plate with a hole and inside; a point outside
    the patch is an error."""
    from dfem.basis.nurbs.patch import plate_with_hole

    annulus = IsogeometricSpace(quarter_annulus(1.0, 2.0).elevate(3, 3).subdivide(4))
    linear = lambda x: 3 * x[..., 0] - 0.5 * x[..., 1] + 1  # noqa: E731
    r = torch.tensor([1.0, 1.3, 1.77, 2.0], dtype=torch.float64)
    t = torch.tensor([0.0, 0.4, 1.1, math.pi / 2], dtype=torch.float64)
    points = torch.stack([r * torch.cos(t), r * torch.sin(t)], -1)
    probe = dfem.basis.PointEvaluation(annulus, points)
    torch.testing.assert_close(probe(annulus.interpolate(linear)), linear(points), rtol=0,
                               atol=1e-12)
    plate = IsogeometricSpace(plate_with_hole(1.0, 4.0).subdivide(4, 8), shape=(2,))
    field = lambda x: torch.stack([x[..., 0], -2 * x[..., 1]], -1)  # noqa: E731
    points = torch.tensor([[0.0, 1.0], [4.0, 4.0], [2.0, 3.0], [3.9, 0.2], [0.0, 4.0]],
                          dtype=torch.float64)
    probe = dfem.basis.PointEvaluation(plate, points)
    torch.testing.assert_close(probe(plate.interpolate(field)), field(points), rtol=0,
                               atol=1e-12)
    with pytest.raises(DfemError, match="outside the NURBS patch"):
        dfem.basis.PointEvaluation(plate, [[0.2, 0.2]])  # inside the hole
