"""The ``dfem`` command line.

``dfem solve CASE.toml [--out DIR] [--method direct|cg|amg]`` solves a case file,
prints a summary and writes ``DIR/report.json`` and ``DIR/solution.vtu``.
Errors a user can cause are printed without a traceback, with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from dfem.errors import DfemError


def _solve(args) -> int:
    from dfem.problems.case import Case

    case = Case.load(args.case)
    report = case.solve(out=args.out, method=args.method)
    width = max(len(k) for k in report)
    for key, value in report.items():
        shown = "-" if value is None else (f"{value:.4g}" if isinstance(value, float) else value)
        print(f"{key:<{width}}  {shown}")
    if args.out:
        print(f"wrote {args.out}/report.json and {args.out}/solution.vtu")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dfem", description="Differentiable finite elements.")
    sub = parser.add_subparsers(dest="command", required=True)
    solve = sub.add_parser("solve", help="solve a case file")
    solve.add_argument("case", help="the case file (TOML)")
    solve.add_argument("--out", help="folder for report.json and solution.vtu")
    solve.add_argument("--method", choices=["direct", "cg", "amg"], help="override the solver")
    solve.set_defaults(run=_solve)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DfemError as exc:
        print(f"dfem: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
