"""dfem.Heat: temporal and spatial convergence on manufactured solutions, the separable
decay, Taylor tests of the adjoint through time, solvers, 3D, and bad input."""

import math

import pytest
import torch

import dfem
from dfem.exceptions import DfemError
from dfem.inverse import check_gradients
from dfem.validation import errors, transient


def _exact(x, t):
    return transient._temporal_exact(x, t)


def test_temporal_convergence_orders():
    """Q2 holds the manufactured solution exactly in space: the error is the schemes'."""
    for scheme, order, steps in (("implicit-euler", 1, (20, 40, 80)),
                                 ("crank-nicolson", 2, (10, 20, 40)), ("bdf2", 2, (10, 20, 40))):
        study = transient.temporal_study(scheme, steps)
        tolerance = 0.1 if order == 1 else 0.15
        assert abs(study["rates"][-1] - order) <= tolerance, study


@pytest.mark.parametrize("cell,element,p", [("tri", "P1", 1), ("tri", "P2", 2),
                                            ("quad", "Q1", 1), ("quad", "Q2", 2)])
def test_spatial_rates_at_small_dt(cell, element, p):
    study = transient.spatial_study(cell, element)
    assert abs(study["l2_rates"][-1] - (p + 1)) <= 0.15, study
    assert abs(study["h1_rates"][-1] - p) <= 0.15, study


def test_separable_decay_q2_crank_nicolson_error_and_monotone_energy():
    result = transient.decay(n=16, element="Q2", dt=1e-3)
    assert result["l2"] < 1e-5
    assert result["energy_monotone"]
    assert len(result["energy"]) == len(result["times"]) == 11
    assert result["times"][0] == 0.0 and result["times"][-1] == pytest.approx(0.1)


def _taylor_setup():
    mesh = dfem.mesh.rectangle(4, 4, "quad")
    space = dfem.FunctionSpace(mesh, "Q1")
    sensors = torch.tensor([6, 12, 18])
    observed = torch.linspace(0.1, 0.3, 3, dtype=torch.float64)

    def misfit(space, u0, k):
        heat = dfem.Heat(space, k=k, f=lambda x, t: torch.cos(t) * (1 + x[..., 0]),
                         dirichlet={"left": lambda x, t: t * x[..., 1]})
        result = heat.run(u0, t_end=0.2, dt=0.02, scheme="bdf2",
                          observe=lambda t, u: u[sensors])
        return 0.02 * ((result.observations - observed) ** 2).sum() + (result.u ** 2).mean()

    u0 = space.interpolate(lambda x: x[..., 0] * x[..., 1])
    k = torch.full((mesh.cells.shape[0],), 1.5, dtype=torch.float64)
    return mesh, space, misfit, u0, k


def test_taylor_tests_of_the_adjoint_for_initial_condition_conductivity_and_nodes():
    mesh, space, misfit, u0, k = _taylor_setup()
    assert check_gradients(lambda u: misfit(space, u, k), u0).passed()
    assert check_gradients(lambda kk: misfit(space, u0, kk), k).passed()
    interior = ((mesh.nodes > 1e-9) & (mesh.nodes < 1 - 1e-9)).all(1, keepdim=True)
    direction = torch.randn(mesh.nodes.shape, dtype=torch.float64,
                            generator=torch.Generator().manual_seed(1)) * interior
    result = check_gradients(lambda nodes: misfit(space.with_nodes(nodes), u0, k), mesh.nodes,
                             directions=direction, h0=2e-3)
    assert result.passed(), result


def test_iterative_solvers_and_lumped_mass():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(12, 12, "quad"), "Q1")
    heat = transient.temporal_problem(space)
    direct = heat.run(lambda x: _exact(x, 0.0), t_end=0.5, dt=0.05, scheme="bdf2")
    for method in ("cg", "amg"):
        other = heat.run(lambda x: _exact(x, 0.0), t_end=0.5, dt=0.05, scheme="bdf2",
                         method=method, rtol=1e-12)
        assert torch.allclose(other.u, direct.u, atol=1e-9)
    lumped = dfem.Heat(space, lumped=True, dirichlet={"boundary": 0.0})
    consistent = dfem.Heat(space, dirichlet={"boundary": 0.0})

    def mode(x):
        return torch.sin(math.pi * x[..., 0]) * torch.sin(math.pi * x[..., 1])

    exact = errors(space, consistent.run(mode, t_end=0.05, dt=0.005).u,
                   lambda x: math.exp(-2 * math.pi ** 2 * 0.05) * mode(x))["l2"]
    err = errors(space, lumped.run(mode, t_end=0.05, dt=0.005).u,
                 lambda x: math.exp(-2 * math.pi ** 2 * 0.05) * mode(x))["l2"]
    assert err < 5 * exact + 1e-3  # lumping costs accuracy of the same order, not more


def test_three_dimensional_decay_on_tets():
    space = dfem.FunctionSpace(dfem.mesh.box(4, 4, 4, cell="tet"), "P2")
    heat = dfem.Heat(space, dirichlet={"boundary": 0.0})

    def mode(x):
        return torch.sin(math.pi * x[..., 0]) * torch.sin(math.pi * x[..., 1]) * \
            torch.sin(math.pi * x[..., 2])

    result = heat.run(mode, t_end=0.02, dt=0.002, scheme="crank-nicolson")
    exact = lambda x: math.exp(-3 * math.pi ** 2 * 0.02) * mode(x)  # noqa: E731
    assert errors(space, result.u, exact)["l2"] < 0.02 * errors(space, result.u * 0, exact)["l2"]


def test_observe_and_callback_see_every_level():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "Q1")
    heat = dfem.Heat(space, dirichlet={"left": lambda x, t: t + 0 * x[..., 0]})
    seen = []
    result = heat.run(0.0, t_end=0.3, dt=0.1, callback=lambda n, t, u: seen.append((n, t)),
                      observe=lambda t, u: u[:2])
    assert [n for n, _ in seen] == [0, 1, 2, 3]
    assert result.observations.shape == (4, 2)
    left = space.boundary_dofs("left")
    assert torch.allclose(result.u[left], torch.full((len(left),), 0.3, dtype=torch.float64))


@pytest.mark.parametrize("kwargs,match", [
    (dict(t_end=1.0, dt=0.0), "dt must be positive"),
    (dict(t_end=0.01, dt=0.1), "less than one step"),
    (dict(t_end=1.0, dt=0.1, scheme="leapfrog"), "unknown time-stepping scheme 'leapfrog'"),
    (dict(t_end=1.0, dt=0.1, save_every=0), "save_every"),
    (dict(t_end=1.0, dt=0.1, method="lu"), "unknown solver method"),
])
def test_bad_run_arguments_are_named(kwargs, match):
    heat = dfem.Heat(dfem.FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "Q1"))
    with pytest.raises(DfemError, match=match):
        heat.run(0.0, **kwargs)


def test_bad_problem_data_are_named():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "Q1")
    heat = dfem.Heat(space)
    with pytest.raises(DfemError, match=r"initial condition has shape \(3,\)"):
        heat.run(torch.zeros(3, dtype=torch.float64), t_end=1.0, dt=0.5)
    with pytest.raises(DfemError, match="initial condition must be"):
        heat.run("hot", t_end=1.0, dt=0.5)
    with pytest.raises(DfemError, match="k must not depend on t"):
        dfem.Heat(space, k=lambda x, t: 1 + t)
    with pytest.raises(DfemError, match="rho_c must be positive"):
        dfem.Heat(space, rho_c=-1.0).run(0.0, t_end=1.0, dt=0.5)
    with pytest.raises(DfemError, match="pair"):
        dfem.Heat(space, robin={"left": 1.0})
    with pytest.raises(DfemError, match="tag"):
        dfem.Heat(space, dirichlet={"nowhere": 0.0})
    with pytest.raises(DfemError, match="vector-valued"):
        dfem.Heat(dfem.FunctionSpace(space.mesh, "Q1", shape=(2,)))


def test_expressions_of_x_and_of_x_and_t_are_told_apart():
    from dfem.problems.expressions import coefficient
    from dfem.problems.heat import depends_on_time

    space = dfem.FunctionSpace(dfem.mesh.rectangle(3, 3, "quad"), "Q1")
    of_x = coefficient("x * y", "problem.f")  # an Expression called as fn(*args)
    assert not depends_on_time(of_x)
    assert depends_on_time(lambda x, t: t) and not depends_on_time(lambda x: x)
    source = dfem.Heat(space, f=of_x, dirichlet={"boundary": 0.0}).load(0.3)
    assert torch.allclose(source, dfem.Heat(space, f=lambda x: x[..., 0] * x[..., 1],
                                            dirichlet={"boundary": 0.0}).load(0.3))


def test_observe_must_keep_its_shape():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "Q1")
    heat = dfem.Heat(space, dirichlet={"left": 0.0})
    with pytest.raises(DfemError, match="same shape at every time level"):
        heat.run(1.0, t_end=0.2, dt=0.1, observe=lambda t, u: u[: 1 + round(10 * t)])
