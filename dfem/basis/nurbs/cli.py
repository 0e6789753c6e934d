"""``dfem nurbs-fit``: the DSA paper's Bukin N.6 NURBS surface fit (Table 3)."""

from __future__ import annotations

from dfem.basis.nurbs.fitting import MSE_DEFINITION, run_bukin

__all__ = ["add_cli"]


def _nurbs_fit(args) -> int:
    from dfem.fileio import staged_folder

    options = dict(n=args.grid, iterations=args.iterations, knot_grad=args.knot_grad,
                   sigma=args.sigma, seed=args.seed, progress=True)
    if args.out is None:
        result = run_bukin(**options)
    else:  # both files appear together, or (an error, Ctrl-C) neither
        with staged_folder(args.out, last=("nurbs_fit.json",)) as stage:
            result = run_bukin(stage, **options)
    print(f"Bukin N.6, {args.grid} x {args.grid} points; MSE = {MSE_DEFINITION}")
    print(f"{'setting':<34} {'MSE':>9} {'paper MSE':>10} {'seconds':>8}")
    for key, paper in [("fixed_knots_bspline", None), ("fixed_knots", "fixed_knots"),
                       ("learnable_knots_bspline", None), ("learnable_knots", "learnable_knots")]:
        shown = "-" if paper is None else f"{result[f'paper_mse_{paper}']:.2f}"
        print(f"{result['fits'][key]['setting']:<34} {result[f'mse_{key}']:>9.4g} "
              f"{shown:>10} {result[f'seconds_{key}']:>8.2f}")
    if args.out:
        print(f"wrote {args.out}/nurbs_fit.json and nurbs_fit.png")
    return 0


def add_cli(subparsers) -> None:
    """Register ``dfem nurbs-fit`` on an ``argparse`` subparsers object (handler: ``run``)."""
    from dfem.cli_tools import non_negative_int, positive_float, positive_int

    cmd = subparsers.add_parser("nurbs-fit", help="the DSA paper's Bukin N.6 NURBS surface fit")
    cmd.add_argument("--out", help="folder for nurbs_fit.json and nurbs_fit.png")
    cmd.add_argument("--grid", type=positive_int, default=256,
                     help="target points per side (256)")
    cmd.add_argument("--iterations", type=positive_int, default=500,
                     help="L-BFGS iterations per stage (500)")
    cmd.add_argument("--knot-grad", choices=["exact", "gaussian"], default="exact",
                     help="knot gradient (exact)")
    cmd.add_argument("--sigma", type=positive_float, default=1e-2,
                     help="Gaussian bandwidth for --knot-grad gaussian (0.01)")
    cmd.add_argument("--seed", type=non_negative_int, default=0,
                     help="0: start from the uniform knots; others perturb them (0)")
    cmd.set_defaults(run=_nurbs_fit)
