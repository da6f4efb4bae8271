"""Seconds per scrambled Sobol set: ``flowint.run.sobol`` against ``scipy.stats.qmc.Sobol``.

Every randomization of a quasi-random estimate is a freshly scrambled Sobol set with 64-bit
digits. scipy scrambles all 64 direction numbers of every coordinate (a 64 × 64 binary matrix
product each); ``flowint.run.sobol`` scrambles only the ``log2 n`` a set of ``n`` points uses.
This script times both (the median of ``--repeats`` sets, one thread) for a few dimensions and
set sizes, and prints the ratio.

Usage::

    python benchmarks/sobol_speed.py                 # writes results/sobol_speed.md
    python benchmarks/sobol_speed.py --repeats 5 --out /tmp/sobol.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

__all__ = ["main", "time_sets"]

HERE = Path(__file__).resolve().parent
DIMS = (2, 8, 16, 32)
SIZES = (64, 4096, 65536)


def time_sets(dim: int, n: int, repeats: int) -> tuple[float, float]:
    """Median seconds per set of ``n`` points in ``dim`` dimensions: (flowint, scipy)."""
    from scipy.stats import qmc

    from flowint.run.sobol import scrambled_sobol_array

    rng = np.random.default_rng(0)
    scrambled_sobol_array(n, dim, rng)  # the direction numbers are read once per dimension
    ours, theirs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(repeats):
            t0 = time.perf_counter()
            scrambled_sobol_array(n, dim, rng)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            qmc.Sobol(dim, scramble=True, seed=seed, bits=64).random(n)
            theirs.append(time.perf_counter() - t0)
    return statistics.median(ours), statistics.median(theirs)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--out", type=Path, default=HERE / "results" / "sobol_speed.md")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    for dim in DIMS:
        for n in SIZES:
            ours, theirs = time_sets(dim, n, args.repeats)
            rows.append([dim, n, 1e3 * ours, 1e3 * theirs, ours / theirs])
            print(f"dim {dim:3d}, {n:6d} points: flowint {1e3 * ours:.3f} ms, scipy "
                  f"{1e3 * theirs:.3f} ms", flush=True)
    command = "python benchmarks/sobol_speed.py " + " ".join(argv if argv is not None
                                                            else sys.argv[1:])
    text = common.header("Seconds per scrambled Sobol set (64-bit digits)", command.strip(),
                         {"repeats (median)": args.repeats, "threads": 1})
    text += "\n" + common.markdown_table(
        ["dim", "points", "flowint ms", "scipy ms", "flowint / scipy"], rows)
    common.write_atomic(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
