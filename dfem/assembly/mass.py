"""Mass matrices: consistent and lumped.

The consistent mass matrix of a density ``rho`` is

.. math:: M_{ab} = \\int_\\Omega \\rho\\, \\varphi_a \\varphi_b,

assembled by the same quadrature, coefficient evaluation and sparsity pattern as the
stiffness matrix (:mod:`dfem.assembly.forms`). The lumped mass matrix is diagonal; it
is built cell by cell by diagonal scaling (Hinton, Rock and Zienkiewicz),

.. math:: M^{L}_{e,aa} = M_{e,aa} \\frac{\\int_e \\rho}{\\sum_b M_{e,bb}},

which keeps the mass of every cell and, unlike row sums, is positive for every
Lagrange element (row sums of P2 triangles give zero vertex masses). For P1 and Q1
cells on affine maps the two coincide.
"""

from __future__ import annotations

import torch

from dfem.assembly.coefficients import cell_coefficient
from dfem.assembly.sparsity import add_at
from dfem.basis.mapping import against_basis, basis_products
from dfem.exceptions import DfemError


def element_mass(space, rho=1.0, geometry=None, name: str = "rho") -> torch.Tensor:
    """Cell mass matrices (..., n_cells, n_basis, n_basis) of ``int rho phi_a phi_b``
    (``name`` labels the coefficient in error messages)."""
    g = space.geometry() if geometry is None else geometry
    rw = cell_coefficient(space, rho, name, g) * g.weights
    rw = rw.expand(*rw.shape[:-1], g.weights.shape[-1])
    n_basis = g.values.shape[-1]
    Me = against_basis(rw, basis_products(g.values))
    return Me.reshape(*Me.shape[:-1], n_basis, n_basis)


def _lumped(Me: torch.Tensor) -> torch.Tensor:
    diag = torch.diagonal(Me, dim1=-2, dim2=-1)
    total = Me.sum((-2, -1), keepdim=True)[..., 0]
    return torch.diag_embed(diag * total / diag.sum(-1, keepdim=True))


def mass_matrix(space, rho=1.0, lumped: bool = False, format: str = "values"):
    """The mass matrix ``M`` of ``int rho u v`` on a scalar space.

    Parameters
    ----------
    space : FunctionSpace
    rho : coefficient
        Any form of :mod:`dfem.assembly.coefficients` (number, callable of x, nodal,
        per-cell or quadrature-point tensor); differentiable, as are the node
        coordinates.
    lumped : bool
        The diagonal (HRZ) lumped matrix instead of the consistent one.
    format : {"values", "torch", "scipy", "diagonal"}
        CSR values in ``space.pattern`` (off-diagonal entries zero when lumped), a
        torch sparse tensor, a scipy CSR matrix, or the diagonal (n_dofs,) alone
        (lumped only).
    """
    if hasattr(space, "scalar"):
        raise DfemError(f"mass_matrix takes a scalar space; {space!r} is vector-valued.")
    Me = element_mass(space, rho)
    if lumped:
        Me = _lumped(Me)
    elif format == "diagonal":
        raise DfemError("format='diagonal' needs lumped=True: the consistent mass matrix "
                        "is not diagonal.")
    pattern = space.pattern
    values = pattern.assemble(Me)
    if format == "values":
        return values
    if format == "torch":
        return pattern.to_torch(values)
    if format == "scipy":
        return pattern.to_scipy(values)
    if format == "diagonal":
        on_diagonal = pattern.rows == pattern.indices
        return add_at(values.new_zeros(pattern.n), pattern.rows[on_diagonal],
                      values[..., on_diagonal])
    raise DfemError(f"format must be 'values', 'torch', 'scipy' or 'diagonal', got {format!r}.")
