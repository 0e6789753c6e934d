"""Time-dependent case data: values of transient cases as ``fn(x, t)`` or ``fn(x)``.

The time ``t`` is a variable of the data of transient cases only (the source, the boundary
values and the exact solution). :func:`time_coefficient` turns a case value into a number,
a :class:`TimeExpression` ``fn(x, t)`` when it uses ``t`` or a :class:`SpaceExpression`
``fn(x)`` when it does not: the two forms :class:`dfem.Heat` tells apart by their positional
parameters (:func:`dfem.problems.heat.depends_on_time`).
"""

from __future__ import annotations

import torch

from dfem.exceptions import DfemError
from dfem.problems.expressions import SPACE, SPACE_TIME, Expression, coefficient

__all__ = ["SpaceExpression", "TimeExpression", "time_coefficient"]


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


def time_coefficient(value, name: str, time: bool = True, cell_tags=None):
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
    cell_tags : CellTags or callable, optional
        As for :func:`coefficient`: the cell tags a table of values per tag refers to.

    Returns
    -------
    float or callable
        A number; :class:`TimeExpression` ``fn(x, t)`` for an expression that uses ``t``;
        :class:`SpaceExpression` ``fn(x)`` for one that does not; a field table's
        ``fn(x)``; a :class:`~dfem.problems.subdomains.CellwiseCoefficient` (``fn(x, t)``
        if a value uses t).
    """
    value = coefficient(value, name, SPACE_TIME if time else SPACE, cell_tags=cell_tags)
    if isinstance(value, Expression):
        return TimeExpression(value) if value.uses_t else SpaceExpression(value)
    return value
