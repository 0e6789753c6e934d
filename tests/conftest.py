"""Fixtures shared by the whole suite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark_module(name: str):
    """``benchmarks/NAME.py`` as a module, the way the smoke tests call its ``main()``."""
    if str(ROOT) not in sys.path:  # the scripts import benchmarks.harness
        sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_benchmark():
    """``load_benchmark("bench_nurbs")`` -> the module of ``benchmarks/bench_nurbs.py``."""
    return load_benchmark_module


@pytest.fixture
def one_thread():
    """Run the test with one torch thread. Tests on small tensors are faster that way: two
    OpenMP threads on a busy 2-core machine wait for each other at every tiny op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run_doc_example(capsys):
    """``run_doc_example(path, index=0)`` runs the index-th python block of a Markdown page
    in a fresh namespace and returns what it printed."""
    import re

    def run(path, index: int = 0) -> str:
        code = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)[index]
        capsys.readouterr()
        exec(compile(code, str(path), "exec"), {})  # noqa: S102 - our own documentation
        return capsys.readouterr().out

    return run
