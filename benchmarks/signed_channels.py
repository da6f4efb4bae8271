"""Sign-changing integrands: one density against two channels (``signed=``), per sample.

For each case the same ``flowint.integrate`` call (one seed) is run with ``signed="off"`` (one
density trained on ``|f|``), ``"auto"`` (the default: the policy splits when it sees both signs
and no static sampler suffices) and ``"split"``, with quasi-random final points (the default)
and with i.i.d. ones (``qmc=False``), and, with ``--n-train``, in the equal-budget layout
(``n_train`` training calls, then the rest for the estimate). The table gives the estimate,
its pull, the sampler (``channels`` for a split run), the relative standard deviation per
final sample ``sdev·√n_final/|I|`` (with i.i.d. points and one density it cannot go below
``√((∫|f|/I)² − 1)``, 2.9 for the 2-D signed camel) and each channel's own.

Usage::

    python benchmarks/signed_channels.py                   # 2-D and 4-D at 10⁵ calls
    python benchmarks/signed_channels.py --n-train 500000 --budget 550000 --cases \
        signed_camel:dim=2 --modes auto --qmc off --out results/signed_channels_large.md
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

CASES = ["signed_camel:dim=2", "signed_camel:dim=4"]
COLUMNS = ["integrand", "signed", "qmc", "n_train", "result", "exact", "pull", "sampler",
           "rel std/sample", "channel + rel std (sampler)",
           "channel − rel std (sampler)", "calls", "final calls",
           "s"]


def run(spec: str, mode: str, qmc: bool, budget: int, n_train: int | None,
        seed: int) -> list[Any]:
    """One row of the table."""
    f = integrands.get(spec)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = flowint.integrate(f, f.dim, budget=budget, n_train=n_train, seed=seed,
                              signed=mode, qmc=qmc, progress=False)
    seconds = time.perf_counter() - t0
    part = {c: f"{common.fmt(r.channels[c].rel_std)} ({r.channels[c].method})"
            if c in r.channels else "—" for c in ("+", "-")}
    return [spec, mode, "yes" if qmc else "no", n_train, str(r), f"{float(f.exact):.8g}",
            r.pull(float(f.exact)), r.method, r.rel_std, part["+"], part["-"], r.n_evals,
            r.n_evals_final, seconds]


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=CASES)
    p.add_argument("--modes", nargs="+", default=["off", "auto", "split"],
                   choices=["off", "auto", "split"])
    p.add_argument("--qmc", nargs="+", default=["on", "off"], choices=["on", "off"])
    p.add_argument("--budget", type=lambda s: int(float(s)), default=100_000)
    p.add_argument("--n-train", type=lambda s: int(float(s)), default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR / "signed_channels.md")
    args = p.parse_args(argv)
    command = "python benchmarks/signed_channels.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    settings = {"budget": f"{args.budget:,}", "n_train": args.n_train, "seed": args.seed,
                "flowint": "integrate(f, dim, budget, n_train, seed, signed, qmc), other "
                "settings default"}
    rows = []
    for spec in args.cases:
        for qmc in args.qmc:
            for mode in args.modes:
                rows.append(run(spec, mode, qmc == "on", args.budget, args.n_train, args.seed))
                common.add_row(args.out, "Signed integrands: one density against two channels",
                               command, settings, COLUMNS, rows)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
