"""Validation report: the DSA paper's Table 5 beside dfem, convergence studies, scikit-fem check.

Usage::

    python benchmarks/validation_report.py [--out docs] [--repeat 2] [--quick]

Writes ``<out>/figures/convergence.png`` (L2 and H1-seminorm errors against h for P1-P3 and
Q1-Q3, with reference slopes) and ``<out>/figures/validation.json`` (every number), and prints
the tables in Markdown. Timings are the best of ``--repeat`` runs after a warm-up solve.

1. Table 5 of the DSA paper: -Δu = 2π² sin(πx) sin(πy) on [0,1]², u = 0 on the boundary,
   exact u = sin(πx) sin(πy), on 128² and 256² quadrilaterals with Q1, Q2, Q3 (direct solve).
2. Convergence: the manufactured solution of tests/validation/test_convergence.py
   (nu = 1 + x² y, u = sin(πx + 1/2) e^y, Dirichlet on three sides, Neumann on the right).
3. scikit-fem: the largest relative max-norm difference of the dof vectors over the cases of
   tests/validation/test_skfem.py (skipped when scikit-fem is not installed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dfem  # noqa: E402

PI = math.pi

from dfem.validation.table5 import PAPER  # noqa: E402
from dfem.validation.table5_problem import exact as table5_exact  # noqa: E402
from dfem.validation.table5_problem import source as table5_source  # noqa: E402

# ------------------------------------------------------------------ Table 5


def table5_run(n: int, element: str) -> dict:
    t0 = time.perf_counter()
    space = dfem.FunctionSpace(dfem.mesh.rectangle(n, n, "quad"), element)
    problem = dfem.Poisson(space, nu=1.0, f=table5_source, dirichlet={"boundary": 0.0})
    u = problem.solve()
    t1 = time.perf_counter()
    e = dfem.errors(space, u, table5_exact)
    return dict(
        n=n,
        element=element,
        dofs=space.n_dofs,
        l2_error=e["l2"],
        h1_error=e["h1"],
        assemble_s=problem.last_solve["assemble_s"],
        solve_s=problem.last_solve["solve_s"],
        total_s=t1 - t0,
    )


def table5(sizes, elements, repeat: int) -> list[dict]:
    for element in elements:
        table5_run(32, element)  # warm-up (first-call costs of torch, scipy and the allocator)
    rows = []
    for n in sizes:
        for element in elements:
            runs = [table5_run(n, element) for _ in range(repeat)]
            best = min(runs, key=lambda r: r["total_s"])
            rows.append(best)
            print(
                f"  {n}x{n} {element}: L2 {best['l2_error']:.3e}, "
                f"assemble {best['assemble_s']:.2f} s, solve {best['solve_s']:.2f} s",
                flush=True,
            )
    return rows


# ------------------------------------------------------------------ convergence
def u_exact(x):
    return torch.sin(PI * x[..., 0] + 0.5) * torch.exp(x[..., 1])


def nu(x):
    return 1.0 + x[..., 0] ** 2 * x[..., 1]


def source(x):
    # -div(nu grad u) = -nu Δu - grad nu . grad u, Δu = (1 - π²) u, grad nu = (2xy, x²)
    X, Y = x[..., 0], x[..., 1]
    u = torch.sin(PI * X + 0.5) * torch.exp(Y)
    ux = PI * torch.cos(PI * X + 0.5) * torch.exp(Y)
    return -(1 + X**2 * Y) * (1 - PI**2) * u - 2 * X * Y * ux - X**2 * u


def g_right(x):
    return -PI * (1 + x[..., 1]) * math.cos(0.5) * torch.exp(x[..., 1])


CONVERGENCE_ELEMENTS = [
    ("P1", "tri"),
    ("P2", "tri"),
    ("P3", "tri"),
    ("Q1", "quad"),
    ("Q2", "quad"),
    ("Q3", "quad"),
]


def convergence(levels) -> dict:
    out = {}
    for element, cell in CONVERGENCE_ELEMENTS:

        def solve(n, element=element, cell=cell):
            space = dfem.FunctionSpace(dfem.mesh.rectangle(n, n, cell), element)
            problem = dfem.Poisson(
                space,
                nu=nu,
                f=source,
                dirichlet={"left": u_exact, "bottom": u_exact, "top": u_exact},
                neumann={"right": g_right},
            )
            return space, problem.solve()

        study = dfem.convergence_study(solve, u_exact, levels)
        rows = study["levels"]
        for prev, row in zip(rows[:-1], rows[1:], strict=True):
            log_h = math.log(prev["h"] / row["h"])
            row["l2_rate"] = math.log(prev["l2_error"] / row["l2_error"]) / log_h
            row["h1_rate"] = math.log(prev["h1_error"] / row["h1_error"]) / log_h
        out[element] = study
        print(
            f"  {element}: L2 rate {study['l2_rate']:.3f}, H1 rate {study['h1_rate']:.3f}",
            flush=True,
        )
    return out


def plot(studies: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True)
    colors = {"1": "tab:blue", "2": "tab:orange", "3": "tab:green"}
    panels = ((axes[0], "l2_error", "L2 error", 1), (axes[1], "h1_error", "H1-seminorm error", 0))
    for ax, key, name, shift in panels:
        for element, study in studies.items():
            p = element[1]
            h = np.array([r["h"] for r in study["levels"]])
            e = np.array([r[key] for r in study["levels"]])
            rate = study["l2_rate"] if key == "l2_error" else study["h1_rate"]
            ax.loglog(
                h,
                e,
                marker="o" if element[0] == "P" else "s",
                linestyle="-" if element[0] == "P" else "--",
                color=colors[p],
                label=f"{element} (rate {rate:.2f})",
            )
        for p in (1, 2, 3):
            # reference slope h^(p + shift), drawn below the Q curve of that degree
            study = studies[f"Q{p}"]
            h = np.array([r["h"] for r in study["levels"]])
            e0 = min(studies[f"P{p}"]["levels"][0][key], study["levels"][0][key]) * 0.2
            ax.loglog(
                h, e0 * (h / h[0]) ** (p + shift), color=colors[str(p)], linestyle=":", linewidth=1
            )
            ax.annotate(
                f"h^{p + shift}",
                (h[-1], e0 * (h[-1] / h[0]) ** (p + shift)),
                fontsize=8,
                color=colors[str(p)],
                xytext=(4, -8),
                textcoords="offset points",
            )
        ticks = [r["h"] for r in studies["Q1"]["levels"]]
        ax.set_xticks(ticks, [f"1/{round(1 / t)}" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("h, longest edge (n x n mesh: 1/n for quads, sqrt(2)/n for triangles)")
        ax.set_ylabel(name)
        ax.set_title(f"{name}, -div(nu grad u) = f, nu = 1 + x²y")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ------------------------------------------------------------------ scikit-fem
def skfem_agreement() -> dict | None:
    if importlib.util.find_spec("skfem") is None or importlib.util.find_spec("pytest") is None:
        return None
    spec = importlib.util.spec_from_file_location(
        "validation_test_skfem", ROOT / "tests" / "validation" / "test_skfem.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import skfem

    cases = []
    for element, cell, diagonal in module.CASES:
        for robin in (False, True):
            pattern = diagonal if cell == "tri" else "right"
            mesh = module.perturbed_mesh(cell, 9, 7, diagonal=pattern, seed=3)
            space, u = module.solve_dfem(mesh, element, robin)
            basis, u_sk = module.solve_skfem(mesh, element, robin)
            reference = module.skfem_at_dfem_dofs(space, basis, u_sk, element)
            relative = float(np.abs(u - reference).max() / np.abs(reference).max())
            cases.append(
                dict(
                    element=element,
                    diagonal=diagonal,
                    robin=robin,
                    dofs=space.n_dofs,
                    relative_max_difference=relative,
                )
            )
    worst = max(c["relative_max_difference"] for c in cases)
    print(
        f"  scikit-fem {skfem.__version__}: largest relative max-norm difference {worst:.2e}"
        f" over {len(cases)} cases",
        flush=True,
    )
    return dict(version=skfem.__version__, cases=cases, worst=worst)


# ------------------------------------------------------------------ Markdown
def markdown(report: dict) -> str:
    lines = [
        "Table 5 (L2 error of u; times in seconds):",
        "",
        "| grid | PINN | DSA d=1 | DSA d=2 | DSA d=3 | dfem Q1 | dfem Q2 | dfem Q3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by = {(r["n"], r["element"]): r for r in report["table5"]}
    for n, paper in PAPER.items():
        ours = [by.get((n, e)) for e in ("Q1", "Q2", "Q3")]
        cells = [f"{r['l2_error']:.2e}" if r else "-" for r in ours]
        lines.append(
            f"| {n}x{n} | "
            + " | ".join(f"{v:.2e}" for v in paper.values())
            + " | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "| grid | element | dofs | L2 error | H1 error | assemble (s) | solve (s) | total (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["table5"]:
        lines.append(
            f"| {r['n']}x{r['n']} | {r['element']} | {r['dofs']} | {r['l2_error']:.2e} | "
            f"{r['h1_error']:.2e} | {r['assemble_s']:.2f} | {r['solve_s']:.2f} | "
            f"{r['total_s']:.2f} |"
        )
    lines += [
        "",
        "Convergence (rate: slope between successive meshes; last row: fitted over all):",
        "",
    ]
    for element, study in report["convergence"].items():
        lines += [
            f"**{element}**",
            "",
            "| n | h | dofs | L2 error | rate | H1 error | rate |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in study["levels"]:
            l2r = f"{r['l2_rate']:.2f}" if "l2_rate" in r else ""
            h1r = f"{r['h1_rate']:.2f}" if "h1_rate" in r else ""
            lines.append(
                f"| {r['level']} | {r['h']:.4f} | {r['dofs']} | {r['l2_error']:.3e} | "
                f"{l2r} | {r['h1_error']:.3e} | {h1r} |"
            )
        lines.append(f"| fitted | | | | {study['l2_rate']:.3f} | | {study['h1_rate']:.3f} |")
        lines.append("")
    if report.get("skfem"):
        sk = report["skfem"]
        lines.append(
            f"scikit-fem {sk['version']}: largest relative max-norm difference "
            f"{sk['worst']:.1e} over {len(sk['cases'])} cases."
        )
    return "\n".join(lines)


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(
        cpu=cpu,
        cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        numpy=np.__version__,
        python=platform.python_version(),
        platform=platform.platform(),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs", help="folder; figures go to <out>/figures")
    parser.add_argument("--repeat", type=int, default=2, help="runs per Table 5 case (best kept)")
    parser.add_argument("--quick", action="store_true", help="128² only and shorter studies")
    args = parser.parse_args(argv)
    figures = Path(args.out) / "figures"
    figures.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    load_start = os.getloadavg()[0]
    print("Table 5", flush=True)
    sizes = (128,) if args.quick else (128, 256)
    rows = table5(sizes, ("Q1", "Q2", "Q3"), max(1, args.repeat))
    print("Convergence", flush=True)
    levels = (4, 8, 16, 32) if args.quick else (4, 8, 16, 32, 64)
    studies = convergence(levels)
    print("scikit-fem", flush=True)
    sk = skfem_agreement()

    report = dict(
        paper_table5=PAPER,
        table5=rows,
        convergence=studies,
        skfem=sk,
        machine=machine(),
        command=" ".join(
            [
                "python benchmarks/validation_report.py",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        seconds=time.perf_counter() - t0,
        load_average_1min=dict(start=load_start, end=os.getloadavg()[0]),  # others on the machine
    )
    plot(studies, figures / "convergence.png")
    (figures / "validation.json").write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(markdown(report))
    print(
        f"\nwrote {figures / 'convergence.png'} and {figures / 'validation.json'}"
        f" ({report['seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
