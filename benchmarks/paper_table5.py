"""Table 5 of the DSA paper, measured (see :mod:`dfem.validation.table5`).

    python benchmarks/paper_table5.py --json dfem/data/results/paper_table5.json   # ~30 min
    python benchmarks/paper_table5.py --json /tmp/quick.json --quick                # minutes
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing dfem
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import torch_threads, write_json  # noqa: E402
from dfem.validation.paper import table5_markdown  # noqa: E402
from dfem.validation.table5 import run_table5  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--quick", action="store_true",
                        help="128x128 only, one seed, short network training")
    parser.add_argument("--seeds", type=int, help="seeds per network (default 3, quick 1)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    with torch_threads(args.threads):
        results = run_table5(args.quick, args.seeds)
    write_json(args.json, results)
    print(table5_markdown(results))
    print(f"wrote {args.json} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
