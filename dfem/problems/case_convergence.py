"""Convergence studies of a case (``dfem convergence``): the errors against the exact
solution on the case's mesh refined 0..levels times, and the fitted rates.

Refinement is :func:`dfem.problems.domain.build_space` at each level (uniform refinement
of meshes and mesh files, whose cell tags the refined cells inherit; knot insertion for
NURBS patches); the errors are :func:`dfem.validation.error_norms.convergence_study`'s.
"""

from __future__ import annotations

from pathlib import Path

from dfem.exceptions import DfemError
from dfem.fileio import write_json_atomic
from dfem.problems.domain import build_mesh


def convergence(case, levels: int, out=None, show_progress: bool = False) -> dict:
    """Errors on ``case``'s mesh refined 0..levels times, and the fitted rates.

    Writes ``convergence.json`` and ``convergence.png`` under ``out``; reports each level
    on stderr when ``show_progress``.

    Returns
    -------
    dict
        :func:`~dfem.validation.error_norms.convergence_study`'s ``levels``, ``l2_rate`` and
        ``h1_rate``, with ``case``, ``element`` and ``degree``.
    """
    from dfem.validation.error_norms import convergence_study

    if case.transient:
        raise DfemError(
            "dfem convergence does not support transient cases (a [time] table) yet; "
            "refine by hand with --set mesh.n=... and --set time.dt=... and compare the "
            "l2_error of dfem solve."
        )
    exact = case.exact()
    if exact is None:
        raise DfemError("a convergence study needs an exact solution: add [exact] u = \"...\".")
    if isinstance(levels, bool) or int(levels) != levels or levels < 1:
        raise DfemError(f"--levels must be a positive integer, got {levels!r}.")
    spaces = []
    perturbed = "perturb" in case.data.get("mesh", {})

    def solve(level):
        problem = case.problem(case.space(level))
        spaces.append(problem.space)
        u = problem.solve(**case.solver_options())
        if not perturbed:
            return problem.space, u
        # h of the mesh before its random perturbation: the longest edge of a perturbed
        # mesh is the extreme of more and more random samples as the mesh grows, which
        # would bias the fitted rates upwards
        from dfem.validation.error_norms import mesh_size

        plain = {**case.data, "mesh": {k: v for k, v in case.data["mesh"].items()
                                       if k != "perturb"}}
        return problem.space, u, mesh_size(build_mesh(plain, case.path, level))

    steps = range(int(levels) + 1)
    if show_progress:
        from dfem.progress import progress

        steps = progress(steps, f"{case.name} refinement", unit="level")
    study = convergence_study(solve, exact, steps)
    element = spaces[0].element
    study.update(case=case.name, element=element.name, degree=element.degree)
    if out is not None:
        from dfem.plots import plot_convergence

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        plot_convergence(study, out / "convergence.png", element.degree,
                         title=f"{case.name} ({element.name})")
        write_json_atomic(out / "convergence.json", study)
    return study
