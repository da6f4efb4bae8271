"""Time of one training step of the integrator's flow, old implementation against new, in one run.

A training step is what :meth:`flowint.run.trainer.Trainer._descend` does per minibatch: draw
1024 points of a buffer, ``flow.log_prob`` with gradients, the ``"variance"`` surrogate loss,
``backward``, gradient clipping at norm 10 and an Adam step. The flow is the one
:class:`~flowint.Integrator` trains:
``make_flow(d, dtype=float32, **default_flow_options("rqs", d))`` (rational-quadratic
couplings of 4 bins, conditioners 32 wide, no per-axis grid; in 1 and 2 dimensions 8 bins, 64
wide); ``--flow make_flow`` times ``make_flow``'s own defaults instead (16 bins, 32 wide, with
the grid). Its parameters are moved away from the identity by seeded noise so that points
spread over the bins.

The two implementations, timed alternately in the same process (the order swapped every
repeat) on two copies of the same flow:

* ``old``: the rational-quadratic spline by element-by-element autograd operations
  (``fused_splines(False)``) and Adam's per-parameter loop (``foreach=False``);
* ``new``: the fused spline of :mod:`flowint.flows.rq_fused` (with the conditioner's output
  computed as columns) and ``Adam(foreach=True)``, the Trainer's defaults.

Prints, per dimension, the median wall and CPU time of a step (and of its forward, backward and
optimizer parts) and the ratio old / new; ``--sample N`` adds the time of ``flow.sample(N)``
in float64 (the frozen flow of the final estimate); ``--profile D`` adds a torch.profiler table
of the operators that take the most time at dimension ``D``, by operator family. On a shared
machine read the CPU times (``time.process_time``) and the ratios; both are medians of
``--repeats``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/train_step.py            # d = 2, 4, 8, 16
    OMP_NUM_THREADS=1 python benchmarks/train_step.py --dims 8 --repeats 60 --profile 8
    OMP_NUM_THREADS=1 python benchmarks/train_step.py --sample 32768   # and sampling
    OMP_NUM_THREADS=1 python benchmarks/train_step.py --flow make_flow # make_flow's defaults
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from flowint import make_flow
from flowint.flows import Flow
from flowint.flows.splines import fused_splines
from flowint.integrator import default_flow_options
from flowint.losses import surrogate_loss

__all__ = ["Setup", "make_setup", "step", "time_steps", "time_sampling", "profile_families",
           "main"]

IMPLS = ("old", "new")
#: The flows ``--flow`` chooses from: ``make_flow`` arguments beside ``dim``, seed and dtype,
#: as functions of ``dim``.
FLOWS = {"integrator": lambda dim: default_flow_options("rqs", dim), "make_flow": lambda dim: {}}
FAMILIES = {
    "matmul": ("mm", "addmm", "bmm", "matmul", "linear"),
    "optimizer": ("Optimizer", "_foreach", "lerp", "addcdiv", "sqrt", "norm", "clamp"),
    "indexing": ("gather", "scatter", "index", "searchsorted", "cat", "stack", "copy",
                 "select", "slice", "expand", "view", "unsqueeze", "squeeze", "transpose",
                 "permute", "contiguous", "clone", "empty", "zeros", "fill", "to", "flip"),
    "reduction": ("sum", "amax", "max", "cumsum", "mean"),
}


@dataclass
class Setup:
    """A flow, its optimizer and the data of the steps, for one implementation."""

    flow: Flow
    optimizer: torch.optim.Optimizer
    pool: torch.Tensor
    target: torch.Tensor
    log_q0: torch.Tensor
    generator: torch.Generator
    fused: bool


def make_setup(dim: int, batch: int = 1024, seed: int = 0,
               kind: str = "integrator") -> dict[str, Setup]:
    """Two identical flows (old and new) of ``FLOWS[kind]`` with their optimizers and a buffer
    of 4 batches."""
    flow = make_flow(dim, seed=seed, dtype=torch.float32, **FLOWS[kind](dim))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64).float())
    pool = torch.rand(4 * batch, dim, generator=gen, dtype=torch.float64).float()
    target = torch.rand(4 * batch, generator=gen, dtype=torch.float64) + 0.1
    log_q0 = torch.zeros(4 * batch, dtype=torch.float64)
    setups = {}
    for impl in IMPLS:
        f = copy.deepcopy(flow)
        opt = torch.optim.Adam(f.parameters(), lr=6e-3, foreach=impl == "new")
        setups[impl] = Setup(f, opt, pool, target, log_q0,
                             torch.Generator().manual_seed(seed + 1), impl == "new")
    return setups


def step(s: Setup, batch: int = 1024, clock: Callable[[], float] = time.perf_counter
         ) -> tuple[float, float, float]:
    """One training step; returns the seconds of its forward, backward and optimizer parts."""
    with fused_splines(s.fused):
        t0 = clock()
        idx = torch.randint(0, s.pool.shape[0], (batch,), generator=s.generator)
        loss, _ = surrogate_loss("variance", s.target[idx], s.flow.log_prob(s.pool[idx]),
                                 s.log_q0[idx])
        t1 = clock()
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t2 = clock()
        torch.nn.utils.clip_grad_norm_(s.flow.parameters(), 10.0)
        s.optimizer.step()
        t3 = clock()
    return t1 - t0, t2 - t1, t3 - t2


def time_steps(dim: int, repeats: int, batch: int = 1024, warmup: int = 3,
               kind: str = "integrator") -> dict[str, dict[str, float]]:
    """Median seconds per step (wall and CPU) and of its parts, per implementation."""
    setups = make_setup(dim, batch, kind=kind)
    for _ in range(warmup):
        for impl in IMPLS:
            step(setups[impl], batch)
    samples: dict[str, dict[str, list[float]]] = {
        impl: {"wall": [], "cpu": [], "forward": [], "backward": [], "optimizer": []}
        for impl in IMPLS}
    for r in range(repeats):
        for impl in (IMPLS if r % 2 == 0 else IMPLS[::-1]):
            w0, c0 = time.perf_counter(), time.process_time()
            parts = step(setups[impl], batch, clock=time.process_time)
            c1, w1 = time.process_time(), time.perf_counter()
            rec = samples[impl]
            rec["wall"].append(w1 - w0)
            rec["cpu"].append(c1 - c0)
            for key, value in zip(("forward", "backward", "optimizer"), parts, strict=True):
                rec[key].append(value)
    return {impl: {k: statistics.median(v) for k, v in rec.items()}
            for impl, rec in samples.items()}


def time_sampling(dim: int, n: int, repeats: int, kind: str = "integrator") -> dict[str, float]:
    """Median CPU seconds of ``flow.sample(n)`` in float64 (the frozen flow of the estimate)."""
    flow = make_setup(dim, kind=kind)["new"].flow.to(torch.float64)
    samples: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for r in range(repeats):
        for impl in (IMPLS if r % 2 == 0 else IMPLS[::-1]):
            with fused_splines(impl == "new"):
                c0 = time.process_time()
                flow.sample(n, seed=r)
                samples[impl].append(time.process_time() - c0)
    return {impl: statistics.median(v) for impl, v in samples.items()}


def _family(name: str) -> str:
    bare = name.removeprefix("aten::")
    if "Backward" in name or name.startswith("autograd::"):
        return "autograd (backward nodes)"
    for family, keys in FAMILIES.items():
        if any(bare == k or bare.startswith(k) for k in keys):
            return family
    return "elementwise"


def profile_families(dim: int, steps: int = 10, batch: int = 1024, top: int = 12,
                     kind: str = "integrator") -> None:
    """Print, per implementation, the self CPU time per step by operator family and top ops."""
    from torch.profiler import ProfilerActivity, profile

    setups = make_setup(dim, batch, kind=kind)
    for impl in IMPLS:
        for _ in range(3):
            step(setups[impl], batch)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step(setups[impl], batch)
        events = prof.key_averages()
        families: dict[str, float] = {}
        for e in events:
            fam = _family(e.key)
            families[fam] = families.get(fam, 0.0) + e.self_cpu_time_total / steps / 1e3
        calls = sum(e.count for e in events if e.key.startswith("aten::")) / steps
        total = sum(families.values())
        print(f"\n[{impl}] d={dim}: {total:.1f} ms/step under the profiler, "
              f"{calls:.0f} aten calls/step")
        for fam, ms in sorted(families.items(), key=lambda kv: -kv[1]):
            print(f"  {fam:28s} {ms:8.2f} ms  {100 * ms / total:5.1f} %")
        print("  top operators (self CPU ms/step, calls/step):")
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
            print(f"    {e.key[:40]:40s} {e.self_cpu_time_total / steps / 1e3:7.2f} "
                  f"{e.count / steps:7.0f}")


def main(argv: list[str] | None = None) -> None:
    """Command line: time the step at each dimension and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--flow", choices=sorted(FLOWS), default="integrator",
                    help="the integrator's flow (default) or make_flow's own defaults")
    ap.add_argument("--profile", type=int, default=None, metavar="D")
    ap.add_argument("--sample", type=int, default=0, metavar="N",
                    help="also time flow.sample(N) in float64 at each dimension")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), flow {args.flow} "
          f"{ {d: FLOWS[args.flow](d) for d in args.dims} }, minibatch {args.batch}, "
          f"median of {args.repeats} alternating "
          "repeats; ms per step")
    print("| d | old wall | new wall | old CPU | new CPU | CPU ratio old/new | "
          "new fwd / bwd / opt CPU | old fwd / bwd / opt CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for dim in args.dims:
        m = time_steps(dim, args.repeats, args.batch, kind=args.flow)
        o, n = m["old"], m["new"]
        parts = {k: " / ".join(f"{1e3 * v[p]:.1f}" for p in ("forward", "backward", "optimizer"))
                 for k, v in m.items()}
        print(f"| {dim} | {1e3 * o['wall']:.1f} | {1e3 * n['wall']:.1f} | {1e3 * o['cpu']:.1f} "
              f"| {1e3 * n['cpu']:.1f} | {o['cpu'] / n['cpu']:.2f} | {parts['new']} "
              f"| {parts['old']} |", flush=True)
    if args.sample:
        print(f"\nflow.sample({args.sample}) in float64, CPU ms, median of 5")
        print("| d | old | new | ratio old/new |")
        print("|---|---|---|---|")
        for dim in args.dims:
            m = time_sampling(dim, args.sample, 5, kind=args.flow)
            print(f"| {dim} | {1e3 * m['old']:.0f} | {1e3 * m['new']:.0f} | "
                  f"{m['old'] / m['new']:.2f} |", flush=True)
    if args.profile:
        profile_families(args.profile, batch=args.batch, kind=args.flow)


if __name__ == "__main__":
    main()
