"""Every ``dfem`` subcommand on bad input: one ``dfem: ...`` line on stderr, exit status 2,
no traceback, no output folder created and nothing in its place overwritten.

The commands run in-process through :func:`dfem.cli.main` (argparse's usage errors raise
``SystemExit(2)``, counted as the status). Ctrl-C in a real process is in
``tests/test_cli_interrupt.py``.
"""

from __future__ import annotations

import ast
import os
import tomllib
from pathlib import Path

import pytest

from dfem.cli import main
from dfem.exceptions import DfemError
from dfem.fileio import check_output_folder, read_json, read_toml, toml_text

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"

#: (subcommand, the arguments before --out with a good config, --set of an unknown key and
#: its name in the message, --set of a bad value and a piece of its message)
CONFIG_COMMANDS = {
    "solve": (["solve", CASES / "poisson_sine.toml"], "mesh.colour=1", "colour",
              "mesh.n=-3", "mesh.n"),
    "convergence": (["convergence", CASES / "poisson_sine.toml", "--levels", "1"],
                    "solver.speed=2", "speed", "mesh.n=0", "mesh.n"),
    "surrogate train": (["surrogate", "train", CASES / "surrogate_poisson64.toml"],
                        "training.epochs=3", "epochs", "training.steps=-3", "steps"),
    "inverse": (["inverse", CASES / "inverse_field.toml"], "inverse.speed=1", "speed",
                "inverse.max_iter=-1", "max_iter"),
    "segment train": (["segment", "train", CASES / "segmentation_noisy.toml"],
                      "training.colour=1", "colour", "training.epochs=-1", "epochs"),
    "segment compare": (["segment", "compare", CASES / "segmentation_noisy.toml"],
                        "compare.speed=1", "speed", "training.lr=-1", "lr"),
    "optimize": (["optimize", CASES / "optimize_mbb.toml"], "optimizer.speed=1", "speed",
                 "problem.nelx=-3", "nelx"),
}
#: every subcommand that writes into --out, with the arguments that come before it
OUT_COMMANDS = {
    **{name: spec[0] for name, spec in CONFIG_COMMANDS.items()},
    "nurbs-fit": ["nurbs-fit", "--grid", "16", "--iterations", "2"],
    "paper": ["paper", "--quick"],
}


def files_under(folder: Path) -> dict:
    """Every path under ``folder`` with its content (None for folders)."""
    return {p.relative_to(folder): (None if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


def run(capsys, *argv) -> tuple[int, str]:
    """``dfem ARGV`` in-process: the exit status and stderr (stdout is dropped)."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as stop:  # argparse's usage errors
        status = stop.code
    return status, capsys.readouterr().err


def assert_one_error_line(err: str, *pieces: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dfem: "), err
    assert "Traceback" not in err, err
    for piece in pieces:
        assert piece in lines[0], (piece, err)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty folder as the working directory, with a file ``a_file`` in it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("keep me\n")
    return tmp_path


def check_refused(capsys, workdir, argv, *pieces, status=2):
    """Run ``argv``: ``status``, one ``dfem:`` line with ``pieces``, nothing written."""
    before = files_under(workdir)
    got, err = run(capsys, *argv)
    assert got == status, err
    assert_one_error_line(err, *pieces)
    assert files_under(workdir) == before
    return err


# --------------------------------------------------------------------- the output folder
@pytest.mark.parametrize("name", sorted(OUT_COMMANDS))
def test_an_out_that_is_a_file_is_refused_before_any_work(capsys, workdir, name):
    check_refused(capsys, workdir, [*OUT_COMMANDS[name], "--out", "a_file"],
                  "--out 'a_file' is a file")
    assert (workdir / "a_file").read_text() == "keep me\n"


@pytest.mark.parametrize("name", ["solve", "surrogate train", "optimize", "nurbs-fit"])
def test_an_out_inside_a_file_is_refused(capsys, workdir, name):
    check_refused(capsys, workdir, [*OUT_COMMANDS[name], "--out", "a_file/run"],
                  "lies inside 'a_file'")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("name", ["solve", "segment compare"])
def test_an_out_where_nothing_can_be_written_is_refused(capsys, workdir, name):
    check_refused(capsys, workdir, [*OUT_COMMANDS[name], "--out", "/proc/dfem-run"],
                  "files cannot be created in '/proc'")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root may write into a read-only folder")
def test_an_out_in_a_read_only_folder_is_refused(capsys, workdir):
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        check_refused(capsys, workdir, [*OUT_COMMANDS["solve"], "--out", "locked/run"],
                      "files cannot be created in 'locked'")
    finally:
        locked.chmod(0o755)


def test_check_output_folder_creates_nothing(tmp_path):
    assert check_output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_output_folder(tmp_path) == tmp_path
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DfemError, match="is empty"):
        check_output_folder("")
    with pytest.raises(DfemError, match="does not exist"):
        check_output_folder(tmp_path / "missing", "the run folder", exists=True)
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(DfemError, match="is a link to"):
        check_output_folder(tmp_path / "link")


# --------------------------------------------------------------------- --set
@pytest.mark.parametrize("name", sorted(CONFIG_COMMANDS))
def test_set_of_an_unknown_key_names_it(capsys, workdir, name):
    args, unknown, key, _, _ = CONFIG_COMMANDS[name]
    check_refused(capsys, workdir, [*args, "--out", "run", "--set", unknown], key)


@pytest.mark.parametrize("name", sorted(CONFIG_COMMANDS))
def test_set_of_a_bad_value_names_the_key(capsys, workdir, name):
    args, _, _, bad, piece = CONFIG_COMMANDS[name]
    check_refused(capsys, workdir, [*args, "--out", "run", "--set", bad], piece)


@pytest.mark.parametrize("name", sorted(CONFIG_COMMANDS))
@pytest.mark.parametrize("item", ["mesh.n", "=3", "mesh..n=3"])
def test_set_without_key_and_value_is_refused(capsys, workdir, name, item):
    args = CONFIG_COMMANDS[name][0]
    check_refused(capsys, workdir, [*args, "--out", "run", "--set", item],
                  "--set takes key=value", repr(item))


# --------------------------------------------------------------------- config files
BAD_CONFIGS = {
    "missing": (None, "does not exist"),
    "syntax": ("[mesh\nn = 4\n", "not valid TOML"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not UTF-8"),
    "folder": ("folder", "is a folder"),
}


@pytest.mark.parametrize("kind", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("name", sorted(CONFIG_COMMANDS))
def test_a_bad_config_file_is_one_line(capsys, workdir, name, kind):
    content, message = BAD_CONFIGS[kind]
    config = workdir / "config.toml"
    if content == "folder":
        config.mkdir()
    elif isinstance(content, bytes):
        config.write_bytes(content)
    elif content is not None:
        config.write_text(content)
    args = list(CONFIG_COMMANDS[name][0])
    args[args.index(next(a for a in args if isinstance(a, Path)))] = "config.toml"
    check_refused(capsys, workdir, [*args, "--out", "run"], "config.toml", message)


def test_read_toml_and_read_json_name_the_file(tmp_path):
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(DfemError, match="'.*x.json' is not valid JSON"):
        read_json(tmp_path / "x.json", "--table5 file")
    with pytest.raises(DfemError, match="is a folder"):
        read_toml(tmp_path)


# --------------------------------------------------------------------- options and runs
@pytest.mark.parametrize(("argv", "piece"), [
    (["convergence", CASES / "poisson_sine.toml", "--levels", "-1"], "--levels"),
    (["convergence", CASES / "poisson_sine.toml", "--levels", "two"], "--levels"),
    (["solve", CASES / "poisson_sine.toml", "--method", "fast"], "--method"),
    (["nurbs-fit", "--grid", "0"], "--grid"),
    (["nurbs-fit", "--sigma", "-0.1"], "--sigma"),
    (["nurbs-fit", "--knot-grad", "finite"], "--knot-grad"),
    (["surrogate", "eval", ".", "--samples", "0"], "--samples"),
    (["surrogate", "eval", ".", "--batch", "-4"], "--batch"),
    (["segment", "compare", CASES / "segmentation_noisy.toml", "--out", "run", "--seeds",
      "0"], "--seeds"),
    (["segment", "train", CASES / "segmentation_noisy.toml", "--out", "run", "--seed",
      "-1"], "--seed"),
    (["segment", "train", CASES / "segmentation_noisy.toml", "--out", "run", "--model",
      "vit"], "--model"),
    (["optimize", CASES / "optimize_mbb.toml"], "--out"),
    (["surrogate", "train", CASES / "surrogate_poisson64.toml", "--out", "run", "--device",
      "gpu0"], "not a torch device"),
    (["surrogate", "eval", ".", "--device", "cuda:99"], "CUDA device"),
    (["solve"], "case"),
    (["frobnicate"], "frobnicate"),
    ([], "command"),
])
def test_usage_errors_are_one_line(capsys, workdir, argv, piece):
    check_refused(capsys, workdir, argv, "dfem: error: dfem", piece)


@pytest.mark.parametrize(("argv", "piece"), [
    (["surrogate", "train", CASES / "surrogate_poisson64.toml", "--out", "run", "--resume"],
     "no checkpoint"),
    (["segment", "train", CASES / "segmentation_noisy.toml", "--out", "run", "--resume"],
     "does not exist; start without --resume"),
    (["optimize", CASES / "optimize_mbb.toml", "--out", "run", "--resume"],
     "does not exist; start the run without --resume"),
    (["surrogate", "eval", "run"], "does not exist"),
    (["segment", "eval", "run"], "does not exist"),
    (["surrogate", "eval", "a_file"], "is a file"),
    (["paper", "--table5", "missing.json", "--out", "run"], "missing.json"),
    (["solve", CASES / "optimize_mbb.toml"], "dfem optimize"),
])
def test_runs_that_cannot_start_are_one_line(capsys, workdir, argv, piece):
    check_refused(capsys, workdir, argv, piece)


@pytest.mark.parametrize("out", ["new/run", "existing"])
def test_an_error_found_during_the_solve_leaves_no_output(capsys, workdir, out):
    """A coefficient that is infinite is found only when it is evaluated, after the output
    folder's staging area was made: the folder is left as it was (or not created)."""
    if out == "existing":
        (workdir / out).mkdir()
        (workdir / out / "report.json").write_text("{}\n")
    check_refused(capsys, workdir, ["solve", CASES / "poisson_sine.toml", "--out", out,
                                    "--set", "mesh.n=8", "--set", "problem.f=1/0"],
                  "problem.f", "not finite")


def test_eval_of_a_folder_without_a_checkpoint(capsys, workdir):
    (workdir / "run").mkdir()
    check_refused(capsys, workdir, ["surrogate", "eval", "run"], "no checkpoint.pt in run")
    check_refused(capsys, workdir, ["segment", "eval", "run"], "holds no checkpoint.pt")


@pytest.mark.parametrize("name", ["surrogate train", "segment train", "optimize"])
def test_a_run_folder_holding_a_run_is_not_overwritten(capsys, workdir, name):
    run_folder = workdir / "run"
    run_folder.mkdir()
    (run_folder / "checkpoint.pt").write_bytes(b"an earlier run")
    err = check_refused(capsys, workdir, [*CONFIG_COMMANDS[name][0], "--out", "run"],
                        "--resume")
    assert (run_folder / "checkpoint.pt").read_bytes() == b"an earlier run", err


class _Fixed:
    """A stand-in parser whose ``parse_args`` returns ``dfem cases`` with another handler."""

    def __init__(self, handler):
        import dfem.cli

        self.args = dfem.cli.build_parser().parse_args(["cases"])
        self.args.run = handler

    def parse_args(self, argv):
        return self.args


def run_handler(capsys, monkeypatch, handler) -> tuple[int, str]:
    """``main`` with a command whose handler is ``handler``: the status and stderr."""
    import dfem.cli

    parser = _Fixed(handler)
    monkeypatch.setattr(dfem.cli, "build_parser", lambda: parser)
    return run(capsys, "cases")


def test_a_multi_line_message_is_printed_on_one_line(capsys, monkeypatch):
    def fail(args):
        raise DfemError("first line\nsecond line")

    assert run_handler(capsys, monkeypatch, fail) == (
        2, "dfem: error: first line second line\n")


def test_an_operating_system_error_is_one_line_with_status_1(capsys, monkeypatch):
    def fail(args):
        raise OSError(28, "No space left on device", "run/solution.vtu")

    status, err = run_handler(capsys, monkeypatch, fail)
    assert status == 1
    assert_one_error_line(err, "No space left on device", "run/solution.vtu")


@pytest.mark.parametrize(("detail", "line"), [
    (None, "dfem: interrupted\n"),
    ("run/checkpoint.pt holds epoch 3", "dfem: interrupted: run/checkpoint.pt holds epoch 3\n"),
])
def test_an_interrupt_in_process_is_one_line_with_status_130(capsys, monkeypatch, detail,
                                                             line):
    from dfem.cli_tools import Interrupted

    def stop(args):
        raise KeyboardInterrupt if detail is None else Interrupted(detail)

    assert run_handler(capsys, monkeypatch, stop) == (130, line)


# --------------------------------------------------------------------- what was written
def test_surrogate_train_writes_the_config_with_the_overrides(capsys, workdir):
    from dfem.surrogates.config import from_dict, load_config

    tiny = ["problem.n=8", "network.width=4", "network.depth=2", "training.steps=2",
            "training.batch_size=2", "training.validation_samples=2",
            "training.validate_every=2"]
    argv = ["surrogate", "train", CASES / "surrogate_poisson64.toml", "--out", "run"]
    status, err = run(capsys, *argv, *[a for s in tiny for a in ("--set", s)])
    assert status == 0, err
    written = tomllib.loads((workdir / "run" / "config.toml").read_text())
    expected = load_config(CASES / "surrogate_poisson64.toml", overrides=tiny)
    assert from_dict(written).to_dict() == expected.to_dict()
    assert written["training"]["steps"] == 2 and written["problem"]["n"] == 8


def test_toml_text_round_trips():
    data = {"description": 'a "quoted" line\nand é', "problem": {
        "n": 8, "dirichlet": {"left": 1.0, "right": -0.0}, "neumann": {}, "f": 1e-300,
        "w": [1, -2.5, float("inf")], "flag": False, "dotted.key": "x", "none": None}}
    back = tomllib.loads(toml_text(data, header="a header\nof two lines"))
    del data["problem"]["none"]
    assert back == data


def test_no_subcommand_module_imports_the_top_level_cli():
    """The subcommand modules get the table printing and the option types from
    dfem.cli_tools: importing dfem.cli back would be a cycle."""
    importers = []
    for path in sorted((ROOT / "dfem").rglob("*.py")):
        if path == ROOT / "dfem" / "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "dfem.cli" or n.startswith("dfem.cli.") for n in names):
                importers.append(str(path.relative_to(ROOT)))
    assert importers == []
