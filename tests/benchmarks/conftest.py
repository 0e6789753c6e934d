"""Load a script from benchmarks/ as a module, the way the smoke tests call its main()."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
