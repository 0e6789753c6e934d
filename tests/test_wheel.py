"""dfem as a user gets it: a wheel, installed non-editable in a fresh virtual environment and
run from an empty folder, finds its shipped cases, meshes and results without the repository.

The venv sees the system's site-packages (torch and the other dependencies come from
there), but its own, non-editable dfem must be the one imported: the test checks that
``dfem.__file__`` lies inside the venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, env, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{cmd} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(venv python, venv dfem, environment, empty folder)`` with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    # build from a copy of the sources, so that the build leaves nothing in the checkout
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    shutil.copytree(ROOT / "dfem", src / "dfem",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    _run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation",
          "-q", "-w", tmp / "dist"], tmp, env)
    (wheel,) = (tmp / "dist").glob("dfem-*.whl")
    venv = tmp / "venv"
    # no pip of its own: the system's pip, run by the venv's python, installs into the venv
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv],
         tmp, env)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], tmp, env)
    empty = tmp / "empty"
    empty.mkdir()
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    where = _run([python, "-c", "import dfem, dfem.shipped as s, dfem.validation.paper as p; "
                  "print(dfem.__file__); print(s.cases_dir()); print(p.source_path('table5'))"],
                 empty, env).stdout.split()
    paths = dict(zip(("dfem", "cases", "table5"), map(Path, where), strict=True))
    return python, python.parent / "dfem", env, empty, paths


def test_the_venv_imports_its_own_dfem(installed):
    python, _, _, _, paths = installed
    venv = python.parent.parent.resolve()
    for path in paths.values():
        assert path.resolve().is_relative_to(venv), paths
    assert (paths["cases"] / "poisson_sine.toml").is_file()
    assert (paths["cases"] / "meshes" / "lshape.msh").is_file()
    assert (paths["cases"] / "meshes" / "make_lshape.py").is_file()
    assert paths["table5"].is_file()


def test_cases_solve_validate_paper_from_an_empty_folder(installed):
    _, dfem, env, empty, paths = installed
    cases = _run([dfem, "cases"], empty, env).stdout
    assert re.search(r"^poisson_sine\s+solve case", cases, flags=re.M)
    assert re.search(r"^segmentation_noisy\s+segmentation config", cases, flags=re.M)

    _run([dfem, "solve", "poisson_sine", "--out", "D"], empty, env)
    report = json.loads((empty / "D" / "report.json").read_text())
    assert report["l2_error"] < 1e-6  # Q2 on 128x128: about 3e-8
    assert (empty / "D" / "solution.vtu").stat().st_size > 0

    checked = _run([dfem, "validate", "--quick"], empty, env).stdout
    passed, total = map(int, re.search(r"(\d+)/(\d+) cases pass", checked).groups())
    assert total > 0 and passed == total, checked
    assert "lshape" in checked  # its gmsh mesh file lies beside it in the installed package

    _run([dfem, "paper", "--out", "D2", "--table5", paths["table5"]], empty, env)
    page = (empty / "D2" / "paper.md").read_text()
    assert "Not measured" not in page
    for heading in ("## Table 5", "## Table 3", "## Table 2", "## Fig. 3"):
        assert heading in page
    assert sorted(p.name for p in empty.iterdir()) == ["D", "D2"]
