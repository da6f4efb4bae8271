"""Distributed evaluation: speed-up against the number of workers for a slow integrand.

The integrand is the 4-D Gaussian bump made artificially expensive: every call sleeps
``cost × (points in the chunk)`` (a stand-in for a Monte Carlo event generator, a detector
simulation, a PDE solve per point). Chunks of ``max_batch`` points go to the workers through
``Integrand(..., executor=...)``, for

* ``serial``: in the calling process;
* ``processes``: ``concurrent.futures.ProcessPoolExecutor`` made from a factory (forkserver);
* ``dask``: a ``distributed.LocalCluster`` on loopback, one thread per worker process;

with 1 and 2 workers. Two measurements per row: evaluating a fixed set of points (the pure
evaluation speed-up), and a whole ``flowint.integrate`` run with a fixed training budget. A
cheap integrand (no sleep) is timed too, to show the per-task overhead that distribution costs
when the integrand is fast.

Usage::

    python benchmarks/distributed_speedup.py          # writes benchmarks/results/distributed.md
    python benchmarks/distributed_speedup.py --quick  # smaller, prints only
    python benchmarks/distributed_speedup.py --cost-us 100 --chunk 2000 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SlowGauss", "main"]


class SlowGauss:
    """``exp(-|x - 0.4|² / 0.04)`` that costs ``cost`` seconds per point (by sleeping)."""

    def __init__(self, cost: float):
        self.cost = cost

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.cost:
            time.sleep(self.cost * len(x))
        return np.exp(-((x - 0.4) ** 2).sum(-1) / 0.04)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--cost-us", type=float, default=50.0,
                   help="integrand cost per point in microseconds (default 50)")
    p.add_argument("--chunk", type=int, default=None,
                   help="points per task, max_batch (default 1000; quick 250)")
    p.add_argument("--points", type=int, default=None,
                   help="points of the evaluation timing (default 100000; quick 10000)")
    p.add_argument("--budget", type=int, default=None,
                   help="integrand calls of the integrate() timing, a fifth for training "
                        "(default 200000; quick 40000)")
    p.add_argument("--backends", nargs="+", default=["processes", "dask"],
                   choices=["processes", "dask"])
    p.add_argument("--quick", action="store_true", help="small sizes, no file written")
    p.add_argument("--out", default=None,
                   help="markdown file (default benchmarks/results/distributed.md)")
    args = p.parse_args(argv)
    args.chunk = args.chunk or (250 if args.quick else 1000)
    args.points = args.points or (10_000 if args.quick else 100_000)
    args.budget = args.budget or (40_000 if args.quick else 200_000)
    if args.out is None and not args.quick:
        args.out = str(Path(__file__).resolve().parent / "results" / "distributed.md")
    return args


class Pools:
    """Make and close the executors of one backend with a given number of workers."""

    def __init__(self, backend: str, workers: int):
        self.backend, self.workers = backend, workers
        self.cluster = self.client = None

    def __enter__(self) -> Any:
        if self.backend == "serial":
            return None
        if self.backend == "processes":
            ctx = mp.get_context("forkserver")
            return functools.partial(ProcessPoolExecutor, self.workers, mp_context=ctx)
        import distributed

        self.cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                                processes=True, host="127.0.0.1",
                                                dashboard_address=None)
        self.client = distributed.Client(self.cluster)
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
            self.cluster.close()


def evaluate_time(f: SlowGauss, executor: Any, args: argparse.Namespace) -> float:
    """Seconds to evaluate ``args.points`` points (after one warm-up call of the pool)."""
    import torch

    from flowint import Integrand

    integrand = Integrand(f, 4, backend="numpy", max_batch=args.chunk, executor=executor)
    u = torch.rand(args.points, 4, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(0))
    integrand(u[: args.chunk * 4])  # start the workers
    t0 = time.perf_counter()
    integrand(u)
    seconds = time.perf_counter() - t0
    integrand.close()
    return seconds


def integrate_time(f: SlowGauss, executor: Any, args: argparse.Namespace) -> tuple[float, str]:
    """Seconds of a whole integrate() run with a fixed split of the budget, and its result."""
    import warnings

    import flowint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t0 = time.perf_counter()
        r = flowint.integrate(f, 4, budget=args.budget, n_train=args.budget // 5, seed=0,
                              batch_size=4 * args.chunk, max_batch=args.chunk,
                              backend="numpy", executor=executor, progress=False)
    return time.perf_counter() - t0, str(r)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    integrate_time(SlowGauss(0.0), None, args)  # warm-up: torch's one-time initialisation
    rows: list[dict[str, Any]] = []
    configs = [("serial", 1)] + [(b, w) for b in args.backends for w in args.workers]
    for cost_us in (args.cost_us, 0.0):
        f = SlowGauss(cost_us * 1e-6)
        base_eval = base_int = None
        for backend, workers in configs:
            with Pools(backend, workers) as executor:
                t_eval = evaluate_time(f, executor, args)
                t_int, result = (integrate_time(f, executor, args) if cost_us
                                 else (float("nan"), ""))
            base_eval = base_eval or t_eval
            base_int = base_int or t_int
            rows.append({"cost_us": cost_us, "backend": backend, "workers": workers,
                         "eval_s": t_eval, "eval_speedup": base_eval / t_eval,
                         "int_s": t_int, "int_speedup": base_int / t_int, "result": result})
            print(f"cost {cost_us:g} us/point  {backend:<9} {workers} worker(s): evaluation "
                  f"{t_eval:.2f} s (x{base_eval / t_eval:.2f})"
                  + (f", integrate {t_int:.2f} s (x{base_int / t_int:.2f}) {result}"
                     if cost_us else ""), flush=True)
    text = markdown(args, rows)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"written to {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def markdown(args: argparse.Namespace, rows: list[dict[str, Any]]) -> str:
    import distributed
    import torch

    task_ms = args.cost_us * args.chunk / 1e3
    lines = [
        "# Distributed evaluation: speed-up against workers",
        "",
        f"Written by `benchmarks/distributed_speedup.py {' '.join(sys.argv[1:])}` on "
        f"{time.strftime('%Y-%m-%d %H:%M')}: {platform.machine()}, {os.cpu_count()} CPU "
        f"cores (shared with other jobs), Python {platform.python_version()}, torch "
        f"{torch.__version__}, distributed {distributed.__version__}.",
        "",
        f"Integrand: a 4-D Gaussian bump costing {args.cost_us:g} µs per point (sleep), in "
        f"tasks of {args.chunk} points ({task_ms:g} ms of work per task). *Evaluation*: "
        f"{args.points} points through `Integrand(..., executor=...)`. *integrate*: "
        f"`flowint.integrate(f, 4, budget={args.budget}, n_train={args.budget // 5}, "
        f"batch_size={4 * args.chunk}, max_batch={args.chunk}, seed=0)`: 4 tasks per training "
        "iteration, and final iterations (randomizations of the quasi-random estimate) of "
        "several tasks each. Speed-ups are against the serial run. Pools are made once and "
        "reused across iterations; the start of a process pool made from a factory is part "
        "of the integrate time, the Dask cluster's start is not.",
        "",
        "| integrand cost | executor | workers | evaluation (s) | speed-up | integrate (s) | "
        "speed-up | result |",
        "|---:|:---|---:|---:|---:|---:|---:|:---|",
    ]
    for r in rows:
        int_cols = (f"{r['int_s']:.2f} | {r['int_speedup']:.2f} | {r['result']}"
                    if r["cost_us"] else "– | – | –")
        lines.append(f"| {r['cost_us']:g} µs/point | {r['backend']} | {r['workers']} | "
                     f"{r['eval_s']:.3f} | {r['eval_speedup']:.2f} | {int_cols} |")
    lines += [
        "",
        "Reading the table: with an expensive integrand the evaluation time divides by the "
        "number of workers (up to the cores available); `integrate` gains less, because the "
        "flow's training and sampling stay in the calling process and every iteration waits "
        "for its slowest task (Amdahl). With a cheap integrand (0 µs/point) each task costs "
        "more in transfer and scheduling than in work, and distribution slows things down. "
        "See `docs/distributed.md` for the rule of thumb.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
