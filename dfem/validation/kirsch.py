"""The infinite plate with a circular hole under uniaxial tension (Kirsch), by isogeometric
analysis on the exact geometry.

An infinite plate with a traction-free hole of radius ``R`` is pulled by ``sigma_xx = T`` at
infinity. In polar coordinates ``(r, theta)`` (Kirsch 1898; e.g. Timoshenko & Goodier,
*Theory of Elasticity*, section 35):

.. math::
    \\sigma_{rr} = \\frac T2\\Big(1 - \\frac{R^2}{r^2}\\Big)
        + \\frac T2\\Big(1 - 4\\frac{R^2}{r^2} + 3\\frac{R^4}{r^4}\\Big)\\cos 2\\theta,

    \\sigma_{\\theta\\theta} = \\frac T2\\Big(1 + \\frac{R^2}{r^2}\\Big)
        - \\frac T2\\Big(1 + 3\\frac{R^4}{r^4}\\Big)\\cos 2\\theta,

    \\sigma_{r\\theta} = -\\frac T2\\Big(1 + 2\\frac{R^2}{r^2} - 3\\frac{R^4}{r^4}\\Big)
        \\sin 2\\theta,

so ``sigma_xx = 3 T`` at the top of the hole ``(0, R)`` (and ``sigma_yy = -T`` at ``(R, 0)``).
The displacement, with the shear modulus ``mu`` and Kolosov's constant ``kappa = (3 - nu) /
(1 + nu)`` (plane stress; ``3 - 4 nu`` in plane strain), is

.. math::
    u_x = \\frac{T R}{8\\mu}\\Big[\\frac rR(\\kappa + 1)\\cos\\theta
        + \\frac{2R}{r}\\big((1 + \\kappa)\\cos\\theta + \\cos 3\\theta\\big)
        - \\frac{2R^3}{r^3}\\cos 3\\theta\\Big],

    u_y = \\frac{T R}{8\\mu}\\Big[\\frac rR(\\kappa - 3)\\sin\\theta
        + \\frac{2R}{r}\\big((1 - \\kappa)\\sin\\theta + \\sin 3\\theta\\big)
        - \\frac{2R^3}{r^3}\\sin 3\\theta\\Big],

which vanishes normal to the symmetry lines (``u_y = 0`` on ``y = 0``, ``u_x = 0`` on
``x = 0``); the tests check that its strain, through Hooke's law, is the stress above.

The model (Hughes, Cottrell & Bazilevs, CMAME 194, 2005): the quarter ``[0, L]^2`` minus the
hole, as the biquadratic NURBS patch :func:`~dfem.basis.nurbs.patch.plate_with_hole`
(the hole exactly circular), rollers on the symmetry edges, the exact traction ``sigma n``
on the outer edges ``x = L`` and ``y = L``, the hole traction-free. :func:`solve` runs one
refinement level and measures

.. math::
    \\|u - u_h\\|_{L^2}, \\qquad \\|\\sigma - \\sigma_h\\|_{L^2}
        = \\Big(\\int |\\sigma - \\sigma_h|_F^2\\Big)^{1/2}, \\qquad
    \\|u - u_h\\|_E = \\Big(\\int (\\sigma - \\sigma_h) : \\mathbb C^{-1} :
        (\\sigma - \\sigma_h)\\Big)^{1/2},

and ``sigma_xx`` of the discrete solution at ``(0, R)``; :func:`convergence_study` fits the
rates (expected ``p + 1`` for the displacement, ``p`` for the stress and the energy norm).
"""

from __future__ import annotations

import math
import time

import torch

from dfem.basis.nurbs.bspline import basis_matrix
from dfem.basis.nurbs.patch import plate_with_hole
from dfem.basis.nurbs.space import IsogeometricSpace
from dfem.exceptions import DfemError
from dfem.problems.elasticity import LinearElasticity, lame
from dfem.validation.error_norms import errors, fitted_rate

#: The benchmark's data: hole radius, plate half-width, far-field tension, material.
DEFAULTS = dict(radius=1.0, length=4.0, tension=10.0, E=1e5, poisson_ratio=0.3, plane="stress")
#: Quadrature degree added to ``2 p`` for the error integrals (well above what the basis needs).
ERROR_EXTRA_DEGREE = 4


def _polar(x: torch.Tensor):
    return torch.linalg.vector_norm(x, dim=-1), torch.atan2(x[..., 1], x[..., 0])


def polar_stress(x, radius: float = 1.0, tension: float = 10.0):
    """``(sigma_rr, sigma_tt, sigma_rt)`` of the Kirsch solution at points x (..., 2)."""
    r, theta = _polar(x)
    a2, a4 = (radius / r) ** 2, (radius / r) ** 4
    c2, s2 = torch.cos(2 * theta), torch.sin(2 * theta)
    half = 0.5 * tension
    s_rr = half * (1 - a2) + half * (1 - 4 * a2 + 3 * a4) * c2
    s_tt = half * (1 + a2) - half * (1 + 3 * a4) * c2
    s_rt = -half * (1 + 2 * a2 - 3 * a4) * s2
    return s_rr, s_tt, s_rt


def stress(x, radius: float = 1.0, tension: float = 10.0) -> torch.Tensor:
    """The Cartesian Kirsch stress (..., 2, 2) at points x (..., 2).

    ``sigma = Q diag-form Q^T``: the polar components rotated by the angle ``theta``,
    ``sigma_xx = s_rr c^2 + s_tt s^2 - 2 s_rt s c``,
    ``sigma_yy = s_rr s^2 + s_tt c^2 + 2 s_rt s c``,
    ``sigma_xy = (s_rr - s_tt) s c + s_rt (c^2 - s^2)`` with ``c, s = cos, sin theta``.
    """
    s_rr, s_tt, s_rt = polar_stress(x, radius, tension)
    _, theta = _polar(x)
    c, s = torch.cos(theta), torch.sin(theta)
    sxx = s_rr * c * c + s_tt * s * s - 2 * s_rt * s * c
    syy = s_rr * s * s + s_tt * c * c + 2 * s_rt * s * c
    sxy = (s_rr - s_tt) * s * c + s_rt * (c * c - s * s)
    return torch.stack([torch.stack([sxx, sxy], -1), torch.stack([sxy, syy], -1)], -2)


def kolosov(poisson_ratio: float, plane: str = "stress") -> float:
    """Kolosov's constant ``kappa``: ``(3 - nu)/(1 + nu)`` (plane stress), ``3 - 4 nu`` (strain)."""
    if plane == "stress":
        return (3 - poisson_ratio) / (1 + poisson_ratio)
    if plane == "strain":
        return 3 - 4 * poisson_ratio
    raise DfemError(f"plane must be 'strain' or 'stress', got {plane!r}.")


def displacement(x, radius: float = 1.0, tension: float = 10.0, E: float = 1e5,
                 poisson_ratio: float = 0.3, plane: str = "stress") -> torch.Tensor:
    """The Kirsch displacement (..., 2) at points x (..., 2) (see the module docstring)."""
    mu = E / (2 * (1 + poisson_ratio))
    kappa = kolosov(poisson_ratio, plane)
    r, theta = _polar(x)
    rho = r / radius
    c1, c3 = torch.cos(theta), torch.cos(3 * theta)
    s1, s3 = torch.sin(theta), torch.sin(3 * theta)
    scale = tension * radius / (8 * mu)
    ux = scale * (rho * (kappa + 1) * c1 + 2 / rho * ((1 + kappa) * c1 + c3) - 2 / rho**3 * c3)
    uy = scale * (rho * (kappa - 3) * s1 + 2 / rho * ((1 - kappa) * s1 + s3) - 2 / rho**3 * s3)
    return torch.stack([ux, uy], -1)


def outer_traction(radius: float = 1.0, length: float = 4.0, tension: float = 10.0):
    """``t(x) = sigma(x) n(x)`` on the outer edges of the quarter plate, as a callable of x.

    ``n = e_x`` on the edge ``x = L`` and ``e_y`` on ``y = L``; a point of those edges is
    on ``x = L`` exactly when ``x >= y`` (the corner ``(L, L)`` is no quadrature point).
    """

    def traction(x):
        s = stress(x, radius, tension)
        on_right = (x[..., 0] >= x[..., 1])[..., None]
        return torch.where(on_right, s[..., :, 0], s[..., :, 1])

    return traction


def patch_space(degree: int = 2, elements: int = 1, radius: float = 1.0,
                length: float = 4.0, shape=(2,)):
    """The space on :func:`plate_with_hole` at ``degree`` (by elevation, before the knots
    are inserted) with ``elements x 2 elements`` elements (radial x angular)."""
    if isinstance(degree, bool) or int(degree) != degree or degree < 2:
        raise DfemError(
            f"the plate with a hole is exact from degree 2 on; give an integer degree >= 2, "
            f"got {degree!r}."
        )
    if isinstance(elements, bool) or int(elements) != elements or elements < 1:
        raise DfemError(f"elements must be a positive integer, got {elements!r}.")
    patch = plate_with_hole(radius, length).elevate(int(degree))
    return IsogeometricSpace(patch.subdivide(int(elements), 2 * int(elements)), shape=shape)


def problem(degree: int = 2, elements: int = 1, **data) -> LinearElasticity:
    """The quarter-plate model at one refinement level, as a :class:`LinearElasticity`.

    ``data`` overrides :data:`DEFAULTS` (radius, length, tension, E, poisson_ratio, plane).
    Rollers: ``u_y = 0`` on ``bottom`` (``y = 0``), ``u_x = 0`` on ``top`` (``x = 0``); the
    exact traction on ``right`` (the outer edges); ``left`` (the hole) is free.
    """
    unknown = set(data) - set(DEFAULTS)
    if unknown:
        raise DfemError(
            f"unknown Kirsch parameter(s) {', '.join(sorted(unknown))}; the parameters are "
            f"{', '.join(DEFAULTS)}."
        )
    d = {**DEFAULTS, **data}
    space = patch_space(degree, elements, d["radius"], d["length"])
    return LinearElasticity(
        space, E=d["E"], poisson_ratio=d["poisson_ratio"], plane=d["plane"],
        dirichlet={"bottom": {"y": 0.0}, "top": {"x": 0.0}},
        traction={"right": outer_traction(d["radius"], d["length"], d["tension"])},
    )


def gradient_at(space, u: torch.Tensor, uv: torch.Tensor):
    """Points ``x`` (N, 2) and gradients ``grad u_h`` (N, d, 2) at parameter points ``uv``
    (N, 2) of a (vector) isogeometric space.

    With homogeneous sums ``A = sum N_a M_b w_ab c_ab``, ``W = sum N_a M_b w_ab`` the
    function is ``f = A / W`` and ``df/dxi = (dA/dxi - f dW/dxi) / W``, for the control
    values ``c`` of u and of the geometry alike; then ``grad_x u = du/dxi J^{-1}`` with
    ``J = dx/dxi``.
    """
    scalar = getattr(space, "scalar", space)
    patch = scalar.patch
    uv = torch.as_tensor(uv, dtype=scalar.dtype, device=scalar.device).reshape(-1, 2)
    Bu = basis_matrix(patch.knots_u, patch.degree_u, uv[:, 0], derivatives=1)  # (N, 2, n_u)
    Bv = basis_matrix(patch.knots_v, patch.degree_v, uv[:, 1], derivatives=1)
    n_u, n_v = patch.shape
    d = getattr(space, "n_components", 1)
    values = torch.cat([patch.control_points, u.reshape(n_u, n_v, d)], dim=-1)  # (a, b, 2 + d)
    w = patch.weights
    # (N, 3): value, d/du, d/dv of the tensor-product basis, contracted with w and w c
    pairs = ((0, 0), (1, 0), (0, 1))
    A = torch.stack([torch.einsum("na,nb,ab,abk->nk", Bu[:, i], Bv[:, j], w, values)
                     for i, j in pairs], 1)
    W = torch.stack([torch.einsum("na,nb,ab->n", Bu[:, i], Bv[:, j], w) for i, j in pairs], 1)
    f = A[:, 0] / W[:, :1]
    df = (A[:, 1:] - f[:, None, :] * W[:, 1:, None]) / W[:, :1, None]  # (N, 2 xi, 2 + d)
    jacobian = df[..., :2].transpose(-1, -2)  # J[n, i, j] = dx_i / dxi_j
    du_dxi = df[..., 2:].transpose(-1, -2)  # (N, d, 2)
    return f[:, :2], du_dxi @ torch.linalg.inv(jacobian)


def _hooke(eps, mu, lam):
    eye = torch.eye(2, dtype=eps.dtype, device=eps.device)
    return lam * eps.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] * eye + 2 * mu * eps


def solve(degree: int = 2, elements: int = 1, **data) -> dict:
    """Solve the plate with a hole at one refinement level and measure the errors.

    Returns
    -------
    dict
        ``degree``, ``elements`` (``elements x 2 elements``), ``dofs``, ``h`` (``1 /
        elements``), ``l2_displacement`` and ``rel_l2_displacement``, ``l2_stress`` and
        ``rel_l2_stress`` (Frobenius), ``energy`` and ``rel_energy`` (the energy norm of the
        error, relative to that of the exact solution), ``sigma_xx_top`` (the discrete
        ``sigma_xx`` at ``(0, R)``, exact ``3 T``) and ``seconds`` (assembly and solve).
    """
    d = {**DEFAULTS, **data}
    t0 = time.perf_counter()
    prob = problem(degree, elements, **data)
    u = prob.solve()
    seconds = time.perf_counter() - t0
    space = prob.space
    exact_u = lambda x: displacement(  # noqa: E731
        x, d["radius"], d["tension"], d["E"], d["poisson_ratio"], d["plane"])
    e = errors(space, u, exact_u, degree=2 * degree + ERROR_EXTRA_DEGREE)

    # a float64 E: lame() takes the dtype of E, and a Python float would give float32
    mu, lam = lame(torch.tensor(float(d["E"]), dtype=torch.float64), d["poisson_ratio"],
                   d["plane"] == "stress")
    mu, lam = float(mu), float(lam)
    g = space.geometry(2 * degree + ERROR_EXTRA_DEGREE)
    with torch.no_grad():
        _, grad_u = space.at_quadrature(u.detach(), g)
        sigma_h = _hooke(0.5 * (grad_u + grad_u.transpose(-1, -2)), mu, lam)
        sigma = stress(g.points, d["radius"], d["tension"])
        # C^{-1} of the (plane) model: eps = (sigma - lam / (2 mu + 2 lam) tr sigma I) / (2 mu)
        def energy_density(s):
            tr = s.diagonal(dim1=-2, dim2=-1).sum(-1)
            return ((s * s).sum((-2, -1)) - lam / (2 * mu + 2 * lam) * tr**2) / (2 * mu)

        integral = lambda f: float((f * g.weights).sum())  # noqa: E731
        diff = sigma - sigma_h
        l2_stress = math.sqrt(integral((diff * diff).sum((-2, -1))))
        stress_norm = math.sqrt(integral((sigma * sigma).sum((-2, -1))))
        energy = math.sqrt(integral(energy_density(diff)))
        energy_norm = math.sqrt(integral(energy_density(sigma)))
        # (0, R) is the patch corner u = 0 (the hole), v = 1 (the edge x = 0)
        _, grad_top = gradient_at(space, u.detach(), torch.tensor([[0.0, 1.0]]))
        sigma_top = _hooke(0.5 * (grad_top + grad_top.transpose(-1, -2)), mu, lam)[0]
    return {
        "degree": int(degree), "elements": int(elements), "dofs": space.n_dofs,
        "h": 1.0 / elements,
        "l2_displacement": e["l2"], "rel_l2_displacement": e["l2"] / e["l2_norm"],
        "l2_stress": l2_stress, "rel_l2_stress": l2_stress / stress_norm,
        "energy": energy, "rel_energy": energy / energy_norm,
        "sigma_xx_top": float(sigma_top[0, 0]), "sigma_xx_top_exact": 3.0 * d["tension"],
        "seconds": seconds,
    }


def convergence_study(degree: int, levels, fit_last: int | None = None, **data) -> dict:
    """:func:`solve` at each of ``levels`` (elements in the radial direction) and the rates
    ``log(e) ~ rate log(h)`` fitted over the last ``fit_last`` levels (default: all)."""
    rows = [solve(degree, n, **data) for n in levels]
    fit = rows if fit_last is None else rows[-int(fit_last):]
    h = [r["h"] for r in fit]
    rates = {
        f"{key}_rate": fitted_rate(h, [r[key] for r in fit]) if len(fit) > 1 else math.nan
        for key in ("l2_displacement", "l2_stress", "energy")
    }
    return {"degree": int(degree), "levels": rows, **rates}


__all__ = [
    "DEFAULTS",
    "convergence_study",
    "displacement",
    "gradient_at",
    "kolosov",
    "outer_traction",
    "patch_space",
    "polar_stress",
    "problem",
    "solve",
    "stress",
]
