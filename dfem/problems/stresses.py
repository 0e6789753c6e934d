"""Post-processing of elastic solutions: strain, stress, von Mises stress, reactions, compliance.

At the cell quadrature points (``per_cell=True``: the area-weighted mean per cell):

.. math::
    \\varepsilon = \\tfrac12(\\nabla u + \\nabla u^T), \\qquad
    \\sigma_{lin} = \\lambda \\operatorname{tr}\\varepsilon\\, I + 2\\mu\\varepsilon, \\qquad
    P_{NH} = \\mu (F - F^{-T}) + \\lambda \\ln J\\, F^{-T}, \\quad \\sigma_{NH} = P F^T / J,

    \\sigma_{vM} = \\sqrt{\\tfrac12\\big((\\sigma_{11}-\\sigma_{22})^2
        + (\\sigma_{22}-\\sigma_{33})^2 + (\\sigma_{33}-\\sigma_{11})^2\\big)
        + 3(\\sigma_{12}^2 + \\sigma_{23}^2 + \\sigma_{13}^2)},

where in 2D ``sigma_33`` is ``lambda tr eps`` (linear, plane strain), 0 (plane stress)
or ``lambda ln J / J`` (Neo-Hookean, plane strain). The reaction of a support is the sum
of the residual ``R(u) = f_int - f_ext`` over the dofs its Dirichlet condition fixes, per
component (a dof where two supports meet belongs to the one listed later, whose value it
takes), so the reactions of all supports and the loads are in balance. The compliance
is the work of the loads, ``F . u = int b . u + int_Gamma t . u``.
"""

from __future__ import annotations

import torch

from dfem.assembly.density import PointSet
from dfem.exceptions import DfemError
from dfem.problems.dirichlet import fixed_by_tag


def _gradients(problem, u):
    g = problem.space.geometry()
    _, grad_u = problem.space.at_quadrature(u, g)
    return g, grad_u


def _mean(values, g, per_cell):
    if not per_cell:
        return values
    w = g.weights.reshape(*g.weights.shape, *([1] * (values.ndim - 2)))
    return (values * w).sum(1) / w.sum(1)


def strain(problem, u, per_cell: bool = False):
    """Small strain ``eps`` (n_cells, n_q, d, d), or per cell (n_cells, d, d)."""
    g, grad_u = _gradients(problem, u)
    return _mean(0.5 * (grad_u + grad_u.transpose(-1, -2)), g, per_cell)


def _stress_and_out_of_plane(problem, u):
    from dfem.problems.elasticity import NeoHookean

    g, grad_u = _gradients(problem, u)
    mu, lam = problem.material
    mu, lam = mu[..., None, None], lam[..., None, None]
    d = grad_u.shape[-1]
    eye = torch.eye(d, dtype=grad_u.dtype, device=grad_u.device)
    if isinstance(problem, NeoHookean):
        F = eye + grad_u
        J = torch.linalg.det(F)[..., None, None]
        F_inv_t = torch.linalg.inv(F).transpose(-1, -2)
        P = mu * (F - F_inv_t) + lam * torch.log(J) * F_inv_t
        sigma = P @ F.transpose(-1, -2) / J
        out_of_plane = (lam * torch.log(J) / J)[..., 0, 0]
        return g, P, sigma, out_of_plane
    eps = 0.5 * (grad_u + grad_u.transpose(-1, -2))
    trace = eps.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None]
    sigma = lam * trace * eye + 2 * mu * eps
    if getattr(problem, "plane", "strain") == "stress":
        out_of_plane = torch.zeros_like(sigma[..., 0, 0])
    else:
        out_of_plane = (lam * trace)[..., 0, 0].expand_as(sigma[..., 0, 0])
    return g, sigma, sigma, out_of_plane


def stress(problem, u, kind: str = "cauchy", per_cell: bool = False):
    """Cauchy (``kind="cauchy"``) or first Piola-Kirchhoff (``"piola"``) stress, in-plane
    components (n_cells, n_q, d, d), or per cell (n_cells, d, d)."""
    if kind not in ("cauchy", "piola"):
        raise DfemError(f"kind must be 'cauchy' or 'piola', got {kind!r}.")
    g, P, sigma, _ = _stress_and_out_of_plane(problem, u)
    return _mean(sigma if kind == "cauchy" else P, g, per_cell)


def von_mises(problem, u, per_cell: bool = False):
    """Von Mises stress of the Cauchy stress, (n_cells, n_q) or per cell (n_cells,)."""
    g, _, s, s33 = _stress_and_out_of_plane(problem, u)
    if s.shape[-1] == 3:
        s11, s22, s33 = s[..., 0, 0], s[..., 1, 1], s[..., 2, 2]
        shear = s[..., 0, 1] ** 2 + s[..., 1, 2] ** 2 + s[..., 0, 2] ** 2
    else:
        s11, s22 = s[..., 0, 0], s[..., 1, 1]
        shear = s[..., 0, 1] ** 2
    squares = 0.5 * ((s11 - s22) ** 2 + (s22 - s33) ** 2 + (s33 - s11) ** 2) + 3 * shear
    return _mean(torch.sqrt(squares.clamp_min(0)), g, per_cell)


def reactions(problem, u) -> dict:
    """``{tag: force (d,)}`` for every Dirichlet tag: the force that support exerts on the
    body, ``sum R(u)`` per component over the dofs its condition fixes."""
    space = problem.space
    R = problem.residual(u)
    d = space.n_components
    out = {}
    for tag, dofs in fixed_by_tag(space, problem.dirichlet).items():
        force = R.new_zeros(d).index_add(0, dofs % d, R[dofs])
        out[tag] = force
    return out


def reaction(problem, u, tag) -> torch.Tensor:
    """The force (d,) on the body at ``tag``: its support's reaction (see :func:`reactions`),
    or for a tag without a Dirichlet condition the sum of ``R(u)`` over its dofs (zero up to
    the solver's tolerance where no support holds the body)."""
    if tag in problem.dirichlet:
        return reactions(problem, u)[tag]
    space = problem.space
    dofs = space.scalar.boundary_dofs(tag)
    return space.components(problem.residual(u))[dofs].sum(0)


def compliance(problem, u) -> torch.Tensor:
    """``F . u``: the work of the body force and the tractions on ``u``."""
    from dfem.problems.elasticity import boundary_stress_work, boundary_traction, traction_work

    space = problem.space
    cells = PointSet.of_cells(space)
    total = u.new_zeros(())
    b = problem._evaluate(cells, problem.params).get("body_force")
    if b is not None:
        uq, _ = cells.fields(u, space.n_components)
        total = total + ((b * uq).sum(-1) * cells.weights).sum()
    for term in problem.boundary:
        if term.density in (traction_work, boundary_stress_work):
            pts = PointSet.of_facets(space, term.tag)
            t = boundary_traction(term, problem, pts)
            uq, _ = pts.fields(u, space.n_components)
            total = total + ((t * uq).sum(-1) * pts.weights).sum()
    return total
