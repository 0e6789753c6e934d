"""The import structure of dfem: every module imports on its own, module-level imports form
no cycle, and the core never imports an application.

The static checks read the sources with :mod:`ast`; an import counts as *module-level*
when it runs on import (at the top, or under an ``if``/``try`` there), and as *lazy*
inside a function. Imports under ``if TYPE_CHECKING:`` never run and do not count.
Importing ``a.b.c`` from outside package ``a.b`` runs ``a/b/__init__.py`` first, so it
is an edge to ``a.b`` as well as to ``a.b.c``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dfem"

#: What sits on top of the core (docs/fem.md's data path ends in them): the applications,
#: the layers built beside the FEM core, and the command-line front ends.
APPLICATIONS = ("dfem.surrogates", "dfem.segmentation", "dfem.inverse", "dfem.design",
                "dfem.spline", "dfem.iel")
#: The FEM core, from the mesh to post-processing; ``dfem`` itself (the package root)
#: counts too, since importing any dfem module runs it first.
CORE = ("dfem.mesh", "dfem.basis", "dfem.quadrature", "dfem.assembly", "dfem.solvers",
        "dfem.distributed", "dfem.problems", "dfem.validation")


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their ``__init__``); files
    in folders that are not packages (the scripts among the shipped data) do not count."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        folders = path.parent.relative_to(PACKAGE).parents
        if any(not (PACKAGE / f / "__init__.py").is_file()
               for f in [path.parent.relative_to(PACKAGE), *folders]):
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def is_front_end(name: str) -> bool:
    """A command-line module (``dfem.cli``, ``dfem.cli_tools``, ``dfem.<x>.cli``)."""
    last = name.rsplit(".", 1)[-1]
    return last == "cli" or last.startswith("cli_")


def is_application(name: str) -> bool:
    return name.startswith(tuple(p + "." for p in APPLICATIONS)) or name in APPLICATIONS \
        or is_front_end(name)


def is_core(name: str) -> bool:
    in_core = name == "dfem" or name in CORE or name.startswith(tuple(p + "." for p in CORE))
    return in_core and not is_front_end(name)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(name: str) -> str | None:
    """The longest prefix of ``name`` that is a dfem module (``from m import f``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> tuple[set[str], set[str]]:
    """``(module_level, lazy)``: the dfem modules that ``module`` imports."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    module_level: set[str] = set()
    lazy: set[str] = set()

    def targets(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:  # relative: from . import x, from ..a import b
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names]

    def visit(nodes, in_function: bool) -> None:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in targets(node):
                    resolved = _resolve(target) if target.startswith("dfem") else None
                    if resolved and resolved != module:
                        (lazy if in_function else module_level).add(resolved)
                continue
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.orelse, in_function)
                continue
            nested = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.Lambda))
            for child in ast.iter_child_nodes(node):
                visit([child], nested)

    visit(ast.parse(path.read_text(encoding="utf-8")).body, False)
    return module_level, lazy


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:k]) for k in range(1, len(parts))}


def import_graph() -> dict[str, set[str]]:
    """Module-level edges, with the package ``__init__`` each import runs on the way
    (not the importer's own packages: they are initialised before it runs)."""
    graph = {}
    for module in MODULES:
        edges = set()
        for target in imports(module)[0]:
            parts = target.split(".")
            for k in range(1, len(parts) + 1):
                prefix = ".".join(parts[:k])
                if prefix in MODULES and prefix != module and prefix not in _ancestors(module):
                    edges.add(prefix)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle ``[a, b, ..., a]`` of the directed graph, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


# ----------------------------------------------------------------------------- the checks
ISOLATED_IMPORTS = r"""
import importlib, sys, traceback
import numpy, scipy.sparse, torch  # third-party modules stay loaded: seconds, not minutes
failures = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "dfem" or m.startswith("dfem.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failures.append(f"{name}: " + "".join(traceback.format_exception_only(exc)).strip())
print("\n".join(failures))
sys.exit(1 if failures else 0)
"""


def test_every_module_imports_on_its_own():
    """Each module, imported first in a fresh dfem state (no dfem module loaded), loads."""
    done = subprocess.run([sys.executable, "-c", ISOLATED_IMPORTS, *MODULES], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, "modules that fail to import on their own:\n" + \
        (done.stdout + done.stderr)[-4000:]


def test_no_package_attribute_hides_a_submodule():
    """``import dfem.x.y`` must give the module: a function ``y`` exported by the package
    ``dfem.x`` under a submodule's name would hide it (``dfem.errors`` once did)."""
    import importlib
    import types

    hidden = []
    packages = [name for name, path in MODULES.items() if path.name == "__init__.py"]
    for package in packages:
        namespace = importlib.import_module(package)
        for name in MODULES:
            parent, _, last = name.rpartition(".")
            if parent == package:
                attribute = getattr(namespace, last, None)
                if attribute is not None and not isinstance(attribute, types.ModuleType):
                    hidden.append(f"{name} (hidden by {type(attribute).__name__})")
    assert not hidden, "package attributes named like a submodule: " + ", ".join(hidden)


def test_module_level_imports_have_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)


def test_the_core_never_imports_an_application():
    offending = []
    for module in MODULES:
        if not is_core(module):
            continue
        module_level, lazy = imports(module)
        for target in sorted(module_level | lazy):
            if is_application(target):
                how = "module level" if target in module_level else "in a function"
                offending.append(f"{module} -> {target} ({how})")
    assert not offending, "the core imports applications:\n" + "\n".join(offending)


def test_importing_dfem_loads_no_application():
    code = ("import sys, dfem, dfem.assembly, dfem.basis, dfem.mesh, dfem.problems, "
            "dfem.solvers, dfem.validation\nprint('\\n'.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=True)
    loaded = [m for m in done.stdout.split() if m.startswith("dfem") and is_application(m)]
    assert not loaded, f"import dfem loads applications: {loaded}"


def test_no_private_name_is_imported_from_another_package():
    """``from dfem.a.b import _x`` only within package ``dfem.a`` (a private helper that
    another package needs is made public and documented)."""
    offending = []
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("dfem"):
                continue
            source = _resolve(node.module)
            source_package = source if MODULES[source].name == "__init__.py" else \
                source.rpartition(".")[0]
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and source_package != package:
                    offending.append(f"{module}: from {node.module} import {alias.name}")
    assert not offending, "private names imported across packages:\n" + "\n".join(offending)


# ----------------------------------------------------------------------------- the checkers
def test_find_cycle_reports_the_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("source, module_level, lazy", [
    ("import dfem.mesh\nfrom dfem.assembly import forms\n",
     {"dfem.mesh", "dfem.assembly.forms"}, set()),
    ("def f():\n    from dfem.inverse import identify\n", set(), {"dfem.inverse"}),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dfem.basis import space\n",
     set(), set()),
    ("try:\n    from dfem.solvers.amg import AMGFactor\nexcept ImportError:\n    pass\n",
     {"dfem.solvers.amg"}, set()),
])
def test_imports_sees_module_level_and_lazy_imports(tmp_path, monkeypatch, source,
                                                     module_level, lazy):
    path = tmp_path / "probe.py"
    path.write_text(source)
    monkeypatch.setitem(MODULES, "dfem.probe", path)
    assert imports("dfem.probe") == (module_level, lazy)


def test_package_imports_count_their_init():
    """``from dfem.basis.space import X`` in dfem.assembly runs dfem/basis/__init__.py."""
    graph = import_graph()
    assert "dfem.basis" in graph["dfem.assembly.forms"]
    assert "dfem.assembly" not in graph["dfem.assembly.forms"]  # its own package
