"""A plain numpy/scipy transcription of the 88-line topology optimisation code.

Andreassen, Clausen, Schevenels, Lazarov and Sigmund, "Efficient topology optimization in
MATLAB using 88 lines of code", Struct. Multidisc. Optim. 43 (2011): the MBB half-beam
(load at the top-left corner, symmetry on the left edge, a roller at the bottom-right
corner) on ``nelx x nely`` unit square Q1 elements in plane stress, modified SIMP with
``E_min = 1e-9``, the sensitivity (``ft = 1``) or density (``ft = 2``) filter of radius
``rmin`` and the optimality-criteria update (move 0.2, bisection to 1e-3). It assembles
with the paper's closed-form element matrix and its column-major node numbering (nodes
numbered down each column from the top-left), independently of dfem, so that dfem's
SIMP (:mod:`dfem.design`) can be checked against it iteration by iteration.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def element_stiffness(nu: float = 0.3) -> np.ndarray:
    """The paper's 8 x 8 plane-stress Q1 stiffness of a unit square element, E = 1."""
    A11 = np.array([[12, 3, -6, -3], [3, 12, 3, 0], [-6, 3, 12, -3], [-3, 0, -3, 12]])
    A12 = np.array([[-6, -3, 0, 3], [-3, -6, -3, -6], [0, -3, -6, 3], [3, -6, 3, -6]])
    B11 = np.array([[-4, 3, -2, 9], [3, -4, -9, 4], [-2, -9, -4, -3], [9, 4, -3, -4]])
    B12 = np.array([[2, -3, 4, -9], [-3, 2, 9, -2], [4, 9, 2, 3], [-9, -2, 3, 2]])
    A = np.block([[A11, A12], [A12.T, A11]])
    B = np.block([[B11, B12], [B12.T, B11]])
    return (A + nu * B) / (1 - nu ** 2) / 24


def filter_matrix(nelx: int, nely: int, rmin: float):
    """``H_ij = max(0, rmin - dist(i, j))`` between element centres and its row sums."""
    ex, ey = np.meshgrid(np.arange(nelx), np.arange(nely), indexing="ij")
    ex, ey = ex.ravel(), ey.ravel()  # element e = ex * nely + ey (column-major)
    reach = int(np.ceil(rmin)) - 1
    offsets = np.arange(-reach, reach + 1)
    di, dj = (a.ravel() for a in np.meshgrid(offsets, offsets, indexing="ij"))
    i2, j2 = ex[:, None] + di, ey[:, None] + dj
    inside = (i2 >= 0) & (i2 < nelx) & (j2 >= 0) & (j2 < nely)
    weight = np.maximum(0.0, rmin - np.sqrt(di ** 2 + dj ** 2))[None, :].repeat(len(ex), 0)
    rows = np.repeat(np.arange(len(ex))[:, None], len(di), 1)
    keep = inside & (weight > 0)
    H = sp.csr_matrix((weight[keep], (rows[keep], (i2 * nely + j2)[keep])),
                      shape=(len(ex), len(ex)))
    return H, np.asarray(H.sum(1)).ravel()


def element_centres(nelx: int, nely: int) -> np.ndarray:
    """Centres (x, y) of the elements in the code's order, y up (row 0 is the top)."""
    ex, ey = np.meshgrid(np.arange(nelx), np.arange(nely), indexing="ij")
    return np.stack([ex.ravel() + 0.5, nely - ey.ravel() - 0.5], axis=1)


def top88(nelx: int = 60, nely: int = 20, volfrac: float = 0.5, penal: float = 3.0,
          rmin: float = 1.5, ft: int = 2, iterations: int = 50, x0=None) -> dict:
    """Run ``iterations`` OC iterations; the compliance before each update and the design.

    Returns
    -------
    dict with ``compliance`` (list), ``change`` (list), ``x`` and ``xPhys`` (per element
    in the order of :func:`element_centres`).
    """
    E0, Emin = 1.0, 1e-9
    KE = element_stiffness()
    nodenrs = np.arange((nelx + 1) * (nely + 1)).reshape(nelx + 1, nely + 1).T
    edof_vec = (2 * nodenrs[:-1, :-1] + 2).T.ravel()  # 0-based: 2 * (node + 1)
    edof = edof_vec[:, None] + np.array([0, 1, 2 * nely + 2, 2 * nely + 3, 2 * nely,
                                         2 * nely + 1, -2, -1])
    iK = np.repeat(edof, 8, axis=1).ravel()
    jK = np.tile(edof, (1, 8)).ravel()
    n_dofs = 2 * (nelx + 1) * (nely + 1)
    F = np.zeros(n_dofs)
    F[1] = -1.0
    fixed = np.union1d(np.arange(0, 2 * (nely + 1), 2), [n_dofs - 1])
    free = np.setdiff1d(np.arange(n_dofs), fixed)
    H, Hs = filter_matrix(nelx, nely, rmin)
    x = np.full(nelx * nely, volfrac) if x0 is None else np.asarray(x0, dtype=float).copy()
    xPhys = x.copy() if ft != 2 else (H @ x) / Hs
    history, changes = [], []
    for _ in range(iterations):
        stiffness = Emin + xPhys ** penal * (E0 - Emin)
        K = sp.csc_matrix((np.outer(stiffness, KE.ravel()).ravel(), (iK, jK)),
                          shape=(n_dofs, n_dofs))
        K = (K + K.T) / 2
        U = np.zeros(n_dofs)
        U[free] = spla.spsolve(K[free][:, free], F[free])
        Ue = U[edof]
        ce = np.einsum("ea,ab,eb->e", Ue, KE, Ue)
        history.append(float((stiffness * ce).sum()))
        dc = -penal * (E0 - Emin) * xPhys ** (penal - 1) * ce
        dv = np.ones_like(x)
        if ft == 1:
            dc = H @ (x * dc) / Hs / np.maximum(1e-3, x)
        else:
            dc = H @ (dc / Hs)
            dv = H @ (dv / Hs)
        l1, l2, move = 0.0, 1e9, 0.2
        while (l2 - l1) / (l1 + l2) > 1e-3:
            lmid = 0.5 * (l2 + l1)
            xnew = np.maximum(0.0, np.maximum(x - move, np.minimum(
                1.0, np.minimum(x + move, x * np.sqrt(-dc / dv / lmid)))))
            xPhys = xnew if ft == 1 else (H @ xnew) / Hs
            if xPhys.sum() > volfrac * nelx * nely:
                l1 = lmid
            else:
                l2 = lmid
        changes.append(float(np.abs(xnew - x).max()))
        x = xnew
    return {"compliance": history, "change": changes, "x": x, "xPhys": xPhys}
