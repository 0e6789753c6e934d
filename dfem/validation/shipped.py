"""``dfem validate``: every shipped case with an exact solution, against its expected figures.

For each case: a convergence study (the case's mesh, coarsened to 4 cells per side for
rectangles and 16 for NURBS patches — the fewer side of ``nx``/``ny``, keeping their ratio —
refined ``levels`` times) whose fitted L2 and H1-seminorm rates must lie within
``RATE_TOLERANCE`` of p + 1 and p; and, unless ``quick``, a solve at the
case's own resolution whose L2 error must not exceed ``[exact] l2_error_max`` when the case
gives one. Transient cases (a ``[time]`` table) with ``[exact] u`` and ``l2_error_max`` are run
as shipped, in both modes, and pass when their L2 error at the final time does not exceed
``l2_error_max`` (they have no convergence study: their rates are ``None``).
"""

from __future__ import annotations

from pathlib import Path

from dfem.exceptions import DfemError
from dfem.problems.case import Case, case_files
from dfem.progress import progress

RATE_TOLERANCE = 0.15


def validate_case(path: Path, quick: bool = False) -> dict:
    """Rates (and, unless quick, the error at the case's resolution) of one case."""
    case = Case.load(path)
    if case.transient:
        return _validate_transient(path, case)
    study = Case.from_dict(case.data, path, _coarse(case)).convergence(2 if quick else 3)
    degree = int(study["degree"])
    row = {
        "case": path.name,
        "element": study["element"],
        "l2_rate": study["l2_rate"],
        "l2_rate_expected": degree + 1,
        "h1_rate": study["h1_rate"],
        "h1_rate_expected": degree,
        "l2_error": None,
        "l2_error_max": case.data["exact"].get("l2_error_max"),
    }
    ok = (abs(row["l2_rate"] - (degree + 1)) <= RATE_TOLERANCE
          and abs(row["h1_rate"] - degree) <= RATE_TOLERANCE)
    if not quick:
        row["l2_error"] = case.solve()["l2_error"]
        if row["l2_error_max"] is not None:
            ok = ok and row["l2_error"] <= row["l2_error_max"]
    row["ok"] = ok
    return row


def _validate_transient(path: Path, case: Case) -> dict:
    """The final-time L2 error of a transient case against its ``l2_error_max``."""
    limit = case.data["exact"]["l2_error_max"]
    report = case.solve()
    return {"case": path.name, "element": report["element"], "l2_rate": None,
            "l2_rate_expected": None, "h1_rate": None, "h1_rate_expected": None,
            "l2_error": report["l2_error"], "l2_error_max": limit,
            "ok": report["l2_error"] <= limit}


def _coarse(case: Case) -> list[str]:
    """Overrides that coarsen the case's mesh to where a study starts: 4 cells per side, or
    16 for NURBS patches, whose errors on coarser curved patches fall faster than h^(p+1)
    before they settle to it. ``nx``/``ny`` keep their ratio; mesh files stay as they are."""
    mesh = case.data.get("mesh", {})
    if "file" in mesh:
        return []
    n = 16 if case.data.get("element") == "nurbs" else 4
    if "nx" in mesh or "ny" in mesh:
        nx, ny = mesh.get("nx", mesh.get("n", n)), mesh.get("ny", mesh.get("n", n))
        scale = n / min(nx, ny)
        return [f"mesh.nx={max(1, round(nx * scale))}", f"mesh.ny={max(1, round(ny * scale))}"]
    return [f"mesh.n={n}"]


def validate(folder: Path, quick: bool = False) -> list[dict]:
    """:func:`validate_case` for every ``*.toml`` in ``folder`` that has ``[exact] u`` (and,
    for transient cases, ``l2_error_max``).

    Raises
    ------
    DfemError
        When ``folder`` holds no such case: a check of nothing must not pass.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DfemError(f"the case folder {str(folder)!r} does not exist: dfem validate "
                        "checks the cases shipped in dfem/data/cases; reinstall dfem.")
    paths = [p for p in case_files(folder) if _checked(Case.load(p))]
    if not paths:
        raise DfemError(f"no case with an exact solution ([exact] u) found in {folder}: "
                        "nothing to validate, so nothing passes; reinstall dfem to restore "
                        "its shipped cases.")
    return [validate_case(p, quick) for p in progress(paths, "validate", unit="case")]


def _checked(case: Case) -> bool:
    exact = case.data.get("exact", {})
    return "u" in exact and (not case.transient or "l2_error_max" in exact)


def _rate(row: dict, key: str) -> str:
    """``"  3.01 (3)"``, or ``"-"`` for a case without a convergence study."""
    if row[key] is None:
        return f"{'-':>6}    "
    return f"{row[key]:>6.2f} ({row[key + '_expected']})"


def format_table(rows: list[dict]) -> str:
    width = max([22, *(len(r["case"]) + 1 for r in rows)])  # the longest case name sets it
    lines = [f"{'case':<{width}} {'element':<8} {'L2 rate':>13} {'H1 rate':>13} "
             f"{'L2 error':>10} {'max':>8}  result"]
    for r in rows:
        err = "-" if r["l2_error"] is None else f"{r['l2_error']:.2e}"
        top = "-" if r["l2_error_max"] is None else f"{r['l2_error_max']:.0e}"
        lines.append(
            f"{r['case']:<{width}} {r['element']:<8} {_rate(r, 'l2_rate')}{'':>2} "
            f"{_rate(r, 'h1_rate')}{'':>2} {err:>10} {top:>8}  {'ok' if r['ok'] else 'FAIL'}"
        )
    return "\n".join(lines)
