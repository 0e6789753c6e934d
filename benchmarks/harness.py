"""What every benchmark script shares: the machine it ran on, a timer and the JSON writer."""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import math
import os
import platform
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
