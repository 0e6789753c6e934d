"""The Poisson branch of case files: :class:`~dfem.Poisson` or, with ``problem.nonlinear =
true``, :class:`~dfem.NonlinearPoisson` from ``[problem]`` (``nu``, ``c``, ``f``,
``reaction``) and the ``[boundary.TAG]`` tables (``dirichlet``, ``neumann``, ``robin``).

``nu``, ``c`` and ``f`` take numbers, expressions, field tables and tables of one value per
cell tag (:mod:`dfem.problems.subdomains`); a nonlinear ``nu(u)`` and ``reaction`` are
expressions (in u, x, y, z).
"""

from __future__ import annotations

from dfem.exceptions import DfemError
from dfem.problems.case_schema import poisson_conditions
from dfem.problems.expressions import SPACE, coefficient
from dfem.problems.nonlinear import NonlinearPoisson
from dfem.problems.poisson import Poisson


def poisson_problem(data: dict, space, cell_tags=None):
    """The :class:`Poisson` or :class:`NonlinearPoisson` of a checked case table.

    Parameters
    ----------
    data : dict
        The case table.
    space : FunctionSpace
    cell_tags : dict or callable, optional
        ``{tag: cell numbers}`` of ``space``'s mesh, or a function returning it (called
        only when a coefficient is a table of per-tag values).
    """
    spec = data.get("problem", {})
    nonlinear = spec.get("nonlinear", False)
    if not isinstance(nonlinear, bool):
        raise DfemError(f"problem.nonlinear must be true or false, got {nonlinear!r}.")
    in_u = (*SPACE, "u") if nonlinear else SPACE
    kwargs = {k: coefficient(spec[k], f"problem.{k}", in_u if k == "nu" else SPACE,
                             cell_tags=cell_tags)
              for k in ("nu", "c", "f") if k in spec}
    if "reaction" in spec and not nonlinear:
        raise DfemError("problem.reaction s(u) needs problem.nonlinear = true.")
    dirichlet, neumann, robin = poisson_conditions(data.get("boundary", {}), coefficient)
    if nonlinear:
        if robin or "c" in kwargs:
            raise DfemError(
                "nonlinear cases take nu(u), reaction s(u), f, Dirichlet and Neumann "
                "conditions; write a linear reaction into problem.reaction and drop robin."
            )
        reaction = spec.get("reaction")
        return NonlinearPoisson(
            # expressions are called as fn(u, x), the form NonlinearPoisson takes
            space, nu=kwargs.get("nu", 1.0), f=kwargs.get("f"),
            reaction=None if reaction is None else coefficient(
                reaction, "problem.reaction", (*SPACE, "u")),
            dirichlet=dirichlet, neumann=neumann,
        )
    return Poisson(space, dirichlet=dirichlet, neumann=neumann, robin=robin, **kwargs)
