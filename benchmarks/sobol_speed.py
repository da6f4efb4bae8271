"""Seconds per scrambled Sobol set: ``flowint.run.sobol`` against ``scipy.stats.qmc.Sobol``.

Every randomization of a quasi-random estimate is a freshly scrambled Sobol set.
``flowint`` draws it with nested uniform scrambling (its default: a table of ``2^m`` random
flips per coordinate for a set of ``n ≤ 2^m`` points, the digits below the ``m``-th uniform)
or with linear matrix scrambling and a digital shift of the ``log2 n`` direction numbers the
set uses; scipy (``scramble=True, bits=64``) applies the linear scrambling to all 64 direction
numbers of every coordinate (a 64 × 64 binary matrix product each). This script times the
three (the median of ``--repeats`` sets, one thread) for a few dimensions and set sizes, and
prints the ratios to scipy.

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


def time_sets(dim: int, n: int, repeats: int) -> tuple[float, float, float]:
    """Median seconds per set of ``n`` points in ``dim`` dimensions: (flowint nested,
    flowint linear, scipy)."""
    from scipy.stats import qmc

    from flowint.run.sobol import scrambled_sobol_array

    rng = np.random.default_rng(0)
    scrambled_sobol_array(n, dim, rng)  # the direction numbers are read once per dimension
    nested, linear, theirs = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(repeats):
            for scramble, times in (("nested", nested), ("linear", linear)):
                t0 = time.perf_counter()
                scrambled_sobol_array(n, dim, rng, scramble)
                times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            qmc.Sobol(dim, scramble=True, seed=seed, bits=64).random(n)
            theirs.append(time.perf_counter() - t0)
    return statistics.median(nested), statistics.median(linear), statistics.median(theirs)


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
            nested, linear, theirs = time_sets(dim, n, args.repeats)
            rows.append([dim, n, 1e3 * nested, 1e3 * linear, 1e3 * theirs, nested / theirs,
                         linear / theirs])
            print(f"dim {dim:3d}, {n:6d} points: flowint nested {1e3 * nested:.3f} ms, linear "
                  f"{1e3 * linear:.3f} ms, scipy {1e3 * theirs:.3f} ms", flush=True)
    command = "python benchmarks/sobol_speed.py " + " ".join(argv if argv is not None
                                                            else sys.argv[1:])
    text = common.header("Seconds per scrambled Sobol set (nested, linear, scipy)", command.strip(),
                         {"repeats (median)": args.repeats, "threads": 1})
    text += "\n" + common.markdown_table(
        ["dim", "points", "flowint nested ms", "flowint linear ms", "scipy ms",
         "nested / scipy", "linear / scipy"], rows)
    common.write_atomic(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
