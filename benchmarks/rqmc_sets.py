"""Fewer, larger randomizations: plain RQMC at equal calls in 16, 8 and 4 scrambled Sobol sets.

A quasi-random estimate of ``N`` calls is the mean of ``K`` independently scrambled sets of
``N / K`` points; its error bar is the spread of the ``K`` set means (``K − 1`` degrees of
freedom). Where the variance of one set's mean falls as ``n^-a`` with ``a > 1``, fewer and larger
sets give a smaller error: ``(K / K')^(a-1)`` in variance going from ``K`` to ``K'`` sets. What
they cost is the error bar's own precision (Student's t with ``K' − 1`` degrees of freedom).
This script measures both on the points ``flowint`` itself draws (``flowint.run.sobol``), per
integrand, at ``N = 2^20`` calls: RMS error over seeds, its ratio to 16 sets, the share of
pulls within ±1 against Student's t with ``K − 1`` degrees of freedom, the share beyond ±3
(t with 7 degrees of freedom: 2.0 %; with 15: 0.9 %) and the RMS pull (1.18 and 1.07).
Where the set means of a smooth integrand are far from normal, few sets give error bars
whose ±1 holds fewer runs than the t law says — why ``flowint.run.model.final_sizes`` keeps
at least 12 sets (a trial with 8 at c8d9c3d put 55.0 % of the 258 fixed-budget runs that
ended with 10 sets within ±1σ of the exact value, against t's 65.7 ± 3.0 %: the budget group of
``benchmarks/policy_coverage.py --groups budget --seeds 48``, runs in
``results/policy_coverage_fewer_sets_trial_runs.csv``).

Usage::

    python benchmarks/rqmc_sets.py                  # 5 integrands x 60 seeds
    python benchmarks/rqmc_sets.py --seeds 20 --cases camel:dim=2 --out /tmp/sets.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from policy_coverage import coverage_t  # noqa: E402

__all__ = ["CASES", "SETS", "main", "run_case"]

CASES = ["camel:dim=2", "signed_camel:dim=2", "annulus", "camel:dim=4", "gaussian_genz:dim=4"]
SETS = (16, 8, 4)
HERE = Path(__file__).resolve().parent


def run_case(spec: str, calls_log2: int, seeds: int, sets: Sequence[int] = SETS,
             ) -> dict[int, dict[str, float]]:
    """For each number of sets ``K``: RMS error, share of ``|pull| ≥ 3`` and RMS pull of plain
    RQMC with ``K`` sets of ``2^calls_log2 / K`` points, over ``seeds`` seeds."""
    import integrands
    from flowint.run.sobol import scrambled_sobol_array

    f = integrands.get(spec)
    out = {}
    for k in sets:
        n = 2**calls_log2 // k
        errs, pulls = [], []
        for seed in range(seeds):
            rng = np.random.default_rng([k, seed])
            means = np.array([float(f(torch.as_tensor(scrambled_sobol_array(n, f.dim, rng)))
                                    .double().mean()) for _ in range(k)])
            mean, sdev = means.mean(), means.std(ddof=1) / math.sqrt(k)
            errs.append(mean - f.exact)
            pulls.append((mean - f.exact) / sdev)
        e, p = np.array(errs), np.array(pulls)
        out[k] = {"rms": float(np.sqrt((e**2).mean())), "tail3": float((np.abs(p) >= 3).mean()),
                  "rms_pull": float(np.sqrt((p**2).mean())),
                  "within1": float((np.abs(p) < 1).mean())}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=CASES)
    p.add_argument("--seeds", type=int, default=60)
    p.add_argument("--calls-log2", type=int, default=20)
    p.add_argument("--out", type=Path, default=HERE / "results" / "rqmc_sets.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for spec in args.cases:
        t0 = time.perf_counter()
        res = run_case(spec, args.calls_log2, args.seeds)
        base = res[SETS[0]]["rms"]
        for k, r in res.items():
            rows.append([spec, k, 2**args.calls_log2 // k, r["rms"], r["rms"] / base,
                         100 * r["within1"], 100 * coverage_t(1.0, k - 1), 100 * r["tail3"],
                         r["rms_pull"]])
        print(f"{spec}: " + ", ".join(f"K={k} {r['rms'] / base:.2f}x" for k, r in res.items())
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    command = "python benchmarks/rqmc_sets.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:])
    text = common.header("Plain RQMC at equal calls in fewer, larger randomizations",
                         command.strip(), {"calls": f"2^{args.calls_log2}",
                                           "seeds": args.seeds, "points": "flowint.run.sobol"})
    text += "\n" + common.markdown_table(
        ["case", "sets K", "points per set", "RMS error", "÷ RMS error at K=16",
         "pulls within ±1 (%)", "Student t within ±1 (%)", "pulls beyond ±3 (%)", "RMS pull"],
        rows)
    common.write_atomic(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
