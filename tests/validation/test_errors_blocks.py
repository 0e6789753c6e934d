"""The blocked error integration of :func:`dfem.validation.error_norms.errors` against the
integrals written out with the space's geometry at the same quadrature degree."""

import math

import pytest
import torch

import dfem
import dfem.validation.error_norms as ERRORS
from dfem.mesh import rectangle
from dfem.mesh.structured import box, perturb_interior
from dfem.validation.error_norms import errors, exact_gradient


def reference(space, u, exact, degree=None):
    """The integrals as sums over the quadrature points of ``space.geometry(degree)``."""
    degree = 2 * space.element.degree + 4 if degree is None else degree
    g = space.geometry(degree)
    with torch.no_grad():
        uq, grad = space.at_quadrature(u, g)
        ue = exact(g.points).expand_as(uq)
    ge = exact_gradient(exact, g.points)
    w = g.weights
    flat = lambda v: v.flatten(2).sum(-1) if v.ndim > 2 else v  # noqa: E731
    return {"l2": math.sqrt(float((flat((uq - ue) ** 2) * w).sum())),
            "h1": math.sqrt(float((flat((grad - ge) ** 2) * w).sum())),
            "l2_norm": math.sqrt(float((flat(ue ** 2) * w).sum()))}


def scalar(x):
    return torch.sin(math.pi * x[..., 0]) * torch.exp(x[..., 1]) + x[..., -1] ** 3


def vector(x):
    return torch.stack([torch.sin(x[..., 0] * x[..., 1]), torch.cos(x[..., 0]) + x[..., 1] ** 2,
                        *([x[..., 2] * x[..., 0]] if x.shape[-1] == 3 else [])], dim=-1)


SPACES = {
    "Q1 quads (perturbed)": lambda: dfem.FunctionSpace(
        perturb_interior(rectangle(6, 5, "quad"), 0.2, seed=1), "Q1"),
    "P2 triangles": lambda: dfem.FunctionSpace(rectangle(5, 4, "tri"), "P2"),
    "Q3 quads": lambda: dfem.FunctionSpace(rectangle(3, 3, "quad"), "Q3"),
    "Q2 hexes": lambda: dfem.FunctionSpace(box(2, 3, 2, "hex"), "Q2"),
    "P1 tets": lambda: dfem.FunctionSpace(box(2, 2, 2, "tet"), "P1"),
    "vector Q2": lambda: dfem.FunctionSpace(rectangle(4, 3, "quad"), "Q2", shape=(2,)),
    "vector P2 tets": lambda: dfem.FunctionSpace(box(2, 2, 1, "tet"), "P2", shape=(3,)),
}


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("block", [7, 1 << 21])  # many blocks (not a multiple of n_q), one
def test_blocked_errors_equal_the_geometry_sums(name, block, monkeypatch):
    monkeypatch.setattr(ERRORS, "BLOCK_POINTS", block)
    space = SPACES[name]()
    exact = vector if hasattr(space, "scalar") else scalar
    gen = torch.Generator().manual_seed(3)
    u = space.interpolate(exact) + 1e-2 * torch.rand(space.n_dofs, generator=gen,
                                                     dtype=torch.float64)
    got, want = errors(space, u, exact), reference(space, u, exact)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12), key
    assert want["l2"] > 1e-4 and want["h1"] > 1e-3  # the perturbation is measured
    lower = errors(space, u, exact, degree=3)
    assert lower["l2"] == pytest.approx(reference(space, u, exact, degree=3)["l2"], rel=1e-12)


def test_given_gradient_and_constant_exact_solutions():
    space = dfem.FunctionSpace(rectangle(4, 4, "tri"), "P1")
    u = space.interpolate(scalar)

    def grad(x):
        return torch.stack([math.pi * torch.cos(math.pi * x[..., 0]) * torch.exp(x[..., 1]),
                            torch.sin(math.pi * x[..., 0]) * torch.exp(x[..., 1])
                            + 3 * x[..., 1] ** 2], dim=-1)

    by_autograd = errors(space, u, scalar)
    assert errors(space, u, scalar, exact_grad=grad) == pytest.approx(by_autograd, rel=1e-12)
    one = errors(space, torch.ones(space.n_dofs, dtype=torch.float64),
                 lambda x: torch.ones(x.shape[:-1], dtype=x.dtype))
    assert one["l2"] < 1e-14 and one["h1"] < 1e-14 and one["l2_norm"] == pytest.approx(1.0)
