"""The Bukin N.6 surface fit (DSA paper, Table 3): least squares, knot learning, the CLI."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dfem.basis.nurbs import basis_matrix, clamped_knots
from dfem.basis.nurbs.cli import add_cli
from dfem.basis.nurbs.fitting import (
    PAPER_MSE,
    bukin6,
    bukin_grid,
    fit_fixed_knots,
    fit_learnable_knots,
    lsq_control_points,
    run_bukin,
)
from dfem.exceptions import DfemError


def test_bukin_target():
    assert bukin6(-10.0, 1.0) == 0.0  # the global minimum
    assert bukin6(np.array([-15.0]), np.array([3.0]))[0] == pytest.approx(
        100 * np.sqrt(0.75) + 0.05
    )
    grid = bukin_grid(24)
    assert grid.z.shape == (24, 24) and grid.z.dtype == torch.float64
    assert float(grid.x[0]) == -15 and float(grid.x[-1]) == -5
    assert float(grid.y[0]) == -3 and float(grid.y[-1]) == 3
    assert float(grid.z[5, 7]) == pytest.approx(float(bukin6(grid.x[5], grid.y[7])))
    with pytest.raises(DfemError, match="at least 8"):
        bukin_grid(4)


@pytest.mark.parametrize("rational", [False, True])
def test_lsq_matches_kronecker_lstsq(rational):
    """The factored solve equals numpy's lstsq on the full (Nu Nv) x (nu nv) system."""
    grid = bukin_grid(24)
    rng = np.random.default_rng(3)
    knots_u = torch.tensor([0, 0, 0, 0, 0.15, 0.3, 0.55, 0.7, 1, 1, 1, 1], dtype=torch.float64)
    knots_v = clamped_knots(8, 3)
    Bu = basis_matrix(knots_u, 3, grid.u)[:, 0]
    Bv = basis_matrix(knots_v, 3, grid.v)[:, 0]
    W = torch.tensor(rng.uniform(0.3, 3.0, (8, 8))) if rational else None
    C, S = lsq_control_points(Bu, Bv, grid.z, W)

    A = np.kron(Bu.numpy(), Bv.numpy())  # row (a, b), column (i, j)
    if rational:
        A = A / (Bu @ W @ Bv.T).numpy().reshape(-1, 1)
    P, *_ = np.linalg.lstsq(A, grid.z.numpy().reshape(-1), rcond=None)
    C_ref = P.reshape(8, 8) / (W.numpy() if rational else 1.0)
    np.testing.assert_allclose(C.numpy(), C_ref, rtol=1e-8, atol=1e-8 * np.abs(C_ref).max())
    np.testing.assert_allclose(S.numpy().reshape(-1), A @ P, rtol=1e-10, atol=1e-9)


def test_learnable_knots_lower_the_error():
    grid = bukin_grid(64)
    fixed = fit_fixed_knots(grid, weights=False)
    learned = fit_learnable_knots(grid, weights=False, iterations=40)
    assert fixed.mse == pytest.approx(43.56, abs=0.01)
    assert learned.mse < 0.5 * fixed.mse  # about 18.6
    ku, kv = learned.surface.knots_u, learned.surface.knots_v
    for knots in (ku, kv):
        assert bool((torch.diff(knots[3:9]) >= 1e-4 * (1 - 1e-9)).all())  # ordered, min gap
    # the reported MSE is that of the NURBSSurface layer
    z = learned.surface(grid.u, grid.v)[..., 0]
    assert float(((z - grid.z) ** 2).mean()) == pytest.approx(learned.mse, rel=1e-12)
    assert learned.iterations <= 40 and learned.history[-1] == pytest.approx(learned.mse)


def test_weights_and_gaussian_knot_gradient():
    grid = bukin_grid(48)
    nurbs = fit_fixed_knots(grid, iterations=15)
    assert nurbs.bspline is not None and nurbs.mse < 0.5 * nurbs.bspline.mse
    w = nurbs.surface.weights
    assert float(w.min()) >= 1e-3 * (1 - 1e-12) and float(w.max()) <= 1e3 * (1 + 1e-12)
    gauss = fit_learnable_knots(grid, weights=False, iterations=30, knot_grad="gaussian",
                                sigma=1e-2)
    assert gauss.mse < 0.5 * nurbs.bspline.mse
    with pytest.raises(DfemError, match="knot_grad"):
        fit_learnable_knots(grid, knot_grad="smooth")


def test_deterministic_under_a_seed():
    grid = bukin_grid(24)
    runs = [fit_learnable_knots(grid, weights=False, iterations=10, seed=s) for s in (1, 1, 2)]
    assert torch.equal(runs[0].surface.knots_u, runs[1].surface.knots_u)
    assert runs[0].mse == runs[1].mse
    assert not torch.equal(runs[0].surface.knots_v, runs[2].surface.knots_v)


def test_cli_writes_json_and_figure(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="dfem")
    add_cli(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "bukin"
    args = parser.parse_args(["nurbs-fit", "--out", str(out), "--grid", "24",
                              "--iterations", "10", "--seed", "0"])
    assert args.knot_grad == "exact" and args.sigma == 1e-2
    assert args.run(args) == 0
    data = json.loads((out / "nurbs_fit.json").read_text())
    assert data["grid"] == 24
    assert data["paper_mse_fixed_knots"] == 19.85 and data["paper_mse_learnable_knots"] == 8.23
    for key in ("fixed_knots", "learnable_knots", "fixed_knots_bspline",
                "learnable_knots_bspline"):
        assert np.isfinite(data[f"mse_{key}"]) and data[f"seconds_{key}"] >= 0
    assert data["mse_learnable_knots"] < data["mse_fixed_knots_bspline"]
    assert len(data["knots_u"]) == len(data["knots_v"]) == 12
    png = (out / "nurbs_fit.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*"))  # no temporary files left
    printed = capsys.readouterr().out
    assert "learnable knots, NURBS" in printed and "8.23" in printed


@pytest.mark.slow
def test_bukin_256_beats_the_paper():
    """The full experiment: both settings at or below the paper's MSE (z-only MSE)."""
    result = run_bukin(n=256)
    paper_fixed, paper_learned = PAPER_MSE[256]
    assert result["mse_fixed_knots_bspline"] == pytest.approx(43.638, abs=1e-3)
    assert result["mse_fixed_knots"] <= paper_fixed
    assert result["mse_learnable_knots"] <= paper_learned
    assert result["mse_learnable_knots_bspline"] < result["mse_fixed_knots_bspline"]


def test_docs_example(capsys):
    """The Python block of the "Surface fitting (Bukin N.6)" section of docs/nurbs.md."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "nurbs.md").read_text()
    section = text.split("## Surface fitting (Bukin N.6)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    exec(compile(code, "docs/nurbs.md", "exec"), {})  # noqa: S102 - our own documentation
    out = capsys.readouterr().out
    assert "MSE 43.56 -> 18.62" in out and "0.551 0.555 0.663 0.72" in out
