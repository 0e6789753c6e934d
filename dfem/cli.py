"""The ``dfem`` command line.

- ``dfem solve CASE [--out DIR] [--set key=value ...] [--method METHOD]`` solves a case
  file or a shipped case by name, from any folder (Poisson, linear elasticity or
  Neo-Hookean; METHOD: direct, cg, amg, petsc or energy), prints a summary and writes
  ``DIR/report.json``, ``DIR/solution.vtu`` and ``DIR/solution.png`` (for elastic cases the
  deformed mesh coloured by the von Mises stress); a transient case (one with a ``[time]``
  table) writes a time series instead: ``DIR/solution_NNNN.vtu``, ``DIR/solution.pvd``, a
  strip of states in ``DIR/solution.png`` and ``DIR/report.json``.
- ``dfem convergence CASE --levels N [--out DIR]`` refines the case's mesh N times and
  writes ``DIR/convergence.json`` and ``DIR/convergence.png``.
- ``dfem validate [--quick]`` checks every shipped case with an exact solution (rates, errors)
  and exits with status 1 if any falls short (finding none is an error).
- ``dfem cases`` lists the shipped cases and configs by name and kind (see
  :mod:`dfem.shipped`); ``dfem --version``.
- ``dfem nurbs-fit [--out DIR] [--grid N]`` fits a NURBS surface to Bukin N.6 (the DSA
  paper's Table 3) with fixed and with learnable knots.
- ``dfem surrogate train|eval`` trains and evaluates parametric surrogates.
- ``dfem inverse CONFIG.toml [--out DIR]`` recovers a diffusivity from observations.
- ``dfem segment train|eval|compare`` trains segmentation U-Nets with IEL and DSA heads.
- ``dfem optimize CONFIG.toml --out DIR [--resume]`` runs a SIMP topology optimisation.
- ``dfem paper [--quick] [--out DIR]`` measures Table 5 of the DSA paper and writes
  ``DIR/paper.md`` with every paper number beside dfem's.

Errors a user can cause are printed as one line ``dfem: error: ...`` without a traceback,
with exit status 2, before any work (the output folder is checked first); an iterative
solver or a Newton solve that stops short of its tolerance is reported the same way, with
exit status 1. Either way no output file is written. Ctrl-C (SIGINT) stops any command with
the line ``dfem: interrupted`` and exit status 130 (:func:`main`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfem.cli_tools import add_set_option, positive_int, print_table
from dfem.distributed.comm import launched_by_mpirun, rank_label, settle_ranks
from dfem.exceptions import ConvergenceError, DfemError
from dfem.fileio import check_output_folder, staged_folder


def _solve(args) -> int:
    from dfem.problems.case import Case
    from dfem.shipped import SOLVE, resolve_config

    case = Case.load(resolve_config(args.case, SOLVE), overrides=args.set)
    if launched_by_mpirun():
        return _solve_distributed(case, args)
    if args.out is None or case.transient:  # a time series stages its own files
        report = case.solve(out=args.out, method=args.method, show_progress=True)
    else:
        with staged_folder(args.out, last=("report.json",)) as stage:
            report = case.solve(out=stage, method=args.method, show_progress=True)
    if case.transient:
        from dfem.problems.transient_case import summary

        print_table(summary(report))
        if args.out:
            print(f"wrote {args.out}/report.json, solution.pvd ({report['saved']} VTU files "
                  f"solution_*.vtu) and solution.png")
        return 0
    print_table(report)
    if args.out:
        print(f"wrote {args.out}/report.json, solution.vtu and solution.png")
    return 0


def _solve_distributed(case, args) -> int:
    """``mpirun -n N dfem solve``: every rank solves its part; rank 0 reports."""
    from dfem.distributed import world
    from dfem.problems.case_distributed import solve_distributed

    report = solve_distributed(case, args.out, args.method)
    if world().Get_rank() == 0:
        print_table(report)
        if args.out:
            print(f"wrote {args.out}/report.json, solution.pvtu ({report['ranks']} pieces "
                  "solution_*.vtu) and solution.png")
    return 0


def _convergence(args) -> int:
    from dfem.problems.case import Case
    from dfem.shipped import SOLVE, resolve_config

    case = Case.load(resolve_config(args.case, SOLVE), overrides=args.set)
    if args.out is None:
        study = case.convergence(args.levels, show_progress=True)
    else:
        with staged_folder(args.out, last=("convergence.json",)) as stage:
            study = case.convergence(args.levels, out=stage, show_progress=True)
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
    from dfem.shipped import cases_dir
    from dfem.validation.shipped import RATE_TOLERANCE, format_table, validate

    rows = validate(cases_dir(), quick=args.quick)
    print(format_table(rows))
    failed = [r["case"] for r in rows if not r["ok"]]
    print(f"rates must lie within {RATE_TOLERANCE} of the expected (p+1, p); "
          f"{len(rows) - len(failed)}/{len(rows)} cases pass")
    return 1 if failed else 0


def _cases(args) -> int:
    from dfem.shipped import KINDS, cases_dir, shipped_listing

    rows = shipped_listing()
    for r in rows:
        r["run"] = KINDS[r["key"]].program
    width = {key: max(len(key), *(len(r[key]) for r in rows)) for key in ("name", "kind", "run")}
    print(f"{'name':<{width['name']}}  {'kind':<{width['kind']}}  "
          f"{'run with':<{width['run']}}  description")
    for r in rows:
        print(f"{r['name']:<{width['name']}}  {r['kind']:<{width['kind']}}  "
              f"{r['run']:<{width['run']}}  {r['description']}".rstrip())
    print(f"{len(rows)} shipped files, in {cases_dir()}. Give a command the name (or a "
          "path), e.g. dfem solve poisson_sine --out out")
    return 0


def _paper(args) -> int:
    from dfem.fileio import write_json_atomic
    from dfem.validation.paper import load_sources, read_result, render, write_paper
    from dfem.validation.table5 import run_table5

    out = Path(args.out)
    table5 = read_result(args.table5, "--table5 file") if args.table5 else None
    sources = load_sources({"table5": table5})  # the shipped results, read before measuring
    if table5 is not None:
        try:
            render({"table5": table5})
        except DfemError as exc:
            raise DfemError(f"--table5 {args.table5}: {exc}") from None
    else:
        sources["table5"] = run_table5(quick=args.quick)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "table5.json", sources["table5"])
    write_paper(out, sources)
    print((out / "paper.md").read_text())
    print(f"wrote {out}/paper.md and table5.png" + ("" if args.table5 else " and table5.json"))
    return 0


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, like every other error."""

    def error(self, message):
        """Print ``dfem: error: PROG: MESSAGE; see 'PROG --help'`` and exit with status 2."""
        self.exit(2, f"dfem: error: {self.prog}: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``dfem`` argument parser with every subcommand (each sets ``run``, its handler)."""
    from dfem import __version__

    parser = _Parser(prog="dfem", description="Differentiable finite elements.")
    parser.add_argument("--version", action="version", version=f"dfem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    solve = sub.add_parser("solve", help="solve a case file")
    solve.add_argument("case", help="a case file (TOML), or a shipped case's name (dfem cases)")
    solve.add_argument("--out", help="folder for report.json, solution.vtu and solution.png "
                       "(transient cases: solution_NNNN.vtu and solution.pvd)")
    solve.add_argument("--method", choices=["direct", "cg", "amg", "petsc", "energy"],
                       help="override solver.method (energy-only options are then dropped)")
    solve.set_defaults(run=_solve)

    conv = sub.add_parser("convergence", help="h-refinement study of a case with an exact solution")
    conv.add_argument("case", help="a case file (TOML), or a shipped case's name (dfem cases)")
    conv.add_argument("--levels", type=positive_int, default=3, help="refinements (default 3)")
    conv.add_argument("--out", help="folder for convergence.json and convergence.png")
    conv.set_defaults(run=_convergence)

    for command in (solve, conv):
        add_set_option(command, "mesh.n=64 --set element=Q2")

    check = sub.add_parser("validate", help="check every shipped case against its exact solution")
    check.add_argument("--quick", action="store_true",
                       help="coarser studies, no full-resolution solves (under a minute)")
    check.set_defaults(run=_validate)

    paper = sub.add_parser("paper", help="Table 5 measured, and every paper number beside ours")
    paper.add_argument("--quick", action="store_true", help="128x128, one seed (minutes)")
    paper.add_argument("--out", default="paper", help="folder for paper.md, table5.json/png")
    paper.add_argument("--table5", help="use this Table 5 JSON instead of measuring it")
    paper.set_defaults(run=_paper)

    cases = sub.add_parser("cases", help="list the shipped cases and configs: name, kind, "
                           "command")
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


def _close_progress_bars() -> None:
    """Close the progress bars an interrupted run left open, so that the message after them
    starts on a line of its own."""
    from dfem.progress import close_all

    close_all()


def _fail(prefix: str, exc: BaseException, status: int) -> int:
    text = " ".join(str(exc).split()) or type(exc).__name__
    print(f"dfem: {rank_label()}{prefix}{text}", file=sys.stderr, flush=True)
    return status


def main(argv=None) -> int:
    """Run the ``dfem`` command line on ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status (a usage error exits with status 2 from the parser):

    - 0: done;
    - 1: the run failed: a solver that stopped short of its tolerance, a training or an
      optimisation that stopped, or a file that could not be read or written (an error of
      the operating system: no space left, a permission lost mid-run);
    - 2: bad input (:class:`~dfem.exceptions.DfemError`), reported before any work;
    - 130: interrupted (Ctrl-C, SIGINT).

    Every error is one line on stderr, ``dfem: ...``, without a traceback. The output
    folder (``--out``) is checked before the command starts. Under ``mpirun`` each rank
    reports its own error (``dfem: [rank r of n] ...``); a rank that fails while the others
    go on stops the whole run rather than leave them waiting
    (:func:`dfem.distributed.comm.settle_ranks`).
    """
    try:
        status = _run(argv)
    except Exception:
        if not launched_by_mpirun():
            raise
        import traceback

        traceback.print_exc()  # a bug, not a user's mistake: the traceback is the report
        status = 1
    return settle_ranks(status)


def _run(argv) -> int:
    try:
        args = build_parser().parse_args(argv)
        if launched_by_mpirun() and args.run is not _solve:
            raise DfemError("under mpirun only dfem solve runs (distributed); run the other "
                            "commands on one process.")
        out = getattr(args, "out", None)
        if out is not None:
            check_output_folder(out)
        return args.run(args)
    except KeyboardInterrupt as exc:  # Ctrl-C; a command may say what it kept (Interrupted)
        _close_progress_bars()
        detail = " ".join(str(exc).split())
        print("dfem: interrupted" + (f": {detail}" if detail else ""), file=sys.stderr,
              flush=True)
        return 130
    except DfemError as exc:
        _close_progress_bars()
        return _fail("error: ", exc, 2)
    except ConvergenceError as exc:
        _close_progress_bars()
        return _fail("solver failed: ", exc, 1)
    except MemoryError:
        _close_progress_bars()
        print("dfem: error: out of memory; try a smaller problem (e.g. --set mesh.n=...)",
              file=sys.stderr, flush=True)
        return 1
    except BrokenPipeError:  # the reader of stdout went away (dfem cases | head -1)
        import os

        try:  # so that the interpreter's final flush of stdout does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except OSError as exc:
        _close_progress_bars()
        return _fail("error: ", exc, 1)


if __name__ == "__main__":
    sys.exit(main())
