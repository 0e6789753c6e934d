"""Bad input raises DfemError naming the problem and the fix."""

from __future__ import annotations

import pytest
import torch

from dfem.basis.nurbs import (
    NURBSSurface,
    basis_functions,
    clamped_knots,
    curve_points,
    find_spans,
    surface_points,
)
from dfem.exceptions import DfemError

f64 = torch.float64


def test_wrong_knot_vector_length():
    cp = torch.zeros(8, 2, dtype=f64)
    knots = clamped_knots(8, 3)[:-1]  # 11 entries
    with pytest.raises(
        DfemError,
        match=r"11 entries, but 8 control points of degree 3 need "
        r"12 \(n \+ p \+ 1\)",
    ):
        curve_points(cp, None, knots, 3, [0.5])
    with pytest.raises(
        DfemError,
        match=r"knots_v has 8 entries, but 6 control points of "
        r"degree 2 need 9",
    ):
        surface_points(
            torch.zeros(4, 6, 3), None, clamped_knots(4, 2), clamped_knots(5, 2), 2, 2, [0.5], [0.5]
        )
    with pytest.raises(DfemError, match="too few for degree 3"):
        basis_functions(torch.tensor([0.0, 0, 0, 1, 1, 1]), 3, [0.5])


def test_decreasing_knots():
    knots = torch.tensor([0, 0, 0, 0.6, 0.5, 1, 1, 1], dtype=f64)
    with pytest.raises(DfemError, match=r"decreases at index 4 \(0.6 -> 0.5\).*non-decreasing"):
        curve_points(torch.zeros(5, 2, dtype=f64), None, knots, 2, [0.5])
    with pytest.raises(DfemError, match="decreases"):
        find_spans(knots, 2, [0.5])


def test_too_many_repeated_knots():
    knots = torch.tensor([0, 0, 0, 0.5, 0.5, 0.5, 0.5, 1, 1, 1], dtype=f64)
    with pytest.raises(DfemError, match="repeated 4 times, more than degree \\+ 1 = 3"):
        basis_functions(knots, 2, [0.2])


def test_non_positive_weights():
    cp = torch.zeros(4, 2, dtype=f64)
    w = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=f64)
    with pytest.raises(DfemError, match=r"weights must be positive.*got 0 at index \(1,\)"):
        curve_points(cp, w, clamped_knots(4, 2), 2, [0.5])
    w2 = torch.ones(3, 3, dtype=f64)
    w2[2, 1] = -0.5
    with pytest.raises(DfemError, match=r"got -0.5 at index \(2, 1\)"):
        surface_points(
            torch.zeros(3, 3, 3), w2, clamped_knots(3, 2), clamped_knots(3, 2), 2, 2, [0.5], [0.5]
        )
    with pytest.raises(DfemError, match="positive"):
        curve_points(cp, torch.tensor([1.0, float("nan"), 1, 1]), clamped_knots(4, 2), 2, [0.5])
    with pytest.raises(DfemError, match="one weight per control point"):
        curve_points(cp, torch.ones(5, dtype=f64), clamped_knots(4, 2), 2, [0.5])
    with pytest.raises(DfemError, match="positive"):
        NURBSSurface(torch.zeros(4, 4, 3), weights=-torch.ones(4, 4))


def test_parameter_values_outside_knot_range():
    knots = clamped_knots(5, 2)
    with pytest.raises(
        DfemError,
        match=r"knot range \[t_p, t_n\] = \[0, 1\]; got values in "
        r"\[-0.1, 0.5\]",
    ):
        curve_points(torch.zeros(5, 2, dtype=f64), None, knots, 2, [-0.1, 0.5])
    with pytest.raises(DfemError, match="knot range"):
        find_spans(knots, 2, torch.tensor([1.0 + 1e-15], dtype=f64))
    unclamped = torch.arange(9, dtype=f64)  # p = 2: domain [2, 6]
    with pytest.raises(DfemError, match=r"\[2, 6\]"):
        basis_functions(unclamped, 2, [1.5])
    with pytest.raises(DfemError, match="NaN"):
        find_spans(knots, 2, [float("nan")])


def test_degree_zero_surface_with_derivatives():
    cp = torch.zeros(3, 4, 3, dtype=f64)
    tu = torch.tensor([0.0, 0.3, 0.6, 1.0], dtype=f64)
    with pytest.raises(DfemError, match="degree-0 .*surface in u are not defined"):
        surface_points(cp, None, tu, clamped_knots(4, 1), 0, 1, [0.5], [0.5], derivatives=True)
    with pytest.raises(DfemError, match="degree-0 .*surface in v"):
        surface_points(
            cp.transpose(0, 1), None, clamped_knots(4, 1), tu, 1, 0, [0.5], [0.5], derivatives=True
        )
    with pytest.raises(DfemError, match="degree-0 .*curve"):
        curve_points(cp[:, 0], None, tu, 0, [0.5], derivatives=True)
    # without derivatives a degree-0 surface is fine
    assert surface_points(cp, None, tu, clamped_knots(4, 1), 0, 1, [0.5], [0.5]).shape == (1, 1, 3)


def test_other_bad_options():
    knots = clamped_knots(5, 2)
    with pytest.raises(DfemError, match="knot_grad must be one of"):
        basis_functions(knots, 2, [0.5], knot_grad="smooth")
    with pytest.raises(DfemError, match="sigma"):
        basis_functions(knots, 2, [0.5], knot_grad="gaussian", sigma=0.0)
    with pytest.raises(DfemError, match="degree must be a non-negative integer"):
        basis_functions(knots, -1, [0.5])
    with pytest.raises(DfemError, match="derivatives must be"):
        basis_functions(knots, 2, [0.5], derivatives=-1)
    with pytest.raises(DfemError, match="same length"):
        surface_points(
            torch.zeros(5, 5, 3), None, knots, knots, 2, 2, [0.1, 0.2], [0.3], grid=False
        )
    with pytest.raises(DfemError, match="distinct interior knots"):
        NURBSSurface(
            torch.zeros(5, 5, 3),
            knots_u=torch.tensor([0, 0, 0, 0.5, 0.5, 1, 1, 1.0]),
            degree_u=2,
            degree_v=2,
            learn_knots=True,
        )
    with pytest.raises(DfemError, match="empty parameter domain"):
        basis_functions(torch.tensor([-1.0, 0, 0, 1]), 1, [0.0])
    with pytest.raises(DfemError, match="clamped_knots needs start < end"):
        clamped_knots(4, 2, start=1.0, end=0.0)
