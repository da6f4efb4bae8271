"""Sign-changing integrands: one density against the split into channels (``signed=``).

For each case the same ``flowint.integrate`` call (one seed) is run with ``signed="off"`` (one
density trained on ``|f|``), ``"auto"`` (the default: the policy splits when it sees both signs
and no static sampler suffices) and ``"split"``, with quasi-random final points (the default)
and with i.i.d. ones (``qmc=False``), and, with ``--n-train``, in the equal-budget layout
(``n_train`` training calls, then the rest for the estimate). The table gives the estimate,
its pull, the sampler (``channels`` for a split run), the relative standard deviation per
final sample ``sdev·√n_final/|I|`` (with i.i.d. points and one density it cannot go below
``√((∫|f|/I)² − 1)``, 2.9 for the 2-D signed camel) and each channel's own: the parts ``+``
and ``−``, or the residual ``r`` where the split ended in it (its rel. std is relative to
``∫A``, not to ``I``; :mod:`flowint.run.split`).

With ``--seeds`` every row is run for each seed, and a second table gives, per case, mode
and kind of final points, the median and the largest relative standard deviation per sample
over the seeds, the largest |pull|, the shares of pulls within 1σ, 2σ and 3σ (honest error
bars from many i.i.d. final points: 68.3 / 95.4 / 99.7 %), and the goal of the channels
issue where it applies (i.i.d. final points of a split run: ≤ 0.1 in 2-D, ≤ 0.5 in 4-D, for
the median).

Usage::

    python benchmarks/signed_channels.py                   # 2-D and 4-D at 10⁵ calls
    python benchmarks/signed_channels.py --n-train 500000 --budget 550000 --cases \
        signed_camel:dim=2 --modes auto --qmc off --out results/signed_channels_large.md
    python benchmarks/signed_channels.py --n-train 1e6 --budget 1.1e6 --modes auto off \
        --qmc off --seeds 1-4                               # the equal-budget layout, 4 seeds
    python benchmarks/signed_channels.py ... --settings '{"flow_options": {"bins": 4}}'
"""

from __future__ import annotations

import argparse
import json
import statistics
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
           "channel − rel std (sampler)", "channel r rel std (sampler)", "calls",
           "final calls", "s"]
SEED_COLUMNS = ["integrand", "signed", "qmc", "seeds", "median rel std/sample",
                "largest rel std/sample", "largest |pull|", "within 1σ / 2σ / 3σ (%)",
                "samplers", "goal (i.i.d. split)"]
#: The channels issue's goals for the relative standard deviation per i.i.d. final sample of a
#: split run, by dimension.
GOALS = {2: 0.1, 4: 0.5}


def _seeds(text: str) -> list[int]:
    """``"3"`` or ``"1-4"``."""
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def over_seeds(rows: list[list[Any]], seeds: list[int]) -> list[list[Any]]:
    """The second table: one row per case, mode and kind of points, over the seeds."""
    groups: dict[tuple[str, str, str], list[list[Any]]] = {}
    for row in rows:  # integrand, seed, signed, qmc, n_train, result, exact, pull, sampler, ...
        groups.setdefault((row[0], row[2], row[3]), []).append(row)
    out = []
    for (spec, mode, qmc), runs in groups.items():
        rel = [r[9] for r in runs]
        med = statistics.median(rel)
        goal = "—"
        dim = integrands.get(spec).dim
        if qmc == "no" and mode != "off" and dim in GOALS:
            goal = (f"ok (≤ {GOALS[dim]})" if med <= GOALS[dim]
                    else f"MISS: {common.fmt(med)} > {GOALS[dim]}")
        samplers = ", ".join(sorted({r[8] for r in runs}))
        within = " / ".join(f"{100.0 * sum(abs(r[7]) < k for r in runs) / len(runs):.1f}"
                            for k in (1, 2, 3))
        out.append([spec, mode, qmc, f"{len(runs)} of {len(seeds)}", med, max(rel),
                    max(abs(r[7]) for r in runs), within, samplers, goal])
    return out


def run(spec: str, mode: str, qmc: bool, budget: int, n_train: int | None,
        seed: int, **extra: Any) -> list[Any]:
    """One row of the table (``extra``: further ``integrate`` settings)."""
    f = integrands.get(spec)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = flowint.integrate(f, f.dim, budget=budget, n_train=n_train, seed=seed,
                              signed=mode, qmc=qmc, progress=False, **extra)
    seconds = time.perf_counter() - t0
    part = {c: f"{common.fmt(r.channels[c].rel_std)} ({r.channels[c].method})"
            if c in r.channels else "—" for c in ("+", "-", "r")}
    return [spec, seed, mode, "yes" if qmc else "no", n_train, str(r), f"{float(f.exact):.8g}",
            r.pull(float(f.exact)), r.method, r.rel_std, part["+"], part["-"], part["r"],
            r.n_evals, r.n_evals_final, seconds]


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=CASES)
    p.add_argument("--modes", nargs="+", default=["off", "auto", "split"],
                   choices=["off", "auto", "split"])
    p.add_argument("--qmc", nargs="+", default=["on", "off"], choices=["on", "off"])
    p.add_argument("--budget", type=lambda s: int(float(s)), default=100_000)
    p.add_argument("--n-train", type=lambda s: int(float(s)), default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seeds", type=_seeds, default=None,
                   help="run every row for each seed of this range (e.g. 1-4); with a table over "
                   "the seeds")
    p.add_argument("--settings", type=json.loads, default={},
                   help="further integrate settings as a JSON object")
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR / "signed_channels.md")
    args = p.parse_args(argv)
    command = "python benchmarks/signed_channels.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    seeds = args.seeds or [args.seed]
    settings = {"budget": f"{args.budget:,}", "n_train": args.n_train,
                "seeds": ", ".join(map(str, seeds)),
                "flowint": "integrate(f, dim, budget, n_train, seed, signed, qmc), other "
                "settings default" + (f" except {args.settings}" if args.settings else "")}
    title = "Signed integrands: one density against two channels"
    columns = COLUMNS[:1] + (["seed"] if args.seeds else []) + COLUMNS[1:]
    rows: list[list[Any]] = []
    for spec in args.cases:
        for qmc in args.qmc:
            for mode in args.modes:
                for seed in seeds:
                    row = run(spec, mode, qmc == "on", args.budget, args.n_train, seed,
                              **args.settings)
                    rows.append(row if args.seeds else row[:1] + row[2:])
                    common.add_row(args.out, title, command, settings, columns, rows)
    if args.seeds:
        text = (common.header(title, command, settings) + "\n### Over seeds\n\n"
                + common.markdown_table(SEED_COLUMNS, over_seeds(rows, seeds))
                + "\n### Every run\n\n" + common.markdown_table(columns, rows))
        common.write_atomic(args.out, text)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
