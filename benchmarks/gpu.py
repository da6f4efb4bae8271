"""GPU throughput: sampling and training at d = 16 and 64; time to 1e-4 on the 16-D camel.

One prepared script for a machine with an accelerator. It measures

1. ``flow.sample`` throughput (points per second, float32 and float64) of the integrator's
   default flow at d = 16 and 64, for several batch sizes;
2. the time of one training iteration (draw a batch, evaluate the 16-/64-D camel, take
   ``steps_per_batch`` gradient steps) at the same sizes, through the public
   ``Integrator.train`` with the warm-up switched off;
3. the time to a relative precision of 1e-4 on the 16-D camel (``integrands.get("camel:dim=16")``)
   with ``Integrator(16, device=...)(f, budget, rtol=1e-4)``: wall time, integrand calls and
   the error reached;

and writes a markdown table (device, versions, settings and the numbers).

Usage::

    python benchmarks/gpu.py --device cuda --out benchmarks/results/gpu.md
    python benchmarks/gpu.py --quick                 # CPU dry run, small sizes (~1 minute)
    python benchmarks/gpu.py --device cuda --budget 3e8 --batch-size 500000

Everything stays on the device: points, densities, integrand values and weights; only scalars
come back (the timings synchronise the device before reading the clock).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="torch device (default: cuda, or cpu with "
                                                   "--quick)")
    p.add_argument("--out", default=None, help="markdown file to write (default: "
                                               "benchmarks/results/gpu.md; none with --quick)")
    p.add_argument("--quick", action="store_true", help="small sizes: a CPU dry run")
    p.add_argument("--dims", type=int, nargs="+", default=[16, 64], help="dimensions")
    p.add_argument("--batches", type=float, nargs="+", default=None,
                   help="batch sizes (default 1e4 1e5 1e6; quick: 256 1024)")
    p.add_argument("--rtol", type=float, default=None,
                   help="target relative error on the camel (default 1e-4; quick: 1e-2)")
    p.add_argument("--budget", type=float, default=None,
                   help="most integrand calls for the camel (default 2e8; quick: 2e4)")
    p.add_argument("--batch-size", type=float, default=None,
                   help="integrator batch size for the camel (default 2e5; quick: 2e3)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.device = args.device or ("cpu" if args.quick else "cuda")
    args.batches = [int(b) for b in (args.batches or ([256, 1024] if args.quick
                                                      else [1e4, 1e5, 1e6]))]
    args.rtol = args.rtol or (1e-2 if args.quick else 1e-4)
    args.budget = int(args.budget or (2e4 if args.quick else 2e8))
    args.batch_size = int(args.batch_size or (2e3 if args.quick else 2e5))
    if args.out is None and not args.quick:
        args.out = str(Path(__file__).resolve().parent / "results" / "gpu.md")
    return args


def timed(fn: Callable[[], Any], device: Any, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls of ``fn`` after one warm-up call (device synced)."""
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    sync()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def sampling_rows(args: argparse.Namespace, device: Any) -> list[dict[str, Any]]:
    import torch

    import flowint

    rows = []
    for dim in args.dims:
        flow = flowint.Integrator(dim, device=device, seed=args.seed).flow
        for dtype in (torch.float32, torch.float64):
            f = flow.to(dtype)
            gen = torch.Generator(device).manual_seed(args.seed)
            for n in args.batches:
                def draw(f=f, n=n, gen=gen) -> None:
                    x, log_q = f.sample(n, seed=gen)  # no gradients
                    assert x.device.type == device.type and log_q.device.type == device.type

                t = timed(draw, device, repeat=1 if args.quick else 3)
                rows.append({"dim": dim, "dtype": str(dtype).removeprefix("torch."), "n": n,
                             "seconds": t, "rate": n / t})
    return rows


def training_rows(args: argparse.Namespace, device: Any) -> list[dict[str, Any]]:
    import flowint
    import integrands

    rows = []
    iters = 1 if args.quick else 3  # training iterations per timing
    for dim in args.dims:
        f = integrands.get("camel", dim=dim)
        for n in args.batches:
            integ = flowint.Integrator(dim, device=device, seed=args.seed, batch_size=n,
                                       warmup=0, progress=False)
            t = timed(lambda integ=integ, f=f, n=n: integ.train(f, iters * n), device,
                      repeat=1 if args.quick else 2)
            rows.append({"dim": dim, "n": n, "seconds": t / iters, "rate": n * iters / t,
                         "steps": integ.settings["steps_per_batch"]})
    return rows


def camel_row(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    import torch

    import flowint
    import integrands

    f = integrands.get("camel:dim=16")
    integ = flowint.Integrator(16, device=device, seed=args.seed, batch_size=args.batch_size,
                               progress=False)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    result = integ(f, args.budget, rtol=args.rtol)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    t_train = sum(r.time for r in result.history if r.phase != "final")
    return {"seconds": seconds, "train_seconds": t_train, "result": str(result),
            "rel_error": result.rel_error, "reached": result.rel_error <= args.rtol,
            "pull": result.pull(f.exact), "n_evals": result.n_evals,
            "n_train": result.n_evals_train, "rel_std": result.rel_std,
            "peak_gib": (torch.cuda.max_memory_allocated(device) / 2**30
                         if device.type == "cuda" else math.nan)}


def markdown(args: argparse.Namespace, device: Any, sampling: list[dict], training: list[dict],
             camel: dict) -> str:
    import torch

    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine())
    lines = [
        "# GPU benchmark" + (" (quick CPU dry run)" if args.quick else ""),
        "",
        f"Device: `{device}` ({name}); torch {torch.__version__}; Python "
        f"{platform.python_version()}; written by `benchmarks/gpu.py` on "
        f"{time.strftime('%Y-%m-%d %H:%M')}. Command: `python benchmarks/gpu.py "
        f"{' '.join(sys.argv[1:])}`.",
        "",
        "## `flow.sample` throughput (default flow of the integrator)",
        "",
        "| d | dtype | batch | time (ms) | points/s |",
        "|---:|:---|---:|---:|---:|",
    ]
    lines += [f"| {r['dim']} | {r['dtype']} | {r['n']:,} | {1e3 * r['seconds']:.2f} | "
              f"{r['rate']:.3g} |" for r in sampling]
    lines += [
        "",
        "## One training iteration (draw, evaluate the camel, gradient steps)",
        "",
        "| d | batch | gradient steps | time (ms) | points/s |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['dim']} | {r['n']:,} | {r['steps']} | {1e3 * r['seconds']:.1f} | "
              f"{r['rate']:.3g} |" for r in training]
    lines += [
        "",
        f"## Time to relative precision {args.rtol:g} on the 16-D camel",
        "",
        f"`Integrator(16, device={str(device)!r}, seed={args.seed}, "
        f"batch_size={args.batch_size})(camel, {args.budget:.0e}, rtol={args.rtol:g})`",
        "",
        "| result | rel. error | reached | pull | calls (training) | rel. std/sample | "
        "time (training) | peak memory |",
        "|---|---:|:---:|---:|---:|---:|---:|---:|",
        f"| {camel['result']} | {camel['rel_error']:.2e} | "
        f"{'yes' if camel['reached'] else 'no'} | {camel['pull']:+.2f} | "
        f"{camel['n_evals']:.3g} ({camel['n_train']:.3g}) | {camel['rel_std']:.3g} | "
        f"{camel['seconds']:.1f} s ({camel['train_seconds']:.1f} s) | "
        + (f"{camel['peak_gib']:.1f} GiB |" if math.isfinite(camel["peak_gib"]) else "– |"),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available here; use --quick (or --device cpu) for a dry run",
              file=sys.stderr)
        return 1
    sampling = sampling_rows(args, device)
    training = training_rows(args, device)
    camel = camel_row(args, device)
    text = markdown(args, device, sampling, training, camel)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
