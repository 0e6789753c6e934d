"""Progress reporting for long runs: a tqdm bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys


def progress(items, description: str, unit: str = "it"):
    """Iterate over ``items``, reporting progress on stderr.

    On a terminal this is a tqdm bar (when tqdm is installed); otherwise (a log file,
    CI) one line per item, ``description: k/n item``, so logs stay readable.
    """
    items = list(items)
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm

            return tqdm(items, desc=description, unit=unit, file=sys.stderr)
        except ImportError:
            pass

    def plain():
        for k, item in enumerate(items, 1):
            print(f"{description}: {k}/{len(items)} {getattr(item, 'name', item)}",
                  file=sys.stderr, flush=True)
            yield item

    return plain()
