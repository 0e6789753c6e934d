"""The safe expression evaluator."""

import math

import pytest
import torch

from dfem.exceptions import DfemError
from dfem.problems.expressions import Expression, coefficient


def test_evaluates_on_tensors_and_is_differentiable():
    x = torch.tensor([[0.25, 0.5], [0.1, 0.9]], dtype=torch.float64, requires_grad=True)
    e = Expression("2*pi**2*sin(pi*x)*sin(pi*y) + exp(-x) - 3/y")
    X, Y = x[:, 0], x[:, 1]
    expected = (
        2 * math.pi**2 * torch.sin(math.pi * X) * torch.sin(math.pi * Y) + torch.exp(-X) - 3 / Y
    )
    torch.testing.assert_close(e(x), expected)
    (g,) = torch.autograd.grad(e(x).sum(), x)
    (g_ref,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(g, g_ref)


def test_constant_expression_broadcasts():
    x = torch.zeros(4, 3, 2, dtype=torch.float64)
    assert Expression("2*pi")(x).shape == (4, 3)


def test_u_expressions():
    e = Expression("1 + u**2", variables=("x", "y", "u"))
    u = torch.tensor([1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(e(u, torch.zeros(2, 2, dtype=torch.float64)), 1 + u**2)
    assert e.uses_u
    with pytest.raises(DfemError, match="only allowed for nu"):
        Expression("u + 1", variables=("x", "y", "u"))(torch.zeros(2, 2, dtype=torch.float64))


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("__import__('os').system('ls')", "not allowed"),
        ("x.real", "Attribute"),
        ("x[0]", "Subscript"),
        ("open('f')", "function 'open'"),
        ("w + 1", "name 'w'"),
        ("u + 1", "name 'u'"),
        ("sin(x, y)", "one argument"),
        ("x if y else 1", "IfExp"),
        ("x // 2", "FloorDiv"),
        ("'a'", "constant 'a'"),
        ("1 +", "cannot parse"),
        ("lambda: 1", "Lambda"),
    ],
)
def test_rejects_unsafe_or_unknown_syntax(text, fragment):
    with pytest.raises(DfemError, match=fragment):
        Expression(text)


def test_coefficient_conversion():
    assert coefficient(3, "nu") == 3.0
    assert isinstance(coefficient("x + y", "nu"), Expression)
    with pytest.raises(DfemError, match="nu must be a number"):
        coefficient(True, "nu")
    with pytest.raises(DfemError, match="an expression string or a field table"):
        coefficient([1, 2], "nu")


@pytest.mark.parametrize("text", ["1/0", "0**-1", "2**10000", "(-1)**0.5", "sin(1e308*10)"])
def test_constant_overflow_gives_nonfinite_values_not_exceptions(text):
    x = torch.zeros(3, 2, dtype=torch.float64)
    assert not torch.isfinite(Expression(text)(x)).all()


def test_too_deep_or_too_long_expressions():
    with pytest.raises(DfemError, match="nested too deeply|limit"):
        Expression("-" * 5000 + "x")
    with pytest.raises(DfemError, match="too large"):
        Expression("1" + "0" * 400)
    with pytest.raises(DfemError, match="finite"):
        coefficient(10**400, "nu")
