"""Time levels and the step coefficients of the theta scheme and variable-step BDF2."""

import pytest

from dfem.exceptions import DfemError
from dfem.solvers.schemes import resolve_scheme, scheme_steps, step_times


def test_equal_steps_end_on_t_end_and_a_short_last_step():
    assert step_times(1.0, 0.25) == [0.0, 0.25, 0.5, 0.75, 1.0]
    times = step_times(1.0, 0.3)
    assert times[-1] == 1.0 and len(times) == 5
    assert times[-1] - times[-2] == pytest.approx(0.1)
    assert step_times(0.3, 0.1)[-1] == 0.3 and len(step_times(0.3, 0.1)) == 4  # not 5


@pytest.mark.parametrize("kwargs,match", [
    (dict(t_end=1.0, dt=0.0), "dt must be positive"),
    (dict(t_end=1.0, dt=-0.1), "dt must be positive"),
    (dict(t_end=0.05, dt=0.1), "less than one step"),
    (dict(t_end=1.0, dt=None), "dt must be a finite number"),
    (dict(t_end=float("nan"), dt=0.1), "t_end must be a finite number"),
    (dict(times=[0.0, 0.2, 0.1]), "strictly increasing"),
    (dict(times=[0.0]), "at least two"),
    (dict(times=[0.0, 1.0], dt=0.1), "not both"),
])
def test_bad_time_levels_are_named(kwargs, match):
    with pytest.raises(DfemError, match=match):
        step_times(**kwargs)


def test_scheme_names_and_theta():
    assert resolve_scheme("implicit-euler") == ("implicit-euler", 1.0)
    assert resolve_scheme(None) == ("crank-nicolson", 0.5)
    assert resolve_scheme(theta=0.6) == ("theta", 0.6)
    assert resolve_scheme("bdf2") == ("bdf2", None)
    with pytest.raises(DfemError, match="unknown time-stepping scheme 'rk4'"):
        resolve_scheme("rk4")
    with pytest.raises(DfemError, match="theta must be a number in"):
        resolve_scheme(theta=1.5)
    with pytest.raises(DfemError, match="not both"):
        resolve_scheme("bdf2", theta=0.5)


def test_theta_coefficients():
    (step,) = scheme_steps("theta", 0.5, [0.0, 0.2])
    assert step.new == (1.0, 0.1)
    assert step.previous == ((1.0, -0.1),)
    assert step.loads == ((1, 0.1), (0, 0.1))
    (euler,) = scheme_steps("implicit-euler", 1.0, [0.0, 0.2])
    assert euler.loads == ((1, 0.2),) and euler.previous == ((1.0, -0.0),)


def test_bdf2_coefficients_constant_and_variable_steps():
    steps = scheme_steps("bdf2", None, step_times(0.3, 0.1))
    assert steps[0].new == (1.0, 0.1)  # the implicit Euler start
    alpha, beta = steps[1].new
    assert alpha == pytest.approx(1.5) and beta == pytest.approx(0.1)
    (a0, _), (a1, _) = steps[1].previous
    assert (a0, a1) == (pytest.approx(2.0), pytest.approx(-0.5))
    # a step twice as long as the last: omega = 2
    (_, step) = scheme_steps("bdf2", None, [0.0, 0.1, 0.3])
    assert step.new[0] == pytest.approx(5 / 3)
    assert [a for a, _ in step.previous] == [pytest.approx(3.0), pytest.approx(-4 / 3)]
    # the coefficients sum to the consistency condition alpha = sum a_j
    assert step.new[0] == pytest.approx(sum(a for a, _ in step.previous))


def test_levels_t0_plus_k_dt_share_one_step_size():
    steps = scheme_steps("theta", 1.0, step_times(1.0, 0.1))
    assert len({s.new for s in steps}) == 1
