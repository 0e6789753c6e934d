"""Coefficients per subdomain: one value per cell tag of a mesh file.

A mesh file's cell tags (gmsh physical surfaces in 2D, physical volumes in 3D; see
:func:`dfem.read_mesh` with ``return_cell_tags=True``) name subdomains. A case gives a
coefficient per subdomain as a table whose keys are tag names::

    [problem]
    nu = { inner = 10.0, outer = 1.0 }          # numbers or expressions
    f = { inner = "sin(pi*x)", default = 0.0 }  # default: every cell of no listed tag

Every cell must get a value: from the tags listed (a cell in two listed tags is an
error) or from ``default``. A table with a ``field`` key is a random field instead
(:mod:`dfem.problems.fields`), so ``field`` (and ``default``) cannot name a tag.

The values enter the assembly as a :class:`CellwiseCoefficient`: a callable of the
points ``x`` of shape ``(n_cells, ..., dim)`` (one row per cell, the form in which
:mod:`dfem.assembly.coefficients` evaluates cell coefficients) that evaluates each
tag's value on the points of its cells, vectorised per tag and differentiable in ``x``.
Refined meshes (``dfem convergence``) carry the tags: the children of a tagged cell
carry its tag (:func:`refine_cell_tags`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dfem.exceptions import DfemError

#: The key of a table that gives the value of the cells of no listed tag.
DEFAULT = "default"


@dataclass
class CellTags:
    """The cell tags of a mesh: ``{tag: cell numbers}``, the number of cells, and where
    the tags come from (for messages: the mesh file, or why there are none)."""

    tags: dict
    n_cells: int
    source: str


def refine_cell_tags(tags: dict, dim: int, times: int) -> dict:
    """The cell tags of :func:`dfem.mesh.refine` ``(mesh, times)``: refinement splits cell
    ``c`` into the cells ``k c .. k c + k - 1`` (``k = 2 ** dim``), each carrying its tag."""
    k = (2**dim) ** int(times)
    offsets = np.arange(k, dtype=np.int64)
    return {name: (np.asarray(cells, dtype=np.int64)[:, None] * k + offsets).ravel()
            for name, cells in tags.items()}


def cellwise_coefficient(table: dict, name: str, variables, cell_tags):
    """The :class:`CellwiseCoefficient` a table ``{tag: value}`` gives.

    Parameters
    ----------
    table : dict
        Tag names (and ``default``) to numbers or expressions.
    name : str
        The key (``"problem.nu"``), for messages.
    variables : tuple of str
        The names the expressions may use (:data:`~dfem.problems.expressions.SPACE`, or
        with ``t`` for time-dependent data).
    cell_tags : CellTags or callable
        The mesh's tags, or a function returning them; None where a table of tags is not
        allowed.

    Raises
    ------
    DfemError
        Without ``cell_tags`` or on a mesh without cell tags; for an unknown tag (the
        message lists the mesh's), a value that is not a number or an expression, a cell
        in two listed tags, or cells that no listed tag (and no ``default``) covers.
    """
    from dfem.problems.expressions import coefficient

    if not table:
        raise DfemError(f"{name} is an empty table; give a number, an expression, or one "
                        f"value per cell tag (e.g. {{inner = 10, outer = 1}}).")
    if cell_tags is None:
        raise DfemError(
            f"{name} is a table, but it takes a number or an expression only (tables of "
            f"values per cell tag are for the coefficients of [problem]; a random field "
            f'table needs field = "lognormal" or "karhunen-loeve").'
        )
    tags = cell_tags() if callable(cell_tags) else cell_tags
    if not tags.tags:
        raise DfemError(
            f"{name} gives values per cell tag ({', '.join(map(str, table))}), but "
            f"{tags.source} has no cell tags; cell tags are the physical groups of a mesh "
            f"file (mesh.file: gmsh physical surfaces in 2D, volumes in 3D). A random field "
            f'table needs field = "lognormal" or "karhunen-loeve".'
        )
    known = sorted(tags.tags)
    unknown = [k for k in table if k != DEFAULT and k not in tags.tags]
    if unknown:
        raise DfemError(
            f"{name} names the cell tag(s) {', '.join(map(repr, unknown))}, which "
            f"{tags.source} does not have; its cell tags are {', '.join(known)} (and "
            f"{DEFAULT} = ... sets the cells of no listed tag)."
        )
    pieces, owner = [], np.full(tags.n_cells, -1, dtype=np.int64)
    listed = [k for k in table if k != DEFAULT]
    for i, key in enumerate(listed):
        value = table[key]
        if not isinstance(value, (int, float, str)) or isinstance(value, bool):
            raise DfemError(f"{name}.{key} must be a number or an expression, got {value!r}.")
        cells = np.asarray(tags.tags[key], dtype=np.int64)
        taken = owner[cells] >= 0
        if taken.any():
            other = listed[owner[cells[taken][0]]]
            raise DfemError(
                f"{name}: {int(taken.sum())} cell(s) carry both tags {other!r} and {key!r} "
                f"(e.g. cell {int(cells[taken][0])}), so their value is ambiguous; list "
                f"only one of the two tags."
            )
        owner[cells] = i
        pieces.append(coefficient(value, f"{name}.{key}", variables))
    if DEFAULT in table:
        value = table[DEFAULT]
        if not isinstance(value, (int, float, str)) or isinstance(value, bool):
            raise DfemError(f"{name}.{DEFAULT} must be a number or an expression, got "
                            f"{value!r}.")
        left = owner < 0
        if left.any():
            owner[left] = len(pieces)
            pieces.append(coefficient(value, f"{name}.{DEFAULT}", variables))
    missing = np.flatnonzero(owner < 0)
    if len(missing):
        untagged = [k for k in known if k not in table
                    and np.isin(tags.tags[k], missing).any()]
        where = (f"they carry the tag(s) {', '.join(untagged)}" if untagged
                 else "they carry no cell tag")
        raise DfemError(
            f"{name} gives no value to {len(missing)} of {tags.n_cells} cells (e.g. cell "
            f"{int(missing[0])}): {where}. Add a value for every tag of {tags.source} "
            f"({', '.join(known)}) or {DEFAULT} = ... for the rest."
        )
    uses_t = any(getattr(p, "uses_t", False) for p in pieces)
    cls = CellwiseTimeCoefficient if uses_t else CellwiseCoefficient
    return cls(pieces, owner, name)


class CellwiseCoefficient:
    """A coefficient with one number or expression per group of cells.

    Parameters
    ----------
    pieces : list of float or callable
        The value of each group: a number or an expression ``fn(x)``.
    owner : (n_cells,) int array
        The group of each cell.
    name : str
        The coefficient's key, for messages.

    Called with points ``x`` of shape ``(n_cells, ..., dim)`` (row ``c`` the points of
    cell ``c``) it returns the values ``(n_cells, ...)``.
    """

    def __init__(self, pieces, owner, name: str):
        self.pieces = list(pieces)
        self.owner = np.asarray(owner, dtype=np.int64)
        self.name = name
        self.n_cells = len(self.owner)
        self.constant = all(isinstance(p, float) for p in self.pieces)
        order = np.argsort(self.owner, kind="stable")
        counts = np.bincount(self.owner, minlength=len(self.pieces))
        self._cells = np.split(order, np.cumsum(counts)[:-1])  # the cells of each group
        self._inverse = np.argsort(order, kind="stable")  # row of each cell in the concat
        self._device_tables = {}

    def __repr__(self) -> str:
        return f"CellwiseCoefficient({self.name}, {len(self.pieces)} groups)"

    def _tables(self, device):
        if device not in self._device_tables:
            as_t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
            self._device_tables[device] = ([as_t(c) for c in self._cells],
                                           as_t(self._inverse), as_t(self.owner))
        return self._device_tables[device]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._evaluate(x, None)

    def _evaluate(self, x: torch.Tensor, t) -> torch.Tensor:
        if x.ndim < 2 or x.shape[0] != self.n_cells:
            raise DfemError(
                f"{self.name} is given per cell tag, so it has values per cell: evaluate it "
                f"at points of shape (n_cells = {self.n_cells}, ..., dim), not "
                f"{tuple(x.shape)} (it is a coefficient over the cells, not boundary data)."
            )
        cells, inverse, owner = self._tables(x.device)
        if self.constant:
            values = torch.tensor(self.pieces, dtype=x.dtype, device=x.device)[owner]
            return values.reshape(-1, *[1] * (x.ndim - 2)).expand(x.shape[:-1])
        parts = []
        for piece, rows in zip(self.pieces, cells, strict=True):
            points = x[rows]
            if isinstance(piece, float):
                parts.append(torch.full(points.shape[:-1], piece, dtype=x.dtype,
                                        device=x.device))
            elif t is not None and getattr(piece, "uses_t", False):
                parts.append(piece(points, t=t))
            else:
                parts.append(piece(points))
        return torch.cat(parts)[inverse]

    def at_centroids(self, mesh) -> torch.Tensor:
        """The values at the cell centroids (the mean of the vertices), (n_cells,): the
        per-cell field of the output files."""
        return self(mesh.nodes.detach()[mesh.cells].mean(dim=1))


class CellwiseTimeCoefficient(CellwiseCoefficient):
    """A :class:`CellwiseCoefficient` some of whose values use the time: ``fn(x, t)``, the
    form :class:`dfem.Heat` evaluates at every time level."""

    def __call__(self, x: torch.Tensor, t=None) -> torch.Tensor:
        if t is None:
            raise DfemError(f"{self.name} depends on t: call it as fn(x, t).")
        return self._evaluate(x, torch.as_tensor(t, dtype=x.dtype, device=x.device))

    def at_centroids(self, mesh, t: float = 0.0) -> torch.Tensor:
        """The values at the cell centroids at time ``t``."""
        return self(mesh.nodes.detach()[mesh.cells].mean(dim=1), t)
