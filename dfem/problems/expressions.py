"""A small, safe evaluator of math expressions in x, y, z (and u or t), on torch tensors.

Case files give coefficients as text such as ``"1 + x**2 * y"`` or
``"2*pi**2*sin(pi*x)*sin(pi*y)"``. The text is parsed with :mod:`ast` and only
numbers, the names ``x, y, z, u, t, pi, e`` (``z`` on 3D meshes only, ``u`` and ``t``
where the caller allows them), the operators ``+ - * / **`` (unary ``+ -``)
and calls of whitelisted math functions are accepted; anything else (attributes,
subscripts, other names, keywords, lambdas, comprehensions) is rejected with a
:class:`DfemError`. The result is evaluated with torch functions, so it stays
differentiable. Never ``eval`` of arbitrary text.

The time ``t`` is a variable of the data of transient cases only (the source, the
boundary values and the exact solution): :func:`time_coefficient` turns such a value
into ``fn(x, t)`` when it uses ``t`` and into ``fn(x)`` when it does not, the two forms
:class:`dfem.Heat` tells apart by their positional parameters.
"""

from __future__ import annotations

import ast
import math
import operator

import torch

from dfem.exceptions import DfemError

FUNCTIONS = {
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "tanh": torch.tanh,
    "sinh": torch.sinh,
    "cosh": torch.cosh,
    "arctan": torch.atan,
    "atan": torch.atan,
    "asin": torch.asin,
    "acos": torch.acos,
}
CONSTANTS = {"pi": math.pi, "e": math.e}
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
MAX_LENGTH = 10_000
#: The coordinates an expression may use (z only on a 3D mesh).
SPACE = ("x", "y", "z")
#: The coordinates and the time: the variables of time-dependent data.
SPACE_TIME = (*SPACE, "t")


class Expression:
    """A parsed expression; call it with ``x`` of shape (..., dim) (and ``u`` if it uses u).

    Parameters
    ----------
    text : str
        The expression.
    variables : tuple of str
        Names allowed besides the constants: ``("x", "y", "z")``, ``("x", "y", "z", "u")``
        or :data:`SPACE_TIME`.
    name : str, optional
        What the expression is (``"problem.nu"``), for error messages.

    Attributes
    ----------
    uses_u, uses_t : bool
        Whether the expression uses ``u`` / ``t``.
    """

    def __init__(self, text: str, variables: tuple[str, ...] = SPACE, name: str | None = None):
        self.text = str(text)
        self.variables = variables
        self.name = name
        if len(self.text) > MAX_LENGTH:
            raise DfemError(f"expression is {len(self.text)} characters long; the limit is "
                            f"{MAX_LENGTH}.")
        try:
            tree = ast.parse(self.text, mode="eval")
            self._check(tree.body)
        except SyntaxError as exc:
            raise DfemError(f"cannot parse expression {self.text!r}: {exc.msg}.") from exc
        except (RecursionError, MemoryError) as exc:
            raise DfemError(f"expression {self.text[:40]!r}... is nested too deeply.") from exc
        self._tree = tree.body
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        self.uses_u = "u" in names
        self.uses_t = "t" in names

    def _check(self, node) -> None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                self._reject(f"the constant {node.value!r}")
            if isinstance(node.value, int) and abs(node.value) > 2**1023:
                self._reject("a number too large for float64")
        elif isinstance(node, ast.Name):
            if node.id == "t" and "t" not in self.variables:
                where = f"{self.name} = {self.text!r}" if self.name else f"expression {self.text!r}"
                raise DfemError(
                    f"{where} uses the time t, which only the source f, the boundary values "
                    f"(not a Robin alpha) and exact.u of a transient case (a case with a [time] "
                    f"table) may use."
                )
            if node.id not in self.variables and node.id not in CONSTANTS:
                allowed = ", ".join([*self.variables, *CONSTANTS])
                self._reject(f"the name {node.id!r} (allowed: {allowed} and functions)")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                self._reject(f"the operator {type(node.op).__name__}")
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                self._reject(f"the operator {type(node.op).__name__}")
            self._check(node.operand)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                self._reject(f"the function {name!r} (allowed: {', '.join(sorted(FUNCTIONS))})")
            if node.keywords or len(node.args) != 1:
                self._reject(f"the call {ast.unparse(node)!r} (functions take one argument)")
            self._check(node.args[0])
        else:
            self._reject(f"{type(node).__name__} syntax")

    def _reject(self, what: str):
        raise DfemError(f"expression {self.text!r} uses {what}, which is not allowed.")

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __call__(self, *args, t=None) -> torch.Tensor:
        """``expr(x)`` or, for expressions in u, ``expr(u, x)`` (the order of nonlinear nu);
        ``t`` (a number or a 0-d tensor) is the time of expressions in t."""
        if len(args) == 1:
            (x,), u = args, None
        else:
            u, x = args
        if t is not None:
            t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        env = {"x": x[..., 0], "y": x[..., 1], "z": x[..., 2] if x.shape[-1] > 2 else None,
               "u": u, "t": t, "like": x}
        try:
            value = self._eval(self._tree, env)
        except RecursionError as exc:
            raise DfemError(f"expression {self.text[:40]!r}... is nested too deeply.") from exc
        return value.to(dtype=x.dtype).expand(x.shape[:-1])

    def _eval(self, node, env):
        # constants are tensors too, so 1/0 or 2**10000 give inf (caught as a non-finite
        # coefficient) instead of raising from Python float arithmetic
        like = env["like"]
        if isinstance(node, ast.Constant):
            return torch.tensor(float(node.value), dtype=like.dtype, device=like.device)
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return torch.tensor(CONSTANTS[node.id], dtype=like.dtype, device=like.device)
            if env[node.id] is None:
                if node.id == "z":
                    raise DfemError(f"expression {self.text!r} uses z, but the mesh is 2D; "
                                    "z exists on 3D meshes only.")
                if node.id == "t":
                    raise DfemError(f"expression {self.text!r} uses t; evaluate it at a time "
                                    f"(fn(x, t)).")
                raise DfemError(
                    f"expression {self.text!r} uses u, which is only allowed for nu(u)."
                )
            return env[node.id]
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, env))
        return FUNCTIONS[node.func.id](self._eval(node.args[0], env))


def coefficient(value, name: str, variables: tuple[str, ...] = SPACE):
    """A case-file value as a coefficient: a finite number, an :class:`Expression`, or a
    named random field (a table; see :mod:`dfem.problems.fields`)."""
    if isinstance(value, bool):
        raise DfemError(f"{name} must be a number or an expression, got {value!r}.")
    if isinstance(value, (int, float)):
        if not (isinstance(value, float) or abs(value) <= 2**1023) or not math.isfinite(value):
            raise DfemError(f"{name} must be a finite number, got {value!r}.")
        return float(value)
    if isinstance(value, str):
        return Expression(value, variables, name=name)
    if isinstance(value, dict):
        if "u" in variables:
            raise DfemError(
                f"{name} depends on u here, so it must be an expression; a field sampler "
                f"gives a function of x and y only."
            )
        from dfem.problems.fields import field_coefficient

        return field_coefficient(value, name)
    raise DfemError(
        f"{name} must be a number, an expression string or a field table "
        f'(e.g. {{field = "lognormal", w = [...]}}), got {type(value).__name__}.'
    )


class TimeExpression:
    """An expression in t as the callable ``fn(x, t)`` of time-dependent data.

    Its two positional parameters make :func:`dfem.problems.heat.depends_on_time` true, so
    :class:`dfem.Heat` evaluates it at every time level. Called without ``t`` it raises a
    :class:`DfemError` (it is not a function of x alone).
    """

    def __init__(self, expression: Expression):
        self.expression = expression

    def __repr__(self) -> str:
        return f"TimeExpression({self.expression.text!r})"

    def __call__(self, x: torch.Tensor, t=None) -> torch.Tensor:
        if t is None:
            raise DfemError(f"{self.expression.name or 'the expression'} = "
                            f"{self.expression.text!r} depends on t: call it as fn(x, t).")
        return self.expression(x, t=t)


class SpaceExpression:
    """An expression without t as the callable ``fn(x)``: data constant in time.

    (An :class:`Expression` itself takes ``*args``, which reads as a function of
    ``(x, t)``, so time-stepping code needs this one-argument form.)
    """

    def __init__(self, expression: Expression):
        self.expression = expression

    def __repr__(self) -> str:
        return f"SpaceExpression({self.expression.text!r})"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.expression(x)


def time_coefficient(value, name: str, time: bool = True):
    """A case-file value of a transient problem: a finite number, ``fn(x)`` or ``fn(x, t)``.

    Parameters
    ----------
    value : number, str or dict
        As for :func:`coefficient`.
    name : str
        The key, for error messages (``"problem.f"``).
    time : bool
        Whether the value may use ``t`` (the source, boundary values and the exact
        solution); otherwise ``t`` is an error naming ``name``.

    Returns
    -------
    float or callable
        A number; :class:`TimeExpression` ``fn(x, t)`` for an expression that uses ``t``;
        :class:`SpaceExpression` ``fn(x)`` for one that does not; a field table's
        ``fn(x)``.
    """
    value = coefficient(value, name, SPACE_TIME if time else SPACE)
    if isinstance(value, Expression):
        return TimeExpression(value) if value.uses_t else SpaceExpression(value)
    return value
