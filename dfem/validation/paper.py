"""``dfem paper``: the DSA paper's numbers beside dfem's, on one page.

:func:`render` turns the measured JSON outputs into Markdown tables:

- Table 5 (:mod:`dfem.validation.table5`, written by ``dfem paper`` or
  ``benchmarks/paper_table5.py``);
- Table 3, the NURBS fit of Bukin N.6 (``dfem nurbs-fit --out DIR`` writes
  ``DIR/nurbs_fit.json``);
- Table 2, segmentation Jaccard (``dfem segment compare`` writes ``compare.json``);
- the Fig. 3 deviation of the surrogate (``dfem surrogate eval`` writes ``metrics.json``).

Every source has a committed result that ships with the package, in ``dfem/data/results``
(:data:`SOURCES` says which file and the command that rewrites it); :func:`load_sources`
reads them all, and a shipped result that is missing or unreadable is an error that names
the file, never a silent gap. The page lists a source under "Not measured yet" only when
the data handed to :func:`render` leaves it out (a partial page built from Python).
"""

from __future__ import annotations

from pathlib import Path

from dfem.exceptions import DfemError
from dfem.fileio import read_json
from dfem.shipped import results_dir
from dfem.validation.table5 import PAPER

#: Every source of the page: its committed JSON (a file name in :func:`dfem.shipped.
#: results_dir`, ``dfem/data/results`` in a checkout) and the command that rewrites it,
#: run from the repository root.
SOURCES = {
    "table5": ("paper_table5.json",
               "python benchmarks/paper_table5.py --json dfem/data/results/paper_table5.json"),
    "nurbs": ("nurbs_fit.json",
              "dfem nurbs-fit --out DIR; cp DIR/nurbs_fit.json dfem/data/results/"),
    "segmentation": ("segmentation_compare.json",
                     "dfem segment compare segmentation_noisy --out DIR; "
                     "cp DIR/compare.json dfem/data/results/segmentation_compare.json"),
    "surrogate": ("surrogate_darcy64_metrics.json",
                  "dfem surrogate train surrogate_darcy64 --out DIR; dfem surrogate "
                  "eval DIR; cp DIR/metrics.json dfem/data/results/"
                  "surrogate_darcy64_metrics.json"),
}
#: The paper's Table 3 (MSE of the Bukin N.6 fit) and Table 2 (Jaccard, cells), as quoted in
#: the design notes.
PAPER_TABLE3 = {"fixed knots": 19.85, "learned knots": 8.23}
PAPER_FIG3_MAX_ABS = 0.01
PAPER_W_TEXT = "(-0.26, -0.77, -0.37, -0.92)"
PAPER_TABLE2 = {"cells (BBBC)": ("79.34 ± 0.43", "81.56 ± 0.24"),
                "horses (Weizmann)": ("72.06 ± 0.60", "73.13 ± 0.31")}


def source_path(name: str) -> Path:
    """The shipped JSON of the source ``name`` (a key of :data:`SOURCES`)."""
    return results_dir() / SOURCES[name][0]


def read_result(path, what: str = "result file") -> dict:
    """The JSON object in ``path``; a missing, unreadable or invalid file is a
    :class:`~dfem.exceptions.DfemError` that names it."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise DfemError(f"{what} {str(path)!r} holds {type(data).__name__}, not a JSON object.")
    return data


def load_sources(overrides: dict | None = None) -> dict:
    """The data of every source: the shipped JSON of each (see :data:`SOURCES`), except
    those ``overrides`` gives (a name to its data).

    Raises
    ------
    DfemError
        When a shipped result that is not overridden is missing or unreadable (the
        message names the file: reinstall dfem, or rewrite it with the source's command).
    """
    overrides = dict(overrides or {})
    data = {}
    for name, (_, command) in SOURCES.items():
        if name in overrides:
            continue
        path = source_path(name)
        try:
            data[name] = read_result(path, f"the shipped {name} result")
        except DfemError as exc:
            raise DfemError(f"{exc} It ships with dfem: reinstall it, or in a checkout "
                            f"rewrite it with: {command}") from None
    data.update(overrides)
    return data


def table5_markdown(table5: dict) -> str:
    """Table 5: the paper's columns, then one row per dfem method and grid."""
    lines = ["| method | " + " | ".join(f"{n}x{n}" for n in table5["sizes"]) + " | seconds |",
             "|---|" + "---|" * len(table5["sizes"]) + "---|"]
    for method in ("PINN", "DSA d=1", "DSA d=2", "DSA d=3"):
        lines.append(f"| paper: {method} | " + " | ".join(
            f"{PAPER[n][method]:.2e}" if n in PAPER else "–" for n in table5["sizes"])
            + " | – |")
    groups: dict = {}
    for row in table5["rows"]:
        label = row["method"] + (f" {row['element']}" if "element" in row else "")
        groups.setdefault(label, {})[row["n"]] = row
    for label, by_n in groups.items():
        cells = []
        for n in table5["sizes"]:
            row = by_n.get(n)
            if row is None:
                cells.append("–")
            elif "l2_error_std" in row:
                cells.append(f"{row['l2_error']:.2e} ± {row['l2_error_std']:.1e}")
            else:
                cells.append(f"{row['l2_error']:.2e}")
        seconds = " / ".join(f"{by_n[n]['seconds']:.1f}" for n in table5["sizes"] if n in by_n)
        lines.append(f"| dfem {label} | " + " | ".join(cells) + f" | {seconds} |")
    return "\n".join(lines)


def energy_markdown(table5: dict) -> str:
    lines = ["| route | grid | iterations | converged | relative residual | "
             "distance to direct | L2 error | seconds |", "|---|---|---|---|---|---|---|---|"]
    for row in table5["rows"]:
        if row["method"].startswith("energy"):
            lines.append(
                f"| {row['method']} {row['element']} | {row['n']}x{row['n']} | "
                f"{row['iterations']} | {'yes' if row['converged'] else 'no'} | "
                f"{row['relative_residual']:.1e} | {row['distance_to_direct']:.1e} | "
                f"{row['l2_error']:.2e} | {row['seconds']:.1f} |")
    return "\n".join(lines)


def nurbs_markdown(nurbs: dict) -> str:
    return "\n".join([
        "| Bukin N.6 fit, 256x256 points (MSE) | paper | dfem | dfem seconds |",
        "|---|---|---|---|",
        f"| fixed knots | {PAPER_TABLE3['fixed knots']} | {nurbs['mse_fixed_knots']:.2f} | "
        f"{nurbs['seconds_fixed_knots']:.1f} |",
        f"| learned knots | {PAPER_TABLE3['learned knots']} | "
        f"{nurbs['mse_learnable_knots']:.2f} | {nurbs['seconds_learnable_knots']:.1f} |",
    ])


def segmentation_markdown(compare: dict) -> str:
    lines = ["| data | labels | model | Jaccard (IoU, foreground mean) | Dice |",
             "|---|---|---|---|---|"]
    for data, (baseline, dsa) in PAPER_TABLE2.items():
        lines.append(f"| paper: {data} | clean | baseline | {baseline} | – |")
        lines.append(f"| paper: {data} | clean | dsa | {dsa} | – |")
    for row in compare["table"]:
        lines.append(f"| dfem: synthetic cells | {row['labels']} | {row['model']} | "
                     f"{100 * row['iou_mean']:.1f} ± "
                     f"{100 * row['iou_mean_std']:.1f} | {100 * row['dice_mean']:.1f} ± "
                     f"{100 * row['dice_mean_std']:.1f} |")
    return "\n".join(lines)


def surrogate_markdown(metrics: dict) -> str:
    """Fig. 3 of the paper beside ``dfem surrogate eval``'s ``metrics.json``."""
    m = metrics
    rows = [
        "| 64² Q1, u = 1 at x = 0, u = 0 at x = 1 | paper | dfem |",
        "|---|---|---|",
        f"| max abs error, w = {PAPER_W_TEXT} | ≈ {PAPER_FIG3_MAX_ABS} | "
        f"{m['paper_case_max_abs_err']:.4f} |",
        f"| relative L2 error, mean over {m['samples']} held-out samples | – | "
        f"{m['val_rel_l2_mean']:.4f} |",
        f"| training | one V100 GPU, time not stated | {m['train_seconds']:.0f} s, "
        f"{m['steps']} steps on the {m['device'].upper()} |",
        f"| ms a sample: surrogate / FEM direct solve | – | "
        f"{m['surrogate_s_per_sample'] * 1e3:.2f} / {m['fem_solve_s_per_sample'] * 1e3:.1f} |",
    ]
    if "prior_val_rel_l2_mean" in m:
        rows.append(f"| the coarse-solve prior alone: relative L2 / paper-case max abs | – | "
                    f"{m['prior_val_rel_l2_mean']:.4f} / "
                    f"{m['prior_paper_case_max_abs_err']:.4f} |")
    return "\n".join(rows)


def _table5_section(t5: dict) -> list[str]:
    return ["## Table 5: -Δu = 2π² sin(πx) sin(πy), L2 error of u", "",
            table5_markdown(t5), "", "Energy minimisation (the paper's route):", "",
            energy_markdown(t5), "",
            f"Measured in {t5['seconds']:.0f} s ({'quick' if t5['quick'] else 'full'} "
            f"run, {t5['seeds']} seed(s) per network) on {t5['machine']['platform']}, "
            f"{t5['machine']['cores']} cores.", ""]


#: Each source's section of the page: its heading and table.
_SECTIONS = {
    "table5": _table5_section,
    "nurbs": lambda d: ["## Table 3: NURBS fit of Bukin N.6", "", nurbs_markdown(d), ""],
    "segmentation": lambda d: [
        "## Table 2: segmentation (synthetic cells; the paper used BBBC and horses)", "",
        segmentation_markdown(d), ""],
    "surrogate": lambda d: [f"## Fig. 3: surrogate deviation for w = {PAPER_W_TEXT}", "",
                            surrogate_markdown(d), ""],
}


def render(data: dict) -> str:
    """The whole page (Markdown) from the loaded sources (see :func:`load_sources`).

    Raises
    ------
    DfemError
        When a source's data lacks a field its table needs (it names the source).
    """
    parts = ["# dfem beside the DSA paper", ""]
    for name, section in _SECTIONS.items():
        if name in data:
            try:
                parts += section(data[name])
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise DfemError(f"the {name} result lacks what its table needs "
                                f"({type(exc).__name__}: {exc}); is it the JSON that "
                                f"`{SOURCES[name][1]}` writes?") from exc
    missing = [name for name in SOURCES if name not in data]
    if missing:
        parts += ["## Not measured yet", ""] + [
            f"- {name}: `{SOURCES[name][1]}`" for name in missing] + [""]
    return "\n".join(parts)


def write_paper(out, data: dict) -> None:
    """``out/paper.md`` and ``out/table5.png`` (when Table 5 is there)."""
    from dfem.fileio import write_atomically

    out = Path(out)
    text = render(data)  # first: a source it cannot render leaves no folder behind
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "paper.md", lambda tmp: Path(tmp).write_text(text))
    if "table5" in data:
        from dfem.plots import plot_table5

        plot_table5(data["table5"], PAPER, out / "table5.png")
