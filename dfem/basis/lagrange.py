"""Lagrange elements P1-P3 on simplices and Q1-Q3 on quadrilaterals and hexahedra.

Reference cells are those of :mod:`dfem.mesh.cells`. The nodes are the points of
the equispaced lattice of spacing ``1/p`` in the reference cell, numbered by the
entity they lie inside: vertices first (in the reference order), then the
``p - 1`` nodes of each edge in the order of the reference edges (running from
the edge's first to its second local vertex), then the nodes inside each face of
a 3D cell (in the order of the reference facets), then the interior nodes.

The shape functions are the nodal basis of the polynomial space
(``P_p``: monomials ``z^m`` with ``|m| <= p``; ``Q_p``: ``m_k <= p`` for every k;
in the centred variable ``z = 2 xi - 1``):

.. math:: \\varphi_a(\\xi) = \\sum_m C_{ma}\\, z^{m}, \\qquad C = V^{-1},\\quad
          V_{bm} = (z_b)^{m},

so that ``phi_a(node_b) = delta_ab``. Equispaced nodes keep ``V`` well
conditioned for p <= 3.

Every node carries its *weights*: the values of the cell's P1/Q1 basis at the
node, which are non-zero exactly on the vertices of the entity the node lies
inside. Two cells that share an entity see a shared node with the same weights
on the same global vertices, whatever their local orientation; the dof map
(:mod:`dfem.basis.dofmap`) numbers shared dofs by these weights.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

from dfem.exceptions import DfemError
from dfem.mesh.cells import REFERENCE_CELLS, ReferenceCell


def _linear_values(cell: ReferenceCell, xi: np.ndarray) -> np.ndarray:
    """The P1/Q1 vertex basis at ``xi`` (n, dim): barycentric or multilinear, (n, n_vertices)."""
    if cell.simplex:
        return np.concatenate([1.0 - xi.sum(axis=1, keepdims=True), xi], axis=1)
    r = cell.vertices
    return np.prod(np.where(r[None] == 1.0, xi[:, None], 1.0 - xi[:, None]), axis=2)


@dataclass(frozen=True)
class LagrangeElement:
    """A Lagrange element on a reference cell.

    Attributes
    ----------
    cell_type : {"tri", "quad", "tet", "hex"}
    degree : int
        Polynomial degree p (1, 2 or 3).
    """

    cell_type: str
    degree: int

    @property
    def reference(self) -> ReferenceCell:
        return REFERENCE_CELLS[self.cell_type]

    @property
    def dim(self) -> int:
        return self.reference.dim

    @property
    def name(self) -> str:
        return ("P" if self.reference.simplex else "Q") + str(self.degree)

    def __repr__(self) -> str:
        return f"LagrangeElement({self.name} on {self.cell_type})"

    @property
    def n_vertices(self) -> int:
        return self.reference.n_vertices

    @property
    def n_edge_dofs(self) -> int:
        """Nodes inside each edge (``p - 1``)."""
        return self.degree - 1

    # ------------------------------------------------------------------ nodes
    @cached_property
    def _lattice(self) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """All nodes in dof order and, for each, (entity kind, local entity number)."""
        cell, p = self.reference, self.degree
        ranges = [range(p + 1)] * cell.dim
        points = np.array([m for m in itertools.product(*ranges)
                           if not cell.simplex or sum(m) <= p], dtype=float)[:, ::-1] / p
        linear = _linear_values(cell, points)
        support = linear > 1e-12
        groups: dict[tuple[str, int], list[int]] = {}
        for n, mask in enumerate(support):  # a few dozen reference nodes, once per element
            vertices = set(np.nonzero(mask)[0].tolist())
            groups.setdefault(self._entity_of(vertices), []).append(n)
        order, owners = [], []
        for key in self._entity_keys():
            members = groups.get(key, [])
            if key[0] == "edge":  # along the edge, from its first local vertex
                first = cell.edges[key[1]][0]
                members = sorted(members, key=lambda n: -linear[n, first])
            order += members
            owners += [key] * len(members)
        return points[order], owners

    def _entity_of(self, vertices: set) -> tuple[str, int]:
        cell = self.reference
        if len(vertices) == 1:
            return ("vertex", vertices.pop())
        for kind, table in (("edge", cell.edges), ("face", cell.faces if cell.dim == 3 else [])):
            for k, entity in enumerate(table):
                if set(entity.tolist()) == vertices:
                    return (kind, k)
        return ("interior", 0)

    def _entity_keys(self) -> list[tuple[str, int]]:
        cell = self.reference
        keys = [("vertex", v) for v in range(cell.n_vertices)]
        keys += [("edge", k) for k in range(len(cell.edges))]
        if cell.dim == 3:
            keys += [("face", k) for k in range(len(cell.facets))]
        return keys + [("interior", 0)]

    @property
    def nodes(self) -> np.ndarray:
        """Reference coordinates of all nodes, shape ``(n_basis, dim)``, in dof order."""
        return self._lattice[0]

    @property
    def n_basis(self) -> int:
        return len(self.nodes)

    def entity_dofs(self, kind: str) -> np.ndarray:
        """Local dofs inside each entity of a kind ("vertex", "edge", "face", "interior"):
        an (n_entities, dofs per entity) array (faces: those of a 3D cell)."""
        return self._entity_dofs[kind]

    @cached_property
    def _entity_dofs(self) -> dict[str, np.ndarray]:
        owners = self._lattice[1]
        counts = {"vertex": self.n_vertices, "edge": len(self.reference.edges),
                  "face": len(self.reference.facets) if self.dim == 3 else 0, "interior": 1}
        table = {}
        for kind, count in counts.items():
            rows = [[n for n, key in enumerate(owners) if key == (kind, k)] for k in range(count)]
            table[kind] = np.array(rows, dtype=np.int64).reshape(count, len(rows[0]) if rows
                                                                 else 0)
        return table

    @property
    def interior_nodes(self) -> np.ndarray:
        """Reference coordinates of the nodes inside the cell."""
        return self.nodes[self.entity_dofs("interior").ravel()]

    @property
    def n_interior_dofs(self) -> int:
        return self.entity_dofs("interior").size

    @cached_property
    def weights(self) -> np.ndarray:
        """The P1/Q1 vertex basis at every node, (n_basis, n_vertices): see the module
        docstring."""
        return _linear_values(self.reference, self.nodes)

    @cached_property
    def facet_dofs(self) -> np.ndarray:
        """Local dofs on each local facet (those whose weights vanish off the facet),
        (n_facets, dofs per facet), in dof order."""
        facets = self.reference.facets
        off = np.ones((len(facets), self.n_vertices), dtype=bool)
        off[np.arange(len(facets))[:, None], facets] = False
        on = ~((self.weights[None, :, :] > 1e-12) & off[:, None, :]).any(axis=2)
        return np.stack([np.nonzero(row)[0] for row in on])

    # ------------------------------------------------------------------ basis
    @cached_property
    def _exponents(self) -> np.ndarray:
        p, cell = self.degree, self.reference
        powers = itertools.product(range(p + 1), repeat=cell.dim)
        return np.array([m for m in powers if not cell.simplex or sum(m) <= p])

    @cached_property
    def _coefficients(self) -> np.ndarray:
        V = self._monomials(self.nodes)
        return np.linalg.solve(V, np.eye(len(V)))

    def _monomials(self, xi: np.ndarray) -> np.ndarray:
        # Monomials in the centred variable 2 xi - 1 keep V better conditioned.
        z = 2.0 * xi - 1.0
        return np.prod(z[:, None, :] ** self._exponents[None, :, :], axis=2)

    def _monomial_gradients(self, xi: np.ndarray) -> np.ndarray:
        e = self._exponents.astype(float)
        z = 2.0 * xi[:, None, :] - 1.0  # (n, 1, dim)
        powers = z ** e[None]
        # d/dz z^k = k z^(k-1), with the k = 0 term exactly zero (no 0 * 0^-1)
        derivative = np.where(e > 0, 2.0 * e * z ** np.maximum(e - 1, 0), 0.0)
        grads = []
        for k in range(self.dim):
            factors = powers.copy()
            factors[..., k] = derivative[..., k]
            grads.append(np.prod(factors, axis=2))
        return np.stack(grads, axis=-1)

    def _points(self, xi) -> np.ndarray:
        return np.asarray(xi, dtype=float).reshape(-1, self.dim)

    def values(self, xi) -> np.ndarray:
        """Shape functions at reference points ``xi`` (n, dim): array (n, n_basis)."""
        return self._monomials(self._points(xi)) @ self._coefficients

    def gradients(self, xi) -> np.ndarray:
        """Reference gradients at ``xi`` (n, dim): array (n, n_basis, dim), d phi_a / d xi_k."""
        return np.einsum("nmk,ma->nak", self._monomial_gradients(self._points(xi)),
                         self._coefficients)


def linear_element(cell_type: str) -> str:
    """The name of the degree-1 element of a cell type: "P1" on simplices, "Q1" otherwise."""
    return "P1" if REFERENCE_CELLS[cell_type].simplex else "Q1"


@cache
def geometry_element(cell_type: str) -> LagrangeElement:
    """The element that maps the reference cell onto a mesh cell (P1 or Q1)."""
    return LagrangeElement(cell_type, 1)


_NAME = re.compile(r"^\s*([PQ])([123])\s*$", re.IGNORECASE)
_CELLS_OF = {("P", 2): "tri", ("Q", 2): "quad", ("P", 3): "tet", ("Q", 3): "hex"}


def element(name: str | LagrangeElement, cell_type: str | None = None) -> LagrangeElement:
    """The Lagrange element called ``name`` ("P1", "P2", "P3", "Q1", "Q2" or "Q3").

    ``P`` elements live on simplices and ``Q`` elements on quadrilaterals or hexahedra;
    ``cell_type`` (a mesh's) says which: by default the 2D cells.

    Raises
    ------
    DfemError
        For an unknown name, or a name that does not fit ``cell_type``.
    """
    if isinstance(name, LagrangeElement):
        if cell_type is not None and name.cell_type != cell_type:
            raise _misfit(name.name, cell_type)
        return name
    match = _NAME.match(str(name))
    if not match:
        raise DfemError(
            f"unknown element {name!r}; use P1, P2, P3 (triangles, tetrahedra) or Q1, Q2, Q3 "
            "(quadrilaterals, hexahedra)."
        )
    family, degree = match.group(1).upper(), int(match.group(2))
    if cell_type is None:
        return LagrangeElement(_CELLS_OF[(family, 2)], degree)
    cell = REFERENCE_CELLS[cell_type]
    if (family == "P") != cell.simplex:
        raise _misfit(family + str(degree), cell_type)
    return LagrangeElement(cell_type, degree)


def _misfit(name: str, cell_type: str) -> DfemError:
    cell = REFERENCE_CELLS[cell_type]
    fits = "P1, P2, P3" if cell.simplex else "Q1, Q2, Q3"
    return DfemError(f"element {name} does not fit a mesh of {cell.long_name}; use one of "
                     f"{fits}.")
