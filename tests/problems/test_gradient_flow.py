"""GradientFlow: the incremental potential of an energy problem, stepped by Newton; equal to
dfem.Heat on the linear heat equation (states and both adjoints), orders on nonlinear
diffusion, monotone energy and the steady limit of a user's density, vector spaces."""

import math

import pytest
import torch

import dfem
from dfem.exceptions import DfemError


@pytest.mark.parametrize("scheme", ["implicit-euler", "bdf2"])
def test_linear_flow_equals_heat_and_its_adjoint(scheme):
    mesh = dfem.mesh.rectangle(5, 5, "quad")
    space = dfem.FunctionSpace(mesh, "Q1")
    k = torch.full((25,), 1.3, dtype=torch.float64, requires_grad=True)
    u0 = space.interpolate(lambda x: x[..., 0] * x[..., 1]).requires_grad_(True)

    def source(x):
        return 1 + x[..., 0]

    heat = dfem.Heat(space, k=k, f=source, rho_c=2.0, dirichlet={"left": 0.0})
    expected = heat.run(u0, t_end=0.2, dt=0.02, scheme=scheme)
    flow = dfem.GradientFlow(dfem.Poisson(space, nu=k, f=source, dirichlet={"left": 0.0}),
                             rho=2.0)
    got = flow.run(u0, t_end=0.2, dt=0.02, scheme=scheme)
    assert torch.allclose(got.u, expected.u, rtol=0, atol=1e-12)
    # the checkpointed discrete adjoint (Heat) and the per-step implicit adjoint (here)
    g_heat = torch.autograd.grad((expected.u ** 2).sum(), (k, u0))
    g_flow = torch.autograd.grad((got.u ** 2).sum(), (k, u0))
    for a, b in zip(g_heat, g_flow, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


def test_nonlinear_diffusion_orders_against_a_fine_reference():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 4, "quad"), "Q2")
    u0 = space.interpolate(lambda x: torch.sin(math.pi * x[..., 0]) * torch.sin(
        math.pi * x[..., 1]))
    problem = dfem.NonlinearPoisson(space, nu=lambda u, x: 1 + u ** 2,
                                    dirichlet={"boundary": 0.0})
    flow = dfem.GradientFlow(problem)
    reference = flow.run(u0, t_end=0.1, dt=0.1 / 160, scheme="bdf2").u
    errs = {}
    for scheme in ("implicit-euler", "bdf2"):
        errs[scheme] = [float(torch.linalg.vector_norm(
            flow.run(u0, t_end=0.1, dt=0.1 / n, scheme=scheme).u - reference))
            for n in (10, 20, 40)]
    euler = errs["implicit-euler"]
    assert abs(math.log2(euler[-2] / euler[-1]) - 1) <= 0.1
    bdf2 = errs["bdf2"]
    assert math.log2(bdf2[-2] / bdf2[-1]) >= 1.8
    assert bdf2[-1] < 0.05 * euler[-1]


def test_user_density_energy_decreases_to_the_minimiser():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(6, 6, "quad"), "Q2")

    def psi(u, grad_u, x, params):
        return (1 + (grad_u * grad_u).sum(-1)) ** 1.5 / 3 - params["f"] * u

    problem = dfem.EnergyProblem(space, psi, params={"f": 1.0}, dirichlet={"boundary": 0.0})
    flow = dfem.GradientFlow(problem)
    result = flow.run(0.0, t_end=1.0, dt=0.05, save_every=2)
    energy = flow.energy(result.snapshots)
    assert bool((energy[1:] <= energy[:-1] + 1e-14).all())
    minimiser = problem.solve()
    assert float((result.u - minimiser).abs().max()) < 1e-4
    assert result.info.newton_iterations >= result.info.steps


def test_elastic_flow_on_a_vector_space_reaches_the_static_solution():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(6, 2, "quad", x=(0.0, 3.0)), "Q1",
                               shape=(2,))
    problem = dfem.LinearElasticity(space, E=1.0, poisson_ratio=0.3, body_force=[0.0, -0.01],
                                    dirichlet={"left": 0.0})
    result = dfem.GradientFlow(problem).run(0.0, times=[0.0, 1.0, 10.0, 1e2, 1e4, 1e6])
    static = problem.solve()
    assert float((result.u - static).abs().max()) < 1e-3 * float(static.abs().max())
    assert result.snapshots.shape == (6, space.n_dofs)


def test_nonlinear_flow_gradcheck():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "Q1")
    f = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    u0 = torch.full((space.n_dofs,), 0.3, dtype=torch.float64, requires_grad=True)

    def objective(u0, f):
        problem = dfem.NonlinearPoisson(space, nu=lambda u, x: 1 + u ** 2, f=f,
                                        dirichlet={"left": 0.0})
        return (dfem.GradientFlow(problem).run(u0, t_end=0.2, dt=0.1, scheme="bdf2",
                                               rtol=1e-13).u ** 2).sum()

    assert torch.autograd.gradcheck(objective, (u0, f))


def test_bad_flows_are_named():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "Q1")
    flow = dfem.GradientFlow(dfem.Poisson(space, dirichlet={"left": 0.0}))
    with pytest.raises(DfemError, match="'implicit-euler' or 'bdf2'"):
        flow.run(0.0, t_end=1.0, dt=0.1, scheme="crank-nicolson")
    with pytest.raises(DfemError, match="dt must be positive"):
        flow.run(0.0, t_end=1.0, dt=-1.0)
    with pytest.raises(DfemError, match="takes an EnergyProblem"):
        dfem.GradientFlow(space)


def test_elastic_flow_keeps_the_problems_point_loads():
    mesh = dfem.mesh.rectangle(6, 2, "quad", x=(0.0, 3.0))
    mesh.tag_points("tip", [[3.0, 1.0]])
    space = dfem.FunctionSpace(mesh, "Q1", shape=(2,))
    problem = dfem.LinearElasticity(space, E=1.0, dirichlet={"left": 0.0},
                                    point_loads={"tip": [0.0, -0.01]})
    result = dfem.GradientFlow(problem).run(0.0, times=[0.0, 1.0, 10.0, 1e2, 1e4, 1e6])
    static = problem.solve()
    assert float(static.abs().max()) > 0
    assert float((result.u - static).abs().max()) < 1e-3 * float(static.abs().max())
