"""Quadrature on boundary facets, built from the cell basis.

A boundary facet is local facet ``k`` of the one cell that owns it. The facet's
reference rule (points ``s``, weights ``w`` on the reference line, triangle or
square) is mapped into the owner's reference cell, ``xi(s) = v_0 + T_k s`` with
``T_k`` the facet's edge vectors, and everything else comes from the cell's own
map there (Nanson's formula):

.. math:: n = \\frac{C\\, \\hat n_k}{|C\\, \\hat n_k|}, \\qquad
          dA = |C\\, \\hat n_k|\\, \\sqrt{\\det T_k^T T_k}\\; w,

with ``C = det(J) J^{-T}`` the cofactor matrix of the cell's Jacobian and
``n_hat_k`` the reference outward normal. The basis on the facet is the cell's
basis restricted to the dofs that do not vanish there, so no separate trace
element exists and non-affine cells (bilinear quads, trilinear hexes) get the
exact facet geometry of their map. Flat facets (edges, triangles) get one normal
each; the faces of trilinear hexahedra may be warped and get one per point.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from dfem.basis.lagrange import LagrangeElement, geometry_element
from dfem.basis.mapping import cofactors, determinant
from dfem.mesh.cells import REFERENCE_CELLS
from dfem.quadrature.rules import facet_rule


@cache
def reference_facets(cell_type: str) -> tuple[np.ndarray, ...]:
    """For each local facet: its origin (L, dim) and edge vectors (L, dim, dim - 1) in the
    reference cell, its unit outward normal (L, dim) and its measure factor
    ``sqrt(det T^T T)`` (L,)."""
    cell = REFERENCE_CELLS[cell_type]
    v = cell.vertices[cell.facets]  # (L, m, dim)
    # a line's or triangle's edge vectors from vertex 0; a square face's from its corner 0
    # to its neighbours 1 and 3 (the face is cyclic)
    axes = v[:, 1:2] - v[:, :1] if cell.dim == 2 else (
        v[:, [1, 2]] - v[:, :1] if cell.facet_type == "tri" else v[:, [1, 3]] - v[:, :1])
    axes = axes.transpose(0, 2, 1)  # (L, dim, dim - 1)
    if cell.dim == 2:
        normal = np.stack([axes[:, 1, 0], -axes[:, 0, 0]], axis=1)
    else:
        normal = np.cross(axes[:, :, 0], axes[:, :, 1])
    centre = cell.vertices.mean(axis=0)
    outward = np.sign(((v[:, 0] - centre) * normal).sum(axis=1))
    normal = normal * outward[:, None] / np.linalg.norm(normal, axis=1, keepdims=True)
    scale = np.sqrt(np.linalg.det(np.einsum("lik,lij->lkj", axes, axes)))
    return v[:, 0], axes, normal, scale


def facet_points(cell_type: str, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """The facet rule mapped into each local facet of the reference cell: points
    (L, n_q, dim) and weights (L, n_q) including the facet's measure factor."""
    s, w = facet_rule(cell_type, degree)
    origin, axes, _, scale = reference_facets(cell_type)
    xi = origin[:, None, :] + np.einsum("lij,qj->lqi", axes, s)
    return xi, scale[:, None] * w[None, :]


def lagrange_facet_geometry(space, facets: np.ndarray, degree: int) -> dict:
    """Fields of :class:`~dfem.basis.space.FacetGeometry` on the global ``facets`` of a
    Lagrange space: see the module docstring."""
    mesh, element = space.mesh, space.element
    cell_type = mesh.cell_type
    xi, w = facet_points(cell_type, degree)
    normal_ref = reference_facets(cell_type)[2]
    owner = mesh.facet_neighbours[facets, 0]  # (F, 2): cell, local facet
    cells = torch.as_tensor(owner[:, 0], device=space.device)
    local = torch.as_tensor(owner[:, 1], device=space.device)
    geo: LagrangeElement = geometry_element(cell_type)
    n_local, n_q, dim = xi.shape
    flat = xi.reshape(-1, dim)
    geo_values = space._table(geo.values(flat).reshape(n_local, n_q, -1))[local]
    geo_grads = space._table(geo.gradients(flat).reshape(n_local, n_q, -1, dim))[local]
    on_facet = element.facet_dofs  # (L, n_facet_dofs)
    values = element.values(flat).reshape(n_local, n_q, -1)
    values = np.take_along_axis(values, on_facet[:, None, :], axis=2)
    xv = mesh.nodes[mesh.cells[cells]]  # (F, nv, dim)
    jacobian = torch.einsum("fai,fqaj->fiqj", xv, geo_grads)  # [f, i, q, j] = dx_i / dxi_j
    C = cofactors(jacobian)
    scaled_normal = torch.einsum("fiqj,fj->fqi", C, space._table(normal_ref)[local])
    length = torch.linalg.vector_norm(scaled_normal, dim=-1)
    # C n points outward when det J > 0; the mesh check guarantees it, the sign keeps an
    # unchecked mesh's normals outward too
    sign = torch.sign(determinant(jacobian)).detach()
    dofs = space.dofmap.facet_dofs(mesh, facets)  # in the owner cell's local order
    normals = scaled_normal / length[..., None] * sign[..., None]
    if mesh.dim == 2 or mesh.reference.simplex:
        normals = normals[:, 0]  # flat facets: one normal each
    return dict(
        dofs=torch.as_tensor(dofs, device=space.device),
        points=torch.einsum("fai,fqa->fqi", xv, geo_values),
        weights=length * space._table(w)[local],
        values=space._table(values)[local],
        normals=normals,
    )

