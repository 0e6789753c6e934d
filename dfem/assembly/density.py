"""Energies given by a pointwise density: the energy, its residual and its sparse tangent.

For a scalar or vector field ``u`` (``d`` components) and

.. math:: J(u) = \\int_\\Omega \\psi(u, \\nabla u, x; p)\\,dx
          + \\sum_{\\text{tags}} \\int_{\\Gamma} \\psi_\\Gamma(u, x, n; p)\\,ds ,

write ``z = (u_i, \\partial_m u_i)`` for the values a density sees at a quadrature
point, and ``\\Phi_{a\\alpha} = (\\varphi_a, \\partial_1\\varphi_a, \\ldots)`` for the
basis function ``a`` and its gradient. Then

.. math::
    R_{ai} = \\int P_{i\\alpha}\\, \\Phi_{a\\alpha}, \\qquad
    P_{i\\alpha} = \\frac{\\partial \\psi}{\\partial z_{i\\alpha}},
    \\qquad
    K_{ai,bj} = \\int \\Phi_{a\\alpha}\\, H_{i\\alpha,j\\beta}\\, \\Phi_{b\\beta}, \\qquad
    H_{i\\alpha,j\\beta} = \\frac{\\partial^2 \\psi}{\\partial z_{i\\alpha}\\partial z_{j\\beta}} .

``P`` and ``H`` come from autograd of the density evaluated once on all cells and
points: one backward pass for ``P`` and one per entry of ``z`` for ``H`` (at most
``d (1 + dim)``), each over every point at once. ``H`` is a small matrix per point;
it is contracted with the basis by two GEMM-like einsums, so no element-level
Hessian over all element dofs is ever formed by autograd.

The density must be pointwise: the value at a point may depend only on ``z`` at
that point (any batched torch code over the points is fine).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dfem.assembly.coefficients import coefficient_at
from dfem.basis.vector import interleave
from dfem.exceptions import DfemError


@dataclass
class PointSet:
    """Quadrature points of a set of cells or facets, as a density integral needs them.

    Attributes
    ----------
    dofs : (n, n_basis) int64 tensor
        Scalar dofs of each cell (facet).
    values : (n_q, n_basis) or (n, n_q, n_basis) tensor
        Basis values at the points.
    grads : (n, n_q, n_basis, dim) tensor or None
        Physical basis gradients (None on facets: boundary densities see no gradient).
    weights : (n, n_q) tensor
        Quadrature weight times the measure.
    points : (n, n_q, dim) tensor
    normals : (n, n_q, dim) tensor or None
        Outward unit normals (facets only).
    """

    dofs: torch.Tensor
    values: torch.Tensor
    grads: torch.Tensor | None
    weights: torch.Tensor
    points: torch.Tensor
    normals: torch.Tensor | None = None

    @classmethod
    def of_cells(cls, space, geometry=None) -> PointSet:
        g = space.geometry() if geometry is None else geometry
        scalar = getattr(space, "scalar", space)
        return cls(scalar.cell_dofs, g.values, g.grads, g.weights, g.points)

    @classmethod
    def of_facets(cls, space, tags, degree=None) -> PointSet:
        fg = space.facet_geometry(tags, degree)
        n_q = fg.weights.shape[1]
        normals = fg.normals if fg.normals.ndim == 3 else fg.normals[:, None, :]
        normals = normals.expand(-1, n_q, -1)
        return cls(fg.dofs, fg.values, None, fg.weights, fg.points, normals)

    @property
    def n_basis(self) -> int:
        return self.dofs.shape[1]

    def coefficient(self, value, name: str, n_dofs: int):
        """A scalar coefficient (any form of :mod:`dfem.assembly.coefficients`) at the points."""
        return coefficient_at(value, name, self, self.dofs, n_dofs)

    def field(self, value, name: str, n_dofs: int, n_components: int):
        """A scalar or vector parameter at the points.

        Scalars take every form of :mod:`dfem.assembly.coefficients`. Vectors: a list
        or tuple of ``d`` scalar coefficients; a callable of x returning (..., d); or a
        tensor whose last axis holds the d components of any scalar form (a constant
        (d,), nodal (n_nodes, d), per cell (n_cells, d), at the points (n, n_q, d)).
        Nested lists are matrices (``[[s_xx, s_xy], [s_yx, s_yy]]`` -> (n, n_q, d, d)).
        Returns a tensor broadcastable to (n, n_q), (n, n_q, d) or (n, n_q, d, d).
        """
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            rows = all(isinstance(v, (list, tuple)) for v in value)
            parts = [self.field(v, f"{name}[{i}]", n_dofs, n_components) if rows else
                     self.coefficient(v, f"{name}[{i}]", n_dofs) for i, v in enumerate(value)]
            # rows of a matrix stack along the second-last axis, entries along the last
            return torch.stack(torch.broadcast_tensors(*parts), dim=-2 if rows else -1)
        try:
            return self.coefficient(value, name, n_dofs)
        except DfemError:
            if not torch.is_tensor(value) or value.ndim == 0 or value.shape[-1] > 3:
                raise
        parts = [self.coefficient(value[..., i], f"{name}[{i}]", n_dofs)
                 for i in range(value.shape[-1])]
        return torch.stack(torch.broadcast_tensors(*parts), dim=-1)

    def fields(self, u: torch.Tensor, d: int):
        """``u`` and its gradient at the points: (..., n, q, d) and (..., n, q, d, dim)."""
        ue = u[..., interleave(self.dofs, d)].unflatten(-1, (self.n_basis, d))
        per_cell = "nqa" if self.values.ndim == 3 else "qa"
        values = torch.einsum(f"...nai,{per_cell}->...nqi", ue, self.values)
        if self.grads is None:
            return values, None
        return values, torch.einsum("...nai,nqam->...nqim", ue, self.grads)

    def basis_table(self, with_values: bool) -> torch.Tensor:
        """``Phi[n, q, a, alpha]``: the value (if ``with_values``) then the gradient of each
        basis function."""
        n, n_q = self.weights.shape
        values = self.values.expand(n, n_q, self.n_basis)[..., None]
        if self.grads is None:
            return values
        return torch.cat([values, self.grads], dim=-1) if with_values else self.grads


@dataclass
class PointDerivatives:
    """``P[n, q, i, alpha]`` (first derivatives of psi at each point) and optionally
    ``H[n, q, i, alpha, j, beta]`` (second derivatives), with ``alpha`` over the value
    (when the density depends on it) and the gradient components; the quadrature weights
    are applied when they are contracted with the basis."""

    P: torch.Tensor
    H: torch.Tensor | None
    with_values: bool


def call_density(density, uq, gq, x, normals, params, scalar: bool, n_points):
    """``density`` on the user's shapes (scalar fields without the component axis)."""
    u_user = uq[..., 0] if scalar else uq
    if gq is None:
        psi = density(u_user, x, normals, params)
    else:
        psi = density(u_user, gq[..., 0, :] if scalar else gq, x, params)
    if not torch.is_tensor(psi):
        psi = torch.as_tensor(psi, dtype=uq.dtype, device=uq.device)
    if tuple(psi.shape) != tuple(uq.shape[:-1]):
        kind = "boundary density" if gq is None else "density"
        raise DfemError(
            f"the {kind} {getattr(density, '__name__', density)!r} returned shape "
            f"{tuple(psi.shape)}; it must return one value per quadrature point, shape "
            f"{tuple(uq.shape[:-1])} ({n_points}: cells/facets x points)."
        )
    return psi


def first_derivatives(psi: torch.Tensor, uq, gq, create_graph: bool):
    """``dpsi/du`` (n, q, d) or None (psi independent of u), ``dpsi/dgrad u`` or None."""
    inputs = [uq] if gq is None else [uq, gq]
    if not psi.requires_grad:
        return None, None
    grads = torch.autograd.grad(psi.sum(), inputs, create_graph=create_graph, allow_unused=True)
    s = grads[0]
    f = grads[1] if gq is not None else None
    if gq is not None and f is None:
        f = torch.zeros_like(gq)
    return s, f


def stack_first(s, f, with_values: bool, like: torch.Tensor) -> torch.Tensor:
    """``P[..., i, alpha]`` from ``s`` (..., d) and ``f`` (..., d, dim)."""
    parts = []
    if with_values:
        parts.append((s if s is not None else torch.zeros_like(like))[..., None])
    if f is not None:
        parts.append(f)
    return torch.cat(parts, dim=-1)


def second_derivatives(P: torch.Tensor, uq, gq, with_values: bool) -> torch.Tensor:
    """``H[..., i, alpha, j, beta] = dP[i, alpha] / dz[j, beta]``: one backward pass per
    entry of z, each over all points."""
    d, A = P.shape[-2:]
    rows = []
    for i in range(d):
        for alpha in range(A):
            entry = P[..., i, alpha]
            if not entry.requires_grad:
                rows.append(torch.zeros_like(P))
                continue
            inputs = [uq] if gq is None else [uq, gq]
            grads = torch.autograd.grad(entry.sum(), inputs, retain_graph=True,
                                        allow_unused=True)
            du = grads[0] if grads[0] is not None else torch.zeros_like(uq)
            dg = None if gq is None else (grads[1] if grads[1] is not None
                                          else torch.zeros_like(gq))
            rows.append(stack_first(du, dg, with_values, uq))
    H = torch.stack(rows, dim=-3)  # (..., d * A, d, A)
    return H.unflatten(-3, (d, A))


def element_residuals(points: PointSet, P: torch.Tensor, with_values: bool) -> torch.Tensor:
    """``R_e[n, a * d + i] = sum_q w Phi[a, alpha] P[i, alpha]``."""
    Phi = points.basis_table(with_values)
    Re = torch.einsum("nqaz,nqiz->nai", Phi, P * points.weights[..., None, None])
    return Re.flatten(1)


def element_tangents(points: PointSet, H: torch.Tensor, with_values: bool) -> torch.Tensor:
    """``K_e[n, a d + i, b d + j] = sum_q w Phi[a, alpha] H[i, alpha, j, beta] Phi[b, beta]``."""
    Phi = points.basis_table(with_values)
    Hw = H * points.weights[..., None, None, None, None]
    right = torch.einsum("nqiajb,nqcb->nqiajc", Hw, Phi)  # c: the column basis function
    K = torch.einsum("nqra,nqiajc->nricj", Phi, right)
    n, nb, d = K.shape[0], K.shape[1], K.shape[2]
    return K.reshape(n, nb * d, nb * d)


def point_derivatives(density, points: PointSet, u, d: int, scalar: bool, params,
                      order: int, create_graph: bool = False, first=None):
    """The density at the points and its derivatives with respect to ``z``.

    Returns ``(psi, PointDerivatives or None)``; ``order`` 0 gives only psi, 1 adds P,
    2 adds H (computed on detached fields: tangents are never differentiated).
    ``first(u, grad_u, x, params) -> (s, flux)`` replaces the autograd of psi for a
    weak form that is not the derivative of an energy (psi is then None).
    """
    if first is not None and order >= 1:
        return None, _weak_form_derivatives(first, points, u, d, scalar, params, order)
    with torch.enable_grad():
        uq, gq = points.fields(u, d)
        if order >= 1:
            for t in (uq, gq):
                if t is not None and not t.requires_grad:
                    t.requires_grad_(True)
                    t._dfem_point_leaf = True  # not a user's parameter: see reaches_a_leaf
        psi = call_density(density, uq, gq, points.points,
                           points.normals, params, scalar, tuple(points.weights.shape))
        if order == 0:
            return psi, None
        s, f = first_derivatives(psi, uq, gq, create_graph=create_graph or order >= 2)
        with_values = s is not None or gq is None
        if s is None and f is None:
            P = torch.zeros(*uq.shape, 1 if gq is None else gq.shape[-1], dtype=uq.dtype,
                            device=uq.device)
            return psi, PointDerivatives(P, torch.zeros(*P.shape, *P.shape[-2:],
                                                        dtype=P.dtype, device=P.device),
                                         with_values)
        P = stack_first(s, f, with_values, uq)
        H = second_derivatives(P, uq, gq, with_values) if order >= 2 else None
    if order >= 2:
        P, H = P.detach(), H.detach()
    return psi, PointDerivatives(P, H, with_values)


def _weak_form_derivatives(first, points: PointSet, u, d, scalar, params, order):
    """P (and H) from a pointwise residual ``(s, flux)`` given by ``first``."""
    with torch.enable_grad():
        uq, gq = points.fields(u, d)
        if order >= 2:
            uq = uq.detach().requires_grad_(True)
            gq = gq.detach().requires_grad_(True)
        if scalar:
            s, f = first(uq[..., 0], gq[..., 0, :], points.points, params)
            s = None if s is None else torch.as_tensor(s, dtype=uq.dtype)[..., None]
            f = f[..., None, :]
        else:
            s, f = first(uq, gq, points.points, params)
        if s is not None:
            s = s.expand_as(uq)
        P = stack_first(s, f, s is not None, uq)
        H = second_derivatives(P, uq, gq, s is not None) if order >= 2 else None
    if order >= 2:
        P, H = P.detach(), H.detach()
    return PointDerivatives(P, H, s is not None)
