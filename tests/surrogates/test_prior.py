"""The coarse-solve prior: batched dense coarse solves against the sparse FEM solve, exactness
where the coarse space holds the solution, and a surrogate that starts at its prior."""

from __future__ import annotations

import pytest
import torch

from dfem.exceptions import DfemError
from dfem.surrogates import (
    CoarseSolve,
    GridProblem,
    LogNormalDiffusivity,
    Surrogate,
    UNet,
    relative_l2,
    zero_output_layer,
)
from dfem.surrogates.config import from_dict

pytestmark = pytest.mark.usefixtures("one_thread")

ALL_SIDES = {"left": 0.0, "right": 0.0, "bottom": 0.0, "top": 0.0}


@pytest.mark.parametrize("dirichlet, f", [(None, 0.0), (ALL_SIDES, 1.0)])
def test_batched_dense_solve_matches_the_sparse_solve(dirichlet, f):
    grid = GridProblem(6, "Q1", dirichlet=dirichlet, f=f)
    family = LogNormalDiffusivity()
    nu_q = family(grid.quadrature_points, family.sample(3, seed=2))
    torch.testing.assert_close(grid.solve_dense(nu_q), grid.solve(nu_q), rtol=1e-10, atol=1e-12)


def test_prior_is_exact_when_the_coarse_space_holds_the_solution():
    # constant nu, u = 1 at x = 0 and 0 at x = 1: u = 1 - x is bilinear on any grid
    grid = GridProblem(16, "Q1")
    log_nu = torch.full((2, grid.size, grid.size), 0.7, dtype=torch.float64)
    prior = CoarseSolve(grid, 4)
    torch.testing.assert_close(prior(log_nu), (1 - grid.points[..., 0]).expand(2, -1, -1))


def test_prior_converges_to_the_fine_solution_as_the_coarse_grid_refines():
    grid = GridProblem(32, "Q1")
    family = LogNormalDiffusivity()
    w = family.sample(4, seed=7)
    reference = grid.solve(family(grid.quadrature_points, w))
    log_nu = family.log_field(grid.points, w)
    errors = [relative_l2(CoarseSolve(grid, c)(log_nu), reference).mean() for c in (4, 8, 16)]
    assert errors[0] > 2 * errors[1] > 4 * errors[2]
    assert errors[2] < 0.02


def test_surrogate_with_a_zeroed_output_layer_starts_at_its_prior():
    grid = GridProblem(8, "Q1")
    family = LogNormalDiffusivity()
    log_nu = family.log_field(grid.points, family.sample(2, seed=1))
    prior = CoarseSolve(grid, 4)
    torch.manual_seed(0)
    network = zero_output_layer(UNet(Surrogate.in_channels(True, prior=True), 4, 2))
    model = Surrogate(grid, network, coordinates=True, prior=prior).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(log_nu), grid.impose(prior(log_nu)))
    loss = model.energy_loss(log_nu, family(grid.quadrature_points, family.sample(2, seed=1)))
    loss.backward()
    assert network.head.weight.grad.abs().sum() > 0  # the zeroed layer still learns


def test_bad_prior_settings_give_clear_errors():
    grid = GridProblem(8, "Q1")
    with pytest.raises(DfemError, match="1 <= cells <= 48"):
        CoarseSolve(grid, 0)
    with pytest.raises(DfemError, match="must divide"):
        from_dict({"problem": {"n": 64}, "network": {"prior": "coarse-fem", "prior_cells": 12}})
    with pytest.raises(DfemError, match="needs prior"):
        from_dict({"network": {"prior_cells": 8}})
    with pytest.raises(DfemError, match="prior must be one of"):
        from_dict({"network": {"prior": "coarse"}})


def test_evaluation_reports_the_prior_beside_the_surrogate(tmp_path):
    from dfem.surrogates.evaluate import evaluate
    from dfem.surrogates.training import Trainer

    config = from_dict({
        "problem": {"n": 8},
        "network": {"width": 4, "depth": 2, "norm": "batch", "prior": "coarse-fem",
                    "prior_cells": 4},
        "training": {"steps": 3, "batch_size": 2, "validation_samples": 3, "validate_every": 3},
    })
    trainer = Trainer(config, tmp_path)
    trainer.run()
    metrics = evaluate(tmp_path, batch=2)
    refs = trainer.references()
    grid = trainer.grid
    expected = relative_l2(grid.impose(CoarseSolve(grid, 4)(refs["log_nu"])), refs["u"])
    assert metrics["prior_val_rel_l2_mean"] == pytest.approx(expected.mean().item(), rel=1e-12)
    assert metrics["prior_paper_case_max_abs_err"] > 0
    assert metrics["surrogate_s_per_sample"] > 0 and metrics["inference_batch"] == 2
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "compare.png").exists()
