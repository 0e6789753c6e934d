"""What every benchmark script shares: the machine it ran on, a timer and the JSON writer."""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import math
import os
import platform
import sys
import time

import numpy as np
import torch

import dfem
from dfem.fileio import write_json_atomic

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info(packages: dict[str, str], **extra) -> dict:
    """CPU, platform, thread settings and versions; ``packages`` maps a key to the
    distribution whose version it records (the benchmark's peers)."""
    return {
        "cpu": cpu_name(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "thread_env": {v: os.environ.get(v) for v in THREAD_VARS},
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        **{key: version(dist) for key, dist in packages.items()},
        "dfem": dfem.__version__,
        **extra,
    }


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads, then restore the count."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def gc_paused():
    """No garbage-collector pause inside a timing (objects are still freed by refcount)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def best_of(repeats: int, fn, *, setup=None) -> tuple[float, object]:
    """Best wall time of ``fn(setup())`` over ``repeats`` runs (setup untimed), last result."""
    best, result = math.inf, None
    for _ in range(repeats):
        arg = setup() if setup is not None else None
        result = None  # free the previous run before timing the next
        with gc_paused():
            t0 = time.perf_counter()
            result = fn(arg) if setup is not None else fn()
            best = min(best, time.perf_counter() - t0)
    return best, result


def add_run_options(parser) -> None:
    """The options every FEM benchmark ends its command line with: --threads, --quiet,
    --no-warmup (see :func:`set_threads`)."""
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch, OpenMP and BLAS (default: the libraries' own)")
    parser.add_argument("--quiet", action="store_true", help="no table on stdout")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the untimed warm-up run (first-call costs then land in the "
                             "first size)")


def set_threads(threads: int | None, argv) -> None:
    """Pin torch, OpenMP and BLAS to ``threads`` (None / 0: leave them); run from the command
    line (``argv`` None) with other thread variables, the script starts again with them set."""
    if not threads:
        return
    wanted = str(threads)
    if argv is None and any(os.environ.get(v) != wanted for v in THREAD_VARS):
        # OpenBLAS and OpenMP read their thread counts when loaded: start again
        env = dict(os.environ, **dict.fromkeys(THREAD_VARS, wanted))
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    torch.set_num_threads(threads)


def write_json(path, data: dict) -> None:
    """``data`` as JSON at ``path`` (folder created), written atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json_atomic(path, data)


# ------------------------------------------------------------ shared by the FEM benchmarks
def peak_rss_gb() -> float | None:
    """Peak resident memory of this process in GB (None off POSIX)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # kB on Linux


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    """torch-fem allocates with the default dtype; run it in float64 like dfem."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def total_memory_bytes() -> int | None:
    """Physical memory of the machine in bytes (None where unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None

def rel_max_diff(a, b) -> float:
    """``max |a - b| / max(|a|, |b|)``."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), 1e-300)
    return float(np.abs(a - b).max(initial=0.0) / scale)

def per_cell_nu(mesh) -> torch.Tensor:
    """``1 + 0.5 sin(2 pi x) sin(2 pi y)`` at the cell centroids, shape (n_cells,)."""
    centroid = mesh.nodes[mesh.cells].mean(dim=1)
    x, y = centroid[:, 0], centroid[:, 1]
    return 1.0 + 0.5 * torch.sin(2 * math.pi * x) * torch.sin(2 * math.pi * y)

def skfem_quad_mesh(dmesh):
    """scikit-fem's MeshQuad with the nodes and cells of a dfem quad mesh."""
    from skfem import MeshQuad

    nodes = dmesh.nodes.detach().cpu().numpy()
    return MeshQuad(np.ascontiguousarray(nodes.T), np.ascontiguousarray(dmesh.cells_np.T))


# ------------------------------------------------------------ shared by the 3D benchmarks
# scikit-fem numbers a hexahedron's corners differently from meshio / VTK (dfem's order):
# skfem's cell = the meshio cell taken at these positions (skfem.io.meshio.INV_HEX_MAPPING)
SKFEM_HEX_ORDER = (0, 4, 3, 1, 7, 5, 2, 6)


def per_cell_nu_3d(mesh) -> torch.Tensor:
    """``1 + 0.5 sin(2 pi x) sin(2 pi y) sin(2 pi z)`` at the cell centroids, (n_cells,)."""
    centroid = mesh.nodes[mesh.cells].mean(dim=1)
    x, y, z = centroid[:, 0], centroid[:, 1], centroid[:, 2]
    return 1.0 + 0.5 * torch.sin(2 * math.pi * x) * torch.sin(2 * math.pi * y) * torch.sin(
        2 * math.pi * z)


def skfem_3d_mesh(dmesh):
    """scikit-fem's MeshHex or MeshTet with the nodes and cells of a dfem hex / tet mesh
    (hexahedra renumbered from meshio's corner order to scikit-fem's)."""
    from skfem import MeshHex, MeshTet

    nodes = np.ascontiguousarray(dmesh.nodes.detach().cpu().numpy().T)
    cells = dmesh.cells_np
    if dmesh.cell_type == "hex":
        return MeshHex(nodes, np.ascontiguousarray(cells[:, list(SKFEM_HEX_ORDER)].T))
    if dmesh.cell_type == "tet":
        return MeshTet(nodes, np.ascontiguousarray(cells.T))
    raise ValueError(f"skfem_3d_mesh takes hex or tet meshes, got {dmesh.cell_type!r}")


def coordinate_permutation(coords_a, coords_b, spacing: float) -> np.ndarray | None:
    """``perm`` with point ``k`` of ``coords_a`` = point ``perm[k]`` of ``coords_b`` (points
    on a grid of the given spacing, matched exactly after rounding), or None if the two
    point sets differ."""
    a = np.rint(np.asarray(coords_a, dtype=np.float64) / spacing).astype(np.int64)
    b = np.rint(np.asarray(coords_b, dtype=np.float64) / spacing).astype(np.int64)
    if a.shape != b.shape:
        return None
    order_a, order_b = np.lexsort(a.T[::-1]), np.lexsort(b.T[::-1])
    if not np.array_equal(a[order_a], b[order_b]):
        return None
    perm = np.empty(len(a), dtype=np.int64)
    perm[order_a] = order_b
    return perm


def best_of_within(repeats: int, fn, *, setup=None, budget_s: float = math.inf):
    """:func:`best_of` one run at a time, stopping early once the runs took over
    ``budget_s`` in all; returns (best time, last result, runs)."""
    best, result, runs, spent = math.inf, None, 0, 0.0
    while runs < repeats and (runs == 0 or spent < budget_s):
        result = None  # free the previous run before timing the next
        t, result = best_of(1, fn, setup=setup)
        best, runs, spent = min(best, t), runs + 1, spent + t
    return best, result, runs


def fastest_run(repeats: int, fn, *, budget_s: float = math.inf):
    """``fn()`` up to ``repeats`` times (garbage collector paused), stopping early once the
    runs took over ``budget_s`` in all; returns (best time, result of the fastest run,
    last result, runs)."""
    best, best_result, result, runs, spent = math.inf, None, None, 0, 0.0
    while runs < repeats and (runs == 0 or spent < budget_s):
        with gc_paused():
            t0 = time.perf_counter()
            result = fn()
            t = time.perf_counter() - t0
        runs, spent = runs + 1, spent + t
        if t < best:
            best, best_result = t, result
    return best, best_result, result, runs


def guarded(need: int, max_bytes: int, fn) -> dict:
    """``fn()``'s entry, or a skip where the estimated peak memory ``need`` (bytes) exceeds
    ``max_bytes`` or 80 % of the machine's memory, or ``fn`` runs out of memory; the load
    average before and after (other processes skew timings), the wall time and the peak
    memory so far are added."""
    total = total_memory_bytes()
    limit = max_bytes if total is None else min(max_bytes, int(0.8 * total))
    if need > limit:
        return {"skipped": f"estimated peak memory {need / 2**30:.1f} GB exceeds "
                           f"{limit / 2**30:.1f} GB"}
    gc.collect()
    load_before = load_average()
    t0 = time.perf_counter()
    try:
        entry = fn()
    except MemoryError as exc:
        entry = {"skipped": f"MemoryError: {exc}"}
    gc.collect()
    entry["load_average_before_after"] = [load_before, load_average()]
    entry["benchmark_wall_s"] = time.perf_counter() - t0
    entry["peak_rss_gb_so_far"] = peak_rss_gb()
    return entry


def torchfem_heat_model(mesh, nu0: torch.Tensor, fixed_nodes: torch.Tensor):
    """torch-fem's heat model of a dfem mesh (``PlanarHeat`` in 2D, ``SolidHeat`` in 3D):
    per-cell conductivity ``kappa``, a new leaf equal to ``nu0``, the load of f = 1 and
    ``fixed_nodes`` held at 0; returns (model, kappa)."""
    from torchfem import PlanarHeat, SolidHeat
    from torchfem.materials import IsotropicConductivity2D, IsotropicConductivity3D

    model_cls, material_cls = ((SolidHeat, IsotropicConductivity3D) if mesh.nodes.shape[1] == 3
                               else (PlanarHeat, IsotropicConductivity2D))
    kappa = nu0.clone().requires_grad_(True)
    model = model_cls(mesh.nodes.detach(), mesh.cells, material_cls(kappa=kappa))
    model.heat_flux = model.integrate_body_load(1.0)
    constraints = torch.zeros(model.n_nod, 1, dtype=torch.bool)
    constraints[fixed_nodes] = True
    model.constraints = constraints
    return model, kappa


def torchfem_heat_solve(model, kappa):
    """Solve the model, then ``J = sum(u**2)`` backward; returns (u, dJ/dkappa)."""
    u, *_ = model.solve(differentiable_parameters=kappa)
    (u * u).sum().backward()
    return u.detach().ravel(), kappa.grad.detach()


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_gb() -> float | None:
    """Current resident memory of this process in GB (Linux; None elsewhere)."""
    kb = _status_kb("VmRSS")
    return None if kb is None else round(kb / 2**20, 3)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux ``clear_refs``), so that
    :func:`peak_rss_since_reset_gb` measures one phase; False where not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_since_reset_gb() -> float | None:
    """Peak resident memory since :func:`reset_peak_rss` (VmHWM) in GB, None off Linux."""
    kb = _status_kb("VmHWM")
    return None if kb is None else round(kb / 2**20, 3)


def permuted_matrix_rel_max_diff(A, B, perm: np.ndarray) -> float:
    """``max |A - P B P^T| / max |B|`` with ``(P B P^T)[k, l] = B[perm[k], perm[l]]`` (two
    scipy sparse matrices; dof ``k`` of A is dof ``perm[k]`` of B)."""
    B = B.tocsr()
    scale = max(abs(B).max(), 1e-300)
    mapped = B[perm][:, perm].tocsr()
    mapped.sort_indices()
    A = A.tocsr()
    A.sort_indices()
    if np.array_equal(mapped.indptr, A.indptr) and np.array_equal(mapped.indices, A.indices):
        return float(np.abs(mapped.data - A.data).max(initial=0.0) / scale)
    return float(abs(A - mapped).max() / scale)


def git_state(root) -> dict:
    """The commit and the uncommitted dfem/ files a run measured (read-only git calls)."""
    import subprocess

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=10).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--", "dfem")
    return {"commit": git("rev-parse", "HEAD"),
            "modified_dfem_files": None if status is None else
            [line[3:] for line in status.splitlines()]}


def solve_factor(u: torch.Tensor):
    """The prepared solver dfem attached to ``u`` (read from the autograd graph), whose
    ``info`` accumulates the adjoint solve of the backward pass; None if not found."""
    stack, seen = [u.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        factor = getattr(node, "factor", None)
        if factor is not None:
            return factor
        stack.extend(nxt for nxt, _ in node.next_functions)
    return None
