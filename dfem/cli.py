"""The ``dfem`` command line.

- ``dfem solve CASE.toml [--out DIR] [--set key=value ...] [--method METHOD]`` solves a case
  file (Poisson, linear elasticity or Neo-Hookean; METHOD: direct, cg, amg or energy), prints
  a summary and writes ``DIR/report.json``, ``DIR/solution.vtu`` and ``DIR/solution.png``
  (for elastic cases the deformed mesh coloured by the von Mises stress); a transient case
  (one with a ``[time]`` table) writes a time series instead: ``DIR/solution_NNNN.vtu``,
  ``DIR/solution.pvd``, a strip of states in ``DIR/solution.png`` and ``DIR/report.json``.
- ``dfem convergence CASE.toml --levels N [--out DIR]`` refines the case's mesh N times and
  writes ``DIR/convergence.json`` and ``DIR/convergence.png``.
- ``dfem validate [--quick]`` checks every shipped case with an exact solution (rates, errors)
  and exits with status 1 if any falls short.
- ``dfem cases`` lists the shipped cases; ``dfem --version``.
- ``dfem nurbs-fit [--out DIR] [--grid N]`` fits a NURBS surface to Bukin N.6 (the DSA
  paper's Table 3) with fixed and with learnable knots.
- ``dfem surrogate train|eval`` trains and evaluates parametric surrogates.
- ``dfem inverse CONFIG.toml [--out DIR]`` recovers a diffusivity from observations.
- ``dfem segment train|eval|compare`` trains segmentation U-Nets with IEL and DSA heads.
- ``dfem optimize CONFIG.toml --out DIR [--resume]`` runs a SIMP topology optimisation.
- ``dfem paper [--quick] [--out DIR]`` measures Table 5 of the DSA paper and writes
  ``DIR/paper.md`` with every paper number beside dfem's.

Errors a user can cause are printed without a traceback, with exit status 2; an iterative
solver or a Newton solve that stops short of its tolerance is reported the same way, with
exit status 1. Either way no output file is written.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from dfem.exceptions import ConvergenceError, DfemError

CASES = Path(__file__).resolve().parents[1] / "cases"


def _shown(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def _print_table(rows: dict) -> None:
    """``key  value`` lines; a dict value (reactions) gives one line per entry, the probes
    one line per point."""
    lines = []
    for key, value in rows.items():
        if key == "probes":
            lines += [(f"u at {_shown(p['point'])}", _shown(p["u"])) for p in value]
        elif isinstance(value, dict):
            lines += [(f"{key[:-1] if key.endswith('s') else key} {k}", _shown(v))
                      for k, v in value.items()]
        else:
            lines.append((key, _shown(value)))
    width = max(len(k) for k, _ in lines)
    for key, shown in lines:
        print(f"{key:<{width}}  {shown}")


def _solve(args) -> int:
    from dfem.problems.case import Case

    case = Case.load(args.case, overrides=args.set)
    report = case.solve(out=args.out, method=args.method, show_progress=True)
    if case.transient:
        from dfem.problems.transient_case import summary

        _print_table(summary(report))
        if args.out:
            print(f"wrote {args.out}/report.json, solution.pvd ({report['saved']} VTU files "
                  f"solution_*.vtu) and solution.png")
        return 0
    _print_table(report)
    if args.out:
        print(f"wrote {args.out}/report.json, solution.vtu and solution.png")
    return 0


def _convergence(args) -> int:
    from dfem.problems.case import Case

    case = Case.load(args.case, overrides=args.set)
    study = case.convergence(args.levels, out=args.out, show_progress=True)
    print(f"{'level':>5} {'h':>9} {'dofs':>9} {'L2 error':>11} {'H1 error':>11}")
    for row in study["levels"]:
        print(f"{row['level']:>5} {row['h']:>9.4g} {row['dofs']:>9} "
              f"{row['l2_error']:>11.3e} {row['h1_error']:>11.3e}")
    print(f"fitted rates ({study['element']}): L2 {study['l2_rate']:.3f}, "
          f"H1 {study['h1_rate']:.3f}")
    if args.out:
        print(f"wrote {args.out}/convergence.json and convergence.png")
    return 0


def _validate(args) -> int:
    from dfem.validation.shipped import RATE_TOLERANCE, format_table, validate

    rows = validate(CASES, quick=args.quick)
    print(format_table(rows))
    failed = [r["case"] for r in rows if not r["ok"]]
    print(f"rates must lie within {RATE_TOLERANCE} of the expected (p+1, p); "
          f"{len(rows) - len(failed)}/{len(rows)} cases pass")
    return 1 if failed else 0


def _cases(args) -> int:
    for path in sorted(CASES.glob("*.toml")):
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        description = data.get("description", "")
        if "training" in data:
            description += " [surrogate config: dfem surrogate train]"
        elif "inverse" in data:
            description += " [inverse config: dfem inverse]"
        elif "optimizer" in data:
            description += " [optimisation config: dfem optimize]"
        elif "compare" in data or "noise" in data:
            description += " [segmentation config: dfem segment compare]"
        elif "time" in data:
            description += " [transient heat problem: dfem solve writes a time series]"
        print(f"{path.name:<24} {description}")
    return 0


def _paper(args) -> int:
    import json

    from dfem.fileio import write_json_atomic
    from dfem.validation.paper import load_sources, write_paper
    from dfem.validation.table5 import run_table5

    out = Path(args.out)
    if args.table5:
        table5 = json.loads(Path(args.table5).read_text())
    else:
        table5 = run_table5(quick=args.quick)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "table5.json", table5)
    write_paper(out, load_sources({"table5": table5}))
    print((out / "paper.md").read_text())
    print(f"wrote {out}/paper.md and table5.png" + ("" if args.table5 else " and table5.json"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from dfem import __version__

    parser = argparse.ArgumentParser(prog="dfem", description="Differentiable finite elements.")
    parser.add_argument("--version", action="version", version=f"dfem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    solve = sub.add_parser("solve", help="solve a case file")
    solve.add_argument("case", help="the case file (TOML)")
    solve.add_argument("--out", help="folder for report.json, solution.vtu and solution.png "
                       "(transient cases: solution_NNNN.vtu and solution.pvd)")
    solve.add_argument("--method", choices=["direct", "cg", "amg", "energy"],
                       help="override solver.method (energy-only options are then dropped)")
    solve.set_defaults(run=_solve)

    conv = sub.add_parser("convergence", help="h-refinement study of a case with an exact solution")
    conv.add_argument("case", help="the case file (TOML)")
    conv.add_argument("--levels", type=int, default=3, help="refinements (default 3)")
    conv.add_argument("--out", help="folder for convergence.json and convergence.png")
    conv.set_defaults(run=_convergence)

    for command in (solve, conv):
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                             help="override a case value, e.g. --set mesh.n=64 --set element=Q2")

    check = sub.add_parser("validate", help="check every shipped case against its exact solution")
    check.add_argument("--quick", action="store_true",
                       help="coarser studies, no full-resolution solves (under a minute)")
    check.set_defaults(run=_validate)

    paper = sub.add_parser("paper", help="Table 5 measured, and every paper number beside ours")
    paper.add_argument("--quick", action="store_true", help="128x128, one seed (minutes)")
    paper.add_argument("--out", default="paper", help="folder for paper.md, table5.json/png")
    paper.add_argument("--table5", help="use this Table 5 JSON instead of measuring it")
    paper.set_defaults(run=_paper)

    cases = sub.add_parser("cases", help="list the shipped cases")
    cases.set_defaults(run=_cases)

    from dfem.basis.nurbs.cli import add_cli
    from dfem.design.run import add_cli as add_optimize_cli
    from dfem.inverse.cli import add_cli as add_inverse_cli
    from dfem.segmentation.cli import add_cli as add_segment_cli
    from dfem.surrogates.cli import add_cli as add_surrogate_cli

    add_cli(sub)
    add_surrogate_cli(sub)
    add_inverse_cli(sub)
    add_segment_cli(sub)
    add_optimize_cli(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DfemError as exc:
        print(f"dfem: error: {exc}", file=sys.stderr)
        return 2
    except ConvergenceError as exc:
        print(f"dfem: solver failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
