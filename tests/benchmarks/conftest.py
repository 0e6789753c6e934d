"""The groups of JSON keys that several benchmark scripts write (``load_benchmark``, which
loads a script as a module, is in tests/conftest.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture
def shared_keys():
    """Key groups of the scripts' JSON: ``skfem_assembly`` (an assembly timed against
    scikit-fem and its matrix compared), ``fwd_bwd`` (dfem's methods solved and
    differentiated against a reference) and ``torchfem`` (that reference being torch-fem)."""
    return SimpleNamespace(
        skfem_assembly=frozenset({
            "dfem_cold_s",
            "dfem_warm_s",
            "skfem_cold_s",
            "skfem_warm_s",
            "assembly_ratio_vs_skfem",
            "assembly_warm_ratio_vs_skfem",
            "matrix_rel_max_diff",
            "matrices_agree",
        }),
        fwd_bwd=frozenset({
            "n_dofs",
            "methods",
            "load_rel_max_diff",
            "solutions_agree",
            "gradients_agree",
            "dfem_best_method",
        }),
        torchfem=frozenset({
            "torchfem_solver",
            "torchfem_warm_s",
            "torchfem_cold_s",
            "fwd_bwd_ratio_vs_torchfem",
            "fwd_bwd_cold_ratio_vs_torchfem",
        }),
    )
