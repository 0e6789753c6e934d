"""The Galerkin energy of the reaction-diffusion problem, its gradient and its matrix.

For ``-div(nu grad u) + c u = f`` in the domain, ``nu du/dn = g`` on Neumann
facets and ``nu du/dn + alpha u = g_R`` on Robin facets, the energy is

.. math::
    J(u) = \\frac12 \\int \\nu |\\nabla u|^2 + \\frac12 \\int c\\, u^2 - \\int f u
           - \\int_{\\Gamma_N} g\\, u + \\int_{\\Gamma_R} \\big(\\tfrac12 \\alpha u^2 - g_R u\\big),

its gradient (the residual) is ``R(u) = K u - F`` and its Hessian is the
stiffness matrix ``K``:

.. math::
    K_{ab} = \\int \\nu \\nabla\\varphi_a\\cdot\\nabla\\varphi_b + \\int c\\,\\varphi_a\\varphi_b
             + \\int_{\\Gamma_R} \\alpha\\, \\varphi_a \\varphi_b, \\qquad
    F_a = \\int f \\varphi_a + \\int_{\\Gamma_N} g \\varphi_a + \\int_{\\Gamma_R} g_R \\varphi_a.

Every function is one batched tensor program over all cells and quadrature
points, differentiable with respect to ``u``, the coefficients and the node
coordinates. Coefficients take any form of :mod:`dfem.assembly.coefficients`.
Boundary data are dicts ``{tag: g}`` (Neumann) and ``{tag: (alpha, g_R)}`` (Robin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from dfem.assembly.coefficients import cell_coefficient, facet_coefficient, require_positive
from dfem.assembly.mass import element_mass
from dfem.assembly.sparsity import add_at
from dfem.basis.mapping import against_basis, at_points, basis_products, metric_pairs
from dfem.exceptions import DfemError

if TYPE_CHECKING:
    from dfem.basis.space import FunctionSpace


def diffusivity(space: FunctionSpace, nu, geometry=None) -> torch.Tensor:
    """nu at the quadrature points, checked to be positive."""
    nu_q = cell_coefficient(space, nu, "nu", geometry)
    require_positive(nu_q, "nu")
    return nu_q


def _robin_items(robin):
    for tag, pair in (robin or {}).items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DfemError(
                f"Robin condition on {tag!r} must be a pair (alpha, g_R) for "
                f"nu du/dn + alpha u = g_R, got {pair!r}."
            )
        yield tag, pair[0], pair[1]


# ---------------------------------------------------------------------- energy
def energy(
    space: FunctionSpace,
    u: torch.Tensor,
    nu=1.0,
    c=None,
    f=None,
    neumann: dict | None = None,
    robin: dict | None = None,
) -> torch.Tensor:
    """The energy ``J(u)`` of the module docstring, shape ``u.shape[:-1]`` (batched)."""
    g = space.geometry()
    uq, grad_u = space.at_quadrature(u, g)
    density = 0.5 * diffusivity(space, nu, g) * (grad_u * grad_u).sum(-1)
    if c is not None:
        density = density + 0.5 * cell_coefficient(space, c, "c", g) * uq * uq
    if f is not None:
        density = density - cell_coefficient(space, f, "f", g) * uq
    total = (density * g.weights).sum((-2, -1))
    for tag, value in (neumann or {}).items():
        fg = space.facet_geometry(tag)
        u_f = at_points(u[..., fg.dofs], fg.values)
        gq = facet_coefficient(space, value, f"Neumann g on {tag!r}", fg)
        total = total - (gq * u_f * fg.weights).sum((-2, -1))
    for tag, alpha, g_r in _robin_items(robin):
        fg = space.facet_geometry(tag)
        u_f = at_points(u[..., fg.dofs], fg.values)
        aq = facet_coefficient(space, alpha, f"Robin alpha on {tag!r}", fg)
        rq = facet_coefficient(space, g_r, f"Robin g on {tag!r}", fg)
        total = total + ((0.5 * aq * u_f - rq) * u_f * fg.weights).sum((-2, -1))
    return total


def residual(
    space: FunctionSpace, u: torch.Tensor, nu=1.0, c=None, f=None, neumann=None, robin=None
) -> torch.Tensor:
    """``R(u) = dJ/du = K u - F`` (..., n_dofs), differentiable in u, the coefficients and nodes."""
    values = assemble_matrix(space, nu, c, robin)
    F = assemble_vector(space, f, neumann, robin)
    return matvec(space.pattern, values, u) - F


_SMALL_NNZ = 8192


def matvec(pattern, values: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``A u`` for a matrix with CSR ``values`` in ``pattern``; batched over u and values,
    differentiable in both (to any order).

    One matrix and one vector on a symmetric pattern (every pattern built from cells) go
    through torch's CSR product, several times faster than the gather-and-add of the
    batched path. Small matrices take the gather-and-add path: torch's threaded CSR
    kernel costs milliseconds per call on them when the cores are busy (a time loop
    makes thousands of such calls).
    """
    if values.ndim == 1 and u.ndim == 1 and values.dtype == u.dtype \
            and pattern.nnz >= _SMALL_NNZ and pattern.transpose is not None:
        return _CSRProduct.apply(values, u, pattern)
    products = values * u[..., pattern.indices]
    out = torch.zeros(pattern.n, dtype=products.dtype, device=products.device)
    return add_at(out, pattern.rows, products)


class _CSRProduct(torch.autograd.Function):
    """``y = A u`` with ``A`` given by CSR values; the backward pass is written with
    differentiable operations, so second derivatives exist too:
    ``dL/du = A^T g`` (the same product with the transposed values) and
    ``dL/dvalues[k] = g[row_k] u[col_k]``."""

    @staticmethod
    def forward(ctx, values, u, pattern):
        ctx.save_for_backward(values, u)
        ctx.pattern = pattern
        return pattern.csr(values) @ u

    @staticmethod
    def backward(ctx, g):
        values, u = ctx.saved_tensors
        pattern = ctx.pattern
        grad_values = grad_u = None
        if ctx.needs_input_grad[0]:
            grad_values = g[pattern.rows] * u[pattern.indices]
        if ctx.needs_input_grad[1]:
            grad_u = _CSRProduct.apply(values[pattern.transpose], g, pattern)
        return grad_values, grad_u, None


# ---------------------------------------------------------------------- operator
def element_matrices(space: FunctionSpace, nu=1.0, c=None) -> torch.Tensor:
    """Cell matrices ``K_e`` (..., n_cells, n_basis, n_basis) of diffusion and reaction.

    With the metric ``C_q = nu_q |det J_q| w_q (J_q^T J_q)^{-1}`` (d(d+1)/2 numbers per
    point), ``K_e[a, b] = sum_q C_q : (grad_xi phi_a grad_xi phi_b^T)``, which is one GEMM
    of ``C`` (cells x d(d+1)/2 n_q) with a reference tensor (d(d+1)/2 n_q x n_basis^2);
    the physical gradients are never formed.
    """
    g = space.geometry()
    nu_q = diffusivity(space, nu, g)  # broadcastable to (..., E, Q)
    n_q, n_basis, _ = g.reference_grads.shape[-3:]
    if g.per_cell:
        # a basis per cell (NURBS): K_e = sum_q nu_q w_q G_q^T G_q with physical gradients
        G = g.grads_t  # (E, dim, Q, nb)
        nw = (nu_q * g.weights).expand(*nu_q.shape[:-2], G.shape[0], n_q)
        K = torch.einsum("...eq,eiqa,eiqb->...eab", nw, G, G).flatten(-2)
    elif g.affine and (nu_q.ndim == 0 or nu_q.shape[-1] == 1):
        # one metric per cell and nu constant on it: the weights factor out, and the
        # reference tensor is summed over the points once, K_e = (nu C_e) (sum_q w_q M_q)
        metric = g.cell_metric  # (E, d(d+1)/2)
        weighted = stiffness_reference(g.reference_grads, g._quad_weights)
        K = (nu_q * metric) @ weighted
    else:
        metric = g.metric  # (E, Q, d(d+1)/2)
        n_pairs = metric.shape[-1]
        coeff = (nu_q[..., None] * metric).expand(*nu_q.shape[:-2], metric.shape[0], n_q,
                                                  n_pairs)
        K = coeff.reshape(*coeff.shape[:-2], n_pairs * n_q) @ stiffness_reference(
            g.reference_grads)
    K = K.reshape(*K.shape[:-1], n_basis, n_basis)
    if c is not None:
        K = K + element_mass(space, c, g, name="c")
    return K


def stiffness_reference(reference_grads: torch.Tensor, weights=None) -> torch.Tensor:
    """``M[(q, k), (a, b)]`` for the metric entries ``k = (j, l)`` of
    :func:`~dfem.basis.mapping.metric_pairs` (off-diagonal ones symmetrised): products of
    reference gradients, so that ``K_e = C_e M`` with the metric ``C_e`` of
    :func:`element_matrices`. With quadrature ``weights``, the weighted sum over the
    points instead, ``sum_q w_q M[(q, k), :]`` of shape (d(d+1)/2, n_basis^2)."""
    def outer(j, k):
        return reference_grads[..., j][:, :, None] * reference_grads[..., k][:, None, :]

    blocks = [outer(j, k) if j == k else outer(j, k) + outer(k, j)
              for j, k in metric_pairs(reference_grads.shape[-1])]
    M = torch.stack(blocks, dim=1)
    if weights is not None:
        return torch.einsum("q,qkab->kab", weights, M).reshape(len(blocks), -1)
    return M.reshape(M.shape[0] * len(blocks), -1)


def element_loads(space: FunctionSpace, f) -> torch.Tensor:
    """Cell load vectors ``F_e`` (..., n_cells, n_basis) of ``int f phi_a``."""
    g = space.geometry()
    fq = cell_coefficient(space, f, "f", g)
    return against_basis(fq * g.weights, g.values)


def assemble_matrix(
    space: FunctionSpace, nu=1.0, c=None, robin: dict | None = None
) -> torch.Tensor:
    """CSR values (..., nnz) of ``K`` in ``space.pattern``."""
    pattern = space.pattern
    values = pattern.assemble(element_matrices(space, nu, c))
    for tag, alpha, _ in _robin_items(robin):
        fg = space.facet_geometry(tag)
        aw = facet_coefficient(space, alpha, f"Robin alpha on {tag!r}", fg) * fg.weights
        n_f = fg.dofs.shape[1]
        Kf = against_basis(aw, basis_products(fg.values)).unflatten(-1, (n_f, n_f))
        values = pattern.add_blocks(values, fg.dofs, Kf)
    return values


def assemble_vector(
    space: FunctionSpace, f=None, neumann: dict | None = None, robin: dict | None = None
) -> torch.Tensor:
    """The load vector ``F`` (..., n_dofs)."""
    F = torch.zeros(space.n_dofs, dtype=space.dtype, device=space.device)
    if f is not None:
        F = add_at(F, space.cell_dofs, element_loads(space, f))
    boundary = [(tag, g, "Neumann g") for tag, g in (neumann or {}).items()]
    boundary += [(tag, g_r, "Robin g") for tag, _, g_r in _robin_items(robin)]
    for tag, value, label in boundary:
        fg = space.facet_geometry(tag)
        gq = facet_coefficient(space, value, f"{label} on {tag!r}", fg)
        F = add_at(F, fg.dofs, against_basis(gq * fg.weights, fg.values))
    return F


def assemble(
    space: FunctionSpace, nu=1.0, c=None, f=None, neumann=None, robin=None, format="torch"
):
    """The stiffness matrix and load vector ``(K, F)``.

    Parameters
    ----------
    format : {"torch", "scipy", "values"}
        ``K`` as a torch sparse COO tensor (autograd reaches nu, c and the nodes),
        a scipy CSR matrix (detached), or the raw CSR values in ``space.pattern``.
    """
    values = assemble_matrix(space, nu, c, robin)
    F = assemble_vector(space, f, neumann, robin)
    if format == "values":
        return values, F
    if format == "scipy":
        return space.pattern.to_scipy(values), F.detach().cpu().numpy()
    if format == "torch":
        return space.pattern.to_torch(values), F
    raise DfemError(f"format must be 'torch', 'scipy' or 'values', got {format!r}.")
