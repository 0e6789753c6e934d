"""Problems posed as the minimiser of an energy given by a density.

.. math:: u = \\arg\\min_{u = u_D \\text{ on } \\Gamma_D} J(u), \\qquad
          J(u) = \\int_\\Omega \\psi(u, \\nabla u, x; p)
                 + \\sum \\int_\\Gamma \\psi_\\Gamma(u, x, n; p),

solved by one linear solve when ``psi`` is quadratic and by Newton (line search on
``J``, load stepping with cutback) otherwise. Residual and tangent come from
:mod:`dfem.assembly.density`. The solution is differentiable with respect to the
parameters, the boundary data and the node coordinates by one adjoint solve with
the converged tangent (:mod:`dfem.solvers.implicit`).

Writing a density
-----------------
``density(u, grad_u, x, params)`` receives, at every quadrature point of every cell
at once, ``u`` (n_cells, n_q) — or (n_cells, n_q, d) on a vector space —, its
gradient (..., dim) last, the points x (n_cells, n_q, dim) and the parameters
evaluated there, and returns psi of shape (n_cells, n_q). A boundary density
``boundary_density(u, x, n, params)`` sees the trace and the outward normal.

Closed-form kernels
-------------------
:func:`register_kernel` attaches a fast assembly of ``K`` and ``F`` (``R = K u - F``)
to a quadratic density; every problem with that density uses it (``kernel=False``
forces the generic path).
"""

from __future__ import annotations

import dataclasses
import time

import torch

from dfem.assembly.density import (
    PointSet,
    element_residuals,
    element_tangents,
    point_derivatives,
)
from dfem.assembly.forms import matvec
from dfem.assembly.sparsity import add_at
from dfem.basis.vector import interleave
from dfem.distributed.comm import allreduce
from dfem.distributed.dofs import distribution
from dfem.exceptions import DfemError
from dfem.problems.dirichlet import dirichlet_data
from dfem.problems.energy_terms import (
    BoundaryTerm,
    boundary_terms,
    point_load_vector,
    register_kernel,
    registered_kernel,
)
from dfem.solvers.amg import space_amg_options, with_rigid_body_modes
from dfem.solvers.implicit import implicit_solution, reaches_a_leaf
from dfem.solvers.linear import factorize, info_snapshot


class EnergyProblem:
    """Minimise ``J(u)`` of a density over a (scalar or vector) space.

    Parameters
    ----------
    space : FunctionSpace or VectorSpace
    density : callable ``psi(u, grad_u, x, params)``
        See the module docstring.
    params : dict, optional
        Fields passed to the density, each evaluated at the quadrature points: a
        number, a callable of x, nodal / per-cell / quadrature-point tensors, or (for
        vectors) a list of those or a tensor with the components last.
    dirichlet : dict {tag: u_D}, optional
        See :mod:`dfem.problems.dirichlet`.
    boundary : dict {tag: boundary density, (density, params) or BoundaryTerm}, optional
    point_loads : dict {tag: load}, optional
        Concentrated loads at the nodes of point tags (:meth:`Mesh.tag_points`) or of
        boundary tags: ``J -= sum_nodes load . u(node)``; ``load`` a number (scalar
        space) or d numbers (vector space), the load at every node of the tag. Scaled by
        the load factor.
    loads : sequence of str
        Names of ``params`` that the load factor scales (with the Dirichlet values and
        the boundary terms marked ``load=True``) during load stepping.
    quadratic : bool, optional
        Whether psi is quadratic in (u, grad u) (one linear solve). Default: detected by
        comparing the point Hessians at two random states.
    kernel : bool
        Use a registered closed-form kernel for this density when there is one.
    """

    symmetric = True
    has_energy = True

    def __init__(self, space, density, params=None, dirichlet=None, boundary=None, loads=(),
                 quadratic: bool | None = None, kernel: bool = True, point_loads=None):
        if not callable(density):
            raise DfemError(f"density must be a callable psi(u, grad_u, x, params), got "
                            f"{density!r}.")
        self.space = space
        self.density = density
        self._params = dict(params or {})
        self.dirichlet = dict(dirichlet or {})
        self._boundary = boundary_terms(boundary)
        self.loads = tuple(loads)
        unknown = [name for name in self.loads if name not in self.params]
        if unknown:
            raise DfemError(f"loads names {unknown} that are not in params "
                            f"{sorted(self.params)}.")
        self.point_loads = dict(point_loads or {})
        self.use_kernel = kernel
        self._quadratic = quadratic
        self.load_factor = 1.0
        self.last_solve: dict = {}
        for tag in self.dirichlet:
            space.boundary_dofs(tag)  # raises naming the known tags
        scalar = getattr(space, "scalar", space)
        for term in self.boundary:  # a facet integral: a point tag is refused here
            if hasattr(scalar, "boundary_facets"):
                scalar.boundary_facets(term.tag)
            else:
                space.boundary_dofs(term.tag)
        # built (and checked) once: residuals and energies on the Newton path reuse it
        self._point_loads = point_load_vector(space, self.point_loads)

    # ------------------------------------------------------------------ pieces
    @property
    def params(self) -> dict:
        """The fields passed to the density (name -> coefficient in any accepted form)."""
        return self._params

    @property
    def boundary(self) -> list[BoundaryTerm]:
        """The boundary terms."""
        return self._boundary

    pointwise_first = None  # a subclass may give (dpsi/du, dpsi/dgrad u) directly

    @property
    def _scalar(self) -> bool:
        return not hasattr(self.space, "scalar")

    def dirichlet_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The Dirichlet dofs (sorted) and a full vector holding their values (zero elsewhere),
        scaled by the load factor."""
        return dirichlet_data(self.space, self.dirichlet, self.load_factor)

    def restricted_pattern(self, fixed: torch.Tensor):
        """The free/fixed split of the space's pattern for these Dirichlet dofs (cached)."""
        space = self.space
        cache = space._shared.setdefault("restricted", {})
        key = fixed.cpu().numpy().tobytes()
        if key not in cache:
            free = torch.ones(space.n_dofs, dtype=torch.bool, device=space.device)
            free[fixed] = False
            cache.clear()  # keep one: the Dirichlet set rarely changes between solves
            cache[key] = space.pattern.restrict(free)
        return cache[key]

    def _point_load_vector(self) -> torch.Tensor | None:
        """The concentrated loads scaled by the load factor, or None."""
        P = self._point_loads
        if P is None or self.load_factor == 1.0:
            return P
        return P * self.load_factor

    def _evaluate(self, points: PointSet, params: dict, scaled=()) -> dict:
        scalar_dofs = getattr(self.space, "scalar", self.space).n_dofs
        out = {}
        for name, value in params.items():
            v = points.field(value, name, scalar_dofs, self.space.n_components)
            out[name] = v * self.load_factor if name in scaled and self.load_factor != 1 else v
        return out

    def _sets(self):
        """(points, density, params, scale) of the cells and of every boundary term."""
        cells = PointSet.of_cells(self.space)
        yield cells, self.density, self._evaluate(cells, self.params, self.loads), 1.0
        for term in self.boundary:
            pts = PointSet.of_facets(self.space, term.tag)
            scale = self.load_factor if term.load else 1.0
            yield pts, term.density, self._evaluate(pts, term.params), scale

    def _derivatives(self, u, order, create_graph=False):
        d = self.space.n_components
        for k, (pts, density, params, scale) in enumerate(self._sets()):
            first = self.pointwise_first if k == 0 else None
            psi, der = point_derivatives(density, pts, u, d, self._scalar, params, order,
                                         create_graph, first=first)
            yield pts, psi, der, scale

    # ------------------------------------------------------------------ energy
    def energy(self, u: torch.Tensor) -> torch.Tensor:
        """``J(u)``; batched over leading dimensions of u, differentiable."""
        total = 0.0
        for pts, psi, _, scale in self._derivatives(u, order=0):
            total = total + scale * (psi * pts.weights).sum((-2, -1))
        P = self._point_load_vector()
        return total if P is None else total - (P * u).sum(-1)

    def residual(self, u: torch.Tensor) -> torch.Tensor:
        """``R(u) = dJ/du`` at every dof (Dirichlet rows included), differentiable in u, the
        parameters and the node coordinates."""
        linear = self._linear_system()
        if linear is not None:
            values, F = linear
            return matvec(self.space.pattern, values, u) - F
        R = self._generic_residual(u, create_graph=torch.is_grad_enabled())
        # a graph that reaches only the stand-in point leaves carries no gradient anyone asked for
        return R if u.requires_grad or reaches_a_leaf(R) else R.detach()

    def _generic_residual(self, u, create_graph):
        d = self.space.n_components
        R = torch.zeros(self.space.n_dofs, dtype=self.space.dtype, device=self.space.device)
        for pts, _, der, scale in self._derivatives(u, order=1, create_graph=create_graph):
            Re = element_residuals(pts, der.P, der.with_values)
            R = add_at(R, interleave(pts.dofs, d), scale * Re if scale != 1.0 else Re)
        P = self._point_load_vector()
        return R if P is None else R - P

    def tangent_values(self, u: torch.Tensor | None = None) -> torch.Tensor:
        """CSR values of the tangent ``K(u) = d R / d u`` in ``space.pattern`` (detached)."""
        linear = self._linear_system()
        if linear is not None:
            return linear[0].detach()
        if u is None:
            u = torch.zeros(self.space.n_dofs, dtype=self.space.dtype, device=self.space.device)
        return self._generic_tangent(u.detach())

    def _generic_tangent(self, u, with_residual: bool = False):
        """The tangent's CSR values at ``u`` and, with ``with_residual``, the residual from
        the same pass (the point Hessians come with the first derivatives)."""
        pattern = self.space.pattern
        d = self.space.n_components
        values = torch.zeros(pattern.nnz, dtype=self.space.dtype, device=self.space.device)
        R = torch.zeros(self.space.n_dofs, dtype=self.space.dtype, device=self.space.device)
        for k, (pts, _, der, scale) in enumerate(self._derivatives(u, order=2)):
            Ke = element_tangents(pts, der.H, der.with_values)
            if scale != 1.0:
                Ke = scale * Ke
            dofs = interleave(pts.dofs, d)
            if with_residual:
                R = add_at(R, dofs, scale * element_residuals(pts, der.P, der.with_values))
            # the cells first (the pattern's own scatter), then the boundary terms
            values = pattern.assemble(Ke) if k == 0 else pattern.add_blocks(values, dofs, Ke)
        if with_residual:
            P = self._point_load_vector()
            return values, (R if P is None else R - P)
        return values

    def tangent(self, u: torch.Tensor | None = None, format: str = "torch"):
        """The tangent matrix at ``u`` (default zero) as torch sparse COO, scipy CSR or the
        raw CSR values (``format="values"``)."""
        values = self.tangent_values(u)
        if format == "values":
            return values
        if format == "scipy":
            return self.space.pattern.to_scipy(values)
        if format == "torch":
            return self.space.pattern.to_torch(values)
        raise DfemError(f"format must be 'torch', 'scipy' or 'values', got {format!r}.")

    def residual_and_tangent(self, u: torch.Tensor, tangent: bool = True):
        """``R(u)`` and (if ``tangent``) the tangent's CSR values, both detached."""
        linear = self._linear_system()
        if linear is not None:
            values, F = (t.detach() for t in linear)
            return matvec(self.space.pattern, values, u) - F, values if tangent else None
        if tangent:
            values, R = self._generic_tangent(u.detach(), with_residual=True)
            return R, values
        with torch.no_grad():
            R = self._generic_residual(u.detach(), create_graph=False)
        return R.detach(), None

    def _linear_system(self):
        """``(values, F)`` from a registered kernel, or None."""
        kernel = registered_kernel(self.density) if self.use_kernel else None
        system = kernel(self) if kernel is not None else None
        P = self._point_load_vector()
        if system is None or P is None:
            return system
        return system[0], system[1] + P

    # ------------------------------------------------------------------ kind
    @property
    def quadratic(self) -> bool:
        """Whether the energy is quadratic (declared, given by a kernel, or detected)."""
        if self._quadratic is None:
            if self.use_kernel and registered_kernel(self.density) is not None:
                self._quadratic = True
            else:
                self._quadratic = self._detect_quadratic()
        return self._quadratic

    def _detect_quadratic(self) -> bool:
        gen = torch.Generator().manual_seed(0)
        n = self.space.n_dofs
        states = [0.1 * k * torch.rand(n, generator=gen, dtype=self.space.dtype).to(
            self.space.device) for k in (1, 2)]
        with torch.no_grad():
            first, second = (self._generic_tangent(s) for s in states)
        if not (bool(torch.isfinite(first).all()) and bool(torch.isfinite(second).all())):
            return False
        scale = float(first.abs().max()) if first.numel() else 0.0
        quadratic = bool((first - second).abs().max() <= 1e-10 * max(scale, 1e-300))
        dist = distribution(self.space)
        # every rank must take the same path (a linear solve or Newton)
        return quadratic if dist is None else bool(allreduce(int(quadratic), "min",
                                                             dist.partition.comm))

    # ------------------------------------------------------------------ solve
    def solve(self, method: str = "direct", u0: torch.Tensor | None = None,
              load_steps: int = 1, rtol: float | None = None, atol: float | None = None,
              max_iter: int = 50, min_load_step: float = 1e-3, **options) -> torch.Tensor:
        """The minimiser ``u`` (n_dofs,), differentiable by one adjoint solve.

        Parameters
        ----------
        method : {"direct", "cg", "amg"}
            The linear solver (each Newton step, and the adjoint).
        u0 : tensor, optional
            Initial guess for Newton (default: zero with the Dirichlet values).
        load_steps : int
            Newton only: apply the loads (``loads`` params, Dirichlet values, boundary
            terms with ``load=True``) in this many equal increments; a failed increment
            is halved (down to ``min_load_step``) and tried again, and the increment grows
            back after each success. Each increment starts from the extrapolation of the
            last two converged states.
        rtol, atol
            The stopping rule: for Newton, on the residual (default 1e-10 relative to the
            first residual, 1e-13 absolute); for a quadratic problem, that of the iterative
            linear solver ("cg", "amg"; default 1e-10 and 0), as ``Poisson.solve`` takes it.
        max_iter
            Newton's iterations per load increment.
        **options
            Passed to the linear solver (``maxiter``, ``hierarchy``; under Newton the linear
            solver's tolerances are ``solver_rtol``/``solver_atol``): see
            :func:`dfem.solvers.factorize`.
            On a vector space "amg" defaults to smoothed aggregation with the rigid-body
            modes as near-nullspace (``near_nullspace=None`` for plain SA), on a scalar
            space in 3D to plain smoothed aggregation, in 2D to Ruge-Stueben.

        Notes
        -----
        ``self.last_solve`` holds ``assemble_s``, ``solve_s``, ``dofs``, ``free_dofs``,
        the linear solver's info (``info``) and, for Newton, its :class:`NewtonInfo`
        (``newton``) and the load factors reached (``load_factors``).
        """
        solver_options = {k.removeprefix("solver_"): v for k, v in options.items()}
        if self.quadratic:
            given = {"rtol": rtol, "atol": atol}
            solver_options = {**{k: v for k, v in given.items() if v is not None},
                              **solver_options}
            return self._solve_linear(method, solver_options)
        rtol = 1e-10 if rtol is None else rtol
        atol = 1e-13 if atol is None else atol
        return self._solve_newton(method, u0, load_steps, rtol, atol, max_iter,
                                  min_load_step, solver_options)

    def _check_unique(self, fixed: torch.Tensor) -> None:
        """Subclasses raise a clear error where the problem is singular."""

    def _solve_linear(self, method, solver_options):
        t0 = time.perf_counter()
        fixed, u_fixed = self.dirichlet_data()
        self._check_unique(fixed)
        restricted = self.restricted_pattern(fixed)
        free = restricted.free_dofs
        linear = self._linear_system()
        if linear is not None:
            values, F = linear
            residual = lambda u: matvec(self.space.pattern, values, u) - F  # noqa: E731
            R0 = residual(u_fixed.detach()).detach()
        else:
            values = self._generic_tangent(u_fixed.detach())
            residual = lambda u: self._generic_residual(u, create_graph=True)  # noqa: E731
            with torch.no_grad():
                R0 = self._generic_residual(u_fixed.detach(), create_graph=False)
        t1 = time.perf_counter()
        factor, x = self._factor_and_solve(restricted, values.detach(), -R0[free], method,
                                           solver_options)
        t2 = time.perf_counter()
        u = self._attach(u_fixed, free, x, residual, factor)
        self.last_solve = dict(assemble_s=t1 - t0, solve_s=t2 - t1, info=info_snapshot(factor),
                               dofs=self.space.n_dofs, free_dofs=restricted.n)
        return u

    def _factor_and_solve(self, restricted, values, b, method, solver_options):
        if restricted.n == 0 and distribution(self.space) is None:
            return None, b
        options = self._amg_options(method, solver_options, restricted.free_dofs)
        factor = factorize(restricted.pattern, values[restricted.ff], method,
                           symmetric=self.symmetric, **options)
        return factor, factor.forward_solve(b)

    def _amg_options(self, method, solver_options, free):
        dist = distribution(self.space)
        if method == "petsc":  # GAMG with the rigid-body modes
            options = with_rigid_body_modes(self.space, solver_options, free)
            return options if dist is None else {**options, "distribution": dist.rows(free)}
        if dist is not None:
            raise DfemError(f"a problem on one rank's part of a distributed mesh is solved "
                            f"by method='petsc' (all ranks together), not {method!r}.")
        if method != "amg":
            return solver_options
        return space_amg_options(self.space, solver_options, free)

    def _attach(self, u_fixed, free, x, residual, factor):
        """u with the free values ``x``, differentiable by the implicit function theorem."""
        if factor is None or not torch.is_grad_enabled():
            return u_fixed.index_put((free,), x.detach()) if factor is not None else u_fixed
        u_in = u_fixed.index_put((free,), x.detach())
        R = residual(u_in)[free]
        collective = distribution(self.space) is not None  # every rank's backward solves
        return u_fixed.index_put((free,), implicit_solution(R, x, factor, collective))

    def _solve_newton(self, method, u0, load_steps, rtol, atol, max_iter, min_load_step,
                      solver_options):
        from dfem.solvers.newton_method import load_stepping

        if distribution(self.space) is not None:
            raise DfemError(
                "Newton's method does not run distributed: a distributed solve takes a "
                "quadratic energy (Poisson, linear elasticity, a quadratic density of your "
                "own); solve this problem on one process.")
        t0 = time.perf_counter()
        fixed, _ = self.dirichlet_data()
        free = self.restricted_pattern(fixed).free_dofs  # the load factor keeps the dof set
        solver_options = self._amg_options(method, solver_options, free)
        u, infos, reached = load_stepping(
            self, u0, load_steps, min_load_step, rtol=rtol, atol=atol, max_iter=max_iter,
            method=method, linear_options=solver_options)
        fixed, u_fixed = self.dirichlet_data()
        restricted = self.restricted_pattern(fixed)
        free = restricted.free_dofs
        t1 = time.perf_counter()
        factor = None
        if restricted.n and torch.is_grad_enabled():
            factor = factorize(restricted.pattern, infos[-1].tangent[restricted.ff], method,
                               symmetric=self.symmetric, **solver_options)
        residual = lambda v: self._generic_residual(v, create_graph=True)  # noqa: E731
        out = self._attach(u_fixed, free, u[free], residual, factor) if factor is not None \
            else u_fixed.index_put((free,), u[free])
        total = dataclasses.replace(infos[-1], iterations=sum(i.iterations for i in infos))
        self.last_solve = dict(solve_s=t1 - t0, newton=total, newton_per_step=infos,
                               load_factors=reached, dofs=self.space.n_dofs,
                               free_dofs=restricted.n)
        return out


__all__ = ["BoundaryTerm", "EnergyProblem", "boundary_terms", "register_kernel"]
