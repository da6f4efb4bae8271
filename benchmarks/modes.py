"""Separated peaks: one flow against one channel per peak (``channels="modes"``), same calls.

For each case and seed the same ``flowint.integrate(f, dim, budget=B, seed=seed)`` call is
run with the default single flow, with ``channels="modes"`` (a search for the peaks of
``|f|``, then one flow per peak behind its own channel map and one for the rest;
:mod:`flowint.run.mode_channels`) and with ``channels="auto"`` (the search, then channels only
if a peak is much higher than the volume-weighted mean height). The table gives the
estimate, its pull against the exact value, and whether the run is **confidently wrong**
(``|pull| > 3``), the calls (those of the search included), the channels and each channel's
estimate, and wall seconds.

The default case is ``three_peaks`` in 8-D (:class:`integrands.peaks.ThreePeaks`): its narrowest
peak carries half the integral, and a single flow trained by tempering loses it.

Usage::

    python benchmarks/modes.py                                # three_peaks 8-D, 1e5, seeds 1-3
    python benchmarks/modes.py --cases three_peaks:dim=4 --budget 5e4 --seeds 1 2
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import common

import flowint
import integrands

CASES = ["three_peaks:dim=8"]
METHODS = {"single flow": {}, "modes": {"channels": "modes"}, "auto": {"channels": "auto"}}
COLUMNS = ["integrand", "seed", "method", "result", "exact", "pull", "verdict", "channels",
           "peaks found", "calls", "s"]


def run(spec: str, method: str, budget: int, seed: int) -> list[Any]:
    """One row of the table."""
    f = integrands.get(spec)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = flowint.integrate(f, f.dim, budget=budget, seed=seed, progress=False,
                              **METHODS[method])
    seconds = time.perf_counter() - t0
    pull = r.pull(float(f.exact))
    peaks = "—"
    if r.channels and method != "single flow":
        peaks = "; ".join(f"{c}: {common.fmt(p.mean, 3)}" for c, p in r.channels.items()
                          if c != "rest")
    return [spec, seed, method, str(r), f"{float(f.exact):.8g}", pull,
            "**confidently wrong**" if abs(pull) > 3 else "ok",
            len(r.channels) if r.channels else 1, peaks, r.n_evals, seconds]


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=CASES)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--budget", type=lambda s: int(float(s)), default=100_000)
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR / "modes.md")
    args = p.parse_args(argv)
    command = "python benchmarks/modes.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    settings = {"budget": f"{args.budget:,}", "seeds": args.seeds,
                "flowint": "integrate(f, dim, budget, seed), defaults; 'modes': channels='modes'; "
                "'auto': channels='auto'"}
    rows = []
    for spec in args.cases:
        for seed in args.seeds:
            for method in args.methods:
                rows.append(run(spec, method, args.budget, seed))
                common.add_row(args.out, "Separated peaks: one flow against one channel per "
                               "peak", command, settings, COLUMNS, rows)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
