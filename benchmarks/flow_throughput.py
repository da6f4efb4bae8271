"""Throughput of flowint's flows, with vegas's adaptive map as the reference.

Measures points per second of

* ``flow.sample(n)`` (points and their log-density, under ``torch.no_grad``) and
* ``flow.log_prob(x)`` (under ``torch.no_grad``)

for :func:`flowint.make_flow` flows of every spline kind at several dimensions, in float32 and
float64, at two batch sizes; and, in the same run and at the same batch sizes, of
``vegas.AdaptiveMap.map(y, x, jac)`` (``y -> x`` and the Jacobian: what sampling costs in
VEGAS) and ``AdaptiveMap.invmap(x, y, jac)`` (``x -> y``: what a density costs), on
preallocated numpy arrays, after adapting the map to a peaked integrand so that it looks
trained. The ratio flowint/vegas is the price of the learned correlations: vegas's map is
separable and written in Cython.

Writes a markdown table with machine information (CPU, versions, threads, date) and a
profile of one configuration (d = 16, batch 1e5), by operator category, to
``benchmarks/results/flow_throughput.md``. Configurations whose largest spline-parameter
tensor exceeds ``--max-tensor-gib`` (default 0.5 GiB; several such tensors are alive at once)
are skipped: at batch 1e5 these are the float64 flows at d >= 32 and most flows at d = 64,
which would also take the run far past ten minutes.

Usage::

    python benchmarks/flow_throughput.py --threads 1   # full run (about 10 minutes)
    python benchmarks/flow_throughput.py --quick    # fewer configurations
    python benchmarks/flow_throughput.py --out path.md --threads 2
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import vegas

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import _cpu_model  # noqa: E402

from flowint import make_flow
from flowint.flows import make_masks, make_spline
from flowint.flows.factory import DEFAULT_BINS

__all__ = ["Row", "measure_flow", "measure_vegas", "parameter_bytes", "profile_flow",
           "machine_info", "render", "main"]

DIMS = (2, 8, 16, 32, 64)
KINDS = ("rqs", "pwq", "pwl")
DTYPES = (torch.float32, torch.float64)
BATCHES = (10_000, 100_000)
QUICK_DIMS = (2, 16)
QUICK_KINDS = ("rqs",)
QUICK_BATCHES = (10_000,)
VEGAS_NINC = 1000
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "flow_throughput.md"

# Categories of the operators called from Python (torch.profiler names without "aten::");
# an operator's time includes what it calls (addmm's copy of the bias, softmax's copy of a
# strided input).
_MATMUL = {"addmm", "mm", "bmm", "matmul", "linear", "baddbmm"}
_INDEXING = {"searchsorted", "gather", "index_select", "index_copy", "index_copy_", "expand",
             "contiguous", "clone", "copy_", "index", "take_along_dim", "constant_pad_nd",
             "pad", "slice", "select", "unsqueeze", "squeeze", "view", "as_strided", "cat",
             "fill_", "empty", "empty_strided", "empty_like", "zeros", "new_zeros", "new_ones",
             "ones", "transpose", "t", "numpy_T", "permute", "detach", "to", "_to_copy"}


@dataclass(frozen=True)
class Row:
    """One measured configuration: points per second of flowint and of vegas."""

    dim: int
    kind: str
    dtype: str
    batch: int
    sample_pps: float
    log_prob_pps: float
    vegas_map_pps: float
    vegas_invmap_pps: float


def _seconds_per_call(fn: Callable[[], object], min_time: float, max_reps: int) -> float:
    """Median seconds per call; repeats until ``min_time`` is spent or ``max_reps`` calls.

    The first call is a warm-up and is discarded, unless it alone took longer than
    ``min_time`` (then one-time costs are negligible and it is the measurement: this keeps
    the large configurations affordable).
    """
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first > min_time:
        return first
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < 1 or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _trained_flow(dim: int, kind: str, dtype: torch.dtype):
    """A make_flow flow with parameters moved off the identity (speed does not depend on them,
    but a trained flow's bins are not all equal, so the searches see realistic data)."""
    flow = make_flow(dim, kind, seed=0, dtype=dtype)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen).to(p.dtype))
    return flow


def measure_flow(dim: int, kind: str, dtype: torch.dtype, batch: int, *, min_time: float = 0.3,
                 max_reps: int = 5) -> tuple[float, float]:
    """Points per second of ``flow.sample`` and ``flow.log_prob`` (both without gradients)."""
    flow = _trained_flow(dim, kind, dtype)
    x = torch.rand(batch, dim, generator=torch.Generator().manual_seed(2), dtype=dtype)
    with torch.no_grad():
        t_sample = _seconds_per_call(lambda: flow.sample(batch, seed=3), min_time, max_reps)
        t_log_prob = _seconds_per_call(lambda: flow.log_prob(x), min_time, max_reps)
    return batch / t_sample, batch / t_log_prob


def _trained_map(dim: int, ninc: int = VEGAS_NINC, seed: int = 0) -> vegas.AdaptiveMap:
    """A vegas map adapted (5 iterations) to a sum of per-axis peaks at 0.3."""
    amap = vegas.AdaptiveMap([[0.0, 1.0]] * dim, ninc=ninc)
    rng = np.random.default_rng(seed)
    n = 20_000
    x = np.empty((n, dim))
    jac = np.empty(n)
    for _ in range(5):
        y = rng.random((n, dim))
        amap.map(y, x, jac)
        f = np.exp(-(((x - 0.3) / 0.05) ** 2)).sum(axis=1)
        amap.add_training_data(y, (f * jac) ** 2)
        amap.adapt(alpha=0.5)
    return amap


def measure_vegas(dim: int, batch: int, *, min_time: float = 0.3,
                  max_reps: int = 5) -> tuple[float, float]:
    """Points per second of ``AdaptiveMap.map`` and ``AdaptiveMap.invmap`` (float64 numpy)."""
    amap = _trained_map(dim)
    y = np.random.default_rng(1).random((batch, dim))
    x = np.empty((batch, dim))
    jac = np.empty(batch)
    y_back = np.empty((batch, dim))
    jac_back = np.empty(batch)
    t_map = _seconds_per_call(lambda: amap.map(y, x, jac), min_time, max_reps)
    t_inv = _seconds_per_call(lambda: amap.invmap(x, y_back, jac_back), min_time, max_reps)
    return batch / t_map, batch / t_inv


def _category(name: str) -> str:
    op = name.removeprefix("aten::")
    if op in _MATMUL:
        return "conditioner matmul"
    if op in _INDEXING:
        return "indexing, copies, allocation"
    return "spline and network arithmetic"


def profile_flow(dim: int = 16, batch: int = 100_000, kind: str = "rqs",
                 dtype: torch.dtype = torch.float32) -> dict[str, object]:
    """Profile ``sample`` and ``log_prob`` once: time by operator category and top operators.

    Returns:
        A dict with ``wall`` (seconds for one sample and one log_prob call, unprofiled),
        ``categories`` (seconds of self CPU time per category), ``python`` (wall time not
        spent inside operators) and ``top`` (the ten most expensive operators).
    """
    from torch.profiler import ProfilerActivity, profile

    flow = _trained_flow(dim, kind, dtype)
    with torch.no_grad():
        x, _ = flow.sample(batch, seed=0)

        def both() -> None:
            flow.sample(batch, seed=1)
            flow.log_prob(x)

        wall = _seconds_per_call(both, 1.0, 3)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            both()
    totals: dict[str, list[float]] = {}
    for event in prof.events():
        if event.cpu_parent is None:  # called from Python
            entry = totals.setdefault(event.name, [0.0, 0])
            entry[0] += event.cpu_time_total / 1e6
            entry[1] += 1
    ops = [(name, seconds, int(count)) for name, (seconds, count) in totals.items()]
    categories: dict[str, float] = {}
    for name, seconds, _ in ops:
        categories[_category(name)] = categories.get(_category(name), 0.0) + seconds
    op_total = sum(categories.values())
    return {
        "config": f"d={dim}, {kind}, {str(dtype).removeprefix('torch.')}, batch {batch:,}",
        "wall": wall,
        "categories": categories,
        "python": max(wall - op_total, 0.0),
        "top": sorted(ops, key=lambda t: -t[1])[:10],
    }


def machine_info() -> dict[str, str]:
    """CPU, core and thread counts, versions and date of the run."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load average (1, 5, 15 min) at the end": ", ".join(f"{v:.1f}" for v in os.getloadavg()),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "vegas": vegas.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def parameter_bytes(dim: int, kind: str, dtype: torch.dtype, batch: int) -> int:
    """Bytes of the largest spline-parameter tensor of ``make_flow(dim, kind)`` at ``batch``:
    ``batch x (transformed coordinates) x (parameters per coordinate)`` in ``dtype``."""
    if dim == 1:
        return 0
    n_b = max(int(m.sum()) for m in make_masks(dim, "binary"))
    spline = make_spline(kind, bins=DEFAULT_BINS[kind])
    return batch * n_b * spline.n_params * torch.finfo(dtype).bits // 8


def _fmt(pps: float) -> str:
    if math.isnan(pps):
        return "—"
    if pps >= 1e6:
        return f"{pps / 1e6:.2f} M"
    return f"{pps / 1e3:.0f} k"


def render(rows: Sequence[Row], info: dict[str, str], prof: dict[str, object] | None,
           command: str, max_tensor_gib: float = 0.5) -> str:
    """The markdown report."""
    lines = [
        "# Flow throughput: flowint vs vegas",
        "",
        f"Generated by `{command}`. Points per second (k = 10^3, M = 10^6) of `flow.sample` "
        "(points and log q) and `flow.log_prob`, both under `torch.no_grad()`, for "
        "`make_flow(d, kind)` with its defaults (binary masks: 2⌈log2 d⌉ coupling layers, "
        "hidden 32, depth 2, a 64-bin per-axis grid); and of `vegas.AdaptiveMap.map` / "
        f"`invmap` ({VEGAS_NINC} increments per axis, adapted 5 times to a peaked function, "
        "float64 numpy, preallocated arrays) at the same batch size in the same run. "
        "Ratios are flowint / vegas (sample / map and log_prob / invmap). Median of up to 5 "
        "timed calls after a warm-up call (a single call where one takes over 0.3 s). "
        f"Configurations whose spline-parameter tensor (batch x transformed coordinates x "
        f"parameters) exceeds {max_tensor_gib:g} GiB are skipped (—).",
        "",
        "| machine | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += [
        "",
        "| d | kind | dtype | batch | sample pts/s | log_prob pts/s | vegas map pts/s "
        "| vegas invmap pts/s | sample / map | log_prob / invmap |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.dim} | {r.kind} | {r.dtype} | {r.batch:,} | {_fmt(r.sample_pps)} "
            f"| {_fmt(r.log_prob_pps)} | {_fmt(r.vegas_map_pps)} | {_fmt(r.vegas_invmap_pps)} "
            f"| {_ratio(r.sample_pps, r.vegas_map_pps)} "
            f"| {_ratio(r.log_prob_pps, r.vegas_invmap_pps)} |"
        )
    lines += _render_summary(rows)
    if prof is not None:
        lines += _render_profile(prof)
    return "\n".join(lines) + "\n"


def _ratio(a: float, b: float) -> str:
    return "—" if math.isnan(a) else f"{a / b:.4f}"


def _render_summary(rows: Sequence[Row]) -> list[str]:
    """Median ratios by dimension and dtype (over kinds and batch sizes)."""
    measured = [r for r in rows if not math.isnan(r.sample_pps)]
    if not measured:
        return []
    lines = ["", "Median ratios flowint / vegas over kinds and batch sizes:", "",
             "| d | dtype | sample / map | log_prob / invmap |", "|---:|---|---:|---:|"]
    for dim in sorted({r.dim for r in measured}):
        for dtype in sorted({r.dtype for r in measured}):
            group = [r for r in measured if r.dim == dim and r.dtype == dtype]
            if group:
                s = statistics.median(r.sample_pps / r.vegas_map_pps for r in group)
                lp = statistics.median(r.log_prob_pps / r.vegas_invmap_pps for r in group)
                lines.append(f"| {dim} | {dtype} | {s:.4f} | {lp:.4f} |")
    return lines


def _render_profile(prof: dict[str, object]) -> list[str]:
    categories: dict[str, float] = prof["categories"]  # type: ignore[assignment]
    wall: float = prof["wall"]  # type: ignore[assignment]
    python: float = prof["python"]  # type: ignore[assignment]
    lines = [
        "",
        "## Profile",
        "",
        f"One `sample` plus one `log_prob` call at {prof['config']} (torch.profiler; CPU time "
        f"of the operators called from Python, including what they call, grouped; unprofiled "
        f"wall time {wall:.3f} s):",
        "",
        "| category | seconds | share of wall time |",
        "|---|---:|---:|",
    ]
    for name, seconds in sorted(categories.items(), key=lambda t: -t[1]):
        lines.append(f"| {name} | {seconds:.3f} | {100 * seconds / wall:.0f}% |")
    lines.append(f"| Python and dispatch overhead (wall minus operators) | {python:.3f} "
                 f"| {100 * python / wall:.0f}% |")
    lines += ["", "| top operators (called from Python) | seconds | calls |", "|---|---:|---:|"]
    for name, seconds, count in prof["top"]:  # type: ignore[union-attr]
        lines.append(f"| {name} | {seconds:.3f} | {count} |")
    lines += ["", PROFILE_NOTES]
    return lines


#: What the profile showed and what was done about it (written by hand after profiling;
#: the numbers above are regenerated by every run).
PROFILE_NOTES = """\
**What the profile says.** The conditioner's matrix products (`linear`: the GEMMs plus the
copy of the bias into their output) are a minor part of the cost. Most of it is the
elementwise processing of the spline parameters, tensors of shape (batch, transformed
coordinates, bins): `softmax` (which also copies its strided slice of the network output),
`cumsum`, the knots, `softplus`, `mul`/`add`. That work is memory-bound, and at batch 1e5
about half of the wall time is the kernel handing out fresh zeroed pages: every temporary
above 32 MB is `mmap`ed and unmapped again by glibc (2.9 million minor page faults for one
`sample` plus one `log_prob` at d = 16, float32: 5.4 s of system time against 4.9 s of user
time), and that time shows up inside whichever operator first touches a new tensor (`cat`
in the table above is mostly this). Spline indexing proper (`searchsorted`, `gather`) is now
about 8%, and Python overhead is small at this batch size.

**What was changed** (`flowint/flows/splines.py`, results bitwise identical: outputs,
log-determinants and gradients compared on 576 tensors covering every kind, float32/float64,
per-point, per-axis and shared parameters, both directions). Before, `_search` expanded
per-axis knots to one copy per point (`expand(...).contiguous()`, a (batch, d, 65) copy in
the grid's `log_prob`, 45% of that layer's time) and searched in it; it now searches each
axis's column of points in that axis's knots. `_knots` built the knots with `pad` + `clone` +
an assignment (three passes and two allocations); it now uses one `cat`. `_widths`, the
rational-quadratic derivatives and the piecewise-quadratic normalisation add their constants
in place on fresh products instead of allocating another full-size tensor. Process CPU time
of one call at d = 16, batch 1e5, one thread, before -> after: rqs float32 `sample` 5.74 ->
4.39 s, `log_prob` 6.43 -> 4.79 s; pwq float32 11.8 -> 9.1 s and 12.2 -> 9.0 s; pwl float32
4.15 -> 2.92 s and 4.37 -> 3.20 s; rqs float64 13.1 -> 9.1 s and 13.8 -> 11.3 s (25-30%
less). Gathering the two knot-derivative parameters of each bin before the `softplus` would
save another ~10% but rounds differently by an ulp, so it was not done.

**What would help most next** (not done here: outside the spline code). Evaluating a large
batch in chunks of a few thousand points under `torch.no_grad()` keeps the temporaries in
malloc's reusable heap and in cache and removes the page faults: `log_prob` of 1e5 points at
d = 16 (rqs) took 5.35 s unchunked and 2.02 s in chunks of 4096 in float32 (10.9 s and 5.0 s
in float64), with bitwise identical results. On this shared 2-core machine, two intra-op
threads were several times slower than one (d = 16, batch 1e4: 3.4 s against 0.39 s), because
other processes hold the cores and the threads wait for each other; the table was therefore
measured with one thread."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer configurations")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown output path")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's default)")
    parser.add_argument("--max-tensor-gib", type=float, default=0.5,
                        help="skip configurations whose spline-parameter tensor is larger")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    dims, kinds, batches = (QUICK_DIMS, QUICK_KINDS, QUICK_BATCHES) if args.quick else (
        DIMS, KINDS, BATCHES)
    start = time.perf_counter()
    rows: list[Row] = []
    for dim in dims:
        for batch in batches:
            vmap, vinv = measure_vegas(dim, batch)
            for kind in kinds:
                for dtype in DTYPES:
                    if parameter_bytes(dim, kind, dtype, batch) > args.max_tensor_gib * 2**30:
                        sample = log_prob = math.nan
                    else:
                        sample, log_prob = measure_flow(dim, kind, dtype, batch)
                    row = Row(dim, kind, str(dtype).removeprefix("torch."), batch, sample,
                              log_prob, vmap, vinv)
                    rows.append(row)
                    print(f"d={dim:3d} {kind} {row.dtype} n={batch:>7,}: sample {_fmt(sample)}"
                          f"/s, log_prob {_fmt(log_prob)}/s, vegas map {_fmt(vmap)}/s "
                          f"(ratio {sample / vmap:.4f})", file=sys.stderr, flush=True)
    prof = None if args.no_profile else profile_flow()
    info = machine_info()
    info["run time"] = f"{time.perf_counter() - start:.0f} s"
    command = " ".join(["python benchmarks/flow_throughput.py",
                        *(sys.argv[1:] if argv is None else argv)])
    text = render(rows, info, prof, command, args.max_tensor_gib)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
