"""Property-based fuzzing of the case-file loader (issue: "random and mutated case files").

Random and mutated case files, and random case tables, go through ``Case.load`` /
``Case.from_dict``, ``case.problem()``, ``case.exact()`` and (for a few) ``case.solve()``.
Each step either succeeds or raises :class:`dfem.exceptions.DfemError` (an iterative solver may
also raise :class:`dfem.exceptions.ConvergenceError`); any other exception fails the test and
hypothesis shrinks it to a minimal case.

Meshes are kept tiny: the shipped cases are shrunk to ``n = 2`` before they are mutated, the
generated ``n``/``nx``/``ny`` are at most 4, and a case whose mesh would be larger than
:data:`MAX_CELLS_PER_SIDE` cells per side (a mutation can turn ``n = 2`` into ``n = 2222``)
is loaded but not built. ``mesh.file`` values never name an existing mesh file.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")

import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dfem.exceptions import ConvergenceError, DfemError  # noqa: E402
from dfem.problems.case import Case, case_files  # noqa: E402
from dfem.problems.heat import Heat  # noqa: E402
from dfem.problems.nonlinear import NonlinearPoisson  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CASE_FILES = case_files(ROOT / "cases")
# The shipped cases on 2 x 2 meshes, so that a mutated case builds in milliseconds.
SMALL_CASES = [re.sub(rb"(?m)^n = \d+", b"n = 2", p.read_bytes()) for p in CASE_FILES]
MAX_CELLS_PER_SIDE = 8

FUZZ = settings(
    deadline=None,
    database=None,  # no .hypothesis/ folder in the checkout; failures print their example
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def test_shipped_cases_exist():
    assert CASE_FILES, "no shipped cases under cases/ to mutate"


# ----------------------------------------------------------------------------- helpers
def _too_big(case: Case) -> bool:
    """Whether building the case's mesh would be slow (a mutated or overridden n)."""
    mesh = case.data.get("mesh")
    if not isinstance(mesh, dict):
        return False
    for key in ("n", "nx", "ny"):
        value = mesh.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value > MAX_CELLS_PER_SIDE:  # NaN and -inf are small: the loader must reject them
                return True
    return False


def _evaluate(value, points):
    """Evaluate a coefficient as the assembly does: callables at the points."""
    if callable(value) and not torch.is_tensor(value):
        value(points)


def _build(case: Case):
    """``case.problem()`` and ``case.exact()``, with every coefficient evaluated once.

    Returns the problem, or None where dfem rejected the case with a DfemError. Any other
    exception propagates and fails the test.
    """
    try:
        exact = case.exact()
        problem = case.problem()
        points = problem.space.mesh.nodes.detach()
        if isinstance(problem, Heat):  # its pieces at t0 evaluate every coefficient
            zero = torch.zeros(problem.space.n_dofs, dtype=points.dtype)
            problem.mass(), problem.stiffness(), problem.load(0.0), problem.energy(zero)
            problem.dirichlet_values(0.0)
            _evaluate(exact, points)  # at the final time
            return problem
        if hasattr(problem.space, "scalar"):
            # an elastic case: its energy evaluates every coefficient at the quadrature points
            problem.energy(torch.zeros(problem.space.n_dofs, dtype=points.dtype))
            problem.dirichlet_data()
            _evaluate(exact, points)
            return problem
        if isinstance(problem, NonlinearPoisson):  # nu(u, x) and s(u, x)
            u = torch.zeros(len(points), dtype=points.dtype)
            for value in (problem.nonlinear_nu, problem.reaction):
                if callable(value):
                    value(u, points)
        else:
            _evaluate(problem.nu, points)
            _evaluate(problem.c, points)
        for value in (problem.f, exact):
            _evaluate(value, points)
        for value in [*problem.dirichlet.values(), *problem.neumann.values()]:
            _evaluate(value, points)
        for alpha, g in getattr(problem, "robin", {}).values():
            _evaluate(alpha, points)
            _evaluate(g, points)
    except DfemError:
        return None
    return problem


def _load_bytes(content: bytes) -> Case | None:
    """Write ``content`` to a case file in a fresh folder, load and build it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.toml"
        path.write_bytes(content)
        try:
            case = Case.load(path)
        except DfemError:
            return None
        assert isinstance(case, Case)
        if not _too_big(case):
            _build(case)
        return case


# ----------------------------------------------------------------------------- 1. raw text
@settings(FUZZ, max_examples=100)
@given(st.text(max_size=300))
def test_random_text_loads_or_raises_dfem_error(text):
    _load_bytes(text.encode("utf-8", "surrogatepass"))


@settings(FUZZ, max_examples=50)
@given(st.binary(max_size=300))
def test_random_bytes_load_or_raise_dfem_error(content):
    _load_bytes(content)


# Fragments that are likely to keep a mutated case half-valid, or to hit an edge case.
TOKENS = [
    b"\n", b" ", b"=", b'"', b"'", b"[", b"]", b"[[", b"]]", b"{", b"}", b",", b".", b"#",
    b"-", b"+", b"*", b"/", b"**", b"(", b")", b"0", b"1", b"-1", b"0.0", b"1e999", b"-1e999",
    b"inf", b"nan", b"-inf", b"true", b"false", b"99999999999999999999999", b"1979-05-27",
    b'"""', b"\\", b"\\u0000", b"\x00", b"\xff", b"\xc3", b"x", b"y", b"u", b"__import__",
    b"os.system", b"x.real", b"x[0]", b"1/0", b"0**-1", b"2**10000", b"(-1)**0.5",
    b"mesh", b"problem", b"boundary", b"exact", b"solver", b"n", b"nx", b"ny", b"cell",
    b"tri", b"quad", b"file", b"diagonal", b"element", b"P1", b"Q3", b"nu", b"c", b"f",
    b"dirichlet", b"neumann", b"robin", b"method", b"cg", b"amg", b"rtol", b"maxiter",
    b"left", b"right", b"top", b"bottom",
]
fragments = st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=4))


@st.composite
def mutated_case_files(draw) -> bytes:
    """A shipped case (on a 2 x 2 mesh) after a few insertions, deletions, replacements,
    line duplications/deletions and possibly a truncation."""
    data = bytearray(draw(st.sampled_from(SMALL_CASES)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "line", "dup", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = draw(fragments)
        elif op == "delete":
            data[at : at + draw(st.integers(1, 8))] = b""
        elif op == "replace":
            span = draw(st.integers(1, 8))
            data[at : at + span] = draw(fragments)
        elif op in ("line", "dup"):
            lines = bytes(data).split(b"\n")
            k = draw(st.integers(0, len(lines) - 1))
            if op == "line":
                del lines[k]
            else:
                lines.insert(k, lines[k])
            data = bytearray(b"\n".join(lines))
        else:
            del data[at:]
    return bytes(data)


@settings(FUZZ, max_examples=200)
@given(mutated_case_files())
def test_mutated_case_files_load_or_raise_dfem_error(content):
    _load_bytes(content)


# ----------------------------------------------------------------------------- 2. tables
VALID_FUNCTIONS = ["sin", "cos", "exp", "log", "sqrt", "abs", "tanh", "atan", "asin"]
OTHER_FUNCTIONS = ["max", "__import__", "eval", "open", "os.system", "getattr", "x.conjugate"]

numbers_as_text = st.one_of(
    st.integers(-3, 10).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(["0", "0.0", "1e308", "1e-308", "1e400", "10**400", "2.0**1024", "1j"]),
    st.integers(min_value=10**18, max_value=10**400).map(str),
)
expression_leaves = st.one_of(
    st.sampled_from(["x", "y", "pi", "e"]),
    numbers_as_text,
    st.sampled_from(["u", "z", "os", "__import__", "True", "None", "inf", "nan", "'a'"]),
)


def _extend(children):
    valid_op = st.sampled_from(["+", "-", "*", "/", "**"])
    other_op = st.sampled_from(["%", "//", "<", " and ", "@", "|", "==", " if x else "])
    function = st.one_of(st.sampled_from(VALID_FUNCTIONS), st.sampled_from(OTHER_FUNCTIONS))
    return st.one_of(
        st.tuples(children, valid_op, children).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(children, valid_op, children).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(children, other_op, children).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(st.sampled_from(["-", "+", "~", "not "]), children).map("".join),
        st.tuples(function, children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(function, children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(function, children).map(lambda t: f"{t[0]}(x={t[1]})"),
        children.map(lambda c: f"({c}).real"),
        children.map(lambda c: f"({c})[0]"),
        children.map(lambda c: f"lambda: {c}"),
    )


expressions = st.recursive(expression_leaves, _extend, max_leaves=10)
# Expressions nested deeper than Python's parser or a recursive evaluator handles.
deep_expressions = st.integers(1, 3000).flatmap(
    lambda k: st.sampled_from(
        [
            "+".join(["x"] * k),
            "-" * k + "x",
            "x" + "**x" * k,
            "(" * k + "x" + ")" * k,
            "sin(" * k + "x" + ")" * k,
        ]
    )
)
huge_ints = st.integers(min_value=2**63, max_value=10**400) | st.integers(
    min_value=-(10**400), max_value=-(2**63)
)
scalars = st.one_of(
    st.integers(-5, 5),
    st.floats(),  # NaN and infinities included
    huge_ints,
    st.booleans(),
    st.text(max_size=8),
    expressions,
    st.datetimes(),
)
anything = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def _small(value) -> bool:
    """Not a number large enough to make a big mesh (or a long CG loop)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return not value > 4
    return True


def mostly(valid, other=anything):
    """``valid`` three times out of four, else anything at all."""
    return st.one_of(valid, valid, valid, other)


# Constant subexpressions are computed in Python floats: 1/0, (-1)**0.5, 10.0**400, ...
constant_expressions = st.tuples(
    numbers_as_text, st.sampled_from(["+", "-", "*", "/", "**"]), numbers_as_text
).map(lambda t: f"x*0 + ({t[0]}){t[1]}({t[2]})")
field_tables = st.fixed_dictionaries(
    {"field": mostly(st.sampled_from(["lognormal", "karhunen-loeve"]))},
    optional={
        "w": mostly(st.lists(st.floats(-4, 4), min_size=4, max_size=4),
                    st.lists(st.floats(), max_size=5)),
        "seed": mostly(st.integers(0, 10), huge_ints | st.integers(-3, -1) | anything),
        "modes": mostly(st.integers(1, 6), st.integers(-2, 0) | anything.filter(_small)),
        "length": mostly(st.floats(0.05, 2.0), st.floats() | anything),
        "sigma": mostly(st.floats(0.1, 2.0), st.floats() | anything),
        "mean": st.floats(),
        "roots": mostly(st.just([1.72, 4.05]), st.lists(st.floats(), max_size=3) | anything),
        "bound": mostly(st.floats(0.5, 3.0), st.floats() | anything),
    },
)
coefficients = st.one_of(
    field_tables,
    expressions,
    expressions,
    constant_expressions,
    st.floats(-10, 10),
    st.integers(-3, 3),
    deep_expressions,
    anything,
)
counts = st.one_of(
    st.integers(-1, 4),
    st.sampled_from([2.0, 2.5, 0.0, -1.0, float("nan"), float("-inf"), "2", "two", True]),
    anything.filter(_small),
)
intervals = st.one_of(
    st.lists(st.one_of(st.floats(-5, 5), st.floats(), huge_ints, st.integers(-2, 2)),
             max_size=3),
    st.sampled_from([[0.0, 1.0], [-1.0, 2.0], [1.0, 0.0], [0, 0], (0.0, 1.0)]),
    anything,
)
mesh_files = st.one_of(
    st.sampled_from(
        ["missing.msh", "nope.vtu", "x.xdmf", "a.txt", "", ".", "..", "/nonexistent/x.msh", "/"]
    ),
    st.text(max_size=10).map(lambda s: f"missing-{s}.msh"),
    anything,
)
tags = st.one_of(
    st.sampled_from(["boundary", "left", "right", "bottom", "top"]),
    st.sampled_from(["nope", "", "Left", "0"]),
    st.text(max_size=5),
)
conditions = st.one_of(
    st.fixed_dictionaries({"dirichlet": coefficients}),
    st.fixed_dictionaries({"neumann": coefficients}),
    st.fixed_dictionaries({"robin": st.lists(coefficients, min_size=2, max_size=2)}),
    st.fixed_dictionaries({"robin": anything}),
    st.dictionaries(st.sampled_from(["dirichlet", "neumann", "robin", "periodic"]), coefficients,
                    max_size=3),
    anything,
)
solver_tables = st.fixed_dictionaries(
    {},
    optional={
        "method": mostly(st.sampled_from(["direct", "cg", "amg", "energy"]),
                         st.sampled_from(["bogus", "", "CG"]) | anything),
        "optimizer": mostly(st.sampled_from(["lbfgs", "adam", "torch-lbfgs"]), anything),
        "lr": mostly(st.floats(1e-3, 1.0), st.floats() | anything),
        "rtol": mostly(st.floats(1e-12, 1e-2), st.floats(-1, 1) | anything),
        # Big maxiter values only make a non-converging CG loop for long: kept small.
        "maxiter": mostly(st.integers(1, 200), st.integers(-2, 0) | anything.filter(_small)),
    },
)


nurbs_tables = st.fixed_dictionaries(
    {},
    optional={
        "geometry": mostly(st.sampled_from(["square", "quarter-annulus"]), anything),
        "degree": mostly(st.integers(1, 4), counts),
        "radii": intervals,
        "control_points": mostly(st.just([[[0, 0], [0, 1]], [[1, 0], [1, 1]]]), anything),
        "weights": mostly(st.just([[1, 1], [1, 2]]), anything),
        "knots_u": mostly(st.just([0, 0, 1, 1]), intervals),
        "knots_v": mostly(st.just([0, 0, 1, 1]), intervals),
        "degree_u": mostly(st.just(1), counts),
        "degree_v": mostly(st.just(1), counts),
    },
)


def case_tables(extra_keys: bool = True):
    """Random case tables: random subsets of the schema's keys with random values."""
    unknown = {"colour": anything} if extra_keys else {}
    mesh = st.fixed_dictionaries(
        {},
        optional={
            "n": counts, "nx": counts, "ny": counts,
            "cell": mostly(st.sampled_from(["quad", "tri"])),
            "x": intervals, "y": intervals,
            "diagonal": mostly(st.sampled_from(["right", "left", "alternate"])),
            "file": mesh_files,
            **unknown,
        },
    )
    problem = st.fixed_dictionaries(
        {}, optional={"nu": coefficients, "c": coefficients, "f": coefficients, **unknown}
    )
    return st.fixed_dictionaries(
        {"mesh": mostly(mesh)},
        optional={
            "name": anything,
            "description": anything,
            "element": mostly(st.sampled_from(["P1", "P2", "P3", "Q1", "Q2", "Q3", "nurbs"])),
            "nurbs": st.one_of(nurbs_tables, anything),
            "problem": mostly(problem),
            "boundary": mostly(st.dictionaries(tags, conditions, max_size=3)),
            "exact": mostly(st.fixed_dictionaries({}, optional={"u": coefficients})),
            "solver": mostly(solver_tables),
            **unknown,
        },
    )


override_keys = st.one_of(
    st.sampled_from(["mesh.n", "mesh.cell", "element", "problem.f", "boundary.left.dirichlet",
                     "name.x", "mesh.n.k", "solver", "", ".", "exact.u"]),
    st.text(max_size=8),
)
override_values = st.one_of(
    st.sampled_from(["1", "2", "-1", "0.5", '"x*y"', '"tri"', "[1, 2]", "{a = 1}", "", "'",
                     '"1/0"', "inf", "nan", "true", "99999999999999999999999"]),
    st.text(max_size=8),
)
overrides = st.lists(
    st.one_of(st.tuples(override_keys, override_values).map("=".join), st.text(max_size=8)),
    max_size=2,
)


@settings(FUZZ, max_examples=250)
@given(case_tables(), overrides)
def test_random_case_tables_build_or_raise_dfem_error(data, sets):
    try:
        case = Case.from_dict(data, overrides=sets)
    except DfemError:
        return
    if not _too_big(case):
        _build(case)


@settings(FUZZ, max_examples=100)
@given(case_tables(extra_keys=False))
def test_random_case_tables_without_unknown_keys(data):
    """The same without unknown keys, so that more tables get past the key check."""
    try:
        case = Case.from_dict(data)
    except DfemError:
        return
    _build(case)


# ----------------------------------------------------------------------------- 3. solving
def _solvable_tables():
    """Mostly valid small cases (so that most reach the solver), with random slips."""
    small = st.integers(1, 3)
    cell = st.sampled_from(["quad", "tri"])
    valid_coefficients = st.one_of(
        st.floats(0.5, 2.0), st.sampled_from(["1 + x**2*y", "sin(pi*x)", "exp(y)", "x*y"])
    )
    condition = st.one_of(
        st.fixed_dictionaries({"dirichlet": mostly(valid_coefficients, coefficients)}),
        st.fixed_dictionaries({"neumann": mostly(valid_coefficients, coefficients)}),
        st.fixed_dictionaries(
            {"robin": st.lists(mostly(valid_coefficients, coefficients), min_size=2, max_size=2)}
        ),
    )
    return st.fixed_dictionaries(
        {
            "mesh": st.fixed_dictionaries(
                {"n": mostly(small, counts), "cell": cell},
                optional={"x": mostly(st.just([0.0, 1.0]), intervals)},
            ),
            "boundary": st.dictionaries(
                mostly(st.sampled_from(["boundary", "left", "right", "bottom", "top"]), tags),
                condition,
                min_size=1,
                max_size=3,
            ),
            "solver": solver_tables,
        },
        optional={
            "problem": st.fixed_dictionaries(
                {},
                optional={
                    "nu": mostly(valid_coefficients, coefficients),
                    "c": mostly(valid_coefficients, coefficients),
                    "f": mostly(valid_coefficients, coefficients),
                },
            ),
            "exact": st.fixed_dictionaries({"u": mostly(valid_coefficients, coefficients)}),
        },
    ).flatmap(
        # an element that matches the cell, most of the time
        lambda d: st.fixed_dictionaries(
            {
                **{k: st.just(v) for k, v in d.items()},
                "element": mostly(
                    st.sampled_from(["Q1", "Q2"] if d["mesh"]["cell"] == "quad" else ["P1", "P2"]),
                    st.sampled_from(["P1", "Q3", "P4", ""]),
                ),
            }
        )
    )


@settings(FUZZ, max_examples=60)
@given(_solvable_tables())
def test_solving_random_cases_succeeds_or_raises_dfem_error(data):
    try:
        case = Case.from_dict(data)
    except DfemError:
        return
    if _build(case) is None:
        return
    try:
        report = case.solve()
    except DfemError:
        return
    except ConvergenceError:
        assert case.solver_options()["method"] in ("cg", "amg", "energy")
        return
    assert report["dofs"] > 0


@settings(FUZZ, max_examples=150)
@given(st.one_of(field_tables, st.dictionaries(st.text(max_size=6), anything, max_size=4)))
def test_random_field_tables_evaluate_or_raise_dfem_error(table):
    """Field tables alone (more of them than the case tables reach): a callable of the
    points (whose non-finite values the assembly reports), or a DfemError."""
    from dfem.problems.expressions import coefficient

    try:
        nu = coefficient(table, "problem.nu")
    except DfemError:
        return
    values = nu(torch.rand(5, 2, dtype=torch.float64))
    assert values.shape == (5,) and values.dtype == torch.float64


@settings(FUZZ, max_examples=120)
@given(nurbs_tables, st.one_of(st.integers(1, 4), counts), overrides)
def test_random_nurbs_cases_build_or_raise_dfem_error(nurbs, n, sets):
    """``element = "nurbs"`` with random [nurbs] tables (the case tables reach these rarely)."""
    data = {"element": "nurbs", "nurbs": nurbs, "mesh": {"n": n},
            "problem": {"f": 1.0}, "boundary": {"left": {"dirichlet": 0.0}}}
    try:
        case = Case.from_dict(data, overrides=sets)
    except DfemError:
        return
    if not _too_big(case):
        problem = _build(case)
        if problem is not None:
            try:
                assert torch.isfinite(problem.solve()).all()
            except DfemError:
                pass
