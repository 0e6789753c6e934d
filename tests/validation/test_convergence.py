"""Convergence rates against a manufactured solution with variable diffusivity.

Problem on [0,1]²:

    -div(nu grad u) + c u = f,   nu = 1 + x² y,   u = sin(πx + 1/2) e^y,

with u = u_exact on the left, bottom and top sides (non-zero on all three) and
nu du/dn = g on the right side (outward normal +x). A second problem adds a reaction
c = 1 + x y and replaces the top Dirichlet side by a Robin side nu du/dn + alpha u = g_R
with alpha = 2 + x.

f, g and g_R are derived by hand:

    grad u = (π cos(πx + 1/2) e^y, u),   Δu = (1 - π²) u,   grad nu = (2 x y, x²),
    -div(nu grad u) = -nu Δu - grad nu . grad u
                    = -(1 + x² y)(1 - π²) u - 2π x y cos(πx + 1/2) e^y - x² u,
    right (x = 1, n = (1, 0)):  g   = nu du/dx = -π (1 + y) cos(1/2) e^y,
    top   (y = 1, n = (0, 1)):  g_R = nu du/dy + alpha u = (1 + x² + 2 + x) u(x, 1).

One test checks the hand derivation against torch autograd at random points. The rates are
the least-squares slopes of log(error) against log(h) over four meshes: p + 1 in L2 and p in
the H1 seminorm (within 0.15), for P1-P3 on triangles (both diagonal patterns) and Q1-Q3.
"""

from __future__ import annotations

import math

import pytest
import torch

import dfem

PI = math.pi
E = math.e


# ---------------------------------------------------------------- manufactured solution
def u_exact(x):
    return torch.sin(PI * x[..., 0] + 0.5) * torch.exp(x[..., 1])


def nu(x):
    return 1.0 + x[..., 0] ** 2 * x[..., 1]


def reaction(x):
    return 1.0 + x[..., 0] * x[..., 1]


def alpha(x):
    return 2.0 + x[..., 0]


def minus_div_nu_grad_u(x):
    X, Y = x[..., 0], x[..., 1]
    u = torch.sin(PI * X + 0.5) * torch.exp(Y)
    ux_over_pi = torch.cos(PI * X + 0.5) * torch.exp(Y)
    return -(1 + X**2 * Y) * (1 - PI**2) * u - 2 * PI * X * Y * ux_over_pi - X**2 * u


def f_plain(x):
    return minus_div_nu_grad_u(x)


def f_reaction(x):
    return minus_div_nu_grad_u(x) + reaction(x) * u_exact(x)


def g_right(x):
    # nu du/dn on x = 1: (1 + y) * π cos(π + 1/2) e^y
    Y = x[..., 1]
    return -PI * (1 + Y) * math.cos(0.5) * torch.exp(Y)


def g_robin_top(x):
    # nu du/dy + alpha u on y = 1, where du/dy = u
    X = x[..., 0]
    return (1 + X**2 + 2 + X) * torch.sin(PI * X + 0.5) * E


# ---------------------------------------------------------------- autograd check
def _autograd_data(x):
    """-div(nu grad u), nu grad u and u at x, all by autograd of u_exact and nu."""
    x = x.clone().requires_grad_(True)
    (grad_u,) = torch.autograd.grad(u_exact(x).sum(), x, create_graph=True)
    flux = nu(x)[:, None] * grad_u
    div = sum(
        torch.autograd.grad(flux[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(2)
    )
    return -div.detach(), flux.detach()


def test_hand_derived_data_match_autograd():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(20, 2, dtype=torch.float64, generator=gen)
    minus_div, _ = _autograd_data(x)
    torch.testing.assert_close(f_plain(x), minus_div, rtol=1e-12, atol=1e-12)
    c_u = reaction(x) * u_exact(x)
    torch.testing.assert_close(f_reaction(x), minus_div + c_u, rtol=1e-12, atol=1e-12)

    # Neumann data on the right side, outward normal (1, 0).
    t = torch.rand(20, dtype=torch.float64, generator=gen)
    right = torch.stack([torch.ones_like(t), t], dim=1)
    _, flux = _autograd_data(right)
    torch.testing.assert_close(g_right(right), flux[:, 0], rtol=1e-12, atol=1e-12)

    # Robin data on the top side, outward normal (0, 1).
    top = torch.stack([t, torch.ones_like(t)], dim=1)
    _, flux = _autograd_data(top)
    expected = flux[:, 1] + alpha(top) * u_exact(top)
    torch.testing.assert_close(g_robin_top(top), expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- convergence
def _solver(element: str, cell: str, diagonal: str, robin: bool):
    def solve(n):
        mesh = dfem.mesh.rectangle(n, n, cell, diagonal=diagonal)
        space = dfem.FunctionSpace(mesh, element)
        if robin:
            problem = dfem.Poisson(
                space, nu=nu, c=reaction, f=f_reaction,
                dirichlet={"left": u_exact, "bottom": u_exact},
                neumann={"right": g_right},
                robin={"top": (alpha, g_robin_top)},
            )
        else:
            problem = dfem.Poisson(
                space, nu=nu, f=f_plain,
                dirichlet={"left": u_exact, "bottom": u_exact, "top": u_exact},
                neumann={"right": g_right},
            )
        return space, problem.solve()

    return solve


def _check_rates(study, p: int):
    rows = study["levels"]
    summary = [(r["level"], f"{r['l2_error']:.3e}", f"{r['h1_error']:.3e}") for r in rows]
    assert abs(study["l2_rate"] - (p + 1)) <= 0.15, (study["l2_rate"], summary)
    assert abs(study["h1_rate"] - p) <= 0.15, (study["h1_rate"], summary)
    # The last halving alone is in the asymptotic range too (no round-off plateau).
    last_l2 = math.log2(rows[-2]["l2_error"] / rows[-1]["l2_error"])
    last_h1 = math.log2(rows[-2]["h1_error"] / rows[-1]["h1_error"])
    assert abs(last_l2 - (p + 1)) <= 0.1, summary
    assert abs(last_h1 - p) <= 0.1, summary


# Meshes n x n; h halves at each level. Measured errors stay far above round-off
# (P3/Q3 at n = 32: L2 about 5e-8, H1 about 1e-5).
LEVELS = (4, 8, 16, 32)

CASES = [
    ("P1", "tri", "right"),
    ("P1", "tri", "alternate"),
    ("P2", "tri", "right"),
    ("P2", "tri", "left"),
    ("P3", "tri", "right"),
    ("P3", "tri", "alternate"),
    ("Q1", "quad", "right"),
    ("Q2", "quad", "right"),
    ("Q3", "quad", "right"),
]


@pytest.mark.parametrize(("element", "cell", "diagonal"), CASES,
                         ids=[f"{e}-{d}" if c == "tri" else e for e, c, d in CASES])
def test_convergence_dirichlet_neumann(element, cell, diagonal):
    p = int(element[1])
    study = dfem.convergence_study(_solver(element, cell, diagonal, robin=False), u_exact, LEVELS)
    _check_rates(study, p)


ROBIN_CASES = [
    ("P1", "tri", "right"),
    ("P2", "tri", "alternate"),
    ("P3", "tri", "right"),
    ("Q2", "quad", "right"),
    ("Q3", "quad", "right"),
]


@pytest.mark.parametrize(("element", "cell", "diagonal"), ROBIN_CASES,
                         ids=[f"{e}-{d}" if c == "tri" else e for e, c, d in ROBIN_CASES])
def test_convergence_robin_reaction(element, cell, diagonal):
    p = int(element[1])
    study = dfem.convergence_study(_solver(element, cell, diagonal, robin=True), u_exact, LEVELS)
    _check_rates(study, p)


def test_wrong_neumann_sign_is_detected():
    """The rate check has teeth: flipping the sign of g (inward normal) destroys convergence."""
    def solve(n):
        space = dfem.FunctionSpace(dfem.mesh.rectangle(n, n, "quad"), "Q2")
        problem = dfem.Poisson(
            space, nu=nu, f=f_plain,
            dirichlet={"left": u_exact, "bottom": u_exact, "top": u_exact},
            neumann={"right": lambda x: -g_right(x)},
        )
        return space, problem.solve()

    study = dfem.convergence_study(solve, u_exact, (4, 8, 16))
    assert study["l2_rate"] < 1.0
    assert min(r["l2_error"] for r in study["levels"]) > 1e-2


def test_errors_of_a_constant_exact_solution():
    """A constant exact solution (``[exact] u = 1.0``) has zero gradient, not an autograd
    error; found by the case fuzzer."""
    from dfem.validation.error_norms import exact_gradient

    x = torch.rand(3, 4, 2, dtype=torch.float64)
    constant = lambda p: torch.full(p.shape[:-1], 1.0, dtype=p.dtype)  # noqa: E731
    assert torch.equal(exact_gradient(constant, x), torch.zeros_like(x))
    space = dfem.FunctionSpace(dfem.mesh.unit_square(2), "Q1")
    u = dfem.Poisson(space, dirichlet={"boundary": 1.0}).solve()
    e = dfem.errors(space, u, constant)
    assert e["l2"] < 1e-14 and e["h1"] < 1e-14
