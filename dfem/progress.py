"""Progress reporting for long runs: a tqdm bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
import sys


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
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm

            return tqdm(items, desc=description, unit=unit, file=sys.stderr)
        except ImportError:
            pass
    every = 1 if max_lines is None else max(1, math.ceil(len(items) / max(1, max_lines)))

    def plain():
        for k, item in enumerate(items, 1):
            if k % every == 0 or k == len(items):
                print(f"{description}: {k}/{len(items)} {getattr(item, 'name', item)}",
                      file=sys.stderr, flush=True)
            yield item

    return plain()
