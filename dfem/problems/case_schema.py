"""The schema of case files: the keys each section takes and the type of each value.

Which keys ``[problem]``, ``[boundary.TAG]``, ``[exact]`` and ``[solver]`` take depends on
``problem.type``: ``"poisson"`` (the default), ``"linear-elasticity"`` or ``"neo-hookean"``.
:func:`check_case` rejects, with a :class:`DfemError` naming the key and what it must be,
unknown keys, keys of another problem type and values of the wrong type. A ``[time]``
table makes a case transient (a heat problem, :mod:`dfem.problems.transient_case`): its
keys, those of ``[initial]`` and ``problem.rho_c`` are checked here too, and are errors in
a steady case. The full schema is documented in ``docs/cases.md``.
"""

from __future__ import annotations

import math

from dfem.exceptions import DfemError
from dfem.problems.domain import NURBS_KEYS

PROBLEM_TYPES = ("poisson", "linear-elasticity", "neo-hookean")
ELASTIC_TYPES = ("linear-elasticity", "neo-hookean")
#: Component keys of a displacement, ``ux``, ``uy`` (and ``uz`` in 3D).
COMPONENTS = ("ux", "uy", "uz")

_PROBLEM_KEYS = {
    "poisson": {"type", "nu", "c", "f", "nonlinear", "reaction", "rho_c"},
    "linear-elasticity": {"type", "E", "poisson_ratio", "plane", "body_force"},
    "neo-hookean": {"type", "E", "poisson_ratio", "plane", "body_force"},
}
POISSON_CONDITIONS = ("dirichlet", "neumann", "robin")
ELASTIC_CONDITIONS = ("displacement", *COMPONENTS, "traction", "stress")

#: Keys of the [time] table of a transient case.
TIME_KEYS = {"t_end", "dt", "scheme", "theta", "save_every"}
#: Time-stepping schemes by name (``time.theta`` gives any theta scheme instead).
SCHEME_NAMES = ("implicit-euler", "crank-nicolson", "bdf2")
#: The most time steps a case may take (t_end / dt).
MAX_STEPS = 1_000_000

_KNOWN = {
    "": {"name", "description", "mesh", "element", "nurbs", "problem", "boundary", "exact",
         "solver", "output", "time", "initial"},
    "mesh": {"n", "nx", "ny", "nz", "cell", "x", "y", "z", "file", "diagonal", "corners",
             "perturb"},
    "nurbs": NURBS_KEYS,
    "exact": {"u", "l2_error_max"},
    "solver": {"method", "rtol", "maxiter", "optimizer", "lr", "load_steps", "max_iter",
               "ksp_type", "pc_type", "petsc_options"},
    "output": {"probes"},
    "time": TIME_KEYS,
    "initial": {"u"},
}


def problem_type(data: dict) -> str:
    """``problem.type`` of a case table, checked (``"poisson"`` when absent)."""
    spec = data.get("problem", {})
    kind = spec.get("type", "poisson") if isinstance(spec, dict) else "poisson"
    if kind not in PROBLEM_TYPES:
        raise DfemError(
            f"problem.type must be one of {', '.join(repr(t) for t in PROBLEM_TYPES)}, "
            f"got {kind!r}."
        )
    return kind


def is_elastic(data: dict) -> bool:
    return problem_type(data) in ELASTIC_TYPES


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e300


def _positive_int(v) -> bool:
    return _is_int(v) and 0 < v < 2**31


def _pair(v) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(map(_is_number, v))


def _points(v) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(
        isinstance(p, list) and len(p) in (2, 3) and all(map(_is_number, p)) for p in v
    )


def _corners(v) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(map(_pair, v))


def _number_or_text(v) -> bool:
    return (_is_number(v) and math.isfinite(v)) or isinstance(v, str)


def _positive_number(v) -> bool:
    return _is_number(v) and math.isfinite(v) and v > 0


def _young(v) -> bool:
    return isinstance(v, (str, dict)) or (_is_number(v) and v > 0)


def _poisson_ratio(v) -> bool:
    return isinstance(v, (str, dict)) or (_is_number(v) and -1 < v < 0.5)


#: The type each scalar key must have: (check, what to say when it fails).
_TYPES = {
    ("", "name"): (lambda v: isinstance(v, str), "a string"),
    ("", "description"): (lambda v: isinstance(v, str), "a string"),
    ("", "element"): (lambda v: isinstance(v, str), 'a string such as "Q2" or "P1"'),
    ("mesh", "n"): (_positive_int, "a positive integer"),
    ("mesh", "nx"): (_positive_int, "a positive integer"),
    ("mesh", "ny"): (_positive_int, "a positive integer"),
    ("mesh", "nz"): (_positive_int, "a positive integer"),
    ("mesh", "perturb"): (lambda v: _is_number(v) and 0 <= v < 0.25,
                          "a number in [0, 0.25) (the largest node move, in shortest edges)"),
    ("mesh", "cell"): (lambda v: v in ("quad", "tri", "hex", "tet"),
                       '"quad" or "tri" (2D), "hex" or "tet" (3D)'),
    ("mesh", "diagonal"): (
        lambda v: v in ("right", "left", "alternate"),
        '"right", "left" or "alternate"',
    ),
    ("mesh", "file"): (lambda v: isinstance(v, str), "a path (string)"),
    ("mesh", "x"): (_pair, "a pair of numbers [lo, hi]"),
    ("mesh", "y"): (_pair, "a pair of numbers [lo, hi]"),
    ("mesh", "z"): (_pair, "a pair of numbers [lo, hi]"),
    ("mesh", "corners"): (
        _corners,
        "four [x, y] pairs, counter-clockwise from the corner where left and bottom meet",
    ),
    ("nurbs", "geometry"): (lambda v: isinstance(v, str), 'a string such as "quarter-annulus"'),
    ("nurbs", "degree"): (lambda v: _is_int(v) and 1 <= v <= 10, "an integer from 1 to 10"),
    ("nurbs", "degree_u"): (lambda v: _is_int(v) and 1 <= v <= 10, "an integer from 1 to 10"),
    ("nurbs", "degree_v"): (lambda v: _is_int(v) and 1 <= v <= 10, "an integer from 1 to 10"),
    ("nurbs", "radii"): (_pair, "a pair of numbers [r_inner, r_outer]"),
    ("problem", "plane"): (lambda v: v in ("strain", "stress"), '"strain" or "stress"'),
    ("problem", "E"): (_young, "a positive number (Young's modulus) or an expression"),
    ("problem", "poisson_ratio"): (
        _poisson_ratio,
        "a number in (-1, 0.5) or an expression (0.5 is incompressible, which a displacement "
        "formulation cannot represent)",
    ),
    ("problem", "rho_c"): (
        _young, "a positive number (the heat capacity per volume), an expression or a field table"),
    ("exact", "l2_error_max"): (lambda v: _is_number(v) and v > 0, "a positive number"),
    ("solver", "method"): (
        lambda v: v in ("direct", "cg", "amg", "petsc", "energy"),
        '"direct", "cg", "amg", "petsc" or "energy"',
    ),
    ("solver", "ksp_type"): (lambda v: isinstance(v, str) and v.isidentifier(),
                             'a PETSc KSP type such as "cg" or "gmres"'),
    ("solver", "pc_type"): (lambda v: isinstance(v, str) and v.isidentifier(),
                            'a PETSc PC type such as "gamg" or "cholesky"'),
    ("solver", "petsc_options"): (
        lambda v: isinstance(v, dict) and all(
            isinstance(k, str) and isinstance(x, (str, int, float, bool)) for k, x in v.items()),
        'a table of PETSc options without the leading dash, e.g. { pc_gamg_threshold = 0.02 }'),
    ("solver", "optimizer"): (
        lambda v: v in ("lbfgs", "torch-lbfgs", "adam"),
        '"lbfgs", "torch-lbfgs" or "adam"',
    ),
    ("solver", "lr"): (lambda v: _is_number(v) and v > 0, "a positive number"),
    ("solver", "rtol"): (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("solver", "maxiter"): (_positive_int, "a positive integer"),
    ("solver", "load_steps"): (lambda v: _is_int(v) and 0 < v <= 10_000,
                               "a positive integer (at most 10000)"),
    ("solver", "max_iter"): (lambda v: _is_int(v) and 0 < v <= 10_000,
                             "a positive integer (at most 10000)"),
    ("output", "probes"): (
        _points,
        "a non-empty list of points [[x, y], ...] (a single point as [[x, y]])",
    ),
    ("time", "t_end"): (_positive_number, "a positive number (the final time; runs start at 0)"),
    ("time", "dt"): (_positive_number, "a positive number (the time step)"),
    ("time", "scheme"): (
        lambda v: v in SCHEME_NAMES,
        f"one of {', '.join(map(repr, SCHEME_NAMES))} (or give time.theta in [0, 1] instead)",
    ),
    ("time", "theta"): (lambda v: _is_number(v) and 0 <= v <= 1,
                        "a number in [0, 1] (1 implicit Euler, 0.5 Crank-Nicolson)"),
    ("time", "save_every"): (_positive_int, "a positive integer (keep every k-th state)"),
    ("initial", "u"): (
        lambda v: _number_or_text(v) or isinstance(v, dict),
        "a number, an expression in x, y (z) or a field table: the state at t = 0",
    ),
}


def check_case(data: dict) -> None:
    """Raise :class:`DfemError` on the first unknown key or value of the wrong type."""
    if "optimizer" in data:
        raise DfemError("this is an optimisation config: run dfem optimize CONFIG --out DIR "
                        "(it has an [optimizer] table; dfem solve takes case files).")
    for section in ("", "mesh", "nurbs", "problem", "exact", "solver", "output", "time",
                    "initial"):
        table = data if section == "" else data.get(section, {})
        if not isinstance(table, dict):
            raise DfemError(f"[{section}] must be a table in the case file.")
    kind = problem_type(data)
    known = {**_KNOWN, "problem": _PROBLEM_KEYS[kind]}
    for section, keys in known.items():
        table = data if section == "" else data.get(section, {})
        unknown = set(table) - keys
        if unknown:
            where = f"[{section}]" if section else "the top level"
            extra = f' for problem.type = "{kind}"' if section == "problem" else ""
            hint = _other_type_hint(section, unknown, kind)
            raise DfemError(
                f"unknown key(s) {', '.join(sorted(unknown))} in {where} of the case file; "
                f"known keys{extra}: {', '.join(sorted(keys))}.{hint}"
            )
    for (section, key), (check, what) in _TYPES.items():
        table = data if section == "" else data.get(section, {})
        if key in table and not check(table[key]):
            where = f"{section}.{key}" if section else key
            raise DfemError(f"{where} must be {what}, got {table[key]!r}.")
    mesh = data.get("mesh", {})
    if "corners" in mesh and {"x", "y", "file"} & set(mesh):
        clash = sorted({"x", "y", "file"} & set(mesh))[0]
        raise DfemError(f"mesh.corners and mesh.{clash} both give the domain; keep one.")
    three_d = sorted({"nz", "z"} & set(mesh)) or (
        ["cell"] if mesh.get("cell") in ("hex", "tet") else [])
    two_d = sorted({"diagonal", "corners"} & set(mesh)) or (
        ["cell"] if mesh.get("cell") in ("quad", "tri") else [])
    if three_d and two_d:
        raise DfemError(
            f"mesh.{two_d[0]} = {mesh[two_d[0]]!r} is a 2D option, but mesh.{three_d[0]} = "
            f"{mesh[three_d[0]]!r} makes the mesh 3D; drop one of them (3D boxes take nx, ny, "
            f'nz, x, y, z and cell = "hex" or "tet").')
    boundary = data.get("boundary", {})
    if not isinstance(boundary, dict) or not all(isinstance(v, dict) for v in boundary.values()):
        raise DfemError("[boundary] must hold tables [boundary.TAG] with one condition each.")
    for tag, conditions in boundary.items():
        _check_conditions(tag, conditions, kind)
    _check_time(data, kind)


def _check_time(data: dict, kind: str) -> None:
    """The rules of transient cases: ``[time]`` with ``t_end`` and ``dt``, one scheme, a
    heat problem; ``[initial]`` and ``problem.rho_c`` only beside ``[time]``."""
    problem = data.get("problem", {})
    if "time" not in data:
        for key, where in (("initial", "an [initial] table"), ("rho_c", "problem.rho_c")):
            if key in data or key in problem:
                raise DfemError(
                    f"{where} belongs to a transient case, and this case has no [time] table: "
                    f"add [time] t_end = ..., dt = ... or drop it."
                )
        return
    time = data["time"]
    if kind != "poisson":
        raise DfemError(
            f'a [time] table makes a case a transient heat problem, but problem.type = "{kind}"; '
            f"transient cases solve rho_c du/dt - div(nu grad u) + c u = f: drop problem.type "
            f"or the [time] table."
        )
    for key in ("nonlinear", "reaction"):
        if key in problem and problem[key] is not False:
            raise DfemError(f"problem.{key} is not supported in transient cases (linear heat "
                            f"problems only): drop it or the [time] table.")
    missing = [k for k in ("t_end", "dt") if k not in time]
    if missing:
        raise DfemError(f"[time] needs {' and '.join(f'time.{k}' for k in missing)} (the final "
                        f"time and the time step).")
    if "scheme" in time and "theta" in time:
        raise DfemError(f"[time] gives scheme = {time['scheme']!r} and theta = {time['theta']!r}; "
                        f"give one of them.")
    t_end, dt = time["t_end"], time["dt"]
    if t_end < dt * (1 - 1e-12):
        raise DfemError(f"time.t_end = {t_end!r} is less than one step time.dt = {dt!r}; choose "
                        f"dt <= t_end.")
    if t_end / dt > MAX_STEPS:
        raise DfemError(f"time.t_end / time.dt = {t_end / dt:.3g} steps; a case takes at most "
                        f"{MAX_STEPS}: choose a larger dt.")
    exact = data.get("exact", {}).get("u")
    if isinstance(exact, list):
        raise DfemError("exact.u of a transient case is one number or expression in x, y (z) "
                        "and t, not a list.")


def _other_type_hint(section: str, unknown: set, kind: str) -> str:
    """A pointer to ``problem.type`` when the unknown keys belong to another problem type."""
    if section != "problem":
        return ""
    for other, keys in _PROBLEM_KEYS.items():
        if other != kind and unknown <= keys:
            return f' These are keys of problem.type = "{other}".'
    return ""


def _check_conditions(tag: str, conditions: dict, kind: str) -> None:
    """The keys of one [boundary.TAG] table for the problem type."""
    elastic = kind in ELASTIC_TYPES
    own, other = ((ELASTIC_CONDITIONS, POISSON_CONDITIONS) if elastic
                  else (POISSON_CONDITIONS, ELASTIC_CONDITIONS))
    misplaced = sorted(set(conditions) & set(other))
    if misplaced:
        if elastic:
            raise DfemError(
                f"boundary.{tag}.{misplaced[0]} is a condition of a Poisson problem; an "
                f'elastic problem (problem.type = "{kind}") takes displacement = [ux, uy], '
                f"single components ux = ... / uy = ... (rollers) and traction = [tx, ty]."
            )
        raise DfemError(
            f"boundary.{tag}.{misplaced[0]} is a condition of an elastic problem; set "
            f'problem.type = "linear-elasticity" or "neo-hookean" for it, or give this '
            f"Poisson case one of dirichlet, neumann or robin."
        )
    if not elastic:
        return  # the one-condition rule of Poisson tables is checked where they are built
    unknown = sorted(set(conditions) - set(own))
    if unknown:
        raise DfemError(
            f"unknown key(s) {', '.join(unknown)} in [boundary.{tag}]; an elastic problem "
            f"takes {', '.join(own)}."
        )
    if not conditions:
        raise DfemError(f"[boundary.{tag}] is empty; give displacement, ux, uy or traction.")
    parts = [k for k in COMPONENTS if k in conditions]
    if "displacement" in conditions and parts:
        raise DfemError(
            f"[boundary.{tag}] gives displacement and {parts[0]}; displacement fixes every "
            f"component, so keep one of them."
        )
    loads = [k for k in ("traction", "stress") if k in conditions]
    if "displacement" in conditions and loads:
        raise DfemError(
            f"[boundary.{tag}] gives displacement and {loads[0]}; a load on a side whose "
            f"displacement is fixed does no work. Keep one (or fix single components with "
            f"ux/uy beside the load)."
        )
    if len(loads) == 2:
        raise DfemError(f"[boundary.{tag}] gives traction and stress; give one of them.")
    for key, value in conditions.items():
        label = f"boundary.{tag}.{key}"
        if key in COMPONENTS:
            if not _number_or_text(value):
                raise DfemError(f"{label} must be a number or an expression, got {value!r}.")
        elif key == "displacement" and _number_or_text(value) and not isinstance(value, str):
            continue  # one number for every component: displacement = 0 clamps
        elif key == "stress":
            if not (isinstance(value, list) and value and all(
                    isinstance(row, list) and len(row) == len(value)
                    and all(map(_number_or_text, row)) for row in value)):
                raise DfemError(
                    f"{label} must be a square list of lists [[sxx, sxy], [syx, syy]] of "
                    f"numbers or expressions (its traction sigma.n loads the side), got "
                    f"{value!r}."
                )
        elif not (isinstance(value, list) and all(map(_number_or_text, value))):
            what = "[ux, uy]" if key == "displacement" else "[tx, ty]"
            raise DfemError(
                f"{label} must be a list {what} of numbers or expressions, got {value!r}."
            )


def poisson_conditions(boundary: dict, value, alpha=None, g=None) -> tuple[dict, dict, dict]:
    """``(dirichlet, neumann, robin)`` of a case's ``[boundary]`` tables for a scalar problem.

    ``value(v, label)`` turns a Dirichlet or Neumann value into a coefficient; ``alpha`` and
    ``g`` (default: ``value``) do the same for the two entries of ``robin = [alpha, g]``.
    Steady and transient cases differ only in these (whether t is allowed where).
    """
    alpha = value if alpha is None else alpha
    g = value if g is None else g
    dirichlet, neumann, robin = {}, {}, {}
    for tag, conditions in boundary.items():
        if not isinstance(conditions, dict) or len(conditions) != 1:
            raise DfemError(
                f"[boundary.{tag}] must hold exactly one of dirichlet, neumann or robin."
            )
        ((kind, v),) = conditions.items()
        label = f"boundary.{tag}.{kind}"
        if kind == "dirichlet":
            dirichlet[tag] = value(v, label)
        elif kind == "neumann":
            neumann[tag] = value(v, label)
        elif kind == "robin":
            if not isinstance(v, list) or len(v) != 2:
                raise DfemError(f"{label} must be [alpha, g] for nu du/dn + alpha u = g.")
            robin[tag] = (alpha(v[0], label), g(v[1], label))
        else:
            raise DfemError(f"[boundary.{tag}] has {kind!r}; use dirichlet, neumann or robin.")
    return dirichlet, neumann, robin
