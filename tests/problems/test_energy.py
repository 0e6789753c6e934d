"""The energy core: densities -> energy, residual, tangent, solve and adjoint gradients."""

from __future__ import annotations

import math

import pytest
import torch

import dfem
from dfem.basis.nurbs.patch import quarter_annulus
from dfem.basis.nurbs.space import IsogeometricSpace
from dfem.exceptions import ConvergenceError, DfemError
from dfem.problems import NonlinearPoisson
from dfem.problems.energy import EnergyProblem
from dfem.problems.poisson import neumann_density, reaction_diffusion, robin_density


def _source(x):
    return torch.sin(3 * x[..., 0]) * x[..., 1] + 1.0


def _pair(space, nu, kernel_for_generic=False):
    """The same reaction-diffusion problem through Poisson (closed form) and the generic path."""
    common = dict(dirichlet={"left": lambda x: 1.0 + x[..., 1]})
    poisson = dfem.Poisson(space, nu=nu, c=0.5, f=_source, neumann={"top": 0.3},
                           robin={"right": (2.0, lambda x: x[..., 1])}, **common)
    generic = EnergyProblem(
        space, reaction_diffusion, params=dict(nu=nu, c=0.5, f=_source),
        boundary={"top": (neumann_density, {"g": 0.3}),
                  "right": (robin_density, {"alpha": 2.0, "g": lambda x: x[..., 1]})},
        kernel=kernel_for_generic, **common)
    return poisson, generic


SPACES = [("P1", "tri"), ("P2", "tri"), ("P3", "tri"), ("Q1", "quad"), ("Q2", "quad"),
          ("Q3", "quad")]


@pytest.mark.parametrize("element,cell", SPACES)
def test_generic_density_path_equals_the_closed_form_kernels(element, cell):
    mesh = dfem.mesh.rectangle(5, 4, cell)
    mesh = mesh.with_nodes(mesh.nodes + 0.02 * torch.sin(7 * mesh.nodes.flip(-1)))  # curved map
    space = dfem.FunctionSpace(mesh, element)
    nu = 1.0 + torch.rand(mesh.n_cells, dtype=torch.float64, generator=torch.Generator()
                          .manual_seed(1))
    poisson, generic = _pair(space, nu)
    assert generic.quadratic  # detected: two random states give the same point Hessians
    u = torch.rand(space.n_dofs, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    scale = float(poisson.residual(u).abs().max())
    assert (poisson.residual(u) - generic.residual(u)).abs().max() <= 1e-12 * scale
    assert float(poisson.energy(u) - generic.energy(u)) == pytest.approx(0, abs=1e-12 * scale)
    K0, K1 = poisson.tangent_values(), generic.tangent_values(u)
    assert (K0 - K1).abs().max() <= 1e-12 * K0.abs().max()
    u0, u1 = poisson.solve(), generic.solve()
    assert (u0 - u1).abs().max() <= 1e-12 * u0.abs().max()


def test_generic_and_closed_form_gradients_agree():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(5, 5, "tri"), "P2")
    nu = torch.full((space.mesh.n_cells,), 1.5, dtype=torch.float64, requires_grad=True)
    nodes = space.mesh.nodes.clone().requires_grad_(True)
    moved = space.with_nodes(nodes)
    grads = []
    for problem in _pair(moved, nu):
        (problem.solve() ** 2).sum().backward()
        grads.append((nu.grad.clone(), nodes.grad.clone()))
        nu.grad = None
        nodes.grad = None
    for a, b in zip(*grads, strict=True):
        assert (a - b).abs().max() <= 1e-11 * a.abs().max()


def test_nurbs_space_takes_the_generic_path_too():
    space = IsogeometricSpace(quarter_annulus(1.0, 2.0).subdivide(4))
    poisson = dfem.Poisson(space, nu=2.0, f=1.0, dirichlet={"boundary": 0.0})
    generic = EnergyProblem(space, reaction_diffusion, params=dict(nu=2.0, f=1.0),
                            dirichlet={"boundary": 0.0}, kernel=False)
    u0, u1 = poisson.solve(), generic.solve()
    assert (u0 - u1).abs().max() <= 1e-12 * u0.abs().max()


# ---------------------------------------------------------------------- user densities
def test_a_user_density_with_a_spring_boundary_term_solves_its_euler_lagrange_equation():
    """psi = |grad u|^2 / 2 - u on the unit square, a spring k/2 u^2 on the right side,
    u = 0 elsewhere: compare with dfem.Poisson's Robin condition (alpha = k, g_R = 0)."""
    space = dfem.FunctionSpace(dfem.mesh.rectangle(8, 8, "quad"), "Q2")
    k = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)

    def density(u, grad_u, x, params):
        return 0.5 * (grad_u**2).sum(-1) - u

    def spring(u, x, n, params):
        return 0.5 * params["k"] * u**2

    problem = EnergyProblem(space, density, dirichlet={"left": 0.0, "top": 0.0, "bottom": 0.0},
                            boundary={"right": (spring, {"k": k})})
    u = problem.solve()
    reference = dfem.Poisson(space, f=1.0, dirichlet={"left": 0.0, "top": 0.0, "bottom": 0.0},
                             robin={"right": (k, 0.0)})
    u_ref = reference.solve()
    torch.testing.assert_close(u, u_ref, rtol=0, atol=1e-12)
    (g,) = torch.autograd.grad(u.sum(), k)
    (g_ref,) = torch.autograd.grad(u_ref.sum(), k)
    assert float(g) == pytest.approx(float(g_ref), rel=1e-10)


def test_quadratic_detection_and_the_newton_path_for_a_quartic_density():
    """psi = |grad u|^2/2 + u^4/4 - f u: not quadratic; Newton converges quadratically and the
    residual vanishes at the solution."""
    space = dfem.FunctionSpace(dfem.mesh.rectangle(8, 8, "tri"), "P2")

    def density(u, grad_u, x, params):
        return 0.5 * (grad_u**2).sum(-1) + 0.25 * u**4 - params["f"] * u

    problem = EnergyProblem(space, density, params={"f": 20.0}, dirichlet={"boundary": 0.0})
    assert not problem.quadratic
    u = problem.solve()
    info = problem.last_solve["newton"]
    assert info.converged and info.iterations <= 8
    r = info.residuals
    assert r[-1] / r[-2] < 1e-3
    free = problem.restricted_pattern(problem.dirichlet_data()[0]).free_dofs
    assert float(problem.residual(u.detach()).detach()[free].abs().max()) < 1e-10
    # the energy decreased along the iterations and is lower than at a perturbed state
    assert float(problem.energy(u)) < float(problem.energy(u.detach() * 1.01))


def test_density_of_the_wrong_shape_and_bad_arguments_are_named():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "Q1")
    bad = EnergyProblem(space, lambda u, g, x, p: (g**2).sum(), dirichlet={"left": 0.0})
    with pytest.raises(DfemError, match="must return one value per quadrature point"):
        bad.residual(torch.zeros(space.n_dofs, dtype=torch.float64))
    with pytest.raises(DfemError, match="density must be a callable"):
        EnergyProblem(space, 3.0)
    with pytest.raises(DfemError, match="loads names"):
        EnergyProblem(space, reaction_diffusion, params={"nu": 1.0}, loads=["f"])
    with pytest.raises(dfem.MeshError):
        EnergyProblem(space, reaction_diffusion, params={"nu": 1.0}, dirichlet={"nowhere": 0.0})


def test_newton_that_cannot_converge_raises_convergence_error():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 4, "quad"), "Q1")

    def density(u, grad_u, x, params):  # strongly nonlinear: Newton needs more than 2 steps
        return 0.5 * (grad_u**2).sum(-1) + torch.exp(3 * u) - 30 * u

    problem = EnergyProblem(space, density, dirichlet={"boundary": 0.0})
    with pytest.raises(ConvergenceError, match="did not converge"):
        problem.solve(max_iter=2, min_load_step=0.5)


# ---------------------------------------------------------------------- NonlinearPoisson
def _nonlinear(space, f=1.0):
    return NonlinearPoisson(space, nu=lambda u, x: 1 + u**2, reaction=lambda u, x: u**3,
                            f=f, dirichlet={"boundary": 0.0})


def test_nonlinear_poisson_residual_is_its_own_and_vanishes_at_the_solution():
    """The old class's residual() silently used nu = 1 (1e-2 at its own solution)."""
    space = dfem.FunctionSpace(dfem.mesh.rectangle(16, 16, "quad"), "Q1")
    problem = _nonlinear(space, f=10.0)
    u = problem.solve()
    free = problem.restricted_pattern(problem.dirichlet_data()[0]).free_dofs
    assert float(problem.residual(u.detach()).detach()[free].abs().max()) < 1e-11
    with pytest.raises(DfemError, match="not the gradient of an energy"):
        problem.energy(u)


def test_nonlinear_poisson_on_nurbs_and_its_gradient_against_finite_differences():
    space = IsogeometricSpace(quarter_annulus(1.0, 2.0).subdivide(3))
    f = torch.tensor(4.0, dtype=torch.float64, requires_grad=True)
    problem = _nonlinear(space, f=f)
    u = problem.solve()
    assert u.requires_grad  # the old class returned a solution without a graph
    (g,) = torch.autograd.grad(u.sum(), f)
    h = 1e-5
    plus = _nonlinear(space, f=4.0 + h).solve().sum()
    minus = _nonlinear(space, f=4.0 - h).solve().sum()
    assert float(g) == pytest.approx(float(plus - minus) / (2 * h), rel=1e-6)


def test_variational_nonlinear_poisson_has_an_energy_whose_gradient_is_the_residual():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 4, "tri"), "P2")
    problem = NonlinearPoisson(space, nu=2.0, reaction=lambda u, x: torch.sinh(u), f=1.0,
                               dirichlet={"left": 0.0})
    u = torch.rand(space.n_dofs, dtype=torch.float64, requires_grad=True)
    (dJ,) = torch.autograd.grad(problem.energy(u), u)
    torch.testing.assert_close(dJ, problem.residual(u.detach()), rtol=1e-10, atol=1e-12)
    assert math.isfinite(float(problem.energy(u.detach())))
