"""The discrete adjoint through time against torch's gradient of an unrolled dense
implementation of the same schemes, and the checkpointing's memory bound."""

import math

import pytest
import torch

import dfem
from dfem.assembly.forms import assemble_matrix
from dfem.assembly.mass import mass_matrix

DT, T_END = 0.05, 0.3


def _data(amplitude):
    def f(x, t):
        return amplitude * torch.sin(3 * t) * x[..., 0] + 1.0

    def wall(x, t):
        return t * x[..., 1]

    return f, wall


def _unrolled(space, u0, k, amplitude, scheme, observe):
    """The schemes written out densely from their formulas, differentiated by torch."""
    f, wall = _data(amplitude)
    heat = dfem.Heat(space, k=k, f=f, dirichlet={"left": wall})
    M = space.pattern.to_dense(mass_matrix(space))
    K = space.pattern.to_dense(assemble_matrix(space, k))
    fixed, _ = heat.dirichlet_values(0.0)
    free = torch.ones(space.n_dofs, dtype=torch.bool)
    free[fixed] = False
    n_steps = round(T_END / DT)
    times = [n * DT for n in range(n_steps + 1)]

    def constrained(rhs, lhs, t):
        G = heat.dirichlet_values(t)[1]
        x = torch.linalg.solve(lhs[free][:, free], (rhs - lhs @ G)[free])
        return G.masked_scatter(free, x)

    U = [torch.where(free, u0, heat.dirichlet_values(0.0)[1])]
    for n in range(n_steps):
        t0, t1 = times[n], times[n + 1]
        if scheme == "bdf2" and n > 0:
            rhs = M @ (2 * U[n] - 0.5 * U[n - 1]) + DT * heat.load(t1)
            U.append(constrained(rhs, 1.5 * M + DT * K, t1))
        else:
            th = 0.5 if scheme == "crank-nicolson" else 1.0
            rhs = (M - (1 - th) * DT * K) @ U[n] + DT * (th * heat.load(t1)
                                                        + (1 - th) * heat.load(t0))
            U.append(constrained(rhs, M + th * DT * K, t1))
    obs = torch.stack([observe(t, u) for t, u in zip(times, U, strict=True)])
    return U, obs


def _objective(U_final, obs):
    return (U_final ** 2).sum() + (obs ** 2).sum() * DT


@pytest.mark.parametrize("scheme", ["implicit-euler", "crank-nicolson", "bdf2"])
def test_adjoint_equals_the_unrolled_gradient(scheme):
    torch.manual_seed(0)
    mesh = dfem.mesh.rectangle(3, 3, "tri")
    nodes = mesh.nodes.clone().requires_grad_(True)
    n_cells = mesh.cells.shape[0]
    base = dfem.FunctionSpace(mesh, "P2")
    u0 = torch.rand(base.n_dofs, dtype=torch.float64, requires_grad=True)
    k = (0.5 + torch.rand(n_cells, dtype=torch.float64)).requires_grad_(True)
    amplitude = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    sensors = torch.tensor([5, 9, 17])

    def observe(t, u):
        return u[sensors] * (1 + t)

    inputs = (u0, k, amplitude, nodes)
    space = base.with_nodes(nodes)
    U, obs = _unrolled(space, u0, k, amplitude, scheme, observe)
    expected = torch.autograd.grad(_objective(U[-1], obs), inputs)

    f, wall = _data(amplitude)
    heat = dfem.Heat(space, k=k, f=f, dirichlet={"left": wall})
    result = heat.run(u0, t_end=T_END, dt=DT, scheme=scheme, observe=observe)
    assert torch.allclose(result.u, U[-1], rtol=0, atol=1e-12)
    got = torch.autograd.grad(_objective(result.u, result.observations), inputs)
    for g, e in zip(got, expected, strict=True):
        assert float((g - e).abs().max()) <= 1e-10 * max(1.0, float(e.abs().max()))


def test_gradcheck_with_robin_neumann_and_saved_snapshots():
    mesh = dfem.mesh.rectangle(2, 2, "quad")
    space = dfem.FunctionSpace(mesh, "Q1")
    u0 = torch.rand(space.n_dofs, dtype=torch.float64, requires_grad=True)
    k = torch.full((4,), 1.2, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)

    def objective(u0, k, alpha):
        heat = dfem.Heat(space, k=k, rho_c=lambda x: 1 + x[..., 0],
                         neumann={"top": lambda x, t: 1 + t},
                         robin={"right": (alpha, lambda x, t: t * x[..., 1])},
                         dirichlet={"left": 0.0})
        result = heat.run(u0, t_end=0.4, dt=0.1, scheme="bdf2", save_every=2)
        return (result.snapshots ** 2).sum()

    assert torch.autograd.gradcheck(objective, (u0, k, alpha))


def test_checkpoints_hold_about_two_sqrt_n_states():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "Q1")
    heat = dfem.Heat(space, dirichlet={"left": 0.0})
    held = {}
    for n in (10, 100, 1000):
        u0 = torch.ones(space.n_dofs, dtype=torch.float64, requires_grad=True)
        result = heat.run(u0, t_end=1.0, dt=1.0 / n, scheme="bdf2", save_every=n)
        result.u.sum().backward()
        assert result.info.checkpoint_every == math.ceil(math.sqrt(n))
        held[n] = result.info.peak_states
        # a checkpoint holds the two states BDF2 needs; a segment about sqrt(N) more
        assert held[n] <= 3 * math.ceil(math.sqrt(n)) + 4
        # a forward solve, its recomputation from a checkpoint and an adjoint solve per step
        assert result.info.solves == 3 * n
    assert held[1000] < 3 * held[100] < 9 * held[10]


def test_factorisation_reused_for_equal_steps_and_redone_when_dt_changes():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(3, 3, "quad"), "Q1")
    heat = dfem.Heat(space, dirichlet={"boundary": 0.0})
    assert heat.run(1.0, t_end=1.0, dt=0.1, scheme="implicit-euler").info.factorizations == 1
    times = [0.0, 0.1, 0.2, 0.4, 0.6, 0.7]
    info = heat.run(1.0, times=times, scheme="crank-nicolson").info
    assert info.factorizations == 2  # step sizes 0.1 and 0.2
    # BDF2: its implicit Euler start, then one matrix for equal steps
    assert heat.run(1.0, t_end=1.0, dt=0.1, scheme="bdf2").info.factorizations == 2


def test_adjoint_through_iterative_solvers_matches_the_direct_one():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(8, 8, "quad"), "Q1")
    grads = {}
    for method in ("direct", "cg", "amg"):
        k = torch.full((64,), 1.5, dtype=torch.float64, requires_grad=True)
        heat = dfem.Heat(space, k=k, f=1.0, dirichlet={"boundary": 0.0})
        result = heat.run(0.0, t_end=0.1, dt=0.01, scheme="bdf2", method=method, rtol=1e-13)
        (grads[method],) = torch.autograd.grad((result.u ** 2).sum(), k)
    scale = float(grads["direct"].abs().max())
    for method in ("cg", "amg"):
        assert float((grads[method] - grads["direct"]).abs().max()) < 1e-9 * scale
