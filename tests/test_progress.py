"""dfem.progress: one progress display for every long run (a bar on a terminal, lines in logs)."""

import io

from dfem.progress import ProgressBar, close_all, progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_off_a_terminal_only_the_logged_lines_appear():
    stream = io.StringIO()
    with ProgressBar(10, "fit", stream=stream) as bar:
        for k in range(1, 4):
            bar.update(1, {"loss": 1.0 / k}, at=k)
            bar.log(f"iteration {k}")
    assert bar.bar is None
    assert stream.getvalue().splitlines() == ["iteration 1", "iteration 2", "iteration 3"]


def test_on_a_terminal_a_bar_opens_where_the_run_resumes_and_lines_are_not_printed():
    stream = Terminal()
    bar = ProgressBar(10, "optimize", stream=stream)
    bar.update(1, {"compliance": "3.5"}, at=7)  # a run resumed after 6 iterations
    assert bar.bar is not None and bar.bar.n == 7 and bar.bar.total == 10
    bar.update(2)
    assert bar.bar.n == 9
    bar.log("iteration 9/10")
    bar.close()
    text = stream.getvalue()
    assert "optimize" in text and "9/10" in text and "compliance=3.5" in text
    assert "iteration 9/10" not in text


def test_close_all_closes_the_bars_an_interrupted_run_left_open():
    bars = [ProgressBar(5, f"bar {k}", stream=Terminal()) for k in range(2)]
    for bar in bars:
        bar.update(1)
    assert all(bar.bar is not None for bar in bars)
    close_all()
    assert all(bar.bar is None for bar in bars)
    close_all()  # nothing left to close


def test_progress_iterates_over_every_item_and_closes_its_bar(capsys):
    seen = list(progress(["a", "b", "c"], "cases", unit="case"))
    assert seen == ["a", "b", "c"]
    assert capsys.readouterr().err.splitlines() == ["cases: 1/3 a", "cases: 2/3 b",
                                                    "cases: 3/3 c"]
