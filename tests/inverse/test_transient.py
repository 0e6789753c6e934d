"""Inverse problems in time: a conductivity and an initial condition recovered from noisy
sensor histories of a heat run, by identify() through the adjoint in time."""

import math

import pytest
import torch

import dfem
from dfem.exceptions import DfemError
from dfem.inverse import (
    InitialCondition,
    NodalLogDiffusivity,
    SensorHistories,
    TransientForward,
    check_gradients,
    identify,
    log_nu_error,
)
from dfem.inverse.run import random_points_in_cells

RUN = dict(t_end=0.2, dt=0.02)


def _log_k(x):
    return 0.5 * torch.sin(2 * math.pi * x[..., 0]) * x[..., 1]


def _synthetic(space, heat, u0, points, noise, **run):
    levels = round(run["t_end"] / run["dt"]) + 1
    blank = SensorHistories(space, torch.zeros(levels, len(points)), points)
    history = TransientForward(heat, u0, blank, **run).solve()
    return SensorHistories.synthetic(space, history, noise, seed=0, points=points)


def _conductivity_setup():
    mesh = dfem.mesh.rectangle(6, 6, "quad")
    space = dfem.FunctionSpace(mesh, "Q1")
    points = random_points_in_cells(mesh, 40, seed=1)
    truth = dfem.Heat(space, k=lambda x: torch.exp(_log_k(x)), f=1.0,
                      dirichlet={"boundary": 0.0})
    observations = _synthetic(space, truth, 0.0, points, noise=0.01, **RUN)
    forward = TransientForward(dfem.Heat(space, f=1.0, dirichlet={"boundary": 0.0}), 0.0,
                               observations, **RUN)
    return space, observations, forward


def test_conductivity_from_sensor_histories():
    space, observations, forward = _conductivity_setup()
    unknown = NodalLogDiffusivity(space)
    result = identify(forward, observations, unknown, regularization="tikhonov", weight=3e-2,
                      max_iter=200)
    # 40 sensors at 11 levels, 1 % noise: measured 0.29 (the start, log k = 0, has 1.0)
    assert log_nu_error(unknown, result.m, _log_k) < 0.35
    assert result.history[-1]["misfit"] < 0.6  # about the noise level, 1/2
    assert result.history[0]["misfit"] > 5 * result.history[-1]["misfit"]


def test_transient_misfit_gradient_passes_a_taylor_test():
    space, observations, forward = _conductivity_setup()
    unknown = NodalLogDiffusivity(space)

    def misfit(m):
        forward.nu = unknown.coefficient(m)
        return observations.misfit(forward.solve())

    m = 0.1 * torch.ones(unknown.size, dtype=torch.float64)
    assert check_gradients(misfit, m, h0=0.05).passed()


def test_initial_condition_from_sensor_histories():
    mesh = dfem.mesh.rectangle(8, 8, "quad")
    space = dfem.FunctionSpace(mesh, "Q1")
    heat = dfem.Heat(space, dirichlet={"boundary": 0.0})
    truth = space.interpolate(lambda x: torch.sin(math.pi * x[..., 0])
                              * torch.sin(math.pi * x[..., 1]) * (1 + x[..., 0]))
    points = random_points_in_cells(mesh, 40, seed=1)
    run = dict(t_end=0.05, dt=0.005)
    observations = _synthetic(space, heat, truth, points, noise=0.01, **run)
    unknown = InitialCondition(space, heat)
    forward = TransientForward(heat, 0.0, observations, **run)
    result = identify(forward, observations, unknown, regularization="tikhonov", weight=1.0,
                      max_iter=200)
    recovered = unknown.coefficient(result.m)
    error = float(torch.linalg.vector_norm(recovered - truth) / torch.linalg.vector_norm(truth))
    assert error < 0.05  # measured 0.02 with 1 % noise
    boundary = space.boundary_dofs("boundary")
    assert float(recovered[boundary].abs().max()) == 0.0


def test_bad_histories_are_named():
    space = dfem.FunctionSpace(dfem.mesh.rectangle(2, 2, "quad"), "Q1")
    with pytest.raises(DfemError, match="time levels, sensors"):
        SensorHistories(space, torch.zeros(9))
    with pytest.raises(DfemError, match="inf or NaN"):
        SensorHistories(space, torch.full((3, 9), float("nan")))
    histories = SensorHistories(space, torch.zeros(3, 9))
    with pytest.raises(DfemError, match="predicted histories have shape"):
        histories.misfit(torch.zeros(4, 9, dtype=torch.float64))
    with pytest.raises(DfemError, match="observe"):
        TransientForward(dfem.Heat(space), 0.0, histories, t_end=1.0, dt=0.5,
                         observe=lambda t, u: u)
