"""Validation against analytic solutions: error norms and convergence studies."""

from dfem.validation.errors import convergence_study, errors, exact_gradient, fitted_rate, mesh_size

__all__ = ["convergence_study", "errors", "exact_gradient", "fitted_rate", "mesh_size"]
