"""The ``flowint`` command: integrate from the shell, run benchmarks, and the VEGAS demo.

::

    flowint integrate camel --dim 8 --budget 1e6            # a registered test integrand
    flowint integrate camel:alpha=0.1 --dim 4 --json        # with parameters, JSON output
    flowint integrate mypkg.physics:matrix_element --dim 6 --bounds 0,1
    flowint list                                            # the registered integrands
    flowint bench                                           # list the benchmark scripts
    flowint bench gpu --quick --out gpu.md                  # run one (arguments passed on)
    flowint demo [--quick]                 # flowint vs VEGAS and plain RQMC, 8-D camel

Integrands are found by name in the :mod:`integrands` registry (``name:key=value,...``) or
imported from a ``module:attribute`` path with :mod:`importlib` (the current folder is
searched first, as with ``python -m``); nothing is ever evaluated as code. See
``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import json
import math
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["main", "resolve_integrand", "parse_bounds_arg", "parse_count"]


# ---------------------------------------------------------------------------- parsing helpers
def parse_count(text: str) -> int:
    """A positive integer written as ``1000000``, ``1e6`` or ``1_000_000``.

    Raises:
        argparse.ArgumentTypeError: not a positive whole number.
    """
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(value)


def parse_bounds_arg(text: str) -> list[tuple[float, float]] | tuple[float, float]:
    """Box bounds from ``"lo,hi"`` (every axis) or ``"lo1,hi1;lo2,hi2;..."`` (one per axis).

    Raises:
        argparse.ArgumentTypeError: malformed bounds.
    """
    pairs = []
    for part in text.split(";"):
        items = [s.strip() for s in part.split(",")]
        if len(items) != 2:
            raise argparse.ArgumentTypeError(
                f"bounds {text!r}: write lo,hi for every axis or lo1,hi1;lo2,hi2;...")
        try:
            lo, hi = float(items[0]), float(items[1])
        except ValueError:
            raise argparse.ArgumentTypeError(f"bounds {text!r}: not numbers") from None
        pairs.append((lo, hi))
    return pairs[0] if len(pairs) == 1 else pairs


@dataclass
class Target:
    """A resolved integrand: the callable, its dimension, exact value (if known) and a label."""

    f: Callable
    dim: int
    exact: float | None
    label: str


def resolve_integrand(spec: str, dim: int | None = None) -> Target:
    """Find the integrand named by ``spec``.

    Arguments:
        spec: ``name`` or ``name:key=value,...`` from the :mod:`integrands` registry, or an
            import path ``package.module:attribute`` (a callable; an object with ``dim`` and
            ``exact`` attributes provides them).
        dim: the dimension (``--dim``); for registry integrands it is passed as ``dim=``.

    Returns:
        The :class:`Target`.

    Raises:
        ValueError: unknown name, bad parameters, missing dimension, or not callable.
    """
    import integrands

    name, sep, rest = spec.partition(":")
    name = name.strip()
    if name in integrands.names():
        _, params = integrands.parse_spec(spec)
        if dim is not None and "dim" in params and int(params["dim"]) != dim:
            raise ValueError(f"--dim {dim} contradicts dim={params['dim']} in {spec!r}")
        f = integrands.get(spec) if dim is None or "dim" in params else integrands.get(spec,
                                                                                       dim=dim)
        return Target(f, f.dim, f.exact, repr(f))
    if sep and rest and "=" not in rest:
        obj = _import(name, rest.strip())
        d = dim if dim is not None else getattr(obj, "dim", None)
        if d is None:
            raise ValueError(f"give the dimension of {spec!r} with --dim")
        exact = getattr(obj, "exact", None)
        return Target(obj, int(d), float(exact) if exact is not None else None, spec)
    raise ValueError(f"unknown integrand {spec!r}: use a registered name "
                     f"({', '.join(integrands.names())}) or a module:function path")


def _import(module: str, attribute: str) -> Callable:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module!r}: {exc}") from exc
    for part in attribute.split("."):
        if not part.isidentifier():
            raise ValueError(f"{attribute!r} is not an attribute path")
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"module {module!r} has no attribute {attribute!r}") from None
    if not callable(obj):
        raise ValueError(f"{module}:{attribute} is not callable")
    return obj


# ---------------------------------------------------------------------------- commands
@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (``None``: torch's default), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cmd_integrate(args: argparse.Namespace) -> int:
    with _threads(args.threads):
        return _integrate(args)


def _integrate(args: argparse.Namespace) -> int:
    import torch

    import flowint

    target = resolve_integrand(args.integrand, args.dim)
    settings: dict[str, Any] = {"seed": args.seed, "loss": args.loss, "flow": args.flow,
                                "progress": args.progress}
    if args.device:
        settings["device"] = args.device
    if args.dtype:
        settings["dtype"] = getattr(torch, args.dtype)
    for key in ("batch_size", "max_batch", "checkpoint"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    exact = target.exact if args.bounds is None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        integ = flowint.Integrator(target.dim, args.bounds, **settings)
        result = integ(target.f, args.budget, rtol=args.rtol, atol=args.atol,
                       n_train=args.n_train)
        samples = None
        if args.samples:
            from .sampling import unweighted_samples

            samples = unweighted_samples(integ, target.f, args.samples, seed=args.seed)
            samples.save(args.out, integrand=target.label)
    notes = [str(w.message) for w in caught]
    if args.json:
        out = _result_dict(result, target, exact, args)
        out["warnings"] = sorted(set(out["warnings"]) | set(notes))
        if samples is not None:
            out["samples"] = {"file": str(args.out), "n": len(samples),
                              "efficiency": samples.efficiency,
                              "overweight_fraction": samples.overweight_fraction}
        print(json.dumps(_finite(out), indent=2))
        return 0
    print(f"integrand     {target.label}" + (f"  on {args.bounds}" if args.bounds else ""))
    if args.summary:
        print(result.summary())
    else:
        print(f"result        {result}   (rel. error {result.rel_error:.2g})")
    if exact is not None:
        print(f"exact         {exact:.12g}   pull {result.pull(exact):+.2f} σ")
    check = (f"chi2/dof {result.chi2_dof:.2f}   Q {result.Q:.2f} ({result.chi2_tests})"
             if result.chi2_tests else "")
    print(f"rel. std      {result.rel_std:.4g} per sample   {check}".rstrip())
    print(f"sampler       {result.method}   ({result.n_evals_reused} training calls reused)")
    secs = "  ".join(f"{k} {v:.2g}" for k, v in result.seconds.items())
    print(f"evaluations   {result.n_evals} ({result.n_evals_train} exploring/training, "
          f"{result.n_evals_final} final)   time {result.wall_time:.1f} s ({secs})")
    for i, (m, row) in enumerate(zip(result.components, result.covariance, strict=True)):
        print(f"component {i}   {flowint.result.format_uncertainty(m, math.sqrt(row[i]))}")
    if samples is not None:
        print(f"samples       {len(samples)} unweighted points -> {args.out}  (efficiency "
              f"{samples.efficiency:.3g}, overweight {samples.overweight_fraction:.2g})")
    for note in sorted(set(notes) | set(result.warnings)):
        print(f"warning: {note}", file=sys.stderr)
    return 0


def _result_dict(result: Any, target: Target, exact: float | None,
                 args: argparse.Namespace) -> dict[str, Any]:
    return {
        "integrand": target.label,
        "dim": target.dim,
        "bounds": args.bounds,
        "mean": result.mean,
        "sdev": result.sdev,
        "rel_error": result.rel_error,
        "exact": exact,
        "pull": result.pull(exact) if exact is not None else None,
        "chi2_dof": result.chi2_dof,
        "Q": result.Q,
        "n_evals": result.n_evals,
        "n_evals_train": result.n_evals_train,
        "n_evals_final": result.n_evals_final,
        "rel_std": result.rel_std,
        "ess": result.ess,
        "unweighting_efficiency": result.unweighting_efficiency,
        "wall_time": result.wall_time,
        "method": result.method,
        "n_evals_reused": result.n_evals_reused,
        "chi2_tests": result.chi2_tests,
        "seconds": dict(result.seconds),
        "components": list(result.components),
        "covariance": [list(r) for r in result.covariance],
        "seed": args.seed,
        "loss": args.loss,
        "warnings": list(result.warnings),
    }


def _finite(obj: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _cmd_list(args: argparse.Namespace) -> int:
    import integrands

    for name in integrands.names():
        cls = integrands.registry._REGISTRY[name]
        print(f"{name:<16} {cls.description}")
    return 0


def benchmark_dirs() -> list[Path]:
    """Where ``flowint bench`` looks for scripts: ``./benchmarks``, then the source tree's."""
    dirs = [Path.cwd() / "benchmarks", Path(__file__).resolve().parents[1] / "benchmarks"]
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [s.resolve() for s in seen]:
            seen.append(d)
    return seen


def benchmarks() -> dict[str, Path]:
    """The benchmark scripts by name (``benchmarks/NAME.py``, not starting with ``_``)."""
    found: dict[str, Path] = {}
    for d in benchmark_dirs():
        for path in sorted(d.glob("*.py")):
            if not path.name.startswith("_"):
                found.setdefault(path.stem, path)
    return found


def _describe(path: Path) -> str:
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (SyntaxError, OSError, UnicodeDecodeError):
        doc = ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _cmd_bench(args: argparse.Namespace) -> int:
    found = benchmarks()
    if args.name is None or args.name not in found:
        stream = sys.stdout if args.name is None else sys.stderr
        if args.name is not None:
            print(f"no benchmark named {args.name!r}", file=stream)
        if not found:
            print("no benchmarks/ folder found (run from the source tree)", file=stream)
            return 0 if args.name is None else 2
        print("benchmarks (flowint bench NAME [ARGS...]):", file=stream)
        for name, path in found.items():
            print(f"  {name:<14} {_describe(path)}", file=stream)
        return 0 if args.name is None else 2
    cmd = [sys.executable, str(found[args.name]), *args.args]
    return subprocess.call(cmd)


def _cmd_demo(args: argparse.Namespace) -> int:
    with _threads(args.threads):
        rows = run_demo(budget=args.budget, dim=args.dim, seed=args.seed,
                        progress=args.progress)
    if args.json:
        print(json.dumps(_finite(rows), indent=2))
        return 0
    from .result import format_uncertainty

    print(f"{args.dim}-D camel (i-flow), exact value {rows[0]['exact']:.10f}")
    print(f"every method spends at most {args.budget} integrand calls in all (training, "
          "adaptation and estimate)\n")
    head = (f"{'method':<12}{'estimate':>16}{'pull':>8}{'rel. error':>12}{'true rel. err':>15}"
            f"{'calls':>10}{'time':>9}  how")
    print(head)
    print("-" * (len(head) + 20))
    for r in rows:
        print(f"{r['method']:<12}{format_uncertainty(r['mean'], r['sdev']):>16}"
              f"{r['pull']:>+8.2f}{r['rel_error']:>12.2e}{r['true_rel_error']:>15.2e}"
              f"{r['calls']:>10d}{r['time']:>8.1f}s  {r['how']}")
    best = min(rows[1:], key=lambda r: r["rel_error"] if abs(r["pull"]) < 3 else math.inf)
    print(f"\nflowint's error bar is {rows[0]['rel_error'] / best['rel_error']:.2g}x that of "
          f"the best other method with |pull| < 3 ({best['method']}).")
    return 0


def run_demo(*, budget: int = 1_100_000, dim: int = 8, seed: int = 1,
             progress: bool | None = None) -> list[dict[str, Any]]:
    """The camel in ``dim`` dimensions by flowint, VEGAS and plain RQMC at equal total calls.

    flowint: ``integrate(f, dim, budget=budget)`` (the policy decides what the calls buy).
    VEGAS: its usual recipe, 5 iterations of ``budget/10`` calls to adapt (discarded), then 5
    averaged. Plain RQMC: 16 scrambled Sobol sets of ``2^m`` points, ``16·2^m <= budget``.

    Returns:
        One dict per method: ``mean``, ``sdev``, ``exact``, ``pull``, ``rel_error``
        (``sdev/|mean|``), ``true_rel_error`` (``|mean − exact|/|exact|``), ``calls``,
        ``time`` and ``how``.
    """
    import flowint
    import integrands

    f = integrands.get("camel", dim=dim)
    calls = [0]

    def counted(x):
        calls[0] += len(x)
        return f(x)

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = flowint.integrate(counted, dim, budget=budget, seed=seed, progress=progress)
    how = f"{res.n_evals - res.n_evals_final} exploring/training, final through {res.method}"
    rows = [_row("flowint", res.mean, res.sdev, f.exact, calls[0], time.perf_counter() - t0,
                 how)]
    rows.append(_vegas_recipe(f, budget, seed))
    rows.append(_plain_rqmc(f, budget, seed))
    return rows


def _vegas_recipe(f: Any, budget: int, seed: int) -> dict[str, Any]:
    import numpy as np
    import vegas

    calls = [0]

    @vegas.lbatchintegrand
    def g(x: np.ndarray) -> np.ndarray:
        calls[0] += len(x)
        return f.numpy(x)

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    integ = vegas.Integrator([[0.0, 1.0]] * f.dim, ran_array_generator=rng.random)
    neval = max(1, budget // 10)
    integ(g, nitn=5, neval=neval)  # adaptation, discarded
    res = integ(g, nitn=5, neval=neval)
    return _row("VEGAS", res.mean, res.sdev, f.exact, calls[0], time.perf_counter() - t0,
                "5 iterations adapt, 5 averaged")


def _plain_rqmc(f: Any, budget: int, seed: int, sets: int = 16) -> dict[str, Any]:
    import numpy as np
    from scipy.stats import qmc

    t0 = time.perf_counter()
    m = max(1, int(math.log2(max(budget // sets, 2))))
    rng = np.random.default_rng(seed)
    engines = (qmc.Sobol(f.dim, scramble=True, seed=rng, bits=64) for _ in range(sets))
    means = [float(np.mean(f.numpy(e.random(2**m)))) for e in engines]
    return _row("plain RQMC", float(np.mean(means)), float(np.std(means, ddof=1) / sets**0.5),
                f.exact, sets * 2**m, time.perf_counter() - t0,
                f"{sets} scrambled Sobol sets of 2^{m}, no learning")


def _row(method: str, mean: float, sdev: float, exact: float, calls: int, seconds: float,
         how: str) -> dict[str, Any]:
    return {"method": method, "mean": float(mean), "sdev": float(sdev), "exact": exact,
            "pull": (mean - exact) / sdev if sdev > 0 else math.nan,
            "rel_error": sdev / abs(mean), "true_rel_error": abs(mean - exact) / abs(exact),
            "calls": int(calls), "time": seconds, "how": how}


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``flowint`` command."""
    parser = argparse.ArgumentParser(
        prog="flowint",
        description="Integration with normalizing flows as importance samplers.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_integrate_parser(sub)
    _add_list_parser(sub)
    _add_bench_parser(sub)
    _add_demo_parser(sub)
    return parser


def _add_integrate_parser(sub: argparse._SubParsersAction) -> None:
    """The ``integrate`` subcommand: integrand, box, budget, training and output options."""
    p = sub.add_parser("integrate", help="integrate a registered or importable integrand",
                       description="Integrate a function over a box; prints the estimate with "
                                   "its error (and the exact value for test integrands).")
    p.add_argument("integrand", help="registry name with parameters (camel:alpha=0.1) or "
                                     "module:function")
    p.add_argument("--dim", type=int, help="number of dimensions")
    p.add_argument("--bounds", type=parse_bounds_arg, default=None,
                   help="box: 'lo,hi' for every axis or 'lo1,hi1;lo2,hi2;...' "
                        "(default: the unit cube)")
    p.add_argument("--budget", type=parse_count, default=1_000_000,
                   help="integrand calls in all, training and final estimate (default 1e6)")
    p.add_argument("--n-train", type=parse_count, default=None,
                   help="calls for training (default: automatic, with early stopping)")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--rtol", type=float, default=None,
                   help="stop the final estimate at this relative error")
    p.add_argument("--atol", type=float, default=None,
                   help="stop the final estimate at this absolute error")
    p.add_argument("--loss", default="variance",
                   choices=["variance", "kl", "hellinger", "jeffreys"], help="training loss")
    p.add_argument("--flow", default="rqs", choices=["rqs", "pwq", "pwl"],
                   help="spline family of the coupling layers")
    p.add_argument("--batch-size", type=parse_count, default=None, help="points per iteration")
    p.add_argument("--max-batch", type=parse_count, default=None,
                   help="most points per call of the integrand")
    p.add_argument("--device", default=None, help="torch device, e.g. cuda (default cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="training dtype of the flow")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file: written as the run goes, resumed from if present")
    p.add_argument("--samples", type=parse_count, default=None,
                   help="also draw this many unweighted samples ...")
    p.add_argument("--out", default="samples.npz", help="... into this .npz file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--summary", action="store_true", help="print the per-iteration table")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    p.set_defaults(run=_cmd_integrate)


def _add_list_parser(sub: argparse._SubParsersAction) -> None:
    """The ``list`` subcommand: no options."""
    p = sub.add_parser("list", help="list the registered test integrands")
    p.set_defaults(run=_cmd_list)


def _add_bench_parser(sub: argparse._SubParsersAction) -> None:
    """The ``bench`` subcommand: a benchmark name and the arguments passed on to it."""
    p = sub.add_parser("bench", help="run a script of benchmarks/ (no name: list them)")
    p.add_argument("name", nargs="?", default=None, help="benchmark name")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the benchmark")
    p.set_defaults(run=_cmd_bench)


def _add_demo_parser(sub: argparse._SubParsersAction) -> None:
    """The ``demo`` subcommand: budgets, dimension and seed of the camel comparison."""
    p = sub.add_parser("demo", help="flowint vs VEGAS and plain RQMC on the 8-D camel",
                       description="The README's main job: the 8-D camel integrated by "
                                   "flowint, VEGAS and plain randomized QMC with the same "
                                   "total number of calls.")
    p.add_argument("--quick", action="store_true", help="a budget of 1e5 calls (seconds)")
    p.add_argument("--budget", type=parse_count, default=None,
                   help="total integrand calls of each method (default 1.1e6)")
    p.add_argument("--dim", type=int, default=8, help="dimension of the camel (default 8)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: predictable on shared machines)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    p.set_defaults(run=_cmd_demo)


def _version() -> str:
    from . import __version__

    return f"flowint {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``flowint`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 on a usage error (unknown integrand, bad bounds, ...).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        args.budget = args.budget or (100_000 if args.quick else 1_100_000)
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError) as exc:
        parser.exit(2, f"flowint {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
