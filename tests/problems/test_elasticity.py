"""Linear elasticity and Neo-Hookean hyperelasticity: against scikit-fem, analytic stresses,
manufactured solutions, gradchecks and Taylor tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dfem
from dfem.exceptions import DfemError
from dfem.problems.elasticity import lame

skfem = pytest.importorskip("skfem")
from scipy.optimize import brentq  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402
from skfem.helpers import dot  # noqa: E402
from skfem.models.elasticity import linear_elasticity  # noqa: E402

E_YOUNG, NU = 3.0, 0.3


def perturbed_mesh(cell: str, n: int, seed: int = 0):
    """Triangles with randomly moved interior nodes; quads on a random tensor grid (affine
    cells, so both codes integrate the polynomial data exactly)."""
    mesh = dfem.mesh.rectangle(n, n, cell)
    rng = np.random.default_rng(seed)
    X = mesh.nodes.numpy().copy()
    if cell == "tri":
        inner = (X > 1e-12).all(1) & (X < 1 - 1e-12).all(1)
        X[inner] += rng.uniform(-0.25, 0.25, (int(inner.sum()), 2)) / n
    else:
        t = np.linspace(0.0, 1.0, n + 1)
        xs, ys = t.copy(), t.copy()
        xs[1:-1] += rng.uniform(-0.25, 0.25, n - 1) / n
        ys[1:-1] += rng.uniform(-0.25, 0.25, n - 1) / n
        X[:, 0], X[:, 1] = np.tile(xs, n + 1), np.repeat(ys, n + 1)
    return mesh.with_nodes(torch.as_tensor(X))


def _skfem_solution(mesh, element, lam, mu):
    """Clamped left side, roller (u_y = 0) at the bottom, traction (0.5, y - 1) on the right,
    body force (1 + x, 2 - y): scikit-fem's ElementVector and linear_elasticity model."""
    base = {"P1": skfem.ElementTriP1, "P2": skfem.ElementTriP2, "Q1": skfem.ElementQuad1,
            "Q2": skfem.ElementQuad2}[element]()
    kind = skfem.MeshTri if mesh.cell_type == "tri" else skfem.MeshQuad
    m = kind(np.ascontiguousarray(mesh.nodes.numpy().T), np.ascontiguousarray(mesh.cells.numpy().T))
    e = skfem.ElementVector(base)
    order = 2 * int(element[1]) + 2
    basis = skfem.Basis(m, e, intorder=order)
    K = skfem.asm(linear_elasticity(lam, mu), basis)

    @skfem.LinearForm
    def body(v, w):
        return dot(np.array([1.0 + w.x[0], 2.0 - w.x[1]]), v)

    @skfem.LinearForm
    def traction(v, w):
        return dot(np.array([0.5 + 0.0 * w.x[0], w.x[1] - 1.0]), v)

    right = skfem.FacetBasis(m, e, facets=m.facets_satisfying(lambda x: np.isclose(x[0], 1.0)),
                             intorder=order)
    F = skfem.asm(body, basis) + skfem.asm(traction, right)
    ix, iy = basis.split_indices()
    locs = basis.doflocs
    fixed = np.concatenate([ix[np.isclose(locs[0, ix], 0.0)], iy[np.isclose(locs[0, iy], 0.0)],
                            iy[np.isclose(locs[1, iy], 0.0)]])
    u = skfem.solve(*skfem.condense(K, F, D=np.unique(fixed)))
    return u, (ix, iy), locs


@pytest.mark.parametrize("element,cell", [("P1", "tri"), ("P2", "tri"), ("Q1", "quad"),
                                          ("Q2", "quad")])
def test_linear_elasticity_equals_scikit_fem(element, cell):
    mesh = perturbed_mesh(cell, 6)
    space = dfem.FunctionSpace(mesh, element, shape=(2,))
    problem = dfem.LinearElasticity(
        space, E=E_YOUNG, poisson_ratio=NU, plane="strain",
        body_force=lambda x: torch.stack([1 + x[..., 0], 2 - x[..., 1]], -1),
        dirichlet={"left": 0.0, "bottom": {"y": 0.0}},
        traction={"right": [0.5, lambda x: x[..., 1] - 1.0]},
    )
    u = problem.solve()
    mu, lam = lame(E_YOUNG, NU)
    u_sk, comps, locs = _skfem_solution(mesh, element, float(lam), float(mu))
    tree = cKDTree(space.scalar.dof_coordinates.numpy())
    for i, ix in enumerate(comps):
        dist, scalar = tree.query(locs[:, ix].T)
        assert dist.max() < 1e-12
        mine = u[2 * torch.as_tensor(scalar) + i].numpy()
        assert np.abs(mine - u_sk[ix]).max() <= 1e-9 * np.abs(u_sk).max()


def test_plane_stress_uses_the_reduced_lambda():
    mesh = perturbed_mesh("quad", 4)
    space = dfem.FunctionSpace(mesh, "Q2", shape=(2,))
    common = dict(dirichlet={"left": 0.0}, traction={"right": [0.0, -1.0]})
    stress = dfem.LinearElasticity(space, E=E_YOUNG, poisson_ratio=NU, plane="stress", **common)
    mu, lam = lame(E_YOUNG, NU)
    lam_star = 2 * lam * mu / (lam + 2 * mu)
    # plane stress with (E, nu) == plane strain with the (E', nu') that give (mu, lam_star)
    nu_eq = float(lam_star / (2 * (lam_star + mu)))
    E_eq = float(2 * mu * (1 + nu_eq))
    strain = dfem.LinearElasticity(space, E=E_eq, poisson_ratio=nu_eq, plane="strain", **common)
    torch.testing.assert_close(stress.solve(), strain.solve(), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------- manufactured solution
def exact(x):
    X, Y = x[..., 0], x[..., 1]
    return torch.stack([torch.sin(np.pi * X) * Y**2 / 10, torch.cos(X) * Y / 10 + X * Y / 20], -1)


def E_field(x):
    return 2.0 + x[..., 0] * x[..., 1]


def nu_field(x):
    return 0.25 + 0.1 * x[..., 0]


def _cauchy(x):
    """sigma(u_exact) at points x (..., 2), by autograd of the exact displacement."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        u = exact(x)
        G = torch.stack([torch.autograd.grad(u[..., i].sum(), x, create_graph=True)[0]
                         for i in range(2)], -2)
        mu, lam = lame(E_field(x), nu_field(x))
        eps = 0.5 * (G + G.transpose(-1, -2))
        tr = eps.diagonal(dim1=-2, dim2=-1).sum(-1)
        return lam[..., None, None] * tr[..., None, None] * torch.eye(2, dtype=x.dtype) \
            + 2 * mu[..., None, None] * eps, x


def body_force(x):
    """b = -div sigma(u_exact)."""
    with torch.enable_grad():
        sigma, xg = _cauchy(x)
        div = torch.stack([
            sum(torch.autograd.grad(sigma[..., i, j].sum(), xg, create_graph=True)[0][..., j]
                for j in range(2))
            for i in range(2)], -1)
    return (-div).detach()


def traction_right(x):
    sigma, _ = _cauchy(x)
    return sigma[..., :, 0].detach()  # n = (1, 0)


def traction_top(x):
    sigma, _ = _cauchy(x)
    return sigma[..., :, 1].detach()  # n = (0, 1)


def solve_manufactured(element, n):
    cell = "tri" if element[0] == "P" else "quad"
    mesh = dfem.mesh.rectangle(n, n, cell)
    space = dfem.FunctionSpace(mesh, element, shape=(2,))
    problem = dfem.LinearElasticity(
        space, E=E_field, poisson_ratio=nu_field, plane="strain", body_force=body_force,
        dirichlet={"left": exact, "bottom": exact},
        traction={"right": traction_right, "top": traction_top},
    )
    return space, problem.solve()


@pytest.mark.parametrize("element", ["P1", "P2", "P3", "Q1", "Q2", "Q3"])
def test_manufactured_vector_solution_converges_at_the_optimal_rates(element):
    p = int(element[1])
    # P1 triangles are pre-asymptotic in L2 below 16 x 16 (rates 1.34, 1.68, 1.88 from 4 x 4)
    sizes = {1: (16, 32, 64) if element == "P1" else (4, 8, 16), 2: (4, 8, 16), 3: (3, 6, 12)}[p]
    study = dfem.convergence_study(lambda n: solve_manufactured(element, n), exact, sizes)
    assert study["l2_rate"] == pytest.approx(p + 1, abs=0.15)
    assert study["h1_rate"] == pytest.approx(p, abs=0.15)


# ---------------------------------------------------------------------- Neo-Hookean
MU_LAM = lame(10.0, 0.3)


def _first_piola_homogeneous(l1, l2):
    mu, lam = (float(v) for v in MU_LAM)
    J = l1 * l2
    return mu * (l1 - 1 / l1) + lam * np.log(J) / l1, mu * (l2 - 1 / l2) + lam * np.log(J) / l2


@pytest.mark.parametrize("stretch", [1.5, 0.6])
def test_neo_hookean_homogeneous_uniaxial_deformation_matches_the_analytic_stress(stretch):
    """Rollers on the left and bottom, u_x = (stretch - 1) on the right, top free: a
    homogeneous F = diag(l1, l2) with the lateral stretch l2 from P_yy(l1, l2) = 0 (plane
    strain). Q1 represents the linear displacement exactly, so the stresses are exact."""
    l1 = stretch
    l2 = brentq(lambda s: _first_piola_homogeneous(l1, s)[1], 0.2, 5.0, xtol=1e-15)
    mesh = dfem.mesh.rectangle(3, 3, "quad")
    space = dfem.FunctionSpace(mesh, "Q1", shape=(2,))
    problem = dfem.NeoHookean(space, E=10.0, poisson_ratio=0.3,
                              dirichlet={"left": {"x": 0.0}, "bottom": {"y": 0.0},
                                         "right": {"x": l1 - 1.0}})
    u = problem.solve(load_steps=2, rtol=1e-14, atol=1e-12)
    P_xx, _ = _first_piola_homogeneous(l1, l2)
    sigma_xx = P_xx * l1 / (l1 * l2)
    uy = space.components(u)[:, 1]
    y = space.scalar.dof_coordinates[:, 1]
    torch.testing.assert_close(uy, (l2 - 1) * y, rtol=0, atol=1e-12)
    sigma = problem.stress(u)
    assert (sigma[..., 0, 0] - sigma_xx).abs().max() <= 1e-10 * abs(sigma_xx)
    assert sigma[..., 1, 1].abs().max() <= 1e-10 * abs(sigma_xx)
    assert sigma[..., 0, 1].abs().max() <= 1e-10 * abs(sigma_xx)
    piola = problem.stress(u, kind="piola", per_cell=True)
    assert (piola[:, 0, 0] - P_xx).abs().max() <= 1e-10 * abs(P_xx)
    # the reaction on the right side is the total force P_xx * (reference height 1)
    assert float(problem.reaction(u.detach(), "right")[0]) == pytest.approx(P_xx, rel=1e-10)


def test_neo_hookean_block_under_large_compression_converges_by_load_stepping():
    mesh = dfem.mesh.rectangle(6, 6, "quad")
    space = dfem.FunctionSpace(mesh, "Q2", shape=(2,))
    problem = dfem.NeoHookean(space, E=1.0, poisson_ratio=0.4,
                              dirichlet={"bottom": 0.0, "top": {"x": 0.0, "y": -0.5}})
    u = problem.solve(load_steps=2)
    steps = problem.last_solve["load_factors"]
    assert steps[-1] == 1.0 and len(steps) >= 2
    # no inverted point: det F > 0 everywhere at the solution
    _, grads = space.at_quadrature(u.detach())
    J = torch.linalg.det(grads + torch.eye(2, dtype=grads.dtype))
    assert float(J.min()) > 0
    free = problem.restricted_pattern(problem.dirichlet_data()[0]).free_dofs
    assert float(problem.residual(u.detach()).detach()[free].abs().max()) < 1e-9


def test_linear_elasticity_is_the_small_strain_limit_of_neo_hookean():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(6, 3, "quad"), "Q2", shape=(2,))
    common = dict(E=100.0, poisson_ratio=0.3, dirichlet={"left": 0.0},
                  traction={"right": [0.0, -1e-4]})
    u_lin = dfem.LinearElasticity(space, **common).solve()
    u_nh = dfem.NeoHookean(space, **common).solve()
    # geometric nonlinearity is second order in the load
    assert (u_nh - u_lin).abs().max() <= 1e-3 * u_lin.abs().max()


# ---------------------------------------------------------------------- gradients
def _small_neo_hookean(E=None, t=None, g=None, nodes=None):
    mesh = dfem.mesh.rectangle(2, 2, "quad")
    space = dfem.FunctionSpace(mesh, "Q1", shape=(2,))
    if nodes is not None:
        space = space.with_nodes(nodes)
    E = torch.full((4,), 5.0, dtype=torch.float64) if E is None else E
    t = torch.tensor([0.3, -0.2], dtype=torch.float64) if t is None else t
    g = torch.full((3,), 0.05, dtype=torch.float64) if g is None else g
    problem = dfem.NeoHookean(space, E=E, poisson_ratio=0.3,
                              dirichlet={"left": 0.0, "bottom": {"y": g}},
                              traction={"right": t})
    return problem.solve(rtol=1e-13, atol=1e-15)


def test_gradcheck_of_the_newton_solution():
    gen = torch.Generator().manual_seed(3)
    E = (4.0 + torch.rand(4, dtype=torch.float64, generator=gen)).requires_grad_(True)
    t = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.05, 0.02, -0.03], dtype=torch.float64, requires_grad=True)
    nodes = dfem.mesh.rectangle(2, 2, "quad").nodes.clone()
    nodes[4] += torch.tensor([0.05, -0.03], dtype=torch.float64)
    nodes.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda E: _small_neo_hookean(E=E), (E,))
    assert torch.autograd.gradcheck(lambda t: _small_neo_hookean(t=t), (t,))
    assert torch.autograd.gradcheck(lambda g: _small_neo_hookean(g=g), (g,))
    assert torch.autograd.gradcheck(lambda X: _small_neo_hookean(nodes=X), (nodes,))


def test_taylor_test_of_a_compliance_objective_through_a_neo_hookean_solve():
    mesh = dfem.mesh.rectangle(6, 3, "quad", x=(0.0, 2.0))
    space = dfem.FunctionSpace(mesh, "Q1", shape=(2,))

    def compliance(E):
        problem = dfem.NeoHookean(space, E=E, poisson_ratio=0.3, dirichlet={"left": 0.0},
                                  traction={"right": [0.0, -0.05]})
        return problem.compliance(problem.solve())

    E = torch.full((mesh.n_cells,), 2.0, dtype=torch.float64)
    result = dfem.check_gradients(compliance, E, h0=0.2)
    assert result.passed(), result.report()


def test_linear_elastic_gradient_wrt_per_cell_modulus_against_finite_differences():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 2, "tri"), "P2", shape=(2,))
    E = torch.linspace(1.0, 2.0, space.mesh.n_cells, dtype=torch.float64).requires_grad_(True)

    def compliance(E):
        p = dfem.LinearElasticity(space, E=E, poisson_ratio=0.25, dirichlet={"left": 0.0},
                                  traction={"right": [0.0, -1.0]})
        return p.compliance(p.solve())

    (g,) = torch.autograd.grad(compliance(E), E)
    h = 1e-6
    k = 3
    dE = torch.zeros_like(E)
    dE[k] = h
    fd = (compliance(E.detach() + dE) - compliance(E.detach() - dE)) / (2 * h)
    assert float(g[k]) == pytest.approx(float(fd), rel=1e-6)
    assert float(g[k]) < 0  # stiffer is less compliant


# ---------------------------------------------------------------------- bad input
def test_bad_material_and_boundary_data_are_named():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "Q1", shape=(2,))
    with pytest.raises(DfemError, match=r"poisson_ratio must lie in \(-1, 0.5\)"):
        dfem.LinearElasticity(space, poisson_ratio=0.5)
    with pytest.raises(DfemError, match=r"poisson_ratio must lie in \(-1, 0.5\)"):
        dfem.NeoHookean(space, poisson_ratio=-1.0)
    with pytest.raises(DfemError, match="E must be positive"):
        dfem.LinearElasticity(space, E=0.0)
    field = torch.full((space.mesh.n_cells,), -1.0, dtype=torch.float64)
    with pytest.raises(DfemError, match="E must be positive"):
        dfem.LinearElasticity(space, E=field, dirichlet={"left": 0.0}).solve()
    with pytest.raises(DfemError, match="has 3 entries; a 2-component space needs 2"):
        dfem.LinearElasticity(space, dirichlet={"left": [0.0, 0.0, 0.0]}).solve()
    with pytest.raises(DfemError, match="traction on 'right' has 3 components"):
        dfem.LinearElasticity(space, traction={"right": [0.0, 1.0, 2.0]})
    with pytest.raises(DfemError, match="plane must be"):
        dfem.LinearElasticity(space, plane="axisymmetric")
    with pytest.raises(DfemError, match="vector space with one component per dimension"):
        dfem.LinearElasticity(dfem.FunctionSpace(space.mesh, "Q1"))
    with pytest.raises(DfemError, match="Poisson solves for a scalar field"):
        dfem.Poisson(space)


def test_vector_loads_in_every_coefficient_form_give_the_same_solution():
    mesh = dfem.mesh.rectangle(4, 3, "quad")
    space = dfem.FunctionSpace(mesh, "Q2", shape=(2,))
    n_q = space.geometry().weights.shape[1]

    def solve(body_force, traction):
        return dfem.LinearElasticity(space, E=2.0, poisson_ratio=0.3, dirichlet={"left": 0.0},
                                     body_force=body_force,
                                     traction={"right": traction}).solve()

    b = torch.tensor([0.5, -1.0], dtype=torch.float64)
    reference = solve([0.5, -1.0], [0.0, 0.2])
    forms = [
        (b, torch.tensor([0.0, 0.2], dtype=torch.float64)),                      # constant (d,)
        (lambda x: b.expand(*x.shape[:-1], 2), lambda x: x * 0 + b.new_tensor([0.0, 0.2])),
        (b.expand(mesh.n_cells, 2).clone(), [0.0, 0.2]),                         # per cell
        (b.expand(space.scalar.n_dofs, 2).clone(), [0.0, 0.2]),                  # nodal
        (b.expand(mesh.n_cells, n_q, 2).clone(), [0.0, 0.2]),                    # at the points
    ]
    for body_force, traction in forms:
        torch.testing.assert_close(solve(body_force, traction), reference, rtol=1e-12,
                                   atol=1e-14)


def test_a_boundary_stress_loads_a_side_with_its_traction_sigma_n():
    """On the right side (n = (1, 0)) sigma = [[a, b], [c, d]] pulls with t = (a, c)."""
    space = dfem.FunctionSpace(dfem.mesh.rectangle(4, 3, "quad"), "Q2", shape=(2,))
    common = dict(E=2.0, poisson_ratio=0.3, dirichlet={"left": 0.0})
    a = lambda x: 1.0 + x[..., 1]  # noqa: E731
    by_traction = dfem.LinearElasticity(space, traction={"right": [a, -0.5]}, **common)
    by_stress = dfem.LinearElasticity(space, boundary_stress={"right": [[a, 7.0], [-0.5, 3.0]]},
                                      **common)
    u = by_traction.solve()
    torch.testing.assert_close(by_stress.solve(), u, rtol=1e-12, atol=1e-14)
    # the generic density path agrees with the closed-form kernel
    by_stress.use_kernel = False
    torch.testing.assert_close(by_stress.solve(), u, rtol=1e-11, atol=1e-14)
    assert float(by_stress.compliance(u)) == pytest.approx(float(by_traction.compliance(u)))
    with pytest.raises(DfemError, match="2 x 2 list of lists"):
        dfem.LinearElasticity(space, boundary_stress={"right": [[1.0, 0.0]]}, **common)


def test_self_adjoint_compliance_reuses_the_forward_solution_in_the_backward_pass(monkeypatch):
    """dC/du = F is the forward right-hand side when the supports are fixed at zero, so the
    adjoint solve returns u itself: no second AMG-CG solve, the same gradient as direct."""
    pytest.importorskip("pyamg")
    from dfem.solvers.amg import AMGFactor

    calls = []
    solve = AMGFactor.solve
    monkeypatch.setattr(AMGFactor, "solve",
                        lambda self, b, transpose=False: calls.append(transpose)
                        or solve(self, b, transpose))
    space = dfem.FunctionSpace(dfem.mesh.rectangle(16, 4, "quad", x=(0.0, 4.0)), "Q1",
                               shape=(2,))
    grads = {}
    for method in ("direct", "amg"):
        E = torch.linspace(1.0, 2.0, space.mesh.n_cells, dtype=torch.float64)
        E.requires_grad_(True)
        problem = dfem.LinearElasticity(space, E=E, poisson_ratio=0.3, dirichlet={"left": 0.0},
                                        traction={"right": [0.0, -1.0]})
        u = problem.solve(method=method, rtol=1e-12)
        F = problem._linear_system()[1].detach()
        (F @ u).backward()  # the compliance with the assembled load: the same F bit for bit
        grads[method] = E.grad
    assert calls == [False]  # one forward AMG-CG solve, no adjoint one
    torch.testing.assert_close(grads["amg"], grads["direct"], rtol=1e-8, atol=0)
    # an objective that is not self-adjoint takes its adjoint solve
    E = torch.ones(space.mesh.n_cells, dtype=torch.float64, requires_grad=True)
    problem = dfem.LinearElasticity(space, E=E, poisson_ratio=0.3, dirichlet={"left": 0.0},
                                    traction={"right": [0.0, -1.0]})
    problem.solve(method="amg").square().sum().backward()
    assert calls == [False, False, True]


@pytest.mark.parametrize("plane", ["stress", "strain"])
def test_per_cell_modulus_scales_cached_unit_matrices_exactly(plane):
    """A per-cell E with one Poisson's ratio takes K_e = E_e K_e(E=1) from cached unit
    element matrices; the same E given at the quadrature points takes the general path."""
    from dfem.assembly.coefficients import AtQuadrature, PerCell
    from dfem.mesh.structured import perturb_interior

    mesh = perturb_interior(dfem.mesh.rectangle(12, 6, x=(0.0, 2.0)))
    space = dfem.FunctionSpace(mesh, "Q2", shape=(2,))
    E = torch.linspace(0.1, 2.0, mesh.n_cells, dtype=torch.float64).requires_grad_()
    n_q = space.geometry().weights.shape[1]

    def compliance(modulus):
        problem = dfem.LinearElasticity(space, E=modulus, poisson_ratio=0.3, plane=plane,
                                        dirichlet={"left": 0.0},
                                        traction={"right": [0.0, -1.0]})
        return problem.compliance(problem.solve())

    cached = compliance(PerCell(E))
    assert "_unit_elastic" in space.__dict__  # the fast path ran
    general = compliance(AtQuadrature(E[:, None].expand(-1, n_q)))
    (g_cached,) = torch.autograd.grad(cached, E)
    (g_general,) = torch.autograd.grad(general, E)
    assert abs(float(cached - general)) <= 1e-12 * abs(float(general))
    assert float((g_cached - g_general).abs().max()) <= 1e-11 * float(g_general.abs().max())
    # a second modulus reuses the unit matrices and is still exact
    E2 = (2.5 - E).detach()
    assert abs(float(compliance(PerCell(E2)) - compliance(AtQuadrature(
        E2[:, None].expand(-1, n_q))))) <= 1e-12 * float(compliance(PerCell(E2)))
    # a plain tensor of one value per cell is read as per cell, and takes the same path
    del space.__dict__["_unit_elastic"]
    plain = compliance(E)
    assert "_unit_elastic" in space.__dict__
    (g_plain,) = torch.autograd.grad(plain, E)
    assert abs(float(plain - general)) <= 1e-12 * abs(float(general))
    assert float((g_plain - g_general).abs().max()) <= 1e-11 * float(g_general.abs().max())
