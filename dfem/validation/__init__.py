"""Validation against analytic solutions: error norms and convergence studies, and the
Taylor test of gradients (:func:`check_gradients`)."""

from dfem.validation.error_norms import (
           convergence_study,
           errors,
           exact_gradient,
           fitted_rate,
           mesh_size,
)
from dfem.validation.taylor import TaylorTest, check_gradients

__all__ = ["TaylorTest", "check_gradients", "convergence_study", "errors", "exact_gradient",
           "fitted_rate", "mesh_size"]
