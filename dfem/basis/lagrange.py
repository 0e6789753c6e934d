"""Lagrange elements P1-P3 on triangles and Q1-Q3 on quadrilaterals.

Reference cells: the triangle ``(0,0), (1,0), (0,1)`` and the square ``[0,1]^2``.
Nodes are numbered vertices first (counter-clockwise), then the ``p - 1`` nodes
of each edge in the order of :data:`dfem.mesh.mesh.LOCAL_EDGES` (running from the
edge's first to its second local vertex), then the interior nodes.

The shape functions are the nodal basis of the polynomial space
(``P_p``: monomials ``z1^i z2^j`` with ``i + j <= p``; ``Q_p``: ``i, j <= p``;
in the centred variable ``z = 2 xi - 1``):

.. math:: \\varphi_a(\\xi) = \\sum_m C_{ma}\\, z^{m}, \\qquad C = V^{-1},\\quad
          V_{bm} = (z_b)^{m},

so that ``phi_a(node_b) = delta_ab``. Equispaced nodes keep ``V`` well
conditioned for p <= 3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

from dfem.errors import DfemError
from dfem.mesh.mesh import LOCAL_EDGES

_REFERENCE_VERTICES = {
    "tri": np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
    "quad": np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]),
}


@dataclass(frozen=True)
class LagrangeElement:
    """A Lagrange element on a reference cell.

    Attributes
    ----------
    cell_type : {"tri", "quad"}
    degree : int
        Polynomial degree p (1, 2 or 3).
    """

    cell_type: str
    degree: int

    @property
    def name(self) -> str:
        return ("P" if self.cell_type == "tri" else "Q") + str(self.degree)

    def __repr__(self) -> str:
        return f"LagrangeElement({self.name})"

    @property
    def n_vertices(self) -> int:
        return len(_REFERENCE_VERTICES[self.cell_type])

    @property
    def n_edge_dofs(self) -> int:
        """Nodes inside each edge (``p - 1``)."""
        return self.degree - 1

    @cached_property
    def interior_nodes(self) -> np.ndarray:
        """Reference coordinates of the nodes inside the cell."""
        p = self.degree
        t = np.arange(1, p) / p
        if self.cell_type == "quad":
            X, Y = np.meshgrid(t, t, indexing="xy")
            return np.stack([X.ravel(), Y.ravel()], axis=1).reshape(-1, 2)
        pts = [(i / p, j / p) for j in range(1, p) for i in range(1, p) if i + j < p]
        return np.array(pts, dtype=float).reshape(-1, 2)

    @property
    def n_interior_dofs(self) -> int:
        return len(self.interior_nodes)

    @cached_property
    def nodes(self) -> np.ndarray:
        """Reference coordinates of all nodes, shape ``(n_basis, 2)``, in dof order."""
        verts = _REFERENCE_VERTICES[self.cell_type]
        t = np.arange(1, self.degree) / self.degree
        edges = [
            verts[a] + t[:, None] * (verts[b] - verts[a]) for a, b in LOCAL_EDGES[self.cell_type]
        ]
        return np.concatenate([verts, *edges, self.interior_nodes], axis=0)

    @property
    def n_basis(self) -> int:
        return len(self.nodes)

    @cached_property
    def _exponents(self) -> np.ndarray:
        p = self.degree
        if self.cell_type == "quad":
            return np.array([(i, j) for i in range(p + 1) for j in range(p + 1)])
        return np.array([(i, j) for i in range(p + 1) for j in range(p + 1 - i)])

    @cached_property
    def _coefficients(self) -> np.ndarray:
        V = self._monomials(self.nodes)
        return np.linalg.solve(V, np.eye(len(V)))

    def _monomials(self, xi: np.ndarray) -> np.ndarray:
        # Monomials in the centred variable 2 xi - 1 keep V better conditioned.
        e = self._exponents
        z = 2.0 * xi - 1.0
        return z[:, None, 0] ** e[None, :, 0] * z[:, None, 1] ** e[None, :, 1]

    def _monomial_gradients(self, xi: np.ndarray) -> np.ndarray:
        e = self._exponents.astype(float)

        def power(x, k):
            # d/dx x^k = k x^(k-1), with the k = 0 term exactly zero (no 0 * 0^-1)
            return np.where(k > 0, x ** np.maximum(k - 1, 0), 0.0)

        z = 2.0 * xi - 1.0
        x, y = z[:, None, 0], z[:, None, 1]
        dx = 2.0 * e[:, 0] * power(x, e[:, 0]) * y ** e[:, 1]
        dy = 2.0 * e[:, 1] * x ** e[:, 0] * power(y, e[:, 1])
        return np.stack([dx, dy], axis=-1)

    def values(self, xi) -> np.ndarray:
        """Shape functions at reference points ``xi`` (n, 2): array (n, n_basis)."""
        xi = np.asarray(xi, dtype=float).reshape(-1, 2)
        return self._monomials(xi) @ self._coefficients

    def gradients(self, xi) -> np.ndarray:
        """Reference gradients at ``xi`` (n, 2): array (n, n_basis, 2), d phi_a / d xi_k."""
        xi = np.asarray(xi, dtype=float).reshape(-1, 2)
        return np.einsum("nmk,ma->nak", self._monomial_gradients(xi), self._coefficients)

    def trace_values(self, s) -> np.ndarray:
        """1D Lagrange basis of degree p on an edge at ``s`` in [0, 1]: array (n, p + 1).

        Node order: start vertex, end vertex, then the ``p - 1`` edge nodes from start to end.
        The trace of ``P_p`` and ``Q_p`` on a straight edge is this basis.
        """
        p = self.degree
        s = np.asarray(s, dtype=float).reshape(-1)
        nodes = np.concatenate([[0.0, 1.0], np.arange(1, p) / p])
        V = s[:, None] ** np.arange(p + 1)[None, :]
        Vn = nodes[:, None] ** np.arange(p + 1)[None, :]
        return V @ np.linalg.solve(Vn, np.eye(p + 1))


@cache
def geometry_element(cell_type: str) -> LagrangeElement:
    """The element that maps the reference cell onto a mesh cell (P1 or Q1)."""
    return LagrangeElement(cell_type, 1)


_NAME = re.compile(r"^\s*([PQ])([123])\s*$", re.IGNORECASE)


def element(name: str | LagrangeElement) -> LagrangeElement:
    """The Lagrange element called ``name`` ("P1", "P2", "P3", "Q1", "Q2" or "Q3")."""
    if isinstance(name, LagrangeElement):
        return name
    match = _NAME.match(str(name))
    if not match:
        raise DfemError(
            f"unknown element {name!r}; use P1, P2, P3 (triangles) or Q1, Q2, Q3 (quadrilaterals)."
        )
    family, degree = match.group(1).upper(), int(match.group(2))
    return LagrangeElement("tri" if family == "P" else "quad", degree)
