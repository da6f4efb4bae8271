"""Wall time of a small job: a 30 000-call 3-D Gaussian, flowint against VEGAS and plain RQMC.

A user with a cheap, smooth integrand and a small budget should get the answer at once: the
policy measures plain RQMC and a per-axis grid, finds that no flow would beat them within the
budget, and trains nothing. This script times ``flowint.integrate`` on
``exp(-|x|²)`` over ``[-2, 2]³`` (exact ``(√π erf 2)³``) with a budget of 30 000 calls, after one
warm-up call (torch's and scipy's one-time imports are not the job's cost), as the median of
``--repeats`` runs on one thread, next to VEGAS's usual recipe and plain RQMC at the same
calls. The issue's goal: under 1 s.

Usage::

    python benchmarks/small_run.py                # 7 repeats, writes results/small_run.md
    python benchmarks/small_run.py --repeats 3 --out /tmp/small.md
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

__all__ = ["EXACT", "main", "run"]

BUDGET = 30_000
EXACT = (math.sqrt(math.pi) * math.erf(2.0)) ** 3


def gauss(x: torch.Tensor) -> torch.Tensor:
    """``exp(-|x|²)``, batched."""
    return torch.exp(-(x * x).sum(-1))


class _Box:
    """The Gaussian mapped onto the unit cube (for the peers' runners), with its exact value."""

    dim = 3
    exact = EXACT

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return 64.0 * gauss(4.0 * u - 2.0)

    def numpy(self, u):
        return self(torch.as_tensor(u)).numpy()


def run(repeats: int, seed: int) -> list[dict]:
    """Median wall time and the error of flowint, VEGAS and plain RQMC on the small job."""
    import flowint

    flowint.integrate(gauss, 3, (-2, 2), budget=BUDGET, seed=seed, progress=False)  # warm-up
    rows = []
    times, res = [], None
    for k in range(repeats):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = flowint.integrate(gauss, 3, (-2, 2), budget=BUDGET, seed=seed + k,
                                    progress=False)
        times.append(time.perf_counter() - t0)
    rows.append({"method": f"flowint ({res.method})", "mean": res.mean, "sdev": res.sdev,
                 "calls": res.n_evals, "seconds": statistics.median(times)})
    box = _Box()
    for name, runner in (("vegas", common.run_vegas_recipe), ("plain RQMC", common.run_rqmc)):
        recs = [runner(box, BUDGET, seed + k) for k in range(repeats)]
        rows.append({"method": name, "mean": recs[-1].mean, "sdev": recs[-1].sdev,
                     "calls": recs[-1].n_evals,
                     "seconds": statistics.median(r.wall_time for r in recs)})
    for r in rows:
        r["pull"] = (r["mean"] - EXACT) / r["sdev"] if r["sdev"] > 0 else math.nan
        r["rel. error"] = abs(r["mean"] - EXACT) / EXACT
    return rows


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Run, print and write the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "small_run.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = run(args.repeats, args.seed)
    table = common.markdown_table(
        ["method", "mean", "sdev", "pull", "rel. error", "calls", "median s"],
        [[r["method"], r["mean"], r["sdev"], r["pull"], r["rel. error"], r["calls"],
          r["seconds"]] for r in rows])
    text = (common.header("Small job: 30 000-call 3-D Gaussian, wall time",
                          "python benchmarks/small_run.py " + " ".join(argv or sys.argv[1:]),
                          {"repeats": args.repeats, "seed": args.seed, "budget": BUDGET})
            + "\n" + table + "\n\nGoal: flowint under 1 s (median, one thread, after a warm-up "
            "call).\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
