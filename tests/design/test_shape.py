"""NURBS shape optimisation (dfem.design.shape): the refinement map, gradients with respect
to control points against central differences, the mesh-quality guard, a short guarded MMA
run on the plate with a hole, the picture, the docs example and bad input."""

from pathlib import Path

import pytest
import torch

from dfem.basis.nurbs.patch import plate_with_hole
from dfem.design import (
    JacobianGuard,
    ShapeObjective,
    backtrack,
    optimize_shape,
    plate_problem,
    plate_with_hole_design,
    plot_shapes,
    refinement_operator,
    side_design,
    soft_min_ratio,
    stress_aggregate,
)
from dfem.exceptions import DfemError

ROOT = Path(__file__).resolve().parents[2]
f64 = torch.float64

#: Central-difference step (in length units, the plate is 4 x 4): round-off ~ 1e-16 J / h is
#: about 1e-11 and the truncation ~ h^2 J''' / 6 at most 1e-8 relative on the patches below
#: (measured; 3e-7 for KS on the benchmark patch; h = 1e-3 gives up to 3e-3, 1e-4 up to 3e-5).
H = 1e-5


@pytest.fixture(scope="module")
def small_design():
    """The hole of the plate, 4 variables (two ends sliding on the symmetry edges, two
    radial), analysed on 2 x 4 biquadratic elements (36 control points)."""
    return plate_with_hole_design("radial", design_elements=2, degree=2, elements=2)


def _central(fn, x, d, h=H):
    return (fn(x + h * d) - fn(x - h * d)) / (2 * h)


def test_refinement_operator_maps_design_to_analysis_control_points():
    coarse = plate_with_hole().subdivide(1, 4)
    fine = coarse.elevate(3).subdivide(4, 8)
    op = refinement_operator(coarse, fine)
    assert op.t_u.shape == (fine.shape[0], coarse.shape[0])
    assert torch.allclose(op.apply(coarse.control_points), fine.control_points, atol=1e-13)
    # linear in the control points: a moved coarse net maps to the refinement of the moved net
    torch.manual_seed(0)
    moved = coarse.control_points + 0.05 * torch.randn(coarse.shape + (2,), dtype=f64)
    refined = coarse.with_control_points(moved).elevate(3).subdivide(4, 8).control_points
    assert torch.allclose(op.apply(moved), refined, atol=1e-12)
    with pytest.raises(DfemError, match="not a refinement"):
        refinement_operator(coarse, plate_with_hole(1.5).elevate(3).subdivide(4, 8))


@pytest.mark.parametrize("objective", ["compliance", "von_mises_pnorm"])
def test_gradient_wrt_analysis_control_points_matches_central_differences(objective, one_thread):
    """``requires_grad`` control points of the analysis patch carry the gradient through the
    IGA geometry, the assembly, the loads and the solve: three random directions over every
    control point (the outer edges and their load included) agree with central differences
    to 1e-6 relative (measured: at most 2e-10 for the compliance, 9e-9 for the p-norm)."""
    patch = plate_with_hole().subdivide(2, 4)
    design = side_design(patch)  # to build the objective's space; theta is not used here
    f = ShapeObjective(design, objective=objective)
    from dfem.basis.nurbs.space import IsogeometricSpace

    def J(P):
        space = IsogeometricSpace(patch.with_control_points(P), shape=(2,))
        problem = plate_problem(space)
        return f.value(problem, problem.solve())

    P = patch.control_points.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(J(P), P)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            D = torch.randn(P.shape, generator=gen, dtype=f64)
            fd = float(_central(J, P.detach(), D))
            ad = float((grad * D).sum())
            assert abs(fd - ad) <= 1e-6 * abs(ad), (fd, ad)


@pytest.mark.parametrize("objective", ["compliance", "von_mises_pnorm", "von_mises_ks"])
def test_gradient_wrt_design_variables_matches_central_differences(small_design, objective,
                                                                   one_thread):
    """Every entry of dJ/dtheta and dA/dtheta (theta: hole control-point coordinates,
    refined to the analysis patch) against central differences, at a moved shape: 1e-6
    relative required (measured: at most 4e-9 for J, 4e-10 for A, 1e-8 for the soft-min
    Jacobian ratio)."""
    f = ShapeObjective(small_design, objective=objective, p=8.0 if objective != "von_mises_ks"
                       else 0.5)
    theta = 0.1 * small_design.upper * torch.tensor([1.0, -1.0, 0.5, -0.3], dtype=f64)
    e = f.evaluate(theta, jacobian=True)
    eye = torch.eye(small_design.n, dtype=f64)
    for k in range(small_design.n):
        plus, minus = (f.evaluate(theta + s * H * eye[k], gradient=False, jacobian=True)
                       for s in (1.0, -1.0))
        for name, grad in (("objective", e.grad_objective), ("area", e.grad_area),
                           ("jacobian", e.grad_jacobian)):
            fd = (getattr(plus, name) - getattr(minus, name)) / (2 * H)
            scale = max(abs(float(grad[k])), 1e-6 * float(grad.abs().max()))
            assert abs(fd - float(grad[k])) <= 1e-6 * scale, (name, k, fd, float(grad[k]))


def test_a_step_that_would_invert_a_cell_is_refused(small_design, one_thread):
    """Pushing a hole control point out past the next row of the net folds the map: the
    guard refuses it (negative det J), and the backtracking halves the step until the
    guard accepts."""
    guard = JacobianGuard(small_design.analysis)
    assert guard.report_initial.valid and guard.report_initial.min_ratio == 1.0
    assert guard.report_initial.excluded >= 1  # the kinked corner (L, L): det J_0 = 0 there
    step = small_design.zeros()
    step[2] = 3.0  # the radial point near (R, sR R): 3 length units outwards
    bad = guard.check(small_design.analysis_patch(step))
    assert not bad.valid and bad.min_det < 0
    out = backtrack(small_design.zeros(), step,
                    [("guard", lambda t: guard.check(small_design.analysis_patch(t)).valid)])
    assert out.accepted and out.refused["guard"] >= 1 and out.scale < 1
    assert guard.check(small_design.analysis_patch(out.trial)).min_det > 0


def test_optimiser_refuses_inverting_steps_and_ends_valid(one_thread):
    """The hole row of the analysis patch itself as the design, with bounds of twice the
    distance to the next row and MMA's move limit at half the box: MMA's full steps would
    fold elements; the guard refuses them, the steps are shortened, every accepted shape
    is valid and the objective still falls (measured: 5 refusals in 3 iterations, the
    compliance 3.4 % lower, the smallest det J ratio 0.17)."""
    patch = plate_with_hole().elevate(2).subdivide(2, 4)
    design = side_design(patch, None, mode="radial", fraction=2.0)
    result = optimize_shape(ShapeObjective(design), max_iter=3, move=0.5)
    assert result.guard_trips >= 1
    assert all(row["min_jacobian"] > 0 and row["min_jacobian_ratio"] >= 0.1
               for row in result.history)
    assert result.guard.valid and result.final.objective < result.initial.objective


def test_short_run_lowers_the_compliance_with_valid_cells_and_the_area_met(small_design,
                                                                           one_thread):
    """Eight guarded MMA iterations on the small hole design, compliance with the area
    bound A <= A_0 (the initial area). Measured: the compliance falls by 5.35 % (0.016793
    -> 0.015895), the area ends at A_0 (1 - 1.8e-5), the smallest det J ratio is 0.56
    (min det J 0.455 > 0), no step refused; 0.2 s with one thread."""
    f = ShapeObjective(small_design)
    result = optimize_shape(f, max_iter=8)
    assert result.reduction > 0.05
    assert result.final.area <= result.area_max * (1 + 1e-6)
    assert result.guard.valid and result.guard.min_det > 0
    assert all(row["min_jacobian"] > 0 for row in result.history)
    objectives = [row["objective"] for row in result.history]
    assert all(b < a for a, b in zip(objectives, objectives[1:], strict=False))  # monotone


def test_stress_aggregates_bound_the_peak_from_below():
    vm = torch.tensor([[1.0, 2.0, 30.0], [4.0, 5.0, 6.0]], dtype=f64)
    w = torch.ones_like(vm)
    values = [float(stress_aggregate(vm, w, "pnorm", p)) for p in (4, 16, 64)]
    assert values == sorted(values) and values[-1] < 30 and values[-1] > 29.0
    ks = [float(stress_aggregate(vm, w, "ks", rho)) for rho in (0.5, 2.0, 20.0)]
    assert ks == sorted(ks) and ks[-1] < 30 and ks[-1] > 29.9
    r = torch.tensor([1.0, 0.5, 0.8], dtype=f64)
    soft = float(soft_min_ratio(r, torch.ones(3, dtype=f64), rho=50.0))
    assert 0.5 - torch.log(torch.tensor(3.0)) / 50 <= soft <= 0.5


def test_plot_writes_the_png(small_design, tmp_path):
    f = ShapeObjective(small_design)
    theta = 0.3 * small_design.upper
    path = tmp_path / "shape.png"
    plot_shapes([(f, small_design.zeros()), (f, theta)], path)
    assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"


def test_docs_example_runs(run_doc_example, one_thread):
    """The example prints what the page says it prints."""
    out = run_doc_example(ROOT / "docs" / "optimization.md", 1)
    page = (ROOT / "docs" / "optimization.md").read_text()
    for line in ("compliance 0.016793 -> 0.015895 (5.35 % lower)", "folded shape valid? False",
                 "min det J 0.455 (ratio 0.56 of the initial), 0 guard trips"):
        assert line in out and line in page


def test_bad_input_is_a_dfem_error(small_design):
    with pytest.raises(DfemError, match="objective"):
        ShapeObjective(small_design, objective="weight")
    with pytest.raises(DfemError, match="mode"):
        side_design(plate_with_hole(), mode="diagonal")
    with pytest.raises(DfemError, match="side"):
        side_design(plate_with_hole(), side="inner")
    with pytest.raises(DfemError, match="min_jacobian_ratio"):
        JacobianGuard(small_design.analysis, min_ratio=0.0)
    with pytest.raises(DfemError, match="jacobian_bound"):
        optimize_shape(ShapeObjective(small_design), jacobian_bound=0.05)
    with pytest.raises(DfemError, match="lower < 0 < upper"):
        side_design(plate_with_hole(), bounds=(0.1, 0.5))
    with pytest.raises(DfemError, match="multiple"):
        plate_with_hole_design(design_elements=3, elements=4)
    with pytest.raises(DfemError, match="load"):
        plate_problem(ShapeObjective(small_design)._space, load="biaxial")


@pytest.mark.slow
def test_benchmark_quick_run_writes_its_outputs(tmp_path):
    """benchmarks/nurbs_shape.py --quick (about 10 s): every run valid and lower."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("nurbs_shape", ROOT / "benchmarks" /
                                                  "nurbs_shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, png = tmp_path / "shape.json", tmp_path / "shape.png"
    module.main(["--quick", "--quiet", "--json", str(out), "--png", str(png)])
    report = json.loads(out.read_text())
    for run in report["runs"].values():
        assert run["guard_valid"] and run["reduction"] > 0
        assert run["area_ratio_final"] <= 1 + 1e-5
    assert png.stat().st_size > 10_000
