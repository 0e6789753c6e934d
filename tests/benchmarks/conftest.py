"""Load a script from benchmarks/ as a module, the way the smoke tests call its main(), and
the groups of JSON keys that several scripts write."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    if str(ROOT) not in sys.path:  # the scripts import benchmarks.harness
        sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_benchmark():
    """``load_benchmark("bench_nurbs")`` -> the module of ``benchmarks/bench_nurbs.py``."""
    return _load


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
