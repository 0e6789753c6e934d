"""A small, safe evaluator of math expressions in x, y, z (and u or t), on torch tensors.

Case files give coefficients as text such as ``"1 + x**2 * y"`` or
``"2*pi**2*sin(pi*x)*sin(pi*y)"``. The text is parsed with :mod:`ast` and only
numbers, the names ``x, y, z, u, t, pi, e`` (``z`` on 3D meshes only, ``u`` and ``t``
where the caller allows them), the operators ``+ - * / **`` (unary ``+ -``), calls of
whitelisted math functions and, for piecewise data, conditions are accepted:

- comparisons ``< <= > >= == !=``, chained as in Python (``0.25 < x < 0.75``);
- ``and``, ``or``, ``not`` between conditions;
- ``where(cond, a, b)``: ``a`` where ``cond`` holds, else ``b`` (:func:`torch.where`);
- ``min(a, b)``, ``max(a, b)``.

A condition is not a number: ``where`` turns it into one (``(x < 0.5)*2`` and
``where(x, 1, 2)`` are errors that say so). Anything else (attributes, subscripts, other
names, keywords, lambdas, comprehensions, strings, ``a if c else b``) is rejected with a
:class:`DfemError`. The result is evaluated with torch functions, so it stays
differentiable (``where`` passes the gradient of the branch it takes). Never ``eval`` of
arbitrary text.

Every evaluation checks that the values are finite: an expression that is NaN or inf at
any point it is evaluated at (quadrature points, the vertices written to the output, the
boundary dofs) raises a :class:`DfemError` naming the expression's key and the first such
point. ``where`` evaluates both branches everywhere, so a branch may be non-finite where
the other one is taken (``where(x > 0, 1/x, 0)``), but its gradient there is NaN.

The time ``t`` is a variable of the data of transient cases only (the source, the
boundary values and the exact solution): :func:`dfem.problems.time_data.time_coefficient`
turns such a value into ``fn(x, t)`` when it uses ``t`` and into ``fn(x)`` when it does not,
the two forms :class:`dfem.Heat` tells apart by their positional parameters.
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
#: Functions of two numbers.
BINARY_FUNCTIONS = {"min": torch.minimum, "max": torch.maximum}
#: ``where(cond, a, b)``: the one function of a condition.
WHERE = "where"
CONSTANTS = {"pi": math.pi, "e": math.e}
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_COMPARE = {
    ast.Lt: torch.lt,
    ast.LtE: torch.le,
    ast.Gt: torch.gt,
    ast.GtE: torch.ge,
    ast.Eq: torch.eq,
    ast.NotEq: torch.ne,
}
_BOOL = {ast.And: torch.logical_and, ast.Or: torch.logical_or}
_HINTS = {
    "IfExp": "; write where(cond, a, b) for a value that depends on a condition",
    "BitAnd": "; join conditions with and, or, not",
    "BitOr": "; join conditions with and, or, not",
    "Invert": "; join conditions with and, or, not",
}
MAX_LENGTH = 10_000
#: The coordinates an expression may use (z only on a 3D mesh).
SPACE = ("x", "y", "z")
#: The coordinates and the time: the variables of time-dependent data.
SPACE_TIME = (*SPACE, "t")
_NUMBER, _CONDITION = "number", "condition"


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
            kind = self._check(tree.body)
        except SyntaxError as exc:
            raise DfemError(f"cannot parse expression {self.text!r}: {exc.msg}.") from exc
        except (RecursionError, MemoryError) as exc:
            raise DfemError(f"expression {self.text[:40]!r}... is nested too deeply.") from exc
        if kind == _CONDITION:
            raise DfemError(
                f"{self._label()} is a condition (true or false), not a number; write "
                f"where({self.text}, a, b) for the value a where it holds and b elsewhere."
            )
        self._tree = tree.body
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        self.uses_u = "u" in names
        self.uses_t = "t" in names

    def _label(self) -> str:
        return f"{self.name} = {self.text!r}" if self.name else f"expression {self.text!r}"

    def _check(self, node) -> str:
        """Reject what is not allowed; return whether ``node`` is a number or a condition."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                self._reject(f"the constant {node.value!r}")
            if isinstance(node.value, int) and abs(node.value) > 2**1023:
                self._reject("a number too large for float64")
            return _NUMBER
        if isinstance(node, ast.Name):
            if node.id == "t" and "t" not in self.variables:
                raise DfemError(
                    f"{self._label()} uses the time t, which only the source f, the boundary "
                    f"values (not a Robin alpha) and exact.u of a transient case (a case with "
                    f"a [time] table) may use."
                )
            if node.id not in self.variables and node.id not in CONSTANTS:
                allowed = ", ".join([*self.variables, *CONSTANTS])
                self._reject(f"the name {node.id!r} (allowed: {allowed} and functions)")
            return _NUMBER
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                self._reject(f"the operator {type(node.op).__name__}")
            self._numbers(node, node.left, node.right)
            return _NUMBER
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                self._conditions(node, node.operand)
                return _CONDITION
            if type(node.op) not in _UNARY:
                self._reject(f"the operator {type(node.op).__name__}")
            self._numbers(node, node.operand)
            return _NUMBER
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _COMPARE:
                    self._reject(f"the comparison {type(op).__name__} (allowed: < <= > >= == !=)")
            self._numbers(node, node.left, *node.comparators)
            return _CONDITION
        if isinstance(node, ast.BoolOp):
            self._conditions(node, *node.values)
            return _CONDITION
        if isinstance(node, ast.Call):
            return self._check_call(node)
        self._reject(f"{type(node).__name__} syntax")

    def _check_call(self, node: ast.Call) -> str:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        arity = {**dict.fromkeys(FUNCTIONS, 1), **dict.fromkeys(BINARY_FUNCTIONS, 2), WHERE: 3}
        if name not in arity:
            shown = name or ast.unparse(node.func)
            self._reject(f"the function {shown!r} (allowed: {', '.join(sorted(arity))})")
        n = arity[name]
        if node.keywords or len(node.args) != n:
            form = {1: "one argument", 2: f"two arguments: {name}(a, b)",
                    3: "three arguments: where(cond, a, b)"}[n]
            self._reject(f"the call {ast.unparse(node)!r} ({name} takes {form})")
        if name == WHERE:
            if self._check(node.args[0]) != _CONDITION:
                raise DfemError(
                    f"{self._label()}: the first argument of {ast.unparse(node)!r} must be a "
                    f"condition such as x < 0.5, got the number {ast.unparse(node.args[0])!r}."
                )
            self._numbers(node, *node.args[1:])
        else:
            self._numbers(node, *node.args)
        return _NUMBER

    def _numbers(self, parent, *nodes) -> None:
        for node in nodes:
            if self._check(node) == _CONDITION:
                raise DfemError(
                    f"{self._label()} uses the condition {ast.unparse(node)!r} as a number in "
                    f"{ast.unparse(parent)!r}; a condition becomes a number through "
                    f"where(cond, a, b)."
                )

    def _conditions(self, parent, *nodes) -> None:
        for node in nodes:
            if self._check(node) != _CONDITION:
                raise DfemError(
                    f"{self._label()}: and, or and not join conditions, but "
                    f"{ast.unparse(node)!r} in {ast.unparse(parent)!r} is a number; compare "
                    f"it (e.g. {ast.unparse(node)} > 0)."
                )

    def _reject(self, what: str):
        hint = next((h for key, h in _HINTS.items() if key in what), "")
        raise DfemError(f"expression {self.text!r} uses {what}, which is not allowed{hint}.")

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __call__(self, *args, t=None) -> torch.Tensor:
        """``expr(x)`` or, for expressions in u, ``expr(u, x)`` (the order of nonlinear nu);
        ``t`` (a number or a 0-d tensor) is the time of expressions in t.

        Raises :class:`DfemError` if a value is NaN or inf."""
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
        value = value.to(dtype=x.dtype).expand(x.shape[:-1])
        finite = torch.isfinite(value.detach())
        if not bool(finite.all()):
            self._not_finite(value.detach(), finite, x, t)
        return value

    def _not_finite(self, value, finite, x, t) -> None:
        """Raise the error of a NaN or inf value, naming the first point where it is."""
        bad = ~finite
        first = tuple(int(i) for i in torch.nonzero(bad)[0])
        point = x.detach().expand(*value.shape, x.shape[-1])[first].tolist()
        where = ", ".join(f"{c} = {v:.6g}" for c, v in zip("xyz", point, strict=False))
        if t is not None:
            where += f", t = {float(t):.6g}"
        kind = "NaN" if bool(torch.isnan(value[first])) else "inf"
        raise DfemError(
            f"{self._label()} is not finite: {kind} at {int(bad.sum())} of {value.numel()} "
            f"points, the first at {where}. A coefficient must be finite everywhere it is "
            f"evaluated (quadrature points, and the vertices written to the output); guard "
            f"a division by zero or an overflow, e.g. define it piecewise with "
            f"where(cond, a, b)."
        )

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
            if isinstance(node.op, ast.Not):
                return torch.logical_not(self._eval(node.operand, env))
            return _UNARY[type(node.op)](self._eval(node.operand, env))
        if isinstance(node, ast.Compare):
            operands = [self._eval(n, env) for n in (node.left, *node.comparators)]
            result = None
            for op, a, b in zip(node.ops, operands, operands[1:], strict=False):
                part = _COMPARE[type(op)](a, b)
                result = part if result is None else torch.logical_and(result, part)
            return result
        if isinstance(node, ast.BoolOp):
            values = [self._eval(n, env) for n in node.values]
            result = values[0]
            for v in values[1:]:
                result = _BOOL[type(node.op)](result, v)
            return result
        args = [self._eval(a, env) for a in node.args]
        if node.func.id == WHERE:
            return torch.where(*args)
        if node.func.id in BINARY_FUNCTIONS:
            return BINARY_FUNCTIONS[node.func.id](*args)
        return FUNCTIONS[node.func.id](args[0])


def coefficient(value, name: str, variables: tuple[str, ...] = SPACE, cell_tags=None):
    """A case-file value as a coefficient: a finite number, an :class:`Expression`, a
    named random field (a table with a ``field`` key; see :mod:`dfem.problems.fields`) or
    one value per cell tag (any other table; see :mod:`dfem.problems.subdomains`).

    ``cell_tags`` is the mesh's :class:`~dfem.problems.subdomains.CellTags` (or a function
    returning them, called only for a table of cell tags); without it such a table is an
    error (only coefficients over the domain take one).
    """
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
                f"{name} depends on u here, so it must be an expression (where(...) makes "
                f"it piecewise); a field sampler or a table of cell tags gives a function "
                f"of x only."
            )
        if "field" in value:
            from dfem.problems.fields import field_coefficient

            return field_coefficient(value, name)
        from dfem.problems.subdomains import cellwise_coefficient

        return cellwise_coefficient(value, name, variables, cell_tags)
    raise DfemError(
        f"{name} must be a number, an expression string, a field table "
        f'(e.g. {{field = "lognormal", w = [...]}}) or a table of values per cell tag '
        f"(e.g. {{inner = 10, outer = 1}}), got {type(value).__name__}."
    )
