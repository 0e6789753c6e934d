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
    with pytest.raises(DfemError, match="an expression string, a field table"):
        coefficient([1, 2], "nu")


@pytest.mark.parametrize("text", ["1/0", "0**-1", "2**10000", "(-1)**0.5", "sin(1e308*10)"])
def test_constant_overflow_is_a_dfem_error_naming_the_key(text):
    # torch arithmetic gives inf/NaN (never a Python ZeroDivisionError/OverflowError), and
    # the evaluation refuses a non-finite value, naming the key
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(DfemError, match=r"problem\.f = .* is not finite: (NaN|inf) at 3 of 3"):
        Expression(text, name="problem.f")(x)


def test_too_deep_or_too_long_expressions():
    with pytest.raises(DfemError, match="nested too deeply|limit"):
        Expression("-" * 5000 + "x")
    with pytest.raises(DfemError, match="too large"):
        Expression("1" + "0" * 400)
    with pytest.raises(DfemError, match="finite"):
        coefficient(10**400, "nu")


# ----------------------------------------------------------------------------- piecewise
X = torch.tensor([[0.1, 0.2], [0.3, 0.9], [0.5, 0.5], [0.7, 0.1], [0.9, 0.8]],
                 dtype=torch.float64)
x0, y0 = X[:, 0], X[:, 1]


@pytest.mark.parametrize("text,expected", [
    ("where(x < 0.5, 10, 1)", torch.where(x0 < 0.5, 10.0, 1.0).double()),
    ("where(x <= 0.5, 10, 1)", torch.where(x0 <= 0.5, 10.0, 1.0).double()),
    ("where(x > 0.5, x, -y)", torch.where(x0 > 0.5, x0, -y0)),
    ("where(x >= 0.5, x, -y)", torch.where(x0 >= 0.5, x0, -y0)),
    ("where(x == 0.5, 1, 0)", (x0 == 0.5).double()),
    ("where(x != 0.5, 1, 0)", (x0 != 0.5).double()),
    ("where(0.2 < x < 0.8, 1, 0)", ((0.2 < x0) & (x0 < 0.8)).double()),
    ("where(0.2 < x <= 0.7 < y + 1, 1, 0)", ((0.2 < x0) & (x0 <= 0.7)).double()),
    ("where(x < 0.5 and y > 0.5, 1, 0)", ((x0 < 0.5) & (y0 > 0.5)).double()),
    ("where(x < 0.2 or y < 0.2 or x > 0.8, 1, 0)",
     ((x0 < 0.2) | (y0 < 0.2) | (x0 > 0.8)).double()),
    ("where(not x < 0.5, 1, 0)", (x0 >= 0.5).double()),
    ("where(x < 0.5, where(y < 0.5, 1, 2), 3)",
     torch.where(x0 < 0.5, torch.where(y0 < 0.5, 1.0, 2.0), 3.0).double()),
    ("1 + 9*where(x < 0.5, 1, 0)", 1 + 9 * (x0 < 0.5).double()),
    ("min(x, y) + max(0, x - 0.5)", torch.minimum(x0, y0) + torch.clamp(x0 - 0.5, min=0)),
])
def test_piecewise_expressions(text, expected):
    torch.testing.assert_close(Expression(text)(X), expected)


def test_where_passes_the_gradient_of_the_branch_it_takes():
    x = X.clone().requires_grad_(True)
    value = Expression("where(x < 0.5, x**2, 3*y)")(x)
    (grad,) = torch.autograd.grad(value.sum(), x)
    left = X[:, 0] < 0.5
    torch.testing.assert_close(grad[left, 0], 2 * X[left, 0])
    assert grad[left, 1].eq(0).all() and grad[~left, 0].eq(0).all()
    assert grad[~left, 1].eq(3).all()


@pytest.mark.parametrize("text,fragment", [
    ("x < 0.5", "is a condition .*, not a number; write where"),
    ("(x < 0.5)*2", "uses the condition 'x < 0.5' as a number"),
    ("-(x < 1)", "as a number"),
    ("where(x, 1, 2)", "first argument .* must be a condition"),
    ("where(x < 1, x < 2, 1)", "as a number"),
    ("x and y", "and, or and not join conditions"),
    ("not x", "and, or and not join conditions"),
    ("x & (y < 1)", "BitAnd.*join conditions with and, or, not"),
    ("x in y", "comparison In"),
    ("x is y", "comparison Is"),
    ("where(x < 1, 1)", "where takes three arguments"),
    ("min(x)", "min takes two arguments"),
    ("if_else(x < 1, 1, 2)", "function 'if_else'"),
    ("1 if x < 0.5 else 2", "IfExp.*write where"),
    ("where(x < 1, 1, 2, 3)", "three arguments"),
    ("where(cond=x < 1, a=1, b=2)", "three arguments"),
    ("x.__class__", "Attribute"),
    ("torch.where(x < 1, 1, 2)", "function 'torch.where'"),
    ("(lambda: 1)()", "function"),
    ("[x for x in (1, 2)]", "ListComp"),
    ("{x: 1}", "Dict"),
    ("(x, y)", "Tuple"),
    ("x[0] < 1", "Subscript"),
    ("where(x < 'a', 1, 2)", "constant 'a'"),
    ("where(x < True, 1, 2)", "constant True"),
    ("eval('1')", "function 'eval'"),
    ("y := 1", "cannot parse"),
    ("x < 1 < y if y else 2", "IfExp"),
])
def test_rejects_bad_piecewise_syntax(text, fragment):
    with pytest.raises(DfemError, match=fragment):
        Expression(text, name="problem.nu")


def test_nonfinite_value_names_the_key_and_the_point():
    x = torch.tensor([[0.1, 0.2], [0.5, 0.25], [0.5, 0.75]], dtype=torch.float64)
    with pytest.raises(DfemError, match=r"problem.f = '\(x-0.5\)/abs\(x-0.5\)' is not finite: "
                                        r"NaN at 2 of 3 points, the first at x = 0.5, y = 0.25"):
        Expression("(x-0.5)/abs(x-0.5)", name="problem.f")(x)
    with pytest.raises(DfemError, match=r"inf at 1 of 3 points, the first at x = 0.1, "
                                        r"y = 0.2, t = 2"):
        Expression("t/(x - 0.1)", variables=("x", "y", "z", "t"), name="problem.f")(x, t=2.0)
