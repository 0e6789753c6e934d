"""Coefficients (nu, c, f, g, ...) evaluated at quadrature points.

A coefficient may be given as

- a number or a 0-d tensor (constant);
- a callable ``fn(x)`` of the physical points ``x`` (shape ``(..., 2)``) that returns
  values of shape ``x.shape[:-1]`` (or a scalar); write it with torch functions so
  that it stays differentiable;
- a tensor of nodal (dof) values, shape ``(..., n_dofs)``, interpolated with the basis;
- a tensor of per-cell (per-facet) values, shape ``(..., n_cells)``;
- a tensor of values at the quadrature points, shape ``(..., n_cells, n_q)``;
- one of the wrappers :class:`Nodal`, :class:`PerCell`, :class:`AtQuadrature`, which
  say which of the last three is meant when the shapes alone cannot.

A leading batch shape ``...`` is carried through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from dfem.basis.mapping import at_points
from dfem.exceptions import DfemError

if TYPE_CHECKING:
    from dfem.basis.space import FacetGeometry, FunctionSpace


@dataclass
class Nodal:
    """Dof values of a field in the space, shape ``(..., n_dofs)``."""

    values: torch.Tensor


@dataclass
class PerCell:
    """One value per cell (or per facet on a boundary), shape ``(..., n)``."""

    values: torch.Tensor


@dataclass
class AtQuadrature:
    """Values at the quadrature points, shape ``(..., n, n_q)``."""

    values: torch.Tensor


def _as_tensor(value, like: torch.Tensor) -> torch.Tensor:
    if torch.is_tensor(value):
        return value.to(device=like.device, dtype=like.dtype)
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def evaluate(value, *, name: str, **kwargs) -> torch.Tensor | None:
    """:func:`_evaluate`, then a check that every value is finite (an ``inf`` from
    ``1/x`` at ``x = 0`` would otherwise surface later as a 'singular matrix')."""
    result = _evaluate(value, name=name, **kwargs)
    if result is not None and not bool(torch.isfinite(result.detach()).all()):
        bad = int((~torch.isfinite(result.detach())).sum())
        raise DfemError(
            f"{name} is not finite (inf or NaN) at {bad} quadrature point(s); check for a "
            "division by zero or an overflow in its expression or values."
        )
    return result


def _evaluate(
    value,
    *,
    name: str,
    points,
    dofs: torch.Tensor,
    basis_values: torch.Tensor,
    n_dofs: int,
) -> torch.Tensor | None:
    """A coefficient at the quadrature points, broadcastable to ``(..., n, n_q)``.

    Parameters
    ----------
    value
        The coefficient in any of the forms of the module docstring, or None.
    name : str
        Its name, for error messages.
    points : callable
        Returns the physical quadrature points ``(n, n_q, 2)`` of the cells (or facets);
        called only for callable coefficients, so constants never map the points.
    dofs : (n, n_basis) int64 tensor
        Dofs of each cell (facet), for interpolating nodal values.
    basis_values : (n_q, n_basis) or (n, n_q, n_basis) tensor
        Basis (trace) values at the quadrature points, shared or per cell (facet).
    n_dofs : int
        Number of dofs of the space.
    """
    if value is None:
        return None
    n, n_q = dofs.shape[0], basis_values.shape[-2]
    like = basis_values
    if isinstance(value, Nodal):
        v = _as_tensor(value.values, like)
        _expect(v.shape[-1:] == (n_dofs,), name, v, f"(..., {n_dofs}) nodal values")
        return at_points(v[..., dofs], basis_values)
    if isinstance(value, PerCell):
        v = _as_tensor(value.values, like)
        _expect(v.shape[-1:] == (n,), name, v, f"(..., {n}) values, one per cell/facet")
        return v[..., None]
    if isinstance(value, AtQuadrature):
        v = _as_tensor(value.values, like)
        _expect(v.shape[-2:] == (n, n_q), name, v, f"(..., {n}, {n_q}) quadrature values")
        return v
    if callable(value) and not torch.is_tensor(value):
        return _as_tensor(value(points()), like)
    v = _as_tensor(value, like)
    if v.ndim == 0:
        return v
    if v.ndim >= 2 and v.shape[-2:] == (n, n_q):
        return v
    matches_dofs, matches_cells = v.shape[-1] == n_dofs, v.shape[-1] == n
    if matches_dofs and matches_cells:
        raise DfemError(
            f"{name} has {v.shape[-1]} entries, which is both the number of dofs and of "
            f"cells; wrap it as dfem.Nodal({name}) or dfem.PerCell({name}) to say which."
        )
    if matches_dofs:
        return at_points(v[..., dofs], basis_values)
    if matches_cells:
        return v[..., None]
    raise DfemError(
        f"{name} has shape {tuple(v.shape)}; expected a number, a callable of x, "
        f"(..., {n_dofs}) nodal values, (..., {n}) per-cell values or "
        f"(..., {n}, {n_q}) quadrature-point values."
    )


def _expect(ok: bool, name: str, v: torch.Tensor, what: str) -> None:
    if not ok:
        raise DfemError(f"{name} has shape {tuple(v.shape)}; expected {what}.")


def require_positive(values: torch.Tensor | None, name: str) -> None:
    """Raise :class:`DfemError` if any value is not strictly positive (or not finite)."""
    if values is None:
        return
    v = values.detach()
    bad = ~(v > 0)
    if bool(bad.any()):
        raise DfemError(
            f"{name} must be positive at every quadrature point; found {int(bad.sum())} "
            f"value(s) <= 0 or NaN (minimum {float(v.nan_to_num(float('-inf')).min()):.3g}). "
            f"Check the {name} field (a log-normal field needs exp(...))."
        )


def coefficient_at(value, name: str, where, dofs: torch.Tensor, n_dofs: int):
    """``value`` at the quadrature points of ``where`` (:func:`evaluate`): anything with
    the physical ``points`` (n, n_q, dim) and the basis ``values`` there (a cell geometry,
    a :class:`~dfem.basis.space.FacetGeometry`, a point set), whose n cells or facets have
    the dofs ``dofs`` (n, n_basis) of a space of ``n_dofs`` dofs."""
    return evaluate(value, name=name, points=lambda: where.points, dofs=dofs,
                    basis_values=where.values, n_dofs=n_dofs)


def cell_coefficient(space: FunctionSpace, value, name: str, geometry=None):
    """``value`` at the cell quadrature points of ``space`` (see :func:`coefficients.evaluate`)."""
    g = space.geometry() if geometry is None else geometry
    return coefficient_at(value, name, g, space.cell_dofs, space.n_dofs)


def facet_coefficient(space: FunctionSpace, value, name: str, facets: FacetGeometry):
    """``value`` at the quadrature points of boundary facets."""
    return coefficient_at(value, name, facets, facets.dofs, space.n_dofs)
