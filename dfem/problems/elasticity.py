"""Isotropic elasticity as energy densities: linear (small strain) and compressible Neo-Hookean.

Lamé parameters from Young's modulus ``E`` and Poisson's ratio ``nu``:

.. math:: \\mu = \\frac{E}{2(1+\\nu)}, \\qquad \\lambda = \\frac{E\\nu}{(1+\\nu)(1-2\\nu)},

with ``lambda -> 2 lambda mu / (lambda + 2 mu)`` in plane stress. The densities are

.. math::
    \\psi_{lin} = \\tfrac{\\lambda}{2} (\\operatorname{tr}\\varepsilon)^2
        + \\mu\\,\\varepsilon:\\varepsilon - b\\cdot u,
    \\qquad \\varepsilon = \\tfrac12(\\nabla u + \\nabla u^T),

    \\psi_{NH} = \\tfrac{\\mu}{2}(\\operatorname{tr} F^TF - d) - \\mu \\ln J
        + \\tfrac{\\lambda}{2} (\\ln J)^2 - b\\cdot u, \\qquad F = I + \\nabla u,\\ J = \\det F,

and a traction ``t`` on a tag adds ``-int t . u``. Both are
:class:`~dfem.problems.energy.EnergyProblem` s; linear elasticity has a registered
closed-form kernel, Neo-Hookean goes through the generic density path (Newton).
Post-processing lives in :mod:`dfem.problems.stresses`.
"""

from __future__ import annotations

import torch

from dfem.assembly.coefficients import AtQuadrature, Nodal, PerCell
from dfem.assembly.density import PointSet
from dfem.assembly.sparsity import add_at
from dfem.basis.vector import interleave
from dfem.exceptions import DfemError
from dfem.problems import stresses
from dfem.problems.energy import BoundaryTerm, EnergyProblem, register_kernel


def lame(E, poisson_ratio, plane_stress=False):
    """``(mu, lambda)`` from ``E`` and Poisson's ratio (tensors or numbers), checked."""
    E = E if torch.is_tensor(E) else torch.as_tensor(E, dtype=torch.float64)
    if not E.is_floating_point():
        E = E.to(torch.float64)
    nu = torch.as_tensor(poisson_ratio, dtype=E.dtype, device=E.device)
    if not bool((E.detach() > 0).all()):
        raise DfemError(
            f"Young's modulus E must be positive everywhere; found a minimum of "
            f"{float(E.detach().min()):.3g}."
        )
    if not bool(((nu.detach() > -1) & (nu.detach() < 0.5)).all()):
        raise DfemError(
            "poisson_ratio must lie in (-1, 0.5) everywhere (0.5 is incompressible, which a "
            f"displacement formulation cannot represent); found values in "
            f"[{float(nu.detach().min()):.4g}, {float(nu.detach().max()):.4g}]."
        )
    mu = E / (2 * (1 + nu))
    lam = E * nu / ((1 + nu) * (1 - 2 * nu))
    if plane_stress:
        lam = 2 * lam * mu / (lam + 2 * mu)
    return mu, lam


def _material(params):
    stress = params.get("plane_stress")
    plane_stress = stress is not None and bool(torch.as_tensor(stress).detach().any())
    return lame(params["E"], params["poisson_ratio"], plane_stress)


def _body_force_work(u, params):
    b = params.get("body_force")
    return 0.0 if b is None else (b * u).sum(-1)


def linear_elastic(u, grad_u, x, params):
    """``psi = lambda/2 (tr eps)^2 + mu eps:eps - b.u`` (small strain)."""
    mu, lam = _material(params)
    eps = 0.5 * (grad_u + grad_u.transpose(-1, -2))
    trace = eps.diagonal(dim1=-2, dim2=-1).sum(-1)
    return 0.5 * lam * trace**2 + mu * (eps * eps).sum((-2, -1)) - _body_force_work(u, params)


def neo_hookean(u, grad_u, x, params):
    """``psi = mu/2 (tr F^T F - d) - mu ln J + lambda/2 (ln J)^2 - b.u``; NaN where J <= 0."""
    mu, lam = _material(params)
    d = grad_u.shape[-1]
    F = grad_u + torch.eye(d, dtype=grad_u.dtype, device=grad_u.device)
    J = torch.linalg.det(F)
    log_J = torch.log(J)  # NaN for an inverted point: Newton's line search rejects it
    return (
        0.5 * mu * ((F * F).sum((-2, -1)) - d)
        - mu * log_J
        + 0.5 * lam * log_J**2
        - _body_force_work(u, params)
    )


def traction_work(u, x, n, params):
    """``psi_t = -t . u``: a traction (force per area) ``t`` on the boundary."""
    return -(params["t"] * u).sum(-1)


def boundary_stress_work(u, x, n, params):
    """``psi = -(sigma n) . u``: the traction of a given stress field ``sigma`` on the
    boundary (e.g. an exact solution's), with the facets' outward normals ``n``."""
    return -((params["sigma"] @ n[..., None])[..., 0] * u).sum(-1)


def boundary_traction(term, problem, pts):
    """The traction ``t`` at the facet points of a traction or boundary-stress term."""
    if term.density is traction_work:
        return problem._evaluate(pts, term.params)["t"]
    sigma = problem._evaluate(pts, term.params)["sigma"]
    return (sigma @ pts.normals[..., None])[..., 0]


def _element_stiffness(g, mu, lam) -> torch.Tensor:
    """``K_e[a, i, b, j] = int lambda G_ai G_bj + mu (G_aj G_bi + delta_ij G_a . G_b)``,
    (E, nb, d, nb, d), from the geometry's gradients and the Lame fields."""
    w = g.weights
    lw, mw = (torch.as_tensor(lam) * w).expand_as(w), (torch.as_tensor(mu) * w).expand_as(w)
    G = g.grads  # (E, Q, nb, dim)
    d = G.shape[-1]
    K = torch.einsum("eq,eqai,eqbj->eaibj", lw, G, G)
    K = K + torch.einsum("eq,eqaj,eqbi->eaibj", mw, G, G)
    diag = torch.einsum("eq,eqak,eqbk->eab", mw, G, G)
    return K + diag[:, :, None, :, None] * torch.eye(d, dtype=G.dtype, device=G.device)[:, None, :]


def _per_cell_stiffness(problem, g):
    """``K_e = E_e K_e(E = 1)`` for a per-cell modulus and one Poisson's ratio (SIMP): the
    Lame parameters are linear in E, so the unit element matrices are computed once per
    geometry and each new modulus costs one scaling. None where that does not apply."""
    E, nu = problem.params["E"], problem.params["poisson_ratio"]
    scalar = getattr(problem.space, "scalar", problem.space)
    cacheable = getattr(scalar, "_geometry_is_cacheable", lambda: False)()
    E = _per_cell_values(E, problem.space.mesh.n_cells, scalar.n_dofs)
    if not (cacheable and E is not None
            and isinstance(nu, (int, float)) and not isinstance(nu, bool)):
        return None
    plane_stress = bool(problem.params.get("plane_stress"))
    key = (float(nu), plane_stress)
    cached = problem.space.__dict__.get("_unit_elastic")
    if cached is None or cached[0] is not g or cached[1] != key:
        mu, lam = lame(torch.ones((), dtype=g.weights.dtype), nu, plane_stress)
        cached = (g, key, _element_stiffness(g, mu, lam))
        problem.space.__dict__["_unit_elastic"] = cached
    lame(E, nu)  # checks E > 0
    unit = cached[2]
    return E.to(unit.dtype)[:, None, None, None, None] * unit


def _per_cell_values(E, n_cells: int, n_nodal: int):
    """The (n_cells,) values of a per-cell modulus, or None for another kind of field: a
    :class:`PerCell`, or a plain 1D tensor of one entry per cell (coefficient evaluation
    reads it so, unless it could be nodal too)."""
    if isinstance(E, PerCell):
        E = E.values
    elif n_cells == n_nodal:
        return None
    return E if torch.is_tensor(E) and E.shape == (n_cells,) else None


def _linear_elastic_kernel(problem):
    """``K_e = int lambda (div) + mu (eps : eps)`` in closed form, and the load."""
    space = problem.space
    g = space.geometry()
    cells = PointSet.of_cells(space, g)
    params = problem._evaluate(cells, problem.params, problem.loads)
    K = _per_cell_stiffness(problem, g)
    if K is None:
        mu, lam = _material(params)
        K = _element_stiffness(g, mu, lam)
    w = g.weights
    d = g.grads.shape[-1]
    n_local = K.shape[1] * d
    values = space.pattern.assemble(K.reshape(K.shape[0], n_local, n_local))
    F = torch.zeros(space.n_dofs, dtype=space.dtype, device=space.device)
    b = params.get("body_force")
    if b is not None:
        Fe = torch.einsum("eqi,qa->eai" if g.values.ndim == 2 else "eqi,eqa->eai",
                          (b * w[..., None]).expand(*w.shape, d), g.values)
        F = add_at(F, space.cell_dofs, Fe.flatten(1))
    for term in problem.boundary:
        if term.density not in (traction_work, boundary_stress_work):
            return None
        pts = PointSet.of_facets(space, term.tag)
        t = boundary_traction(term, problem, pts)
        scale = problem.load_factor if term.load else 1.0
        tw = (t * pts.weights[..., None]).expand(*pts.weights.shape, d) * scale
        per_facet = "fqa" if pts.values.ndim == 3 else "qa"
        Fe = torch.einsum(f"fqi,{per_facet}->fai", tw, pts.values)
        F = add_at(F, interleave(pts.dofs, d), Fe.flatten(1))
    return values, F


register_kernel(linear_elastic, _linear_elastic_kernel)


class _Elasticity(EnergyProblem):
    """Shared set-up of the elastic problems: checks, material fields, tractions."""

    density = None

    def __init__(self, space, E=1.0, poisson_ratio=0.3, plane=None, body_force=None,
                 dirichlet=None, traction=None, boundary_stress=None, quadratic=None,
                 point_loads=None):
        d = getattr(space, "n_components", 1)
        dim = space.mesh.nodes.shape[1]
        if not hasattr(space, "scalar") or d != dim:
            raise DfemError(
                f"{type(self).__name__} needs a vector space with one component per "
                f"dimension, e.g. dfem.FunctionSpace(mesh, 'Q2', shape=({dim},)); got {space!r}."
            )
        if dim == 3 and plane is not None:
            raise DfemError(f"plane={plane!r} is a 2D option (plane strain or plane stress); "
                            "a 3D mesh is fully three-dimensional: drop plane.")
        plane = "strain" if plane is None and dim == 2 else plane
        if dim == 2 and plane not in ("strain", "stress"):
            raise DfemError(f"plane must be 'strain' or 'stress', got {plane!r}.")
        self.plane = plane
        for name, value in (("E", E), ("poisson_ratio", poisson_ratio)):
            if isinstance(value, (Nodal, PerCell, AtQuadrature)):
                value = value.values  # the wrapper only says where the values live
            if not callable(value) and not isinstance(value, (list, tuple)):
                try:
                    v = torch.as_tensor(value, dtype=torch.float64)
                except (TypeError, ValueError, RuntimeError) as exc:
                    raise DfemError(f"{name} must be a number or a field, got {value!r}.") from exc
                if name == "E":
                    lame(v, 0.0)
                else:
                    lame(1.0, v)
        params = {"E": E, "poisson_ratio": poisson_ratio,
                  "plane_stress": 1.0 if plane == "stress" else 0.0}
        loads = ()
        if body_force is not None:
            params["body_force"] = _vector(body_force, d, "body_force")
            loads = ("body_force",)
        boundary = {
            tag: BoundaryTerm(tag, traction_work, {"t": _vector(t, d, f"traction on {tag!r}")},
                              load=True)
            for tag, t in (traction or {}).items()
        }
        for tag, sigma in (boundary_stress or {}).items():
            if tag in boundary:
                raise DfemError(f"{tag!r} has both a traction and a boundary stress; give one.")
            sigma = _matrix(sigma, d, f"boundary stress on {tag!r}")
            boundary[tag] = BoundaryTerm(tag, boundary_stress_work, {"sigma": sigma}, load=True)
        super().__init__(space, type(self).density, params=params, dirichlet=dirichlet,
                         boundary=boundary, loads=loads, quadratic=quadratic,
                         point_loads=point_loads)

    @property
    def material(self):
        """``(mu, lambda)`` at the cell quadrature points."""
        cells = PointSet.of_cells(self.space)
        return _material(self._evaluate(cells, self.params))

    # post-processing: see dfem.problems.stresses
    def strain(self, u, per_cell: bool = False):
        return stresses.strain(self, u, per_cell)

    def stress(self, u, kind: str = "cauchy", per_cell: bool = False):
        return stresses.stress(self, u, kind, per_cell)

    def von_mises(self, u, per_cell: bool = False):
        return stresses.von_mises(self, u, per_cell)

    def reaction(self, u, tag):
        return stresses.reaction(self, u, tag)

    def reactions(self, u):
        return stresses.reactions(self, u)

    def compliance(self, u):
        return stresses.compliance(self, u)

    strain.__doc__ = stresses.strain.__doc__
    stress.__doc__ = stresses.stress.__doc__
    von_mises.__doc__ = stresses.von_mises.__doc__
    reaction.__doc__ = stresses.reaction.__doc__
    reactions.__doc__ = stresses.reactions.__doc__
    compliance.__doc__ = stresses.compliance.__doc__


def _matrix(value, d: int, name: str):
    if isinstance(value, (list, tuple)) and (
        len(value) != d or any(not isinstance(r, (list, tuple)) or len(r) != d for r in value)
    ):
        raise DfemError(f"{name} must be a {d} x {d} list of lists [[s_xx, s_xy], ...].")
    return value


def _vector(value, d: int, name: str):
    if isinstance(value, (list, tuple)) and len(value) != d:
        raise DfemError(f"{name} has {len(value)} components; this problem has {d}.")
    if torch.is_tensor(value) and value.ndim == 1 and value.shape[0] != d:
        raise DfemError(f"{name} has {value.shape[0]} components; this problem has {d}.")
    return value


class LinearElasticity(_Elasticity):
    """Small-strain isotropic linear elasticity (one linear solve).

    Parameters
    ----------
    space : VectorSpace
        ``dfem.FunctionSpace(mesh, element, shape=(dim,))``.
    E, poisson_ratio
        Young's modulus (> 0) and Poisson's ratio (in (-1, 0.5)): numbers, callables of
        x, nodal or per-cell tensors (any coefficient form).
    plane : {"strain", "stress"}, optional
        The 2D model: plane strain (``eps_zz = 0``, the default) or plane stress
        (``sigma_zz = 0``). Not for 3D meshes.
    body_force : vector field, optional
        ``b`` (force per volume): ``[bx, by]`` of coefficients, a callable returning
        (..., d), or a tensor with the components last.
    dirichlet : dict {tag: displacement}
        See :mod:`dfem.problems.dirichlet` (``{"left": 0.0}`` clamps, ``{"left": {"x": 0}}``
        is a roller).
    traction : dict {tag: t}
        Force per length (area) on boundary tags, vector fields as ``body_force``.
    point_loads : dict {tag: [f_x, f_y(, f_z)]}
        A force at every node of a point tag (:meth:`dfem.mesh.Mesh.tag_points`).
    boundary_stress : dict {tag: sigma}
        A stress field whose traction ``sigma n`` (outward normal n) loads the tag:
        ``[[s_xx, s_xy], [s_yx, s_yy]]`` of coefficients or a callable returning
        (..., d, d); e.g. an exact solution's stress on a curved or kinked side.
    """

    density = staticmethod(linear_elastic)

    def __init__(self, space, E=1.0, poisson_ratio=0.3, plane=None, body_force=None,
                 dirichlet=None, traction=None, boundary_stress=None, point_loads=None):
        super().__init__(space, E, poisson_ratio, plane, body_force, dirichlet, traction,
                         boundary_stress, quadratic=True, point_loads=point_loads)


class NeoHookean(_Elasticity):
    """Compressible Neo-Hookean hyperelasticity (Newton with load stepping).

    Same parameters as :class:`LinearElasticity`; 2D is plane strain. Solve with
    ``problem.solve(load_steps=n)`` for large loads: a failed increment is halved.
    """

    density = staticmethod(neo_hookean)

    def __init__(self, space, E=1.0, poisson_ratio=0.3, plane=None, body_force=None,
                 dirichlet=None, traction=None, boundary_stress=None, point_loads=None):
        if plane not in (None, "strain"):
            raise DfemError("NeoHookean in 2D is plane strain; plane='stress' is not supported.")
        super().__init__(space, E, poisson_ratio, plane, body_force, dirichlet, traction,
                         boundary_stress, quadratic=False, point_loads=point_loads)
