"""Parametric surrogates: diffusivity samplers (and, later, networks trained on the FEM energy)."""

from dfem.surrogates.samplers import (
    FIELDS,
    KarhunenLoeve,
    LogNormalDiffusivity,
    exponential_covariance_roots,
    sample_parameters,
)

__all__ = [
    "FIELDS",
    "KarhunenLoeve",
    "LogNormalDiffusivity",
    "exponential_covariance_roots",
    "sample_parameters",
]
