"""Wall time of a small job: a 30 000-call 3-D Gaussian, flowint against VEGAS and plain RQMC.

A user with a cheap, smooth integrand and a small budget should get the answer at once: the
policy measures plain RQMC and a per-axis grid, finds that no flow would beat them within the
budget, and trains nothing. This script times ``flowint.integrate`` on
``exp(-|x|²)`` over ``[-2, 2]³`` (exact ``(√π erf 2)³``) with a budget of 30 000 calls, after one
warm-up call (torch's and scipy's one-time imports are not the job's cost), as the median of
``--repeats`` runs on one thread, next to VEGAS's usual recipe and plain RQMC at the same
calls. The issue's goal: under 1 s.

A new user's first call pays more: what the process has not yet loaded. The row *flowint, first
call in a fresh process* times the same call as the first thing a new Python process does after
``import flowint`` (the import's own seconds are in its note), the median of
``--fresh-repeats`` processes.

Usage::

    python benchmarks/small_run.py                # 7 repeats, writes results/small_run.md
    python benchmarks/small_run.py --repeats 3 --out /tmp/small.md
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
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


_FIRST_CALL = """
import math, sys, time, warnings
t0 = time.perf_counter()
import torch
torch.set_num_threads(1)
import flowint
t1 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    r = flowint.integrate(lambda x: torch.exp(-(x * x).sum(-1)), 3, (-2, 2), budget={budget},
                          seed={seed}, progress=False)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, r.mean, r.sdev, r.n_evals, r.method)
"""


def first_call(repeats: int, seed: int) -> dict:
    """The job as the first call of fresh processes: median seconds of the call, and of the
    imports before it."""
    imports, calls, out = [], [], None
    for k in range(repeats):
        code = _FIRST_CALL.format(budget=BUDGET, seed=seed + k)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split()
        imports.append(float(out[0]))
        calls.append(float(out[1]))
    return {"method": f"flowint ({out[5]}), first call in a fresh process",
            "mean": float(out[2]), "sdev": float(out[3]), "calls": int(out[4]),
            "seconds": statistics.median(calls),
            "note": f"import torch + flowint before it: {statistics.median(imports):.2f} s"}


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
                 "calls": res.n_evals, "seconds": statistics.median(times),
                 "note": "after a warm-up call"})
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
    p.add_argument("--fresh-repeats", type=int, default=3,
                   help="fresh processes timed for the first-call row (0: none)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "small_run.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = run(args.repeats, args.seed)
    if args.fresh_repeats > 0:
        fresh = first_call(args.fresh_repeats, args.seed)
        fresh["pull"] = (fresh["mean"] - EXACT) / fresh["sdev"]
        fresh["rel. error"] = abs(fresh["mean"] - EXACT) / EXACT
        rows.insert(1, fresh)
    table = common.markdown_table(
        ["method", "mean", "sdev", "pull", "rel. error", "calls", "median s", "note"],
        [[r["method"], r["mean"], r["sdev"], r["pull"], r["rel. error"], r["calls"],
          r["seconds"], r.get("note", "")] for r in rows])
    text = (common.header("Small job: 30 000-call 3-D Gaussian, wall time",
                          "python benchmarks/small_run.py " + " ".join(argv or sys.argv[1:]),
                          {"repeats": args.repeats, "fresh repeats": args.fresh_repeats,
                           "seed": args.seed, "budget": BUDGET})
            + "\n" + table + "\n\nGoal: flowint under 1 s (median, one thread, after a warm-up "
            "call).\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
