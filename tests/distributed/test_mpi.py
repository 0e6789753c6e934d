"""Distributed solves under ``mpirun -n 2``, against the serial solve.

These start real MPI runs (Open MPI's mpirun, with ``--allow-run-as-root --oversubscribe``
so that they run as root and on a machine with fewer cores than ranks). They skip where
mpirun, mpi4py or petsc4py is missing; CI installs all three (``.ci/install-petsc``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import meshio
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
RANKS = 2


def _available() -> str | None:
    if shutil.which("mpirun") is None:
        return "mpirun is not installed"
    for module in ("mpi4py", "petsc4py"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed"
    return None


pytestmark = pytest.mark.skipif(_available() is not None, reason=str(_available()))


def mpirun(*args, ranks=RANKS, timeout=600, env=None):
    command = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), *args]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=environment, cwd=ROOT)


def dfem_command():
    return [sys.executable, "-m", "dfem.cli"]


@pytest.fixture(scope="module")
def equality(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi") / "equality.json"
    # -m mpi4py: an exception on one rank aborts the run instead of leaving the other waiting
    run = mpirun(sys.executable, "-m", "mpi4py", str(ROOT / "tests/distributed/mpi_equality.py"),
                 str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    return {row["name"]: row for row in json.loads(out.read_text())}


def test_two_ranks_equal_the_serial_solve_on_gmsh_meshes(equality):
    assert len(equality) == 6
    for name, row in equality.items():
        assert row["ranks"] == RANKS
        assert all(0 < n < row["dofs"] for n in row["local_dofs"]), name  # each holds a part
        for key in ("solution_rel", "energy_rel", "objective_rel", "gradient_rel"):
            assert row[key] <= 1e-8, (name, key, row[key])


def test_the_distributed_gradient_passes_a_taylor_test(equality):
    for name, row in equality.items():
        r = row["taylor_remainders"]
        # halving h quarters the remainder of the first-order expansion
        assert 3.5 < r[0] / r[1] < 4.5 and 3.5 < r[1] / r[2] < 4.5, (name, r)


@pytest.mark.parametrize("case", ["inclusion", "block_with_hole"])
def test_mpirun_dfem_solve_equals_the_serial_run(case, tmp_path):
    serial = subprocess.run([*dfem_command(), "solve", case, "--method", "direct", "--out",
                             str(tmp_path / "serial")], capture_output=True, text=True,
                            cwd=tmp_path)
    assert serial.returncode == 0, serial.stderr
    run = mpirun(*dfem_command(), "solve", case, "--set", "solver.rtol=1e-12", "--out",
                 str(tmp_path / "mpi"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("wrote") == 1  # rank 0 reports
    one = json.loads((tmp_path / "serial/report.json").read_text())
    two = json.loads((tmp_path / "mpi/report.json").read_text())
    assert two["ranks"] == RANKS and two["solver"] == "petsc"
    assert (two["cells"], two["dofs"]) == (one["cells"], one["dofs"])
    if one["l2_error"] is not None:
        assert abs(two["l2_error"] - one["l2_error"]) <= 1e-8 * one["l2_error"]
        assert abs(two["h1_error"] - one["h1_error"]) <= 1e-8 * one["h1_error"]
    names = sorted(p.name for p in (tmp_path / "mpi").iterdir())
    assert names == ["report.json", "solution.png", "solution.pvtu", "solution_0.vtu",
                     "solution_1.vtu"]
    # the pieces hold every cell once, and the vertex values of the serial solution
    whole = meshio.read(tmp_path / "serial/solution.vtu")
    served = {}
    cells = 0
    for k in range(RANKS):
        piece = meshio.read(tmp_path / f"mpi/solution_{k}.vtu")
        block = max(piece.cells, key=lambda c: c.data.shape[1])
        cells += len(block.data)
        for point, value in zip(piece.points, piece.point_data["u"], strict=True):
            served[tuple(np.round(point, 12))] = value
    assert cells == one["cells"]
    expected = {tuple(np.round(p, 12)): v for p, v in zip(whole.points, whole.point_data["u"],
                                                           strict=True)}
    assert served.keys() == expected.keys()
    gap = max(abs(served[k] - expected[k]) for k in expected)
    assert gap <= 1e-8 * max(abs(v) for v in expected.values())
    pvtu = (tmp_path / "mpi/solution.pvtu").read_text()
    assert 'Source="solution_0.vtu"' in pvtu and 'Source="solution_1.vtu"' in pvtu
    assert 'Name="u"' in pvtu


def test_vtk_reads_the_pvtu_as_the_union_of_the_pieces(tmp_path):
    pyvista = pytest.importorskip("pyvista")
    run = mpirun(*dfem_command(), "solve", "inclusion", "--out", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    joined = pyvista.read(tmp_path / "solution.pvtu")
    pieces = [pyvista.read(tmp_path / f"solution_{k}.vtu") for k in range(RANKS)]
    assert joined.n_cells == sum(p.n_cells for p in pieces)
    assert np.allclose(np.sort(joined.point_data["u"]),
                       np.sort(np.concatenate([p.point_data["u"] for p in pieces])))
    assert set(joined.cell_data["rank"]) == set(range(RANKS))


def test_an_elastic_case_reports_the_whole_problem(tmp_path):
    serial = subprocess.run([*dfem_command(), "solve", "cantilever_3d", "--method", "direct",
                             "--set", "mesh.nx=12", "--out", str(tmp_path / "serial")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert serial.returncode == 0, serial.stderr
    run = mpirun(*dfem_command(), "solve", "cantilever_3d", "--set", "mesh.nx=12", "--set",
                 "solver.rtol=1e-12", "--out", str(tmp_path / "mpi"))
    assert run.returncode == 0, run.stdout + run.stderr
    one = json.loads((tmp_path / "serial/report.json").read_text())
    two = json.loads((tmp_path / "mpi/report.json").read_text())
    for key in ("energy", "compliance", "max_displacement", "max_von_mises"):
        assert abs(two[key] - one[key]) <= 1e-8 * abs(one[key]), key
    for tag, force in one["reactions"].items():
        scale = max(abs(f) for f in force)
        assert np.allclose(two["reactions"][tag], force, rtol=0, atol=1e-8 * scale), tag


def _every_rank_reports(run, status, text):
    assert run.returncode == status, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    for rank in range(RANKS):
        assert f"[rank {rank} of {RANKS}]" in run.stderr, run.stderr
    assert text in run.stderr, run.stderr


def test_bad_input_under_mpirun_is_one_line_per_rank_and_no_hang(tmp_path):
    out = tmp_path / "out"
    unknown = mpirun(*dfem_command(), "solve", "inclusion", "--set",
                     "solver.petsc_options={ no_such_option = 1 }", "--out", str(out),
                     timeout=300)
    _every_rank_reports(unknown, 2, "did not use the option(s) no_such_option")
    assert not out.exists()
    short = mpirun(*dfem_command(), "solve", "inclusion", "--set", "solver.maxiter=2",
                   "--set", "solver.rtol=1e-14", "--out", str(out), timeout=300)
    _every_rank_reports(short, 1, "DIVERGED_MAX_IT")
    assert not out.exists()
    transient = mpirun(*dfem_command(), "solve", "heat_decay", timeout=300)
    _every_rank_reports(transient, 2, "runs on one process")
    other = mpirun(*dfem_command(), "convergence", "inclusion", timeout=300)
    _every_rank_reports(other, 2, "only dfem solve runs")


def test_without_petsc4py_every_rank_says_how_to_install_it(tmp_path):
    fake = tmp_path / "fake" / "petsc4py"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('petsc4py is hidden by the test')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"),
                                          os.environ.get("PYTHONPATH", "")])}
    run = mpirun(*dfem_command(), "solve", "inclusion", env=env, timeout=300)
    _every_rank_reports(run, 2, "needs petsc4py")


def test_a_rank_that_fails_alone_stops_the_run_instead_of_hanging(tmp_path):
    script = tmp_path / "alone.py"
    script.write_text(
        "import sys\n"
        "from mpi4py import MPI\n"
        "from dfem.distributed.comm import settle_ranks\n"
        "if MPI.COMM_WORLD.Get_rank() == 1:\n"
        "    sys.exit(settle_ranks(2, wait_s=2.0))\n"
        "MPI.COMM_WORLD.Barrier()  # rank 0 waits for a rank that will never come\n")
    run = mpirun(sys.executable, str(script), timeout=120)  # a hang fails by the timeout
    assert run.returncode == 2, run.stdout + run.stderr  # MPI_Abort's status


def test_the_example_of_docs_distributed_runs_as_written(tmp_path):
    import re

    import torch

    import dfem
    from dfem.mesh import box

    code = re.findall(r"```python\n(.*?)```", (ROOT / "docs/distributed.md").read_text(),
                      flags=re.S)[0]
    script = tmp_path / "example.py"
    script.write_text(code)
    run = mpirun(sys.executable, str(script), timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    printed = float(re.search(r"J = (\S+),", run.stdout).group(1))
    energy = float(re.search(r"energy = (\S+)", run.stdout).group(1))
    assert run.stdout.count("max |dJ/dnu|") == RANKS
    # the same problem on one process, by the direct solver
    mesh = box(12, 12, 12, "tet")
    space = dfem.FunctionSpace(mesh, "P2")
    nu = 1.0 + mesh.nodes[mesh.cells].mean(1)[:, 0]
    problem = dfem.Poisson(space, nu=nu, f=1.0, dirichlet={"left": 0.0},
                           neumann={"right": 0.5})
    with torch.no_grad():
        u = problem.solve()
    assert printed == pytest.approx(float((u**2).sum()), rel=1e-8)
    assert energy == pytest.approx(float(problem.energy(u)), rel=1e-8)


def test_ranks_that_disagree_on_the_fixed_dofs_all_stop(tmp_path):
    script = tmp_path / "disagree.py"
    script.write_text(
        "import torch\n"
        "import dfem\n"
        "from mpi4py import MPI\n"
        "from dfem.distributed import Partition, distribution\n"
        "from dfem.exceptions import DfemError\n"
        "part = Partition(dfem.mesh.rectangle(4, 4))\n"
        "dist = distribution(dfem.FunctionSpace(part.mesh, 'Q1'))\n"
        "free = torch.arange(len(dist.global_dofs))\n"
        "if part.rank == 1:\n"
        "    free = free[free != int(torch.nonzero(~dist.owned)[0])]  # fixes a shared dof\n"
        "try:\n"
        "    dist.rows(free)\n"
        "except DfemError as exc:\n"
        "    import os\n"
        "    os.write(1, f'refused: {exc}\\n'.encode())  # one write: lines do not interleave\n")
    run = mpirun(sys.executable, "-m", "mpi4py", str(script), timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("refused: a dof that one rank leaves free") == RANKS
