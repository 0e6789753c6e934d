"""Progress reporting for long runs: a tqdm bar on a terminal, plain lines otherwise.

Every progress display of dfem goes through :class:`ProgressBar` (or :func:`progress`, the
iterator form built on it): the bar when the stream is a terminal and tqdm is installed,
otherwise the lines each caller chooses, so that logs and CI output stay readable.
"""

from __future__ import annotations

import math
import sys
import weakref

_OPEN: weakref.WeakSet = weakref.WeakSet()  # the bars shown now, for close_all


class ProgressBar:
    """Progress of a run of ``total`` units on ``stream`` (default: stderr).

    On a terminal with tqdm installed, a tqdm bar that :meth:`update` advances and
    annotates; anywhere else, nothing but the lines passed to :meth:`log`. The bar opens
    at the first :meth:`update`, so a resumed run starts where it picked up.

    Parameters
    ----------
    total : int
        The number of units of the whole run.
    description : str, optional
        The bar's label.
    unit : str
        What a unit is (``"it"``, ``"step"``).
    stream : file, optional
        Where to report; stderr by default.

    Examples
    --------
    >>> with ProgressBar(3, "fit") as bar:  # doctest: +SKIP
    ...     for k in range(1, 4):
    ...         bar.update(1, {"loss": 1 / k}, at=k)
    ...         bar.log(f"iteration {k}/3")
    """

    def __init__(self, total: int, description: str | None = None, unit: str = "it",
                 stream=None):
        self.total, self.description, self.unit = total, description, unit
        self.stream = sys.stderr if stream is None else stream
        self.bar = None
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())

    def _open(self, initial: int) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            self.interactive = False
            return
        self.bar = tqdm(total=self.total, initial=initial, desc=self.description,
                        unit=self.unit, file=self.stream)
        _OPEN.add(self)

    def update(self, steps: int = 1, postfix: dict | None = None, at: int | None = None) -> None:
        """Advance the bar by ``steps`` units and show ``postfix`` beside it.

        ``at`` is the number of units done after this update; the first update opens the
        bar at ``at - steps`` (default: 0). Off a terminal this does nothing.
        """
        if not self.interactive:
            return
        if self.bar is None:
            self._open(0 if at is None else max(at - steps, 0))
            if self.bar is None:
                return
        if steps:
            self.bar.update(steps)
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)

    def log(self, text: str) -> None:
        """Print ``text`` as one line, when no bar is shown (off a terminal)."""
        if not self.interactive:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Close the bar (if one was opened)."""
        if self.bar is not None:
            bar, self.bar = self.bar, None
            _OPEN.discard(self)
            bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def close_all() -> None:
    """Close every bar still shown (an interrupted run leaves its bar open), so that the
    next message starts on a line of its own."""
    for bar in list(_OPEN):
        bar.close()


def progress(items, description: str, unit: str = "it", max_lines: int | None = None):
    """Iterate over ``items``, reporting progress on stderr.

    On a terminal this is a tqdm bar (when tqdm is installed); otherwise (a log file,
    CI) one line per item, ``description: k/n item``, so logs stay readable.

    Parameters
    ----------
    items : iterable
    description : str
    unit : str
        What an item is (``"step"``), for the tqdm bar.
    max_lines : int, optional
        Off a terminal, print only every ``ceil(n / max_lines)``-th item and the last, so
        a long run logs at most ``max_lines`` lines (the time loops pass 20). Default: a
        line for every item.
    """
    items = list(items)
    n = len(items)
    every = 1 if max_lines is None else max(1, math.ceil(n / max(1, max_lines)))

    def run():
        with ProgressBar(n, description, unit) as bar:
            for k, item in enumerate(items, 1):
                if k % every == 0 or k == n:
                    bar.log(f"{description}: {k}/{n} {getattr(item, 'name', item)}")
                yield item
                bar.update(1, at=k)

    return run()
